package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"reflect"
	"testing"

	"github.com/pando-wms/pando/dispatcher/wire"
)

// allTypes lists every message type of the protocol.
var allTypes = []wire.Type{
	wire.TypeHello, wire.TypeWelcome, wire.TypeRefuse, wire.TypeWant, wire.TypeAssign,
	wire.TypeHeartbeat, wire.TypeHeartbeatAck, wire.TypeKill, wire.TypeDrain,
	wire.TypeJobOpen, wire.TypeJobState, wire.TypeSample, wire.TypeLog, wire.TypeReport, wire.TypeAck,
	wire.TypeURLRequest, wire.TypeURLs, wire.TypeDemandQuery, wire.TypeDemand, wire.TypeWorkerReport,
	wire.TypeRelay, wire.TypeRelayClose,
}

// samples returns one fully populated value of every message kind, in
// allTypes order.
func samples() []wire.Message {
	return []wire.Message{
		sampleHello(), sampleWelcome(), sampleRefuse(), sampleWant(), sampleAssign(),
		sampleHeartbeat(), sampleHeartbeatAck(), sampleKill(), sampleDrain(),
		sampleJobOpen(), sampleJobState(), sampleSample(), sampleLog(), sampleReport(), sampleAck(),
		sampleURLRequest(), sampleURLs(), sampleDemandQuery(), sampleDemand(), sampleWorkerReport(),
		sampleRelay(), sampleRelayClose(),
	}
}

func TestNewCoversEveryType(t *testing.T) {
	seen := map[reflect.Type]wire.Type{}
	for _, typ := range allTypes {
		m := wire.New(typ)
		if m == nil {
			t.Fatalf("New(%d) = nil", typ)
		}
		if m.Type() != typ {
			t.Errorf("New(%d).Type() = %d", typ, m.Type())
		}
		if prev, dup := seen[reflect.TypeOf(m)]; dup {
			t.Errorf("New(%d) and New(%d) both return %T", prev, typ, m)
		}
		seen[reflect.TypeOf(m)] = typ
	}
	known := map[wire.Type]bool{}
	for _, typ := range allTypes {
		known[typ] = true
	}
	for i := 0; i < 256; i++ {
		if typ := wire.Type(i); !known[typ] && wire.New(typ) != nil {
			t.Errorf("New(%d) = %T, but the type is not in this test's list", i, wire.New(typ))
		}
	}
	s := samples()
	if len(s) != len(allTypes) {
		t.Fatalf("%d samples for %d types", len(s), len(allTypes))
	}
	for i, m := range s {
		if m.Type() != allTypes[i] {
			t.Errorf("sample %d is %T (type %d), want type %d", i, m, m.Type(), allTypes[i])
		}
	}
}

// TestZeroValuesRoundTrip checks that empty messages survive the trip too
// (nil slices and omitted fields come back as they went).
func TestZeroValuesRoundTrip(t *testing.T) {
	for _, typ := range allTypes {
		m := wire.New(typ)
		frame, err := wire.AppendFrame(nil, m)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		got, err := wire.NewReader(bytes.NewReader(frame), 0).Read()
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%T: got %+v, want %+v", m, got, m)
		}
	}
}

// roundTrip checks that m is fully populated, carries type typ, and comes
// back deep-equal through Marshal/Unmarshal, AppendFrame and Writer/Reader.
func roundTrip(t *testing.T, typ wire.Type, m wire.Message) {
	t.Helper()
	if m.Type() != typ {
		t.Fatalf("%T.Type() = %d, want %d", m, m.Type(), typ)
	}
	assertFull(t, reflect.ValueOf(m).Elem(), reflect.TypeOf(m).Elem().Name())

	// Marshal / Unmarshal.
	body, err := wire.Marshal(m)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	got, err := wire.Unmarshal(typ, body)
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("Unmarshal(Marshal(m)):\n got %+v\nwant %+v", got, m)
	}

	// AppendFrame after existing bytes: header, type byte, body.
	prefix := []byte("xyz")
	frame, err := wire.AppendFrame(append([]byte(nil), prefix...), m)
	if err != nil {
		t.Fatalf("AppendFrame: %v", err)
	}
	if !bytes.Equal(frame[:len(prefix)], prefix) {
		t.Fatalf("AppendFrame clobbered dst: %q", frame[:len(prefix)])
	}
	frame = frame[len(prefix):]
	if n := binary.BigEndian.Uint32(frame); int(n) != len(frame)-4 {
		t.Errorf("length prefix %d, frame has %d bytes after it", n, len(frame)-4)
	}
	if wire.Type(frame[4]) != typ {
		t.Errorf("type byte %d, want %d", frame[4], typ)
	}

	// Writer then Reader, twice on one stream, then a clean EOF.
	var stream bytes.Buffer
	w := wire.NewWriter(&stream)
	for i := 0; i < 2; i++ {
		if err := w.Write(m); err != nil {
			t.Fatalf("Writer.Write: %v", err)
		}
	}
	stream.Write(frame)
	r := wire.NewReader(&stream, 0)
	for i := 0; i < 3; i++ {
		got, err := r.Read()
		if err != nil {
			t.Fatalf("Read %d: %v", i, err)
		}
		if got.Type() != typ {
			t.Errorf("Read %d: type %d, want %d", i, got.Type(), typ)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("Read %d:\n got %+v\nwant %+v", i, got, m)
		}
	}
	if _, err := r.Read(); !errors.Is(err, io.EOF) {
		t.Errorf("Read at end: %v, want io.EOF", err)
	}
}

// assertFull fails if any field reachable from v has its zero value, so a
// field added to a message without being added to its sample is noticed.
func assertFull(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	if v.IsZero() {
		t.Errorf("sample leaves %s empty; populate it so the round trip covers it", path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			assertFull(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	case reflect.Slice:
		if v.Len() == 0 {
			t.Errorf("sample leaves %s empty", path)
		}
		if v.Type().Elem().Kind() == reflect.Struct {
			for i := 0; i < v.Len(); i++ {
				assertFull(t, v.Index(i), path+"[i]")
			}
		}
	case reflect.Map:
		if v.Len() == 0 {
			t.Errorf("sample leaves %s empty", path)
		}
	}
}

// equalMessages reports whether a and b carry the same content. Unlike
// reflect.DeepEqual it takes a nil and an empty slice or map to be equal (an
// empty Env is omitted on the wire and comes back nil) and NaN to equal NaN.
func equalMessages(a, b wire.Message) bool {
	return equalValues(reflect.ValueOf(a), reflect.ValueOf(b))
}

func equalValues(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equalValues(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if !equalValues(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !equalValues(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for it := a.MapRange(); it.Next(); {
			bv := b.MapIndex(it.Key())
			if !bv.IsValid() || !equalValues(it.Value(), bv) {
				return false
			}
		}
		return true
	case reflect.Float32, reflect.Float64:
		x, y := a.Float(), b.Float()
		return x == y || (math.IsNaN(x) && math.IsNaN(y))
	default:
		return a.Interface() == b.Interface()
	}
}
