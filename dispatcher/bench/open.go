package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/pando-wms/pando/dispatcher/api/client"
	"github.com/pando-wms/pando/dispatcher/workers"
)

// LatencyConfig configures `pando bench latency`.
type LatencyConfig struct {
	Agents   int
	Rate     float64       // offered submissions per second (one job each)
	Duration time.Duration // per measured rate
	// MaxRate bounds the knee search: the rate doubles from Rate until p99
	// passes Target or the rate passes MaxRate (0: no search).
	MaxRate float64
	Target  time.Duration
	Warmup  time.Duration // load offered first and not measured
	// TaskFormat is how each submission is written: "yaml" (a task file,
	// as the CLI sends) or "json" (as API clients send).
	TaskFormat string
	DispatchConfig
}

// The one-job task that latency benchmarks submit, in each format.
var latencyTask = map[string][]byte{
	"yaml": []byte("name: latency\ncommand: [\"/bin/true\"]\nresources: {cores: 1, memory: 64MiB, walltime: 1m}\n"),
	"json": []byte(`{"name": "latency", "command": ["/bin/true"], "resources": {"cores": 1, "memory": "64MiB", "walltime": "1m"}}`),
}

// LatencyStep is one offered rate's result.
type LatencyStep struct {
	Rate   float64 `json:"rate"`
	Jobs   int     `json:"jobs"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	P999ms float64 `json:"p999_ms"`
	// CPU time of the dispatcher process over the step per offered job
	// (submission, assignment, report), when the benchmark started it.
	DispatcherCPUPerJob float64 `json:"dispatcher_cpu_us_per_job,omitempty"`
	// BenchCPUPerJob is the benchmark process's own CPU per offered job: the
	// simulated agents and the HTTP client, which share the machine with
	// the dispatcher.
	BenchCPUPerJob float64 `json:"bench_cpu_us_per_job"`
	// BusyPercent is how busy the machine's CPUs were over the step, all
	// processes together (from /proc/stat). Near 100 the tail is queueing
	// for a core, whatever the dispatcher does.
	BusyPercent float64 `json:"cpu_busy_percent"`
}

// LatencyResult holds the latency at --rate and the knee; JSON keys are a
// contract.
type LatencyResult struct {
	Agents     int     `json:"agents"`
	Rate       float64 `json:"rate"`
	TaskFormat string  `json:"task_format"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	P999ms     float64 `json:"p999_ms"`
	// KneeRate is the first offered rate whose p99 passed the target (0: none
	// up to MaxRate).
	KneeRate float64       `json:"knee_rate"`
	Steps    []LatencyStep `json:"steps"`
	// DispatcherCPUPerJob is the --rate step's (see LatencyStep).
	DispatcherCPUPerJob float64 `json:"dispatcher_cpu_us_per_job,omitempty"`
}

// Latency offers jobs at a Poisson rate (open loop: arrivals do not wait
// for the system) and measures submit to Assign at the agent.
func Latency(ctx context.Context, cfg LatencyConfig) (*LatencyResult, error) {
	if cfg.Agents <= 0 || cfg.Rate <= 0 {
		return nil, fmt.Errorf("bench: --agents and --rate must be positive")
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Target <= 0 {
		cfg.Target = 5 * time.Millisecond
	}
	if cfg.TaskFormat == "" {
		cfg.TaskFormat = "yaml"
	}
	spec, ok := latencyTask[cfg.TaskFormat]
	if !ok {
		return nil, fmt.Errorf("bench: --task-format %q: want yaml or json", cfg.TaskFormat)
	}
	env, err := newOpenEnv(ctx, &cfg.DispatchConfig, cfg.Agents)
	if err != nil {
		return nil, err
	}
	defer env.close()
	api, r := env.api, env.r
	// The first seconds after thousands of handshakes measure the
	// connection storm's aftermath, not steady state: offer load unmeasured.
	if cfg.Warmup > 0 {
		if _, err := offer(ctx, api, r, spec, cfg.Rate, cfg.Warmup); err != nil {
			return nil, err
		}
	}
	res := &LatencyResult{Agents: cfg.Agents, Rate: cfg.Rate, TaskFormat: cfg.TaskFormat}
	for rate := cfg.Rate; ; rate *= 2 {
		before, err := readCPU(env.pid)
		if err != nil {
			return nil, err
		}
		st, err := offer(ctx, api, r, spec, rate, cfg.Duration)
		if err != nil {
			return nil, err
		}
		after, err := readCPU(env.pid)
		if err != nil {
			return nil, err
		}
		if st.Jobs > 0 {
			if env.pid != 0 {
				st.DispatcherCPUPerJob = float64((after.dispatcher - before.dispatcher).Microseconds()) / float64(st.Jobs)
			}
			st.BenchCPUPerJob = float64((after.own - before.own).Microseconds()) / float64(st.Jobs)
		}
		if after.all > before.all {
			st.BusyPercent = 100 * float64(after.busy-before.busy) / float64(after.all-before.all)
		}
		res.Steps = append(res.Steps, st)
		if rate == cfg.Rate {
			res.P50ms, res.P99ms, res.P999ms = st.P50ms, st.P99ms, st.P999ms
			res.DispatcherCPUPerJob = st.DispatcherCPUPerJob
		}
		if st.P99ms > float64(cfg.Target)/float64(time.Millisecond) {
			res.KneeRate = rate
			break
		}
		if cfg.MaxRate <= 0 || rate*2 > cfg.MaxRate {
			break
		}
	}
	return res, nil
}

// cpuUse is where the CPU time went so far: the dispatcher process's (0
// without one), this process's, and the machine's busy and total ticks.
type cpuUse struct {
	dispatcher, own time.Duration
	busy, all       int64
}

func readCPU(dispatcherPID int) (c cpuUse, err error) {
	if c.dispatcher, err = cpuTime(dispatcherPID); err != nil {
		return c, err
	}
	if c.own, err = cpuTime(os.Getpid()); err != nil {
		return c, err
	}
	c.busy, c.all, err = machineTicks()
	return c, err
}

// openEnv is a dispatcher (its own process unless cfg names one) with
// one-slot agents connected and heartbeating, for open-loop benchmarks.
type openEnv struct {
	api   *client.Client
	r     *run
	pid   int // the dispatcher process the benchmark started; 0: none
	stops []func()
}

// newOpenEnv starts what cfg does not name: a dispatcher process, and the
// agents.
func newOpenEnv(ctx context.Context, cfg *DispatchConfig, agents int) (*openEnv, error) {
	e := &openEnv{}
	ok := false
	defer func() {
		if !ok {
			e.close()
		}
	}()
	if cfg.Dispatcher == "" {
		// A dispatcher process of its own: in-process, the garbage collector
		// would also scan the simulated agents' connections and charge its
		// pauses to the dispatcher's latency.
		dir, err := os.MkdirTemp("", "pando-bench-open-")
		if err != nil {
			return nil, err
		}
		e.stops = append(e.stops, func() { os.RemoveAll(dir) })
		d, err := startDispatcherProcess(ctx, cfg.Proc, 10*time.Second, dir)
		if err != nil {
			return nil, err
		}
		e.stops = append(e.stops, d.stop)
		e.pid = d.cmd.Process.Pid
		cfg.Dispatcher, cfg.TLS, cfg.Token, cfg.Server = d.agents, d.tls, d.token, d.server
	}
	var err error
	if e.api, err = client.New(cfg.Server, cfg.Token, nil); err != nil {
		return nil, err
	}
	pctx, stopPool := context.WithCancel(ctx)
	e.stops = append(e.stops, stopPool)
	e.r = &run{token: cfg.Token, slots: 1, target: -1, lat: &latencies{}, allDone: make(chan struct{}),
		pool: workers.New(pctx, time.Second)}
	hbCtx, stopHB := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); heartbeat(hbCtx, e.r, 5*time.Second) }()
	e.stops = append(e.stops, func() { stopHB(); <-hbDone })
	list, tr, err := dialAgents(ctx, cfg.Dispatcher, cfg.TLS, agents, e.r)
	if err != nil {
		return nil, err
	}
	e.stops = append(e.stops, func() { tr.Close() }, func() { closeAgents(e.r, list) })
	for _, a := range list {
		if err := a.start(); err != nil {
			return nil, err
		}
	}
	ok = true
	return e, nil
}

// close undoes newOpenEnv in reverse order.
func (e *openEnv) close() {
	for i := len(e.stops) - 1; i >= 0; i-- {
		e.stops[i]()
	}
}

// offer submits one-job tasks at Poisson arrivals for d, then waits for
// the last assignment and returns the latency quantiles of that step.
func offer(ctx context.Context, api *client.Client, r *run, spec []byte, rate float64, d time.Duration) (LatencyStep, error) {
	lat := &latencies{}
	r.latMu.Lock()
	r.lat = lat
	r.latMu.Unlock()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	sent := 0
	next := time.Now()
	end := next.Add(d)
	for next.Before(end) {
		if wait := time.Until(next); wait > 0 {
			select {
			case <-ctx.Done():
				return LatencyStep{}, ctx.Err()
			case <-time.After(wait):
			}
		}
		wg.Add(1)
		sent++
		go func() { // open loop: never wait for the previous submission
			defer wg.Done()
			if _, err := api.Submit(ctx, spec); err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		}()
		next = next.Add(time.Duration(rand.ExpFloat64() / rate * float64(time.Second)))
	}
	wg.Wait()
	if firstErr != nil {
		return LatencyStep{}, fmt.Errorf("bench: submit: %w", firstErr)
	}
	deadline := time.Now().Add(30 * time.Second)
	for lat.count() < sent && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	q := lat.quantiles(0.5, 0.99, 0.999)
	return LatencyStep{Rate: rate, Jobs: sent, P50ms: q[0], P99ms: q[1], P999ms: q[2]}, nil
}
