package harvester

import (
	"context"
	"crypto/tls"
	"log/slog"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/pando-wms/pando/dispatcher/agentconn"
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
	s, err := agentconn.Dial(ctx, c.addr, c.tls, &wire.Hello{Version: wire.Version, Kind: wire.KindHarvester,
		Name: c.name, AgentID: c.id, Token: c.token})
	if err != nil {
		return nil, err
	}
	hctx, stop := context.WithCancel(context.Background())
	c.qc, c.stop = s.Conn, stop
	c.wg.Add(2)
	go func() { defer c.wg.Done(); s.Heartbeat(hctx) }()
	go func() { // acknowledgements and anything else pushed: read and drop
		defer c.wg.Done()
		for {
			if _, err := s.R.Read(); err != nil {
				s.Conn.CloseWithError(0, "")
				return
			}
		}
	}()
	c.log.Info("connected to dispatcher", "addr", c.addr)
	return s.Conn, nil
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
