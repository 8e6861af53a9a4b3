package dispatcher

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/dispatcher/workers"
)

// maxQueued bounds the messages waiting for an agent that does not read;
// past it the agent is disconnected, and reconciles when it reconnects.
const maxQueued = 4096

// session is one agent connection; it implements broker.Session. Pushes
// are queued and written in order by a pooled goroutine, so that the
// committer, which calls Send, never waits on an agent's network.
type session struct {
	conn     agentConn
	ctrl     *quic.Stream
	w        *wire.Writer
	hello    *wire.Hello
	lastSeen atomic.Int64
	log      *slog.Logger
	pool     *workers.Pool
	flushing *sync.WaitGroup
	srv      *Server

	mu      sync.Mutex
	queue   []wire.Message
	sending bool
	held    bool // until Welcome is written: nothing may overtake it
	closed  bool

	relay *relayMux // an edge's relayed agents (edges only)

	// Job streams the agent is expected to open (see expectStreams).
	expect     map[wire.RunningJob]struct{}
	stopAccept context.CancelFunc // nil while no acceptor runs
}

// Send queues msgs for the agent. It fails only if the session is closed
// or the agent has stopped reading.
func (ss *session) Send(msgs []wire.Message) error {
	var assigned []wire.RunningJob
	for _, m := range msgs {
		if a, ok := m.(*wire.Assign); ok {
			assigned = append(assigned, wire.RunningJob{JobID: a.JobID, Attempt: a.Attempt})
			if len(a.Inputs) > 0 {
				ss.srv.presignInputs(a)
			}
		}
	}
	// Before the Assign can reach the agent, so the acceptor is there for its stream.
	ss.srv.expectStreams(ss.srv.ctx, ss, assigned)
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return net.ErrClosed
	}
	if len(ss.queue)+len(msgs) > maxQueued {
		ss.mu.Unlock()
		ss.Close(wire.CloseProtocol, "agent does not read its control stream")
		return net.ErrClosed
	}
	ss.queue = append(ss.queue, msgs...)
	start := ss.startLocked()
	ss.mu.Unlock()
	if start {
		ss.pool.Go(ss.flush)
	}
	return nil
}

// startLocked claims the sender role if there is work and nobody has it.
func (ss *session) startLocked() bool {
	if ss.sending || ss.held || ss.closed || len(ss.queue) == 0 {
		return false
	}
	ss.sending = true
	ss.flushing.Add(1)
	return true
}

// flush writes queued messages until the queue is empty. A failed write
// closes the session: a push that cannot be delivered must not leave the
// broker believing it was.
func (ss *session) flush() {
	defer ss.flushing.Done()
	for {
		ss.mu.Lock()
		msgs := ss.queue
		ss.queue = nil
		if len(msgs) == 0 || ss.closed {
			ss.sending = false
			ss.mu.Unlock()
			return
		}
		ss.mu.Unlock()
		ss.ctrl.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := ss.w.WriteBatch(msgs); err != nil {
			ss.log.Warn("write to agent failed; closing its connection", "err", err)
			ss.Close(wire.CloseProtocol, "write failed: "+err.Error())
			ss.mu.Lock()
			ss.sending = false
			ss.mu.Unlock()
			return
		}
	}
}

// welcome writes the Welcome directly, then lets queued pushes go.
func (ss *session) welcome(m *wire.Welcome) error {
	ss.ctrl.SetWriteDeadline(time.Now().Add(writeTimeout))
	err := ss.w.Write(m)
	ss.mu.Lock()
	ss.held = false
	start := err == nil && ss.startLocked()
	ss.mu.Unlock()
	if start {
		ss.pool.Go(ss.flush)
	}
	return err
}

func (ss *session) Close(code int, reason string) {
	ss.mu.Lock()
	ss.closed = true
	ss.queue = nil
	ss.mu.Unlock()
	_ = ss.conn.CloseWithError(quic.ApplicationErrorCode(code), reason)
}

func (ss *session) LastSeen() time.Time { return time.Unix(0, ss.lastSeen.Load()) }

func (ss *session) seen() { ss.lastSeen.Store(time.Now().UnixNano()) }
