package pilot

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/edge/cache"
)

// session is one live connection to the dispatcher.
type session struct {
	conn    *quic.Conn
	w       *wire.Writer
	lastAck atomic.Int64 // UnixNano of the last HeartbeatAck (or of the Welcome)
}

// deadAfter is how many heartbeat periods without an acknowledgement make
// the pilot give up on a connection. A dispatcher that dropped us while the
// network was cut cannot tell us so; waiting for QUIC's idle timeout would
// outlast the grace period in which our jobs can be re-attached.
const deadAfter = 4

func (s *session) send(m wire.Message) error { return s.w.Write(m) }

// connectLoop keeps a session up, with capped exponential back-off and
// jitter between attempts. It returns nil when ctx ends and ErrRefused when
// the dispatcher turns the pilot away for good.
func (p *Pilot) connectLoop(ctx context.Context) error {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := p.session(ctx)
		if errors.Is(err, ErrRefused) {
			p.log.Error("dispatcher refused the pilot", "err", err)
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > 30*time.Second {
			backoff = 500 * time.Millisecond // it worked for a while: retry soon
		}
		delay := backoff/2 + rand.N(backoff/2+1)
		p.log.Warn("connection to dispatcher lost; reconnecting", "err", err, "in", delay.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	return nil
}

// session runs one connection until it fails.
func (p *Pilot) session(ctx context.Context) error {
	// A dead dispatcher answers nothing over UDP: give up on a dial quickly
	// and let the back-off pace the retries.
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := quic.DialAddr(dctx, p.cfg.Dispatcher, p.cfg.TLS, &quic.Config{
		HandshakeIdleTimeout:  5 * time.Second,
		MaxIdleTimeout:        60 * time.Second,
		KeepAlivePeriod:       15 * time.Second,
		MaxIncomingStreams:    -1,
		MaxIncomingUniStreams: -1,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("dial %s: %w", p.cfg.Dispatcher, err)
	}
	defer conn.CloseWithError(0, "")
	ctrl, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("open control stream: %w", err)
	}
	s := &session{conn: conn, w: wire.NewWriter(ctrl)}
	r := wire.NewReader(ctrl, 0)
	hb, err := p.handshake(s, r)
	if err != nil {
		return err
	}
	s.lastAck.Store(time.Now().UnixNano())
	defer p.detach(s) // also when attach fails half-way
	if err := p.attach(s); err != nil {
		return err
	}
	var hbDone sync.WaitGroup
	defer hbDone.Wait()
	hctx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	hbDone.Go(func() { p.heartbeat(hctx, s, hb) })
	return p.readControl(ctx, s, r)
}

// handshake sends Hello and waits for Welcome.
func (p *Pilot) handshake(s *session, r *wire.Reader) (time.Duration, error) {
	hello := &wire.Hello{Version: wire.Version, Kind: wire.KindPilot, Name: p.cfg.Name, AgentID: p.id,
		Queue: p.cfg.Queue, Token: p.cfg.Token, Resources: p.cfg.Resources, Running: p.running()}
	if !p.deadline.IsZero() {
		hello.Deadline = p.deadline.Unix()
	}
	if err := s.send(hello); err != nil {
		return 0, fmt.Errorf("send hello: %w", err)
	}
	m, err := r.Read()
	if err != nil {
		var appErr *quic.ApplicationError
		if errors.As(err, &appErr) && isFatal(int(appErr.ErrorCode)) {
			return 0, fmt.Errorf("%w: %s", ErrRefused, appErr.ErrorMessage)
		}
		return 0, fmt.Errorf("read welcome: %w", err)
	}
	switch m := m.(type) {
	case *wire.Welcome:
		for _, d := range m.Drop {
			p.drop(d.JobID, d.Attempt)
		}
		p.log.Info("connected to dispatcher", "reattached", len(hello.Running)-len(m.Drop), "dropped", len(m.Drop))
		return time.Duration(m.HeartbeatMillis) * time.Millisecond, nil
	case *wire.Refuse:
		err := fmt.Errorf("%s (code %d)", m.Message, m.Code)
		if isFatal(m.Code) {
			return 0, fmt.Errorf("%w: %v", ErrRefused, err)
		}
		return 0, err
	default:
		return 0, fmt.Errorf("expected welcome, got message type %d", m.Type())
	}
}

func isFatal(code int) bool {
	return code == wire.CloseUnauthorized || code == wire.CloseBadVersion || code == wire.CloseBadQueue
}

func (p *Pilot) heartbeat(ctx context.Context, s *session, every time.Duration) {
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var seq, sentCache uint64 // a new session resends the cache summary
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if since := time.Since(time.Unix(0, s.lastAck.Load())); since > deadAfter*every {
				p.log.Warn("no heartbeat acknowledged; reconnecting", "since", since.Round(time.Millisecond))
				_ = s.conn.CloseWithError(0, "no heartbeat acknowledged")
				return
			}
			seq++
			p.mu.Lock()
			n := len(p.jobs)
			p.mu.Unlock()
			hb := &wire.Heartbeat{Seq: seq, UnixNano: time.Now().UnixNano(), Running: n}
			if ids, v := p.cache.Present(); v != sentCache {
				hb.CacheFilter, hb.CacheHashes = cache.Summarize(ids)
				sentCache = v
			}
			if err := s.send(hb); err != nil {
				return
			}
		}
	}
}

// readControl handles what the dispatcher pushes.
func (p *Pilot) readControl(ctx context.Context, s *session, r *wire.Reader) error {
	for {
		m, err := r.Read()
		if err != nil {
			var appErr *quic.ApplicationError
			if errors.As(err, &appErr) && isFatal(int(appErr.ErrorCode)) {
				return fmt.Errorf("%w: %s", ErrRefused, appErr.ErrorMessage)
			}
			return err
		}
		switch m := m.(type) {
		case *wire.Assign:
			p.start(ctx, m)
		case *wire.Kill:
			p.kill(m.JobID, m.Attempt, m.Reason)
		case *wire.Drain:
			p.setDraining("drained by dispatcher: " + m.Reason)
		case *wire.HeartbeatAck:
			s.lastAck.Store(time.Now().UnixNano())
		case *wire.Refuse:
			return fmt.Errorf("dispatcher: %s (code %d)", m.Message, m.Code)
		default:
			return fmt.Errorf("unexpected message type %d on control stream", m.Type())
		}
	}
}

// attach makes s the current session, grants it all free resources and
// wakes jobs waiting to report. creditMu makes the grant and a concurrent
// release of a finished job's resources count each core exactly once.
func (p *Pilot) attach(s *session) error {
	p.creditMu.Lock()
	defer p.creditMu.Unlock()
	p.mu.Lock()
	p.sess = s
	close(p.sessCh)
	p.sessCh = make(chan struct{})
	p.mu.Unlock()
	if w := p.free(); w != nil && w.Slots > 0 {
		return s.send(w)
	}
	return nil
}

func (p *Pilot) detach(s *session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sess == s {
		p.sess = nil
	}
}

// current returns the live session, or nil and a channel closed when the
// next one is up.
func (p *Pilot) current() (*session, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sess, p.sessCh
}

// release returns a finished job's resources and grants them as credit.
func (p *Pilot) release(cores int, mem int64, gpuIdx []int) {
	p.creditMu.Lock()
	defer p.creditMu.Unlock()
	p.mu.Lock()
	p.usedCPU -= cores
	p.usedMem -= mem
	for _, i := range gpuIdx {
		p.gpuHeld[i] = false
	}
	gpus := len(gpuIdx)
	s, draining := p.sess, p.draining
	p.mu.Unlock()
	if s == nil || draining {
		return // the next session grants everything free at once
	}
	_ = s.send(&wire.Want{Slots: 1, Cores: cores, MemoryBytes: mem, GPUs: gpus})
}
