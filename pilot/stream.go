package pilot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/pando-wms/pando/dispatcher/wire"
)

// maxLogChunk keeps log frames well below the frame limit.
const maxLogChunk = 256 << 10

// ackTimeout bounds the wait for the dispatcher to make a report durable.
const ackTimeout = 30 * time.Second

// stream is a job's stream on one session.
type stream struct {
	sess *session
	st   *quic.Stream
	w    *wire.Writer
	r    *wire.Reader
}

// streamFor returns the job's stream on the current session, opening one
// (and announcing the attempt) when the session changed. nil: disconnected.
func (p *Pilot) streamFor(ctx context.Context, j *job) *stream {
	sess, _ := p.current()
	if sess == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.out != nil && j.out.sess == sess {
		return j.out
	}
	if j.out != nil {
		j.out.st.CancelRead(0)
		j.out.st.Close()
	}
	j.out = nil
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := sess.conn.OpenStreamSync(octx)
	if err != nil {
		return nil
	}
	s := &stream{sess: sess, st: st, w: wire.NewWriter(st), r: wire.NewReader(st, 0)}
	if err := s.w.Write(&wire.JobOpen{JobID: j.a.JobID, Attempt: j.a.Attempt}); err != nil {
		st.CancelWrite(0)
		return nil
	}
	j.out = s
	return s
}

// emit sends a progress message on the job's stream, best effort: progress
// lost while disconnected is not worth delaying the payload for.
func (p *Pilot) emit(ctx context.Context, j *job, m wire.Message) {
	if s := p.streamFor(ctx, j); s != nil {
		s.st.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_ = s.w.Write(m)
	}
}

// logWriter forwards payload output to the dispatcher as it arrives.
type logWriter struct {
	p      *Pilot
	ctx    context.Context
	j      *job
	stream int
}

func (w *logWriter) Write(b []byte) (int, error) {
	for off := 0; off < len(b); off += maxLogChunk {
		end := min(off+maxLogChunk, len(b))
		w.p.emit(w.ctx, w.j, &wire.Log{Stream: w.stream, Data: b[off:end]})
	}
	return len(b), nil
}

// deliver sends the final report until the dispatcher acknowledges it as
// durable or refuses it; across reconnects if need be.
func (p *Pilot) deliver(ctx context.Context, j *job, rep *wire.Report) {
	log := p.log.With("job", j.a.JobID, "attempt", j.a.Attempt)
	for attempt := 0; ; attempt++ {
		j.mu.Lock()
		dropped := j.dropped
		j.mu.Unlock()
		if dropped {
			log.Info("report discarded: the dispatcher dropped the job")
			return
		}
		if attempt > 0 {
			if !p.waitSession(ctx) {
				log.Warn("report not delivered: pilot stopping")
				return
			}
		}
		ack, err := p.sendReport(ctx, j, rep)
		switch {
		case err != nil:
			log.Debug("report not acknowledged; will resend", "err", err)
		case ack.Code == 0:
			return
		case ack.Code > 0:
			log.Warn("dispatcher refused the report", "code", ack.Code, "reason", ack.Message)
			return
		default:
			log.Warn("dispatcher could not store the report; will resend", "reason", ack.Message)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// waitSession waits until a session is up; false if ctx ends first.
func (p *Pilot) waitSession(ctx context.Context) bool {
	for {
		s, next := p.current()
		if s != nil {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-next:
		}
	}
}

func (p *Pilot) sendReport(ctx context.Context, j *job, rep *wire.Report) (*wire.Ack, error) {
	s := p.streamFor(ctx, j)
	if s == nil {
		return nil, errors.New("not connected")
	}
	j.mu.Lock()
	j.out = nil // this stream ends with the report
	j.mu.Unlock()
	defer s.st.CancelRead(0)
	s.st.SetWriteDeadline(time.Now().Add(ackTimeout))
	if err := s.w.Write(rep); err != nil {
		return nil, fmt.Errorf("send report: %w", err)
	}
	s.st.Close()
	s.st.SetReadDeadline(time.Now().Add(ackTimeout))
	m, err := s.r.Read()
	if err != nil {
		return nil, fmt.Errorf("read ack: %w", err)
	}
	ack, ok := m.(*wire.Ack)
	if !ok {
		return nil, fmt.Errorf("expected ack, got message type %d", m.Type())
	}
	return ack, nil
}
