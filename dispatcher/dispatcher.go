// Package dispatcher is Pando's central service: it holds tasks and jobs in
// its store, keeps live jobs in the broker, serves agents over QUIC and
// users over the HTTP API.
package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/pando-wms/pando/dispatcher/api"
	"github.com/pando-wms/pando/dispatcher/auth"
	"github.com/pando-wms/pando/dispatcher/broker"
	"github.com/pando-wms/pando/dispatcher/carousel"
	"github.com/pando-wms/pando/dispatcher/pki"
	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/store/sqlite"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/dispatcher/workers"
	"github.com/pando-wms/pando/plugins/storage"
)

// Config configures a dispatcher. Zero durations take the defaults.
type Config struct {
	DataDir      string
	AgentAddr    string // UDP HOST:PORT for QUIC agents
	HTTPAddr     string // TCP HOST:PORT for the API
	Hosts        []string
	Heartbeat    time.Duration // agents' heartbeat period (10s)
	AgentTimeout time.Duration // silence before an agent is disconnected (30s)
	Grace        time.Duration // after disconnect, before its jobs are retried (30s)
	RetryBackoff time.Duration // first retry delay (1s); negative: none
	MaxFrame     int
	MaxLog       int64 // bytes of output kept per attempt (64 MiB)
	// CommitTimeout bounds how long an API call waits for its change to be
	// durable before answering 503 (30s).
	CommitTimeout time.Duration
	// Storage is the named storage endpoints (pando dispatcher --storage
	// FILE); their credentials stay here.
	Storage storage.Set
	// Windows sets the data carousel's window of tape endpoints, by name;
	// zero fields take the defaults (64 files, 64 GiB).
	Windows map[string]carousel.Window
	// ShareWindow is the time constant over which shares' usage decays
	// (10 minutes); Aging gives a waiting task one priority point per
	// period (1 minute; negative: none).
	ShareWindow time.Duration
	Aging       time.Duration
	// ReserveAfter: a task first in line that has waited this long for
	// free cores, memory or GPUs gets an agent drained for it (10 minutes;
	// negative: never).
	ReserveAfter time.Duration
	Logger       *slog.Logger
}

func (c *Config) defaults() {
	if c.Heartbeat == 0 {
		c.Heartbeat = 10 * time.Second
	}
	if c.AgentTimeout == 0 {
		c.AgentTimeout = 3 * c.Heartbeat
	}
	if c.Grace == 0 {
		c.Grace = 30 * time.Second
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = time.Second
	}
	if c.RetryBackoff < 0 {
		c.RetryBackoff = 0
	}
	if c.CommitTimeout <= 0 {
		c.CommitTimeout = 30 * time.Second
	}
	if c.MaxLog <= 0 {
		c.MaxLog = 64 << 20
	}
	if c.ShareWindow <= 0 {
		c.ShareWindow = broker.DefaultShareWindow
	}
	if c.Aging == 0 {
		c.Aging = broker.DefaultAging
	}
	if c.ReserveAfter == 0 {
		c.ReserveAfter = broker.DefaultReserveAfter
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = wire.MaxFrame
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Server is a running dispatcher.
type Server struct {
	cfg    Config
	log    *slog.Logger
	store  store.Store
	broker *broker.Broker
	auth   *auth.Authenticator
	pki    *pki.Files
	logs   *logDir
	ids    *idAllocator

	quic      *quic.Listener
	transport *quic.Transport
	http      *http.Server
	httpLn    net.Listener
	agentsWG  sync.WaitGroup
	wg        sync.WaitGroup
	cancel    context.CancelFunc
	ctx       context.Context

	streams       *workers.Pool         // runs job streams
	readers       wire.ReaderPool       // their readers
	storeErr      atomic.Pointer[error] // the last commit's error while commits fail
	pipe          store.Pipelined       // the store, if it splits commits; else nil
	toSync        chan written          // commits written, for syncLoop
	lateSync      []written             // written as commitLoop stopped, for flush
	syncFailed    atomic.Bool           // a flush failed: nothing written since is durable
	fatal         chan error            // why the server must stop (capacity 1)
	peerLog       rateLog               // warnings a peer can trigger at will
	closeOnce     sync.Once
	sessMu        sync.Mutex
	closing       bool
	sessions      map[*session]struct{}
	agentOwners   map[string]string // agent ID -> token name that first used it
	agentSessions map[string]int    // agent ID -> registered sessions
	flushWG       sync.WaitGroup    // session writers
	policyMu      sync.Mutex        // serialises queue and share changes
	metrics       *metrics

	workers workerSets // harvesters' reports

	tapes     map[string]*tapeStager // data carousels, by tape endpoint
	tapeWG    sync.WaitGroup
	stopTapes context.CancelFunc
}

// New opens (or creates) the data directory, recovers live jobs and binds
// both listeners. Call Run to serve.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg.defaults()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("dispatcher: data directory: %w", err)
	}
	files, err := pki.Ensure(cfg.DataDir, cfg.Hosts)
	if err != nil {
		return nil, fmt.Errorf("dispatcher: certificates: %w", err)
	}
	st, err := sqlite.Open(filepath.Join(cfg.DataDir, "pando.db"))
	if err != nil {
		return nil, fmt.Errorf("dispatcher: store: %w", err)
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger.With("component", "dispatcher"), store: st, pki: files,
		auth:     auth.NewAuthenticator(st, time.Minute),
		logs:     &logDir{dir: filepath.Join(cfg.DataDir, "logs"), max: cfg.MaxLog},
		ids:      &idAllocator{st: st},
		peerLog:  rateLog{burst: 10},
		sessions: make(map[*session]struct{}), agentOwners: make(map[string]string),
		agentSessions: make(map[string]int),
		metrics:       newMetrics(),
		pipe:          st,
		toSync:        make(chan written),
		fatal:         make(chan error, 1),
	}
	s.broker = broker.New(broker.Config{
		AgentTimeout: cfg.AgentTimeout, Grace: cfg.Grace, RetryBackoff: cfg.RetryBackoff,
		JobEnded: s.jobEnded, ShareWindow: cfg.ShareWindow, Aging: max(cfg.Aging, 0), ReserveAfter: max(cfg.ReserveAfter, 0),
		ObserveDispatch: s.metrics.observeDispatch,
	}, cfg.Logger.With("component", "broker"))
	s.metrics.stats = s.broker.Stats
	tctx, stopTapes := context.WithCancel(context.WithoutCancel(ctx))
	s.stopTapes = stopTapes
	s.newTapeStagers(tctx)
	if err := s.start(ctx); err != nil {
		s.stopTapes() // recovery may have started staging
		s.tapeWG.Wait()
		st.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	if err := s.ensureAdminToken(ctx); err != nil {
		return err
	}
	if err := os.MkdirAll(s.logs.dir, 0o700); err != nil {
		return fmt.Errorf("dispatcher: logs directory: %w", err)
	}
	if err := s.loadPolicy(ctx); err != nil {
		return err
	}
	if err := s.recover(ctx); err != nil {
		return err
	}
	if err := s.listenAgents(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		s.quic.Close()
		s.closeTransport()
		return fmt.Errorf("dispatcher: http listener: %w", err)
	}
	s.httpLn = ln
	handler := api.NewServer(s.store, s, s.auth, s.cfg.Logger.With("component", "api"))
	s.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	return nil
}

// AgentAddr is the bound UDP address agents dial.
func (s *Server) AgentAddr() net.Addr { return s.quic.Addr() }

// HTTPAddr is the bound API address.
func (s *Server) HTTPAddr() net.Addr { return s.httpLn.Addr() }

// CAFile is the PEM file agents verify the dispatcher against.
func (s *Server) CAFile() string { return s.pki.CAFile }

// AdminTokenFile is where the admin token was written on first start.
func (s *Server) AdminTokenFile() string { return filepath.Join(s.cfg.DataDir, "admin.token") }

// Run serves until ctx ends or Shutdown is called, then shuts down.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	s.ctx, s.cancel = ctx, cancel
	s.streams = workers.New(ctx, 10*time.Second)
	s.wg.Add(5)
	go func() { defer s.wg.Done(); s.commitLoop(ctx) }()
	go func() { defer s.wg.Done(); s.syncLoop() }()
	go func() { defer s.wg.Done(); s.tickLoop(ctx) }()
	go func() { defer s.wg.Done(); s.acceptAgents(ctx) }()
	httpErr := make(chan error, 1)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			httpErr <- err
		}
	}()
	s.log.Info("dispatcher running", "agents", s.AgentAddr().String(), "http", s.HTTPAddr().String(), "data", s.cfg.DataDir)
	var err error
	select {
	case <-ctx.Done():
	case err = <-httpErr:
		err = fmt.Errorf("dispatcher: http: %w", err)
	case err = <-s.fatal:
	}
	if err == nil { // fail cancels ctx too: either case may have been taken
		select {
		case err = <-s.fatal:
		default:
		}
	}
	s.shutdown()
	return err
}

// fail stops the server with err as Run's result; the first error wins.
func (s *Server) fail(err error) {
	select {
	case s.fatal <- err:
	default:
	}
	s.cancel()
}

// Shutdown stops a running server and waits for it.
func (s *Server) Shutdown() {
	if s.cancel != nil {
		s.cancel()
	}
}

// shutdown: stop accepting, close agent connections, wait for every
// goroutine, flush the last commit, close the store.
func (s *Server) shutdown() {
	s.closeOnce.Do(func() {
		s.cancel()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.http.Shutdown(sctx)
		_ = s.quic.Close()
		s.sessMu.Lock()
		s.closing = true
		for ss := range s.sessions {
			ss.Close(wire.CloseShutdown, "dispatcher shutting down")
		}
		s.sessMu.Unlock()
		s.closeTransport()
		s.agentsWG.Wait()
		s.wg.Wait()
		s.stopTapes()
		s.tapeWG.Wait()
		s.flush()
		s.flushWG.Wait()
		if err := s.store.Close(); err != nil {
			s.log.Error("close store", "err", err)
		}
		s.log.Info("dispatcher stopped")
	})
}

// Close releases a server that was created but never Run.
func (s *Server) Close() error {
	if s.ctx != nil {
		s.Shutdown()
		return nil
	}
	s.quic.Close()
	s.closeTransport()
	s.httpLn.Close()
	s.stopTapes()
	s.tapeWG.Wait()
	return s.store.Close()
}
