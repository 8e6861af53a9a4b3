// Package pilot is the agent that runs in a batch slot: it probes its node,
// connects to the dispatcher over QUIC, grants credit for its free cores
// and memory, runs the jobs pushed to it, streams their output and reports
// their outcome, reconnecting (and re-attaching its jobs) when the
// connection drops.
package pilot

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pando-wms/pando/containers"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/edge/cache"
)

// Config configures a pilot.
type Config struct {
	Dispatcher string // HOST:PORT of the dispatcher (or an edge)
	Token      string
	TLS        *tls.Config // verifies the dispatcher; see pki.ClientTLS
	Name       string      // default: hostname-pid
	Queue      string
	Resources  wire.Resources     // probed, with --cores/--memory applied
	Walltime   time.Duration      // 0: no limit
	WorkDir    string             // parent of the jobs' work directories
	Runtime    containers.Runtime // for jobs without an image
	Containers containers.Runtime // for jobs with an image; nil: none here
	// SampleEvery is the payload resource sampling period (default 5s).
	SampleEvery time.Duration
	// KeepWorkDirs keeps job directories after their report is delivered.
	KeepWorkDirs bool
	// CacheDir holds the node cache of staged inputs (default WorkDir/cache),
	// bounded by CacheBytes (default DefaultCacheBytes).
	CacheDir   string
	CacheBytes int64
	// IdleExit drains the pilot when it has had no job for this long (0:
	// never): a batch slot with nothing to do goes back to the batch system.
	IdleExit time.Duration
	// InputProxy is an edge's input server (http://EDGE:PORT) that fetches
	// inputs for nodes with no route to the storage.
	InputProxy string
	Logger     *slog.Logger
}

// ErrRefused means the dispatcher refused the pilot for good (bad token,
// unsupported protocol version); retrying would not help.
var ErrRefused = errors.New("dispatcher refused the pilot")

// Pilot is one running agent.
type Pilot struct {
	cfg      Config
	log      *slog.Logger
	id       string
	deadline time.Time

	creditMu sync.Mutex // orders credit grants; see attach
	mu       sync.Mutex
	jobs     map[wire.RunningJob]*job // by job and attempt: a retry may arrive while the last attempt's report is in flight
	sess     *session                 // nil while disconnected
	sessCh   chan struct{}
	draining bool
	lastBusy time.Time // when a job last ran (or the pilot started)
	usedCPU  int
	usedMem  int64
	gpuHeld  []bool        // by index into cfg.Resources.GPUs: given to a running job
	done     chan struct{} // closed when a job ends (wakes the exit check)

	jobsWG sync.WaitGroup

	cache     *cache.Cache // staged inputs, shared by the node's jobs
	http      *http.Client // to storage
	serveOnce sync.Once
	cacheSrv  *http.Server // serves the cache to stream jobs, started by the first
	cacheURL  string
	cacheErr  error
	serveWG   sync.WaitGroup
}

// New checks cfg and prepares a pilot.
func New(cfg Config) (*Pilot, error) {
	if cfg.Dispatcher == "" || cfg.TLS == nil {
		return nil, errors.New("pilot: dispatcher address and TLS configuration are required")
	}
	if cfg.Runtime == nil {
		return nil, errors.New("pilot: no payload runtime")
	}
	if cfg.Resources.Cores <= 0 || cfg.Resources.MemoryBytes <= 0 {
		return nil, fmt.Errorf("pilot: need at least one core and some memory (have %d cores, %d bytes)", cfg.Resources.Cores, cfg.Resources.MemoryBytes)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SampleEvery == 0 {
		cfg.SampleEvery = 5 * time.Second
	}
	if cfg.Name == "" {
		host, _ := os.Hostname()
		cfg.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	// Payloads run as the pilot's user: make /proc/PID/environ and memory
	// of the pilot unreadable to them (the token may sit in the environment).
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		cfg.Logger.Warn("cannot protect the pilot's memory from payloads", "err", err)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	id := hex.EncodeToString(b[:])
	if cfg.WorkDir == "" {
		cfg.WorkDir = filepath.Join(os.TempDir(), "pando-pilot-"+id)
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o700); err != nil {
		return nil, fmt.Errorf("pilot: work directory: %w", err)
	}
	p := &Pilot{cfg: cfg, id: id, jobs: make(map[wire.RunningJob]*job), sessCh: make(chan struct{}),
		gpuHeld: make([]bool, len(cfg.Resources.GPUs)),
		done:    make(chan struct{}, 1), log: cfg.Logger.With("component", "pilot", "name", cfg.Name)}
	if cfg.Walltime > 0 {
		p.deadline = time.Now().Add(cfg.Walltime)
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(cfg.WorkDir, "cache")
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	c, err := cache.New(cfg.CacheDir, cfg.CacheBytes, p.log.With("component", "cache"))
	if err != nil {
		return nil, fmt.Errorf("pilot: node cache: %w", err)
	}
	p.cfg, p.cache, p.http = cfg, c, newHTTPClient()
	return p, nil
}

// CacheStats describes the node cache of staged inputs.
func (p *Pilot) CacheStats() cache.Stats { return p.cache.Stats() }

// ID is the pilot's agent ID, stable across reconnects.
func (p *Pilot) ID() string { return p.id }

// Run connects and runs jobs until the pilot is drained, its walltime runs
// out, or ctx is cancelled. On cancel, running jobs are killed and reported
// as interrupted (if the dispatcher can be reached in a few seconds).
func (p *Pilot) Run(ctx context.Context) error {
	p.log.Info("pilot starting", "id", p.id, "dispatcher", p.cfg.Dispatcher, "cores", p.cfg.Resources.Cores,
		"memory", p.cfg.Resources.MemoryBytes, "walltime", p.cfg.Walltime, "workdir", p.cfg.WorkDir)
	// Sessions and reports outlive ctx until the jobs are wound down.
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	connErr := make(chan error, 1)
	go func() { connErr <- p.connectLoop(runCtx) }()

	expired := p.expired()
	var idle <-chan time.Time
	if p.cfg.IdleExit > 0 {
		t := time.NewTicker(min(p.cfg.IdleExit/4, time.Second))
		defer t.Stop()
		idle = t.C
	}
	p.mu.Lock()
	p.lastBusy = time.Now()
	p.mu.Unlock()
	var err error
loop:
	for !p.finished() {
		select {
		case <-ctx.Done():
			p.log.Info("pilot stopping: interrupted")
			p.stopJobs("the pilot was stopped")
			break loop
		case err = <-connErr: // only a refusal ends the connect loop early
			p.stopJobs("the dispatcher refused the pilot")
			break loop
		case <-p.done:
		case <-expired:
			p.setDraining("walltime reached")
		case <-idle:
			p.mu.Lock()
			quiet := len(p.jobs) == 0 && time.Since(p.lastBusy) > p.cfg.IdleExit
			p.mu.Unlock()
			if quiet {
				p.setDraining(fmt.Sprintf("no job for %s", p.cfg.IdleExit))
			}
		}
	}
	p.waitJobs(10 * time.Second)
	p.serveOnce.Do(func() {}) // no server starts after this
	if p.cacheSrv != nil {
		p.cacheSrv.Close()
		p.serveWG.Wait()
	}
	p.http.CloseIdleConnections()
	stop()
	if err == nil {
		err = <-connErr
	}
	return err
}

// waitJobs waits for job goroutines (and so their reports), at most d.
func (p *Pilot) waitJobs(d time.Duration) {
	ch := make(chan struct{})
	go func() { p.jobsWG.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(d):
		p.log.Warn("gave up waiting for job reports", "after", d)
	}
}

func (p *Pilot) expired() <-chan time.Time {
	if p.deadline.IsZero() {
		return nil
	}
	return time.After(time.Until(p.deadline))
}

// finished: drained or out of walltime, and nothing left to run or report.
func (p *Pilot) finished() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.draining && len(p.jobs) == 0
}

func (p *Pilot) setDraining(why string) {
	p.mu.Lock()
	already := p.draining
	p.draining = true
	p.mu.Unlock()
	if !already {
		p.log.Info("pilot draining", "reason", why)
	}
	p.wake()
}

func (p *Pilot) wake() {
	select {
	case p.done <- struct{}{}:
	default:
	}
}

// free is the credit the pilot can still grant.
func (p *Pilot) free() *wire.Want {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining {
		return nil
	}
	w := &wire.Want{Cores: p.cfg.Resources.Cores - p.usedCPU, MemoryBytes: p.cfg.Resources.MemoryBytes - p.usedMem,
		GPUs: p.freeGPUs()}
	w.Slots = w.Cores
	if !p.deadline.IsZero() {
		w.Deadline = p.deadline.Unix()
	}
	return w
}
