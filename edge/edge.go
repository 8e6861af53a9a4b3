// Package edge is the login-node service for compute nodes that cannot
// reach the dispatcher: it serves the agent protocol to their pilots and
// relays each of them over one upstream QUIC connection to the dispatcher,
// which serves the relayed agents as its own (each with its own Hello and
// token; the edge holds only its own agent token). A pilot is pointed at
// the edge with --dispatcher EDGE:PORT and --ca-file EDGE_DATA/ca.pem.
//
// While the upstream is down the edge turns pilots away; they keep their
// payloads running and their reports until they get through again, so
// nothing is lost or reported twice.
package edge

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/pando-wms/pando/dispatcher/agentconn"
	"github.com/pando-wms/pando/dispatcher/pki"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/edge/cache"
	"github.com/pando-wms/pando/pilot/stage"
)

// Config configures an edge.
type Config struct {
	Listen   string   // UDP HOST:PORT for pilots
	DataDir  string   // its CA and certificate (DATA/ca.pem for pilots), its agent ID
	Hosts    []string // extra names and addresses for its certificate
	Upstream string   // the dispatcher's agents HOST:PORT
	Token    string   // an agent token for the upstream
	TLS      *tls.Config
	Name     string
	Logger   *slog.Logger
	// DataListen, when set, serves job inputs to pilots (their
	// --input-proxy) from a cache of CacheBytes in DataDir/cache, fetched
	// from the storage hosts in DataAllow (HOST:PORT) only.
	DataListen string
	DataAllow  []string
	CacheBytes int64
}

// Edge is a running relay.
type Edge struct {
	cfg Config
	log *slog.Logger
	ln  *quic.Listener
	tr  *quic.Transport
	id  string

	mu     sync.Mutex
	up     *upstream // nil while down
	upCh   chan struct{}
	nextID uint64
	down   map[uint64]*quic.Conn
	wg     sync.WaitGroup

	data   *http.Server
	dataLn net.Listener
}

type upstream struct {
	qc *quic.Conn
	w  *wire.Writer
}

// New creates the edge's certificates and binds its listener.
func New(cfg Config) (*Edge, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Name == "" {
		host, _ := os.Hostname()
		cfg.Name = "edge-" + host
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("edge: data directory: %w", err)
	}
	files, err := pki.Ensure(cfg.DataDir, cfg.Hosts)
	if err != nil {
		return nil, fmt.Errorf("edge: certificates: %w", err)
	}
	tlsConf, err := pki.ServerTLS(files, wire.ALPN)
	if err != nil {
		return nil, err
	}
	id, err := agentID(filepath.Join(cfg.DataDir, "agent.id"))
	if err != nil {
		return nil, err
	}
	addr, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("edge: listen address %q: %w", cfg.Listen, err)
	}
	udp, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("edge: listen on %s: %w", cfg.Listen, err)
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(tlsConf, &quic.Config{HandshakeIdleTimeout: 10 * time.Second, MaxIdleTimeout: 60 * time.Second,
		MaxIncomingStreams: 10000, MaxIncomingUniStreams: -1})
	if err != nil {
		tr.Close()
		return nil, fmt.Errorf("edge: listen on %s: %w", cfg.Listen, err)
	}
	e := &Edge{cfg: cfg, log: cfg.Logger.With("component", "edge"), ln: ln, tr: tr, id: id,
		upCh: make(chan struct{}), down: map[uint64]*quic.Conn{}}
	if cfg.DataListen != "" {
		if err := e.listenData(); err != nil {
			ln.Close()
			tr.Close()
			return nil, err
		}
	}
	return e, nil
}

// listenData binds the input server and opens its cache.
func (e *Edge) listenData() error {
	if len(e.cfg.DataAllow) == 0 {
		return errors.New("edge: serving inputs needs the storage hosts it may fetch from (--data-allow)")
	}
	size := e.cfg.CacheBytes
	if size <= 0 {
		size = 100 << 30
	}
	c, err := cache.New(filepath.Join(e.cfg.DataDir, "cache"), size, e.log.With("component", "edge-cache"))
	if err != nil {
		return fmt.Errorf("edge: cache: %w", err)
	}
	ln, err := net.Listen("tcp", e.cfg.DataListen)
	if err != nil {
		return fmt.Errorf("edge: input server: %w", err)
	}
	e.dataLn = ln
	e.data = &http.Server{Handler: &dataServer{cache: c, fetch: stage.New(stage.Options{Logger: e.log}),
		client: &http.Client{Timeout: time.Hour}, allow: e.cfg.DataAllow},
		ReadHeaderTimeout: 10 * time.Second}
	return nil
}

// DataAddr is the bound address of the input server (nil without one).
func (e *Edge) DataAddr() net.Addr {
	if e.dataLn == nil {
		return nil
	}
	return e.dataLn.Addr()
}

// Addr is the bound address pilots dial.
func (e *Edge) Addr() net.Addr { return e.ln.Addr() }

// WaitUpstream waits until the upstream connection is up.
func (e *Edge) WaitUpstream(ctx context.Context) error {
	e.mu.Lock()
	ch := e.upCh
	e.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CAFile is the CA pilots verify the edge with.
func (e *Edge) CAFile() string { return filepath.Join(e.cfg.DataDir, "ca.pem") }

// Run relays until ctx ends, then closes every connection and waits.
func (e *Edge) Run(ctx context.Context) error {
	e.log.Info("edge running", "listen", e.Addr().String(), "upstream", e.cfg.Upstream, "ca", e.CAFile())
	e.wg.Add(1)
	go func() { defer e.wg.Done(); e.keepUpstream(ctx) }()
	if e.data != nil {
		e.log.Info("serving inputs", "listen", e.dataLn.Addr().String(), "storage", e.cfg.DataAllow)
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			if err := e.data.Serve(e.dataLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				e.log.Error("input server stopped", "err", err)
			}
		}()
	}
	for {
		qc, err := e.ln.Accept(ctx)
		if err != nil {
			break
		}
		e.wg.Add(1)
		go func() { defer e.wg.Done(); e.serve(ctx, qc) }()
	}
	e.ln.Close()
	if e.data != nil {
		e.data.Close()
	}
	e.mu.Lock()
	for _, qc := range e.down {
		qc.CloseWithError(quic.ApplicationErrorCode(wire.CloseShutdown), "edge shutting down")
	}
	if e.up != nil {
		e.up.qc.CloseWithError(0, "edge shutting down")
	}
	e.mu.Unlock()
	e.wg.Wait()
	e.tr.Close()
	return nil
}

// keepUpstream holds the upstream connection, redialling with back-off.
func (e *Edge) keepUpstream(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		err := e.upstreamOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		e.log.Warn("upstream lost; pilots are turned away until it returns", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff + rand.N(backoff/2)):
		}
		backoff = min(2*backoff, 15*time.Second)
		if err == nil {
			backoff = time.Second
		}
	}
}

// upstreamOnce connects, serves the edge's control stream until the
// connection ends, then turns the relayed pilots away.
func (e *Edge) upstreamOnce(ctx context.Context) error {
	s, err := agentconn.Dial(ctx, e.cfg.Upstream, e.cfg.TLS, &wire.Hello{Version: wire.Version, Kind: wire.KindEdge,
		Name: e.cfg.Name, AgentID: e.id, Token: e.cfg.Token})
	if err != nil {
		return err
	}
	defer s.Conn.CloseWithError(0, "")
	e.mu.Lock()
	e.up = &upstream{qc: s.Conn, w: s.W}
	close(e.upCh)
	e.mu.Unlock()
	e.log.Info("upstream connected", "dispatcher", e.cfg.Upstream)
	defer func() {
		e.mu.Lock()
		e.up, e.upCh = nil, make(chan struct{})
		down := e.down
		e.down = map[uint64]*quic.Conn{}
		e.mu.Unlock()
		for _, c := range down { // their relayed sessions are gone with the upstream
			c.CloseWithError(quic.ApplicationErrorCode(wire.CloseShutdown), "edge lost its upstream")
		}
	}()
	hctx, stop := context.WithCancel(ctx)
	var hb sync.WaitGroup
	hb.Add(1)
	go func() { defer hb.Done(); s.Heartbeat(hctx) }()
	defer func() { stop(); hb.Wait() }()
	for {
		m, err := s.R.Read()
		if err != nil {
			return err
		}
		if rc, ok := m.(*wire.RelayClose); ok { // the dispatcher ended a pilot's session
			e.mu.Lock()
			c := e.down[rc.Conn]
			delete(e.down, rc.Conn)
			e.mu.Unlock()
			if c != nil {
				c.CloseWithError(quic.ApplicationErrorCode(rc.Code), rc.Reason)
			}
		}
	}
}

// serve relays one pilot connection: each stream it opens becomes an
// upstream stream prefixed with Relay{id}; the streams are piped both ways.
func (e *Edge) serve(ctx context.Context, qc *quic.Conn) {
	e.mu.Lock()
	up := e.up
	if up == nil {
		e.mu.Unlock()
		qc.CloseWithError(quic.ApplicationErrorCode(wire.CloseShutdown), "edge: the dispatcher is not reachable now; retry later")
		return
	}
	e.nextID++
	id := e.nextID
	e.down[id] = qc
	e.mu.Unlock()
	log := e.log.With("remote", qc.RemoteAddr().String(), "conn", id)
	log.Debug("pilot connected")
	defer func() {
		e.mu.Lock()
		_, open := e.down[id]
		delete(e.down, id)
		e.mu.Unlock()
		if open { // the pilot went away: its relayed session ends too
			_ = up.w.Write(&wire.RelayClose{Conn: id, Code: wire.CloseNormal, Reason: "agent left the edge"})
		}
		qc.CloseWithError(0, "")
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		st, err := qc.AcceptStream(ctx)
		if err != nil {
			return
		}
		ust, err := up.qc.OpenStreamSync(ctx)
		if err != nil {
			st.CancelRead(quic.StreamErrorCode(wire.CloseShutdown))
			st.CancelWrite(quic.StreamErrorCode(wire.CloseShutdown))
			return
		}
		if err := wire.NewWriter(ust).Write(&wire.Relay{Conn: id, Remote: qc.RemoteAddr().String()}); err != nil {
			ust.CancelWrite(0)
			st.CancelRead(0)
			st.CancelWrite(0)
			return
		}
		wg.Add(2)
		go func() { defer wg.Done(); pipe(ust, st) }()
		go func() { defer wg.Done(); pipe(st, ust) }()
	}
}

// pipe copies src's read side to dst's write side, passing an end of
// stream on as one and an error as a reset.
func pipe(dst, src *quic.Stream) {
	_, err := io.Copy(dst, src)
	if err == nil {
		dst.Close()
		return
	}
	var se *quic.StreamError
	code := quic.StreamErrorCode(0)
	if errors.As(err, &se) {
		code = se.ErrorCode
	}
	dst.CancelWrite(code)
	src.CancelRead(code)
}

// agentID loads the edge's agent ID, creating it on first start: the
// dispatcher binds an agent ID to the token that first used it.
func agentID(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	var b [8]byte
	if _, err := crand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	return id, os.WriteFile(path, []byte(id+"\n"), 0o600)
}
