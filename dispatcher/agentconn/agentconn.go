// Package agentconn opens an agent's session with a dispatcher (or an
// edge): the QUIC connection, the control stream, Hello and Welcome, and
// the heartbeats the session then owes. Harvesters and edges use it.
package agentconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/pando-wms/pando/dispatcher/wire"
)

// ErrRefused means the dispatcher turned the Hello down (bad token,
// version); its reason follows.
var ErrRefused = errors.New("dispatcher refused the agent")

// Session is a welcomed agent session.
type Session struct {
	Conn    *quic.Conn
	W       *wire.Writer // control stream
	R       *wire.Reader
	Welcome *wire.Welcome
}

// Dial connects to addr and says hello. The caller closes s.Conn.
func Dial(ctx context.Context, addr string, tlsConf *tls.Config, hello *wire.Hello) (*Session, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	qc, err := quic.DialAddr(ctx, addr, tlsConf, &quic.Config{HandshakeIdleTimeout: 5 * time.Second,
		MaxIdleTimeout: 60 * time.Second, KeepAlivePeriod: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	s, err := greet(ctx, qc, hello)
	if err != nil {
		qc.CloseWithError(0, "")
		return nil, err
	}
	return s, nil
}

func greet(ctx context.Context, qc *quic.Conn, hello *wire.Hello) (*Session, error) {
	ctrl, err := qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	s := &Session{Conn: qc, W: wire.NewWriter(ctrl), R: wire.NewReader(ctrl, 0)}
	if err := s.W.Write(hello); err != nil {
		return nil, err
	}
	ctrl.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := s.R.Read()
	if err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	ctrl.SetReadDeadline(time.Time{})
	switch m := m.(type) {
	case *wire.Welcome:
		s.Welcome = m
		return s, nil
	case *wire.Refuse:
		return nil, fmt.Errorf("%w: %s", ErrRefused, m.Message)
	}
	return nil, fmt.Errorf("expected Welcome, got message type %d", m.Type())
}

// Heartbeat sends a Heartbeat every period the Welcome asked for until ctx
// ends or the connection fails (which it then closes).
func (s *Session) Heartbeat(ctx context.Context) {
	every := time.Duration(s.Welcome.HeartbeatMillis) * time.Millisecond
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var seq uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.Conn.Context().Done():
			return
		case <-t.C:
			seq++
			if err := s.W.Write(&wire.Heartbeat{Seq: seq, UnixNano: time.Now().UnixNano()}); err != nil {
				s.Conn.CloseWithError(0, "")
				return
			}
		}
	}
}
