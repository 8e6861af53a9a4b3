package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// MaxFrame is the default largest frame (type byte plus CBOR body) a peer
// accepts. Log chunks are cut well below it.
const MaxFrame = 1 << 20

// headerLen is the 4-byte big-endian length prefix.
const headerLen = 4

// Framing errors. A peer that sends one of these is misbehaving (or not a
// Pando peer at all) and its stream is closed; other agents are unaffected.
var (
	ErrFrameTooLarge = errors.New("wire: frame too large")
	ErrEmptyFrame    = errors.New("wire: empty frame")
	ErrUnknownType   = errors.New("wire: unknown message type")
	ErrMalformed     = errors.New("wire: malformed message")
)

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.EncOptions{Sort: cbor.SortNone}.EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  16,
		MaxArrayElements: 65536,
		MaxMapPairs:      4096,
		IndefLength:      cbor.IndefLengthForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Marshal encodes m's body (without type byte or length prefix).
func Marshal(m Message) ([]byte, error) { return encMode.Marshal(m) }

// Unmarshal decodes a body of type t.
func Unmarshal(t Type, body []byte) (Message, error) {
	m := New(t)
	if m == nil {
		return nil, fmt.Errorf("%w %d", ErrUnknownType, t)
	}
	if err := decMode.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("%w: type %d: %v", ErrMalformed, t, err)
	}
	return m, nil
}

// AppendFrame appends the framed encoding of m to dst.
func AppendFrame(dst []byte, m Message) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, byte(m.Type()))
	body, err := encMode.Marshal(m)
	if err != nil {
		return dst[:start], fmt.Errorf("wire: encode type %d: %w", m.Type(), err)
	}
	dst = append(dst, body...)
	n := len(dst) - start - headerLen
	if n > MaxFrame {
		return dst[:start], fmt.Errorf("%w: %d bytes (max %d)", ErrFrameTooLarge, n, MaxFrame)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(n))
	return dst, nil
}

// Writer writes frames to a stream. It is safe for concurrent use: each
// message goes out in one Write call, whole.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write encodes and sends m.
func (w *Writer) Write(m Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	buf, err := AppendFrame(w.buf[:0], m)
	if err != nil {
		return err
	}
	w.buf = buf
	_, err = w.w.Write(buf)
	if cap(w.buf) > 64<<10 {
		w.buf = nil // do not pin a large log chunk's buffer
	}
	return err
}

// WriteBatch encodes msgs and sends them in one Write call, so that a burst
// of assignments costs one hand-off to the transport.
func (w *Writer) WriteBatch(msgs []Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	buf := w.buf[:0]
	for _, m := range msgs {
		var err error
		if buf, err = AppendFrame(buf, m); err != nil {
			return err
		}
	}
	w.buf = buf
	_, err := w.w.Write(buf)
	if cap(w.buf) > 64<<10 {
		w.buf = nil
	}
	return err
}

// Reader reads frames from a stream. It is not safe for concurrent use.
type Reader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewReader returns a Reader on r that refuses frames larger than max bytes
// (MaxFrame if max <= 0).
func NewReader(r io.Reader, max int) *Reader { return NewReaderSize(r, max, 4096) }

// NewReaderSize is NewReader with a read buffer of size bytes: small for
// long-lived streams that carry few small frames, where a buffer per agent
// adds up.
func NewReaderSize(r io.Reader, max, size int) *Reader {
	if max <= 0 {
		max = MaxFrame
	}
	return &Reader{r: bufio.NewReaderSize(r, size), max: max}
}

// ReaderPool recycles Readers and their buffers for short-lived streams:
// one per job attempt would otherwise allocate a 4 KiB buffer that lives a
// few milliseconds, most of the bytes a busy dispatcher allocates.
type ReaderPool struct{ p sync.Pool }

// Get returns a Reader on r, as NewReader(r, max) does.
func (p *ReaderPool) Get(r io.Reader, max int) *Reader {
	rd, ok := p.p.Get().(*Reader)
	if !ok {
		return NewReader(r, max)
	}
	if max <= 0 {
		max = MaxFrame
	}
	rd.r.Reset(r)
	rd.max = max
	return rd
}

// Put returns rd, which must come from Get, to the pool; the caller must
// not use it again.
func (p *ReaderPool) Put(rd *Reader) {
	rd.r.Reset(nil)
	p.p.Put(rd)
}

// Read returns the next message. io.EOF means the stream ended cleanly
// between frames.
func (r *Reader) Read() (Message, error) {
	t, body, err := r.ReadRaw()
	if err != nil {
		return nil, err
	}
	return Unmarshal(t, body)
}

// ReadRaw returns the next frame's type and body; body is valid until the
// next call.
func (r *Reader) ReadRaw() (Type, []byte, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r.r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("%w: truncated header", ErrMalformed)
		}
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if n == 0 {
		return 0, nil, ErrEmptyFrame
	}
	if n > r.max {
		return 0, nil, fmt.Errorf("%w: %d bytes (max %d)", ErrFrameTooLarge, n, r.max)
	}
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	frame := r.buf[:n]
	if _, err := io.ReadFull(r.r, frame); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("%w: truncated frame", ErrMalformed)
		}
		return 0, nil, err
	}
	if cap(r.buf) > 64<<10 {
		r.buf = nil
	}
	return Type(frame[0]), frame[1:], nil
}

// IsProtocolError reports whether err means the peer sent bad bytes.
func IsProtocolError(err error) bool {
	return errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrEmptyFrame) ||
		errors.Is(err, ErrUnknownType) || errors.Is(err, ErrMalformed)
}

// RequestStream is a bidirectional stream that carries one request and its
// answer (a *quic.Stream is one).
type RequestStream interface {
	io.Reader
	io.Writer
	Close() error // ends the write side
	SetDeadline(time.Time) error
}

// Exchange writes req on st, ends st's write side and reads the answer,
// all within timeout.
func Exchange(st RequestStream, req Message, timeout time.Duration) (Message, error) {
	st.SetDeadline(time.Now().Add(timeout))
	if err := NewWriter(st).Write(req); err != nil {
		return nil, err
	}
	st.Close()
	return NewReader(st, 0).Read()
}

// ReadOne reads exactly one frame from r, without reading ahead: what
// follows stays in r for another reader (a relayed stream's prefix).
func ReadOne(r io.Reader, max int) (Message, error) {
	var hdr [headerLen + 1]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:headerLen]))
	if n < 1 || n > max {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrFrameTooLarge, n, max)
	}
	body := make([]byte, n-1)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return Unmarshal(Type(hdr[headerLen]), body)
}
