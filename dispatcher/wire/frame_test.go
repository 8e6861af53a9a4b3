package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/pando-wms/pando/dispatcher/wire"
)

// frameOf builds a raw frame: length prefix, type byte, body.
func frameOf(typ wire.Type, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(body)))
	b = append(b, byte(typ))
	return append(b, body...)
}

// headerOnly serves one 4-byte header and fails the test if the Reader asks
// for anything after it.
type headerOnly struct {
	t    *testing.T
	hdr  []byte
	done bool
}

func (h *headerOnly) Read(p []byte) (int, error) {
	if h.done {
		h.t.Error("Reader read past the header of a frame it should have refused")
		return 0, errors.New("read past header")
	}
	h.done = true
	return copy(p, h.hdr), nil
}

func TestReaderRefusesLargeFrameBeforeBody(t *testing.T) {
	for _, tc := range []struct {
		max, n int
	}{
		{0, wire.MaxFrame + 1},
		{-1, wire.MaxFrame + 1},
		{0, 1<<32 - 1},
		{100, 101},
		{wire.MaxFrame * 4, wire.MaxFrame*4 + 1},
	} {
		hdr := binary.BigEndian.AppendUint32(nil, uint32(tc.n))
		r := wire.NewReader(&headerOnly{t: t, hdr: hdr}, tc.max)
		_, _, err := r.ReadRaw()
		if !errors.Is(err, wire.ErrFrameTooLarge) {
			t.Errorf("max %d, frame %d: err = %v, want ErrFrameTooLarge", tc.max, tc.n, err)
		}
	}
}

func TestReaderMaxIsInclusive(t *testing.T) {
	body := make([]byte, 99)
	r := wire.NewReader(bytes.NewReader(frameOf(wire.TypeLog, body)), 100)
	typ, got, err := r.ReadRaw()
	if err != nil || typ != wire.TypeLog || !bytes.Equal(got, body) {
		t.Fatalf("ReadRaw of a frame of exactly max bytes: %d %d bytes %v", typ, len(got), err)
	}
}

func TestReaderErrors(t *testing.T) {
	valid := frameOf(wire.TypeKill, mustMarshal(t, sampleKill()))
	for _, tc := range []struct {
		name  string
		input []byte
		want  error
	}{
		{"clean EOF", nil, io.EOF},
		{"empty frame", []byte{0, 0, 0, 0}, wire.ErrEmptyFrame},
		{"unknown type 0", frameOf(0, []byte{0xa0}), wire.ErrUnknownType},
		{"unknown type 10", frameOf(10, []byte{0xa0}), wire.ErrUnknownType},
		{"unknown type 255", frameOf(255, []byte{0xa0}), wire.ErrUnknownType},
		{"type byte only", frameOf(wire.TypeDrain, nil), wire.ErrMalformed},
		{"garbled CBOR", frameOf(wire.TypeHello, []byte{0xff, 0x13, 0x37}), wire.ErrMalformed},
		{"wrong CBOR kind", frameOf(wire.TypeHello, []byte{0x63, 'a', 'b', 'c'}), wire.ErrMalformed},
		{"wrong field kind", frameOf(wire.TypeKill, []byte{0xa1, 0x01, 0x61, 'x'}), wire.ErrMalformed},
		{"trailing bytes in body", frameOf(wire.TypeDrain, []byte{0xa0, 0xa0}), wire.ErrMalformed},
		{"duplicate key", frameOf(wire.TypeDrain, []byte{0xa2, 0x01, 0x61, 'a', 0x01, 0x61, 'b'}), wire.ErrMalformed},
		{"indefinite length", frameOf(wire.TypeDrain, []byte{0xbf, 0x01, 0x61, 'a', 0xff}), wire.ErrMalformed},
		{"truncated header 1", []byte{0}, wire.ErrMalformed},
		{"truncated header 3", []byte{0, 0, 1}, wire.ErrMalformed},
		{"header without body", valid[:4], wire.ErrMalformed},
		{"truncated body", valid[:len(valid)-1], wire.ErrMalformed},
		{"valid then truncated header", append(append([]byte{}, valid...), 0, 0), wire.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := wire.NewReader(bytes.NewReader(tc.input), 0)
			var err error
			for i := 0; err == nil; i++ {
				if i > 2 {
					t.Fatal("no error after 2 reads")
				}
				_, err = r.Read()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if got, want := wire.IsProtocolError(err), tc.want != io.EOF; got != want {
				t.Errorf("IsProtocolError(%v) = %v, want %v", err, got, want)
			}
		})
	}
}

// A stream error in the middle of a body is passed through, not taken for
// a protocol error.
func TestReaderPassesStreamErrors(t *testing.T) {
	boom := errors.New("stream reset")
	valid := frameOf(wire.TypeKill, mustMarshal(t, sampleKill()))
	for _, cut := range []int{0, 2, 4, len(valid) - 1} {
		r := wire.NewReader(io.MultiReader(bytes.NewReader(valid[:cut]), errReader{boom}), 0)
		_, err := r.Read()
		if !errors.Is(err, boom) || wire.IsProtocolError(err) {
			t.Errorf("cut at %d: err = %v, want the stream's error", cut, err)
		}
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestBackToBackFrames(t *testing.T) {
	var stream []byte
	var want []wire.Message
	for round := 0; round < 3; round++ {
		for _, m := range samples() {
			var err error
			stream, err = wire.AppendFrame(stream, m)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, m)
		}
		// A large frame between small ones exercises the Reader's buffer release.
		big := &wire.Log{Stream: wire.Stdout, Data: bytes.Repeat([]byte{byte(round)}, 100<<10)}
		stream, _ = wire.AppendFrame(stream, big)
		want = append(want, big)
	}
	// One byte at a time, so every frame straddles reads.
	r := wire.NewReader(&oneByteReader{b: stream}, 0)
	for i, w := range want {
		got, err := r.Read()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !equalMessages(got, w) {
			t.Fatalf("frame %d: got %+v, want %+v", i, got, w)
		}
	}
	if _, err := r.Read(); err != io.EOF {
		t.Fatalf("after last frame: %v, want io.EOF", err)
	}
}

type oneByteReader struct{ b []byte }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(o.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = o.b[0]
	o.b = o.b[1:]
	return 1, nil
}

// TestWriterConcurrent writes (Write and WriteBatch) from many goroutines through a pipe read by a
// Reader; every frame must arrive whole and each writer's frames in order.
func TestWriterConcurrent(t *testing.T) {
	const writers, each = 16, 100
	pr, pw := io.Pipe()
	w := wire.NewWriter(pw)
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				// Sizes vary, and some exceed the Writer's kept buffer.
				data := bytes.Repeat([]byte(fmt.Sprintf("%d/%d;", g, i)), 1+(i*g)%3000)
				m := &wire.Log{Stream: g, Data: data}
				write := func() error { return w.Write(m) }
				if g%2 == 1 {
					write = func() error { return w.WriteBatch([]wire.Message{m}) }
				}
				if err := write(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		pw.Close()
	}()
	next := make([]int, writers)
	r := wire.NewReader(pr, 0)
	for {
		m, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		l := m.(*wire.Log)
		g, i := l.Stream, next[l.Stream]
		want := bytes.Repeat([]byte(fmt.Sprintf("%d/%d;", g, i)), 1+(i*g)%3000)
		if !bytes.Equal(l.Data, want) {
			t.Fatalf("writer %d frame %d: got %d bytes starting %q", g, i, len(l.Data), l.Data[:min(len(l.Data), 20)])
		}
		next[g]++
	}
	for g, n := range next {
		if n != each {
			t.Errorf("writer %d: %d frames arrived, want %d", g, n, each)
		}
	}
}

func TestAppendFrameRefusesOversizedLog(t *testing.T) {
	// The overhead of a Log frame with a 4-byte byte-string length.
	probe, err := wire.AppendFrame(nil, &wire.Log{Stream: wire.Stdout, Data: make([]byte, 1<<17)})
	if err != nil {
		t.Fatal(err)
	}
	overhead := len(probe) - 4 - 1<<17
	fits := wire.MaxFrame - overhead

	dst := []byte("keep")
	out, err := wire.AppendFrame(dst, &wire.Log{Stream: wire.Stdout, Data: make([]byte, fits)})
	if err != nil {
		t.Fatalf("Log of exactly MaxFrame bytes: %v", err)
	}
	if len(out) != len(dst)+4+wire.MaxFrame {
		t.Errorf("frame of %d bytes, want %d", len(out)-len(dst), 4+wire.MaxFrame)
	}
	if _, err := wire.NewReader(bytes.NewReader(out[len(dst):]), 0).Read(); err != nil {
		t.Errorf("Reader refuses a frame of exactly MaxFrame bytes: %v", err)
	}

	out, err = wire.AppendFrame(dst, &wire.Log{Stream: wire.Stdout, Data: make([]byte, fits+1)})
	if !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("Log one byte over: err = %v, want ErrFrameTooLarge", err)
	}
	if string(out) != "keep" {
		t.Errorf("AppendFrame returned %d bytes on error, want dst unchanged", len(out))
	}

	var sink bytes.Buffer
	w := wire.NewWriter(&sink)
	if err := w.Write(&wire.Log{Data: make([]byte, wire.MaxFrame)}); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Errorf("Writer.Write: err = %v, want ErrFrameTooLarge", err)
	}
	if sink.Len() != 0 {
		t.Errorf("Writer wrote %d bytes of a refused frame", sink.Len())
	}
	if err := w.Write(sampleKill()); err != nil {
		t.Fatalf("Writer after a refused frame: %v", err)
	}
	if m, err := wire.NewReader(&sink, 0).Read(); err != nil || !equalMessages(m, sampleKill()) {
		t.Errorf("after a refused frame: %+v, %v", m, err)
	}
}

func TestWriterPassesWriteError(t *testing.T) {
	boom := errors.New("stream closed")
	if err := wire.NewWriter(errWriter{boom}).Write(sampleDrain()); !errors.Is(err, boom) {
		t.Errorf("err = %v, want %v", err, boom)
	}
}

type errWriter struct{ err error }

func (e errWriter) Write([]byte) (int, error) { return 0, e.err }

func TestIsProtocolError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{io.EOF, false},
		{io.ErrUnexpectedEOF, false},
		{errors.New("wire: malformed message"), false}, // same text, not the sentinel
		{wire.ErrFrameTooLarge, true},
		{wire.ErrEmptyFrame, true},
		{wire.ErrUnknownType, true},
		{wire.ErrMalformed, true},
		{fmt.Errorf("conn 3: %w", fmt.Errorf("%w: truncated", wire.ErrMalformed)), true},
		{fmt.Errorf("read: %w", io.EOF), false},
	} {
		if got := wire.IsProtocolError(tc.err); got != tc.want {
			t.Errorf("IsProtocolError(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if _, err := wire.Unmarshal(200, nil); !errors.Is(err, wire.ErrUnknownType) {
		t.Errorf("Unmarshal(200): %v, want ErrUnknownType", err)
	}
}

func mustMarshal(t testing.TB, m wire.Message) []byte {
	t.Helper()
	b, err := wire.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteBatch(t *testing.T) {
	var stream bytes.Buffer
	w := wire.NewWriter(&stream)
	if err := w.WriteBatch(samples()); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteBatch(nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	// One oversized message refuses the whole batch: nothing is written.
	before := stream.Len()
	bad := []wire.Message{sampleKill(), &wire.Log{Data: make([]byte, wire.MaxFrame)}, sampleDrain()}
	if err := w.WriteBatch(bad); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("oversized batch: err = %v, want ErrFrameTooLarge", err)
	}
	if stream.Len() != before {
		t.Fatalf("refused batch wrote %d bytes", stream.Len()-before)
	}
	if err := w.Write(sampleAck()); err != nil {
		t.Fatal(err)
	}
	r := wire.NewReader(&stream, 0)
	for i, want := range append(samples(), sampleAck()) {
		got, err := r.Read()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !equalMessages(got, want) {
			t.Fatalf("frame %d: got %+v, want %+v", i, got, want)
		}
	}
	if _, err := r.Read(); err != io.EOF {
		t.Fatalf("after last frame: %v, want io.EOF", err)
	}
}

// A pooled Reader reads only from the stream it was last given, with that
// call's limit: nothing buffered from an earlier stream leaks into it.
func TestReaderPool(t *testing.T) {
	var pool wire.ReaderPool
	// The first stream has a frame more than its reader consumes.
	first := append(frameOf(wire.TypeLog, []byte("a")), frameOf(wire.TypeLog, []byte("left behind"))...)
	r := pool.Get(bytes.NewReader(first), 0)
	if _, body, err := r.ReadRaw(); err != nil || string(body) != "a" {
		t.Fatalf("first stream: %q %v", body, err)
	}
	pool.Put(r)
	for range 3 { // the pool may hand back the same Reader or a new one
		r = pool.Get(bytes.NewReader(frameOf(wire.TypeLog, []byte("second"))), 0)
		if _, body, err := r.ReadRaw(); err != nil || string(body) != "second" {
			t.Fatalf("second stream: %q %v", body, err)
		}
		if _, _, err := r.ReadRaw(); !errors.Is(err, io.EOF) {
			t.Fatalf("after the second stream's only frame: %v, want EOF", err)
		}
		pool.Put(r)
	}
	r = pool.Get(bytes.NewReader(frameOf(wire.TypeLog, make([]byte, 10))), 5)
	if _, _, err := r.ReadRaw(); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("limit 5, frame of 11: %v, want ErrFrameTooLarge", err)
	}
}
