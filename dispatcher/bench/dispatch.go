package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pando-wms/pando/dispatcher"
	"github.com/pando-wms/pando/dispatcher/api/client"
	"github.com/pando-wms/pando/dispatcher/pki"
	"github.com/pando-wms/pando/dispatcher/queue"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/dispatcher/workers"
)

// DispatchConfig configures `pando bench dispatch`.
type DispatchConfig struct {
	Agents   int
	Jobs     int
	Slots    int // concurrent jobs per agent (default 4)
	TaskSize int // jobs per submitted task (default 100)
	// Policy turns scheduling policy on: agents join a queue with limits,
	// tasks spread over three shares in two levels (prod/mc, prod/reco,
	// analysis) and ask for an architecture, so that every assignment
	// walks the share tree and checks the constraints.
	Policy bool
	// Remote dispatcher; empty runs one on a temporary directory, as a
	// process of its own (see Proc) unless InProcess.
	Dispatcher string // agents' HOST:PORT
	Server     string // API URL
	Token      string // an admin token (agent and submit rights)
	TLS        *tls.Config
	Logger     *slog.Logger
	// InProcess runs the dispatcher inside the benchmark's process, where
	// a CPU or allocation profile of the benchmark sees it too (its garbage
	// collector then also scans the simulated agents).
	InProcess bool
	Proc
}

// DispatchResult is what the benchmark prints; JSON keys are a contract.
type DispatchResult struct {
	Agents     int     `json:"agents"`
	Jobs       int     `json:"jobs"`
	Seconds    float64 `json:"seconds"`
	JobsPerSec float64 `json:"jobs_per_sec"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	P999ms     float64 `json:"p999_ms"`
	ConnectSec float64 `json:"connect_seconds"`
	Errors     int64   `json:"errors"`
	Redials    int64   `json:"redials"`
	Policy     bool    `json:"policy"`
	// Where the dispatcher ran: "process" (its own, started by the
	// benchmark), "in-process", or "remote" (--dispatcher).
	DispatcherMode string `json:"dispatcher"`
	DispatcherCPUs string `json:"dispatcher_cpus,omitempty"`
	// CPU time the dispatcher process used over the timed run (user and
	// system, all its threads), in all and per job: what the dispatcher
	// costs, whatever the simulated agents beside it take. Only when the
	// benchmark started the dispatcher as a process of its own.
	DispatcherCPUSeconds float64 `json:"dispatcher_cpu_seconds,omitempty"`
	DispatcherCPUPerJob  float64 `json:"dispatcher_cpu_us_per_job,omitempty"`
	// DatagramsPerJob is UDP datagrams the whole host sent during the run
	// per job (both directions when the dispatcher runs here; 0 where
	// /proc/net/snmp cannot be read).
	DatagramsPerJob float64 `json:"udp_datagrams_per_job"`
}

// udpSent reads the host's UDP OutDatagrams counter; -1 if it cannot.
func udpSent() int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return -1
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f // the header line comes first
			continue
		}
		for i, n := range names {
			if n == "OutDatagrams" && i < len(f) {
				v, err := strconv.ParseInt(f[i], 10, 64)
				if err != nil {
					return -1
				}
				return v
			}
		}
	}
	return -1
}

// Dispatch runs the dispatch benchmark.
func Dispatch(ctx context.Context, cfg DispatchConfig) (*DispatchResult, error) {
	if cfg.Agents <= 0 || cfg.Jobs <= 0 {
		return nil, fmt.Errorf("bench: --agents and --jobs must be positive")
	}
	if cfg.Slots <= 0 {
		cfg.Slots = 4
	}
	if cfg.TaskSize <= 0 {
		cfg.TaskSize = 100
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if (cfg.Dispatcher != "" || cfg.InProcess) && (cfg.DispatcherCPUs != "" || len(cfg.DispatcherArgs) > 0) {
		return nil, fmt.Errorf("bench: --dispatcher-cpus and --dispatcher-arg apply to the dispatcher process the benchmark starts, not with --dispatcher or --in-process")
	}
	mode, pid := "remote", 0
	switch {
	case cfg.Dispatcher != "":
	case cfg.InProcess:
		mode = "in-process"
		stop, err := startLocal(ctx, &cfg)
		if err != nil {
			return nil, err
		}
		defer stop()
	default:
		mode = "process"
		d, stop, err := startProcess(ctx, &cfg)
		if err != nil {
			return nil, err
		}
		defer stop()
		pid = d.cmd.Process.Pid
	}
	api, err := client.New(cfg.Server, cfg.Token, nil)
	if err != nil {
		return nil, err
	}
	pctx, stopPool := context.WithCancel(ctx)
	defer stopPool()
	if cfg.Policy {
		if err := setPolicy(ctx, api, cfg); err != nil {
			return nil, err
		}
	}
	r := &run{token: cfg.Token, slots: cfg.Slots, queue: queueOf(cfg), target: int64(cfg.Jobs), lat: &latencies{}, allDone: make(chan struct{}),
		pool: workers.New(pctx, time.Second)}
	hbCtx, stopHB := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); heartbeat(hbCtx, r, 5*time.Second) }()
	defer func() { stopHB(); <-hbDone }()
	t0 := time.Now()
	agents, tr, err := dialAgents(ctx, cfg.Dispatcher, cfg.TLS, cfg.Agents, r)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	defer closeAgents(r, agents)
	connect := time.Since(t0)
	for _, a := range agents {
		if err := a.start(); err != nil {
			return nil, err
		}
	}
	start, sent := time.Now(), udpSent()
	cpu0, err := cpuTime(pid)
	if err != nil {
		return nil, err
	}
	if err := submitAll(ctx, api, r, cfg); err != nil {
		return nil, err
	}
	select {
	case <-r.allDone:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	el := time.Since(start)
	perJob := 0.0
	if sent >= 0 {
		perJob = float64(udpSent()-sent) / float64(cfg.Jobs)
	}
	cpu1, err := cpuTime(pid)
	if err != nil {
		return nil, err
	}
	cpu := cpu1 - cpu0
	q := r.lat.quantiles(0.5, 0.99, 0.999)
	return &DispatchResult{Agents: cfg.Agents, Jobs: cfg.Jobs, Seconds: el.Seconds(),
		JobsPerSec: float64(cfg.Jobs) / el.Seconds(), P50ms: q[0], P99ms: q[1], P999ms: q[2],
		ConnectSec: connect.Seconds(), Errors: r.errs.Load(), Redials: r.refused.Load(), Policy: cfg.Policy,
		DispatcherMode: mode, DispatcherCPUs: cfg.DispatcherCPUs, DatagramsPerJob: perJob,
		DispatcherCPUSeconds: cpu.Seconds(), DispatcherCPUPerJob: float64(cpu.Microseconds()) / float64(cfg.Jobs)}, nil
}

// benchShares are the shares of --policy runs, with their targets; the
// leaves take the tasks in turn.
var benchShares = []struct {
	path   string
	target float64
}{{"prod", 80}, {"prod/mc", 62.5}, {"prod/reco", 37.5}, {"analysis", 20}}

var benchLeaves = []string{"prod/mc", "prod/reco", "analysis"}

// setPolicy creates the bench queue and shares.
func setPolicy(ctx context.Context, api *client.Client, cfg DispatchConfig) error {
	_, err := api.CreateQueue(ctx, queue.Queue{Name: benchQueue, Kind: queue.Grid, Status: queue.Online,
		MaxRunning: 10 * cfg.Agents * cfg.Slots, MaxCores: 10 * cfg.Agents * cfg.Slots,
		Shares: []string{"prod", "analysis"}, Labels: map[string]string{"bench": "dispatch"}})
	if err != nil {
		return fmt.Errorf("bench: create queue: %w", err)
	}
	for _, s := range benchShares {
		if _, err := api.SetShare(ctx, s.path, s.target); err != nil {
			return fmt.Errorf("bench: set share %s: %w", s.path, err)
		}
	}
	return nil
}

// benchQueue is the queue --policy agents join.
const benchQueue = "bench"

// submitAll submits the jobs as tasks from a few concurrent submitters (a
// submission returns once durable), keeping the backlog of unfinished jobs
// at about twice the agents' slots, so that latency measures the dispatcher
// rather than a queue the benchmark itself piled up.
func submitAll(ctx context.Context, api *client.Client, r *run, cfg DispatchConfig) error {
	const submitters = 4
	backlog := int64(2 * cfg.Agents * cfg.Slots)
	var sent atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range submitters {
		g.Go(func() error {
			for {
				// sent runs past the total as submitters claim their last
				// tasks: a submitter with nothing left to send must not wait
				// for room in the backlog (with few agents, it never comes).
				for sent.Load() < int64(cfg.Jobs) && sent.Load()-r.done.Load() > backlog {
					select {
					case <-gctx.Done():
						return gctx.Err()
					case <-time.After(time.Millisecond):
					}
				}
				end := sent.Add(int64(cfg.TaskSize))
				n := int(min(int64(cfg.TaskSize), int64(cfg.Jobs)-(end-int64(cfg.TaskSize))))
				if n <= 0 {
					return nil
				}
				spec := fmt.Sprintf("name: bench\ncommand: [\"/bin/true\"]\njobs: %d\n", n)
				if cfg.Policy {
					spec += fmt.Sprintf("queue: %s\nshare: %s\npriority: %d\nresources: {cores: 1, memory: 64MiB, walltime: 10m, arch: %s}\n",
						benchQueue, benchLeaves[int(end/int64(cfg.TaskSize))%len(benchLeaves)], end%7, runtime.GOARCH)
				} else {
					spec += "resources: {cores: 1, memory: 64MiB, walltime: 10m}\n"
				}
				if _, err := api.Submit(gctx, []byte(spec)); err != nil {
					return fmt.Errorf("bench: submit: %w", err)
				}
			}
		})
	}
	return g.Wait()
}

func queueOf(cfg DispatchConfig) string {
	if cfg.Policy {
		return benchQueue
	}
	return ""
}

// startProcess runs a dispatcher process of its own on a temporary
// directory, as it runs in production.
func startProcess(ctx context.Context, cfg *DispatchConfig) (*dispatcherProc, func(), error) {
	dir, err := os.MkdirTemp("", "pando-bench-")
	if err != nil {
		return nil, nil, err
	}
	d, err := startDispatcherProcess(ctx, cfg.Proc, 10*time.Second, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	cfg.Dispatcher, cfg.TLS, cfg.Token, cfg.Server = d.agents, d.tls, d.token, d.server
	return d, func() { d.stop(); os.RemoveAll(dir) }, nil
}

// startLocal runs a dispatcher in-process on a temporary directory.
func startLocal(ctx context.Context, cfg *DispatchConfig) (func(), error) {
	dir, err := os.MkdirTemp("", "pando-bench-")
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	srv, err := dispatcher.New(sctx, dispatcher.Config{DataDir: filepath.Join(dir, "data"),
		AgentAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Logger: cfg.Logger})
	if err != nil {
		cancel()
		os.RemoveAll(dir)
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	stop := func() { cancel(); <-done; os.RemoveAll(dir) }
	tok, err := os.ReadFile(srv.AdminTokenFile())
	if err == nil {
		cfg.TLS, err = pki.ClientTLS(srv.CAFile(), "", wire.ALPN, "")
	}
	if err != nil {
		stop()
		return nil, err
	}
	cfg.Token = strings.TrimSpace(string(tok))
	cfg.Dispatcher = srv.AgentAddr().String()
	cfg.Server = "http://" + srv.HTTPAddr().String()
	return stop, nil
}
