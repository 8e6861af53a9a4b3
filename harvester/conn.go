package harvester

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/pando-wms/pando/dispatcher/wire"
)

// conn is the harvester's session with the dispatcher: an agent of kind
// harvester on QUIC, heartbeating, asking its queries on streams of their
// own. It redials when the session is lost.
type conn struct {
	addr, token, name, id string
	tls                   *tls.Config
	log                   *slog.Logger

	mu   sync.Mutex
	qc   *quic.Conn
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// session returns the live QUIC connection, dialling one if needed.
func (c *conn) session(ctx context.Context) (*quic.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.qc != nil && c.qc.Context().Err() == nil {
		return c.qc, nil
	}
	c.closeLocked()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	qc, err := quic.DialAddr(dctx, c.addr, c.tls, &quic.Config{HandshakeIdleTimeout: 5 * time.Second,
		MaxIdleTimeout: 60 * time.Second, KeepAlivePeriod: 15 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", c.addr, err)
	}
	ctrl, err := qc.OpenStreamSync(dctx)
	if err != nil {
		qc.CloseWithError(0, "")
		return nil, err
	}
	w, r := wire.NewWriter(ctrl), wire.NewReader(ctrl, 0)
	hello := &wire.Hello{Version: wire.Version, Kind: wire.KindHarvester, Name: c.name, AgentID: c.id, Token: c.token}
	if err := w.Write(hello); err != nil {
		qc.CloseWithError(0, "")
		return nil, err
	}
	ctrl.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := r.Read()
	if err != nil {
		qc.CloseWithError(0, "")
		return nil, fmt.Errorf("hello: %w", err)
	}
	ctrl.SetReadDeadline(time.Time{})
	welcome, ok := m.(*wire.Welcome)
	if !ok {
		qc.CloseWithError(0, "")
		if ref, ok := m.(*wire.Refuse); ok {
			return nil, fmt.Errorf("%w: %s", errRefused, ref.Message)
		}
		return nil, fmt.Errorf("expected Welcome, got message type %d", m.Type())
	}
	hctx, stop := context.WithCancel(context.Background())
	c.qc, c.stop = qc, stop
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		c.heartbeat(hctx, qc, w, time.Duration(welcome.HeartbeatMillis)*time.Millisecond)
	}()
	go func() { // acknowledgements and anything else pushed: read and drop
		defer c.wg.Done()
		for {
			if _, err := r.Read(); err != nil {
				qc.CloseWithError(0, "")
				return
			}
		}
	}()
	c.log.Info("connected to dispatcher", "addr", c.addr)
	return qc, nil
}

var errRefused = errors.New("dispatcher refused the harvester")

func (c *conn) heartbeat(ctx context.Context, qc *quic.Conn, w *wire.Writer, every time.Duration) {
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
		case <-qc.Context().Done():
			return
		case <-t.C:
			seq++
			if err := w.Write(&wire.Heartbeat{Seq: seq, UnixNano: time.Now().UnixNano()}); err != nil {
				qc.CloseWithError(0, "")
				return
			}
		}
	}
}

// ask sends one request on a stream of its own and returns the answer.
func (c *conn) ask(ctx context.Context, req wire.Message) (wire.Message, error) {
	qc, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	st, err := qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	defer st.CancelRead(0)
	return wire.Exchange(st, req, 30*time.Second)
}

func (c *conn) closeLocked() {
	if c.qc != nil {
		c.stop()
		c.qc.CloseWithError(0, "")
		c.qc = nil
	}
}

// close ends the session and waits for its goroutines.
func (c *conn) close() {
	c.mu.Lock()
	c.closeLocked()
	c.mu.Unlock()
	c.wg.Wait()
}
