package dispatcher

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/pando-wms/pando/dispatcher/wire"
)

// agentConn is an agent's connection: its own QUIC connection, or one an
// edge relays over the edge's connection.
type agentConn interface {
	AcceptStream(ctx context.Context) (*quic.Stream, error)
	CloseWithError(code quic.ApplicationErrorCode, msg string) error
	RemoteAddr() net.Addr
}

// relayMux serves the agents an edge relays: every stream the edge opens
// starts with a Relay frame naming the agent connection it belongs to; the
// first stream of a connection is the agent's control stream, and that
// agent is then served like any other, with its own Hello and token.
type relayMux struct {
	srv  *Server
	edge *session
	qc   *quic.Conn

	mu    sync.Mutex
	conns map[uint64]*relayConn
	// ended remembers closed connections for a while, so that a stream
	// still on its way does not open the connection again. (Streams of
	// different connections arrive in any order: numbers tell nothing.)
	ended map[uint64]time.Time
}

// endedFor is how long a closed relayed connection is remembered.
const endedFor = 5 * time.Minute

func newRelayMux(s *Server, edge *session, qc *quic.Conn) *relayMux {
	return &relayMux{srv: s, edge: edge, qc: qc, conns: map[uint64]*relayConn{}, ended: map[uint64]time.Time{}}
}

// relayStreamLimit bounds the streams waiting for one relayed agent.
const relayStreamLimit = 256

// run accepts the edge's streams until its connection ends, then closes
// every relayed connection.
func (m *relayMux) run(ctx context.Context) {
	defer func() {
		m.mu.Lock()
		conns := m.conns
		m.conns = map[uint64]*relayConn{}
		m.mu.Unlock()
		for _, c := range conns {
			c.shut()
		}
	}()
	for {
		st, err := m.qc.AcceptStream(ctx)
		if err != nil {
			return
		}
		m.srv.agentsWG.Add(1)
		go func() {
			defer m.srv.agentsWG.Done()
			m.route(ctx, st)
		}()
	}
}

// route reads a stream's Relay frame and hands the stream to its agent.
func (m *relayMux) route(ctx context.Context, st *quic.Stream) {
	st.SetReadDeadline(time.Now().Add(helloTimeout))
	msg, err := wire.ReadOne(st, 4096)
	st.SetReadDeadline(time.Time{})
	r, ok := msg.(*wire.Relay)
	if err != nil || !ok {
		m.edge.log.Warn("edge stream without a Relay frame", "err", err)
		reject(st)
		return
	}
	m.mu.Lock()
	c, known := m.conns[r.Conn]
	_, ended := m.ended[r.Conn]
	fresh := !known && !ended
	if fresh {
		remote, _ := net.ResolveUDPAddr("udp", r.Remote)
		c = &relayConn{mux: m, id: r.Conn, remote: remote, streams: make(chan *quic.Stream, relayStreamLimit), done: make(chan struct{})}
		m.conns[r.Conn] = c
	}
	m.mu.Unlock()
	if c == nil {
		reject(st) // a connection that has ended
		return
	}
	if fresh {
		m.srv.agentsWG.Add(1)
		go func() {
			defer m.srv.agentsWG.Done()
			m.srv.serveAgent(ctx, c)
		}()
	}
	select {
	case c.streams <- st:
	case <-c.done:
		reject(st)
	default:
		m.edge.log.Warn("relayed agent does not take its streams", "conn", r.Conn)
		reject(st)
	}
}

// closed ends a relayed connection the edge reports gone.
func (m *relayMux) closed(id uint64) {
	m.mu.Lock()
	c := m.conns[id]
	m.forget(id)
	m.mu.Unlock()
	if c != nil {
		c.shut()
	}
}

// forget drops a connection, remembering that it ended. m.mu is held.
func (m *relayMux) forget(id uint64) {
	delete(m.conns, id)
	now := time.Now()
	m.ended[id] = now
	for k, t := range m.ended {
		if now.Sub(t) > endedFor {
			delete(m.ended, k)
		}
	}
}

func reject(st *quic.Stream) {
	st.CancelRead(quic.StreamErrorCode(wire.CloseProtocol))
	st.CancelWrite(quic.StreamErrorCode(wire.CloseProtocol))
}

// relayConn is one agent connection an edge relays.
type relayConn struct {
	mux     *relayMux
	id      uint64
	remote  net.Addr
	streams chan *quic.Stream
	done    chan struct{}
	once    sync.Once
}

func (c *relayConn) AcceptStream(ctx context.Context) (*quic.Stream, error) {
	select {
	case st := <-c.streams:
		return st, nil
	case <-c.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// CloseWithError ends the relayed connection and asks the edge to close
// the agent's own.
func (c *relayConn) CloseWithError(code quic.ApplicationErrorCode, msg string) error {
	if c.shut() {
		c.mux.mu.Lock()
		c.mux.forget(c.id)
		c.mux.mu.Unlock()
		_ = c.mux.edge.Send([]wire.Message{&wire.RelayClose{Conn: c.id, Code: int(code), Reason: msg}})
	}
	return nil
}

func (c *relayConn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.mux.qc.RemoteAddr()
}

// shut closes c once (reporting whether this call did) and rejects the
// streams still waiting.
func (c *relayConn) shut() bool {
	first := false
	c.once.Do(func() {
		first = true
		close(c.done)
		for {
			select {
			case st := <-c.streams:
				reject(st)
			default:
				return
			}
		}
	})
	return first
}
