package wire_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/pando-wms/pando/dispatcher/wire"
)

// FuzzReader feeds arbitrary bytes to a Reader: it must never panic, and
// every error is a protocol error or a clean io.EOF.
func FuzzReader(f *testing.F) {
	var all []byte
	for _, m := range samples() {
		frame, err := wire.AppendFrame(nil, m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame)
		all = append(all, frame...)
	}
	f.Add(all)
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 1, 9})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add(frameOf(wire.TypeHello, []byte{0xa1, 0x07, 0xa1, 0x09, 0x81, 0xa0}))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := wire.NewReader(bytes.NewReader(data), 4096)
		for i := 0; ; i++ {
			m, err := r.Read()
			if err != nil {
				if !errors.Is(err, io.EOF) && !wire.IsProtocolError(err) {
					t.Fatalf("frame %d: error %v is neither io.EOF nor a protocol error", i, err)
				}
				if errors.Is(err, io.EOF) && wire.IsProtocolError(err) {
					t.Fatalf("frame %d: error %v is both io.EOF and a protocol error", i, err)
				}
				return
			}
			if m == nil {
				t.Fatalf("frame %d: nil message without error", i)
			}
			checkReencode(t, m)
		}
	})
}

// FuzzUnmarshal decodes an arbitrary body as any type. Whatever decodes must
// encode again and decode to an equal value.
func FuzzUnmarshal(f *testing.F) {
	for _, m := range samples() {
		f.Add(byte(m.Type()), mustMarshal(f, m))
	}
	for _, typ := range allTypes {
		f.Add(byte(typ), []byte{0xa0})
	}
	f.Add(byte(0), []byte{0xa0})
	// Empty containers are omitted on re-encoding and come back nil.
	f.Add(byte(wire.TypeAssign), []byte{0xa2, 0x05, 0x80, 0x06, 0xa0})
	f.Add(byte(wire.TypeHello), []byte{0xa1, 0x07, 0xa2, 0x09, 0x80, 0x0d, 0x80})
	f.Add(byte(wire.TypeLog), []byte{0xa1, 0x02, 0x40})
	// NaN and a float16 where a float64 is expected.
	f.Add(byte(wire.TypeHeartbeat), []byte{0xa2, 0x04, 0xf9, 0x7e, 0x00, 0x01, 0x01})
	f.Add(byte(wire.TypeSample), []byte{0xa1, 0x02, 0xf9, 0x3c, 0x00})
	f.Fuzz(func(t *testing.T, typ byte, body []byte) {
		m, err := wire.Unmarshal(wire.Type(typ), body)
		if err != nil {
			if !wire.IsProtocolError(err) {
				t.Fatalf("Unmarshal error %v is not a protocol error", err)
			}
			if (wire.New(wire.Type(typ)) == nil) != errors.Is(err, wire.ErrUnknownType) {
				t.Fatalf("type %d: error %v", typ, err)
			}
			return
		}
		if m.Type() != wire.Type(typ) {
			t.Fatalf("Unmarshal(%d) returned %T", typ, m)
		}
		checkReencode(t, m)
	})
}

// checkReencode checks that a decoded message frames, reads back and
// compares equal.
func checkReencode(t *testing.T, m wire.Message) {
	t.Helper()
	frame, err := wire.AppendFrame(nil, m)
	if err != nil {
		t.Fatalf("re-encode %T: %v", m, err)
	}
	again, err := wire.NewReader(bytes.NewReader(frame), len(frame)).Read()
	if err != nil {
		t.Fatalf("decode re-encoded %T: %v", m, err)
	}
	if !equalMessages(again, m) {
		t.Fatalf("re-encoded %T differs:\n got %#v\nwant %#v", m, again, m)
	}
}
