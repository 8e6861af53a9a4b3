package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pando-wms/pando/dispatcher/api/client"
	"github.com/pando-wms/pando/dispatcher/pki"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/dispatcher/workers"
)

// Proc says how a benchmark runs its dispatcher process.
type Proc struct {
	Binary string // the pando binary run as the dispatcher (default: this one)
	// Extra dispatcher flags, e.g. --memory-limit 6GiB or --gc-percent 25.
	DispatcherArgs []string
	// DispatcherCPUs pins the dispatcher to these CPUs (a taskset list such
	// as "0-1"), so that on a machine with more cores it is measured on a
	// fixed number of them while the simulated agents run on the others
	// (pin the benchmark itself with taskset). Empty: not pinned.
	DispatcherCPUs string
}

// AgentsConfig configures `pando bench agents`.
type AgentsConfig struct {
	Agents    int
	Duration  time.Duration // steady state after the last agent connected
	Heartbeat time.Duration // the dispatcher's heartbeat period
	Proc
	// HeapProfile, if set, receives the dispatcher's heap profile taken
	// after the forced collections at the end (go tool pprof -sample_index=inuse_space).
	HeapProfile string
	Logger      *slog.Logger
}

// AgentsResult reports the dispatcher's memory per connected agent; JSON
// keys are a contract.
type AgentsResult struct {
	Agents          int            `json:"agents"`
	Connected       int            `json:"connected"` // as the dispatcher counts them at the end
	RSSBaselineMiB  float64        `json:"rss_baseline_mib"`
	RSSMiB          float64        `json:"rss_mib"`
	RSSPerAgentKiB  float64        `json:"rss_per_agent_kib"` // (rss - baseline) / agents
	HeartbeatP50ms  float64        `json:"heartbeat_p50_ms"`
	HeartbeatP99ms  float64        `json:"heartbeat_p99_ms"`
	Lost            int64          `json:"lost"` // agents the dispatcher disconnected
	LostReasons     map[string]int `json:"lost_reasons,omitempty"`
	ConnectSeconds  float64        `json:"connect_seconds"`
	Redials         int64          `json:"redials"`
	DispatcherFlags string         `json:"dispatcher_flags"`

	// The floor under the steady state, read from the dispatcher's runtime
	// after forcing three collections at the end: live heap, goroutine
	// stacks, and RSS then, each per agent.
	HeapLivePerAgentKiB float64 `json:"heap_live_per_agent_kib"`
	StackPerAgentKiB    float64 `json:"stack_per_agent_kib"`
	RSSAfterGCPerAgent  float64 `json:"rss_after_gc_per_agent_kib"`
	Goroutines          int     `json:"goroutines"`
	DispatcherCPUs      string  `json:"dispatcher_cpus,omitempty"`
	// The dispatcher's CPU over the steady state, in percent of one core:
	// what holding the agents costs (heartbeats, quic-go's timers).
	DispatcherCPUPercent float64 `json:"dispatcher_cpu_percent"`
}

// Agents runs a dispatcher as a separate process (so its memory is its
// own), connects simulated agents that heartbeat, holds them for the
// duration and reports the dispatcher's RSS per agent.
func Agents(ctx context.Context, cfg AgentsConfig) (*AgentsResult, error) {
	if cfg.Agents <= 0 {
		return nil, fmt.Errorf("bench: --agents must be positive")
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 10 * time.Second
	}
	dir, err := os.MkdirTemp("", "pando-bench-agents-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	d, err := startDispatcherProcess(ctx, cfg.Proc, cfg.Heartbeat, dir)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	res := &AgentsResult{Agents: cfg.Agents, DispatcherFlags: strings.Join(d.args, " "), DispatcherCPUs: cfg.DispatcherCPUs}
	time.Sleep(time.Second) // let it settle before the baseline
	base, err := rss(d.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	pctx, stopPool := context.WithCancel(ctx)
	defer stopPool()
	r := &run{token: d.token, slots: 0, target: -1, lat: &latencies{}, allDone: make(chan struct{}),
		pool: workers.New(pctx, time.Second)}
	hbCtx, stopHB := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); heartbeat(hbCtx, r, cfg.Heartbeat) }()
	defer func() { stopHB(); <-hbDone }()
	t0 := time.Now()
	agents, tr, err := dialAgents(ctx, d.agents, d.tls, cfg.Agents, r)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	defer closeAgents(r, agents)
	res.ConnectSeconds, res.Redials = time.Since(t0).Seconds(), r.refused.Load()
	r.rtt.reset() // round trips in the steady state only, not during the connection storm
	cpu0, err := cpuTime(d.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(cfg.Duration):
	}
	cpu1, err := cpuTime(d.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	res.DispatcherCPUPercent = 100 * (cpu1 - cpu0).Seconds() / time.Since(t1).Seconds()
	now, err := rss(d.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	list, err := d.api.Agents(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range list {
		if a.Connected {
			res.Connected++
		}
	}
	q := r.rtt.quantiles(0.5, 0.99)
	res.HeartbeatP50ms, res.HeartbeatP99ms = q[0], q[1]
	res.RSSBaselineMiB, res.RSSMiB = float64(base)/(1<<20), float64(now)/(1<<20)
	res.RSSPerAgentKiB = float64(now-base) / 1024 / float64(cfg.Agents)
	res.Lost, res.LostReasons = r.lost.Load(), r.lostReasons()
	if err := d.floor(ctx, res, base, cfg.HeapProfile); err != nil {
		return nil, fmt.Errorf("bench: read the dispatcher's memory: %w", err)
	}
	return res, nil
}

// floor forces collections in the dispatcher through its pprof endpoint and
// reads what is left: the memory the agents need, without the collector's
// headroom or stacks not yet shrunk.
func (d *dispatcherProc) floor(ctx context.Context, res *AgentsResult, base int64, profile string) error {
	get := func(path string) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.pprof+path, nil)
		if err != nil {
			return "", err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s: %s", path, resp.Status)
		}
		return string(b), err
	}
	for range 3 {
		if _, err := get("/debug/pprof/heap?gc=1"); err != nil {
			return err
		}
	}
	if profile != "" {
		b, err := get("/debug/pprof/heap")
		if err != nil {
			return err
		}
		if err := os.WriteFile(profile, []byte(b), 0o644); err != nil {
			return err
		}
	}
	stats, err := get("/debug/pprof/heap?debug=1")
	if err != nil {
		return err
	}
	field := func(name string) float64 {
		for _, line := range strings.Split(stats, "\n") {
			if v, ok := strings.CutPrefix(line, "# "+name+" = "); ok {
				n, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
				return n
			}
		}
		return 0
	}
	gr, err := get("/debug/pprof/goroutine?debug=1")
	if err != nil {
		return err
	}
	if _, v, ok := strings.Cut(gr, "total "); ok {
		res.Goroutines, _ = strconv.Atoi(strings.Fields(v)[0])
	}
	now, err := rss(d.cmd.Process.Pid)
	if err != nil {
		return err
	}
	n := float64(res.Agents) * 1024
	res.HeapLivePerAgentKiB = field("HeapAlloc") / n
	res.StackPerAgentKiB = field("Stack") / n
	res.RSSAfterGCPerAgent = float64(now-base) / n
	return nil
}

type dispatcherProc struct {
	cmd    *exec.Cmd
	args   []string
	agents string
	server string // API URL
	pprof  string // the dispatcher's profiling address
	token  string
	tls    *tls.Config
	api    *client.Client
}

func (d *dispatcherProc) stop() {
	_ = d.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startDispatcherProcess runs `pando dispatcher` on dir with the given
// heartbeat period and waits until its API answers.
func startDispatcherProcess(ctx context.Context, cfg Proc, heartbeat time.Duration, dir string) (*dispatcherProc, error) {
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cfg.Binary = exe
	}
	ap, err := freePort()
	if err != nil {
		return nil, err
	}
	hp, err := freePort()
	if err != nil {
		return nil, err
	}
	pp, err := freePort()
	if err != nil {
		return nil, err
	}
	d := &dispatcherProc{agents: fmt.Sprintf("127.0.0.1:%d", ap), pprof: fmt.Sprintf("127.0.0.1:%d", pp)}
	d.args = []string{"dispatcher", "--data", filepath.Join(dir, "data"), "--agents", d.agents,
		"--http", fmt.Sprintf("127.0.0.1:%d", hp), "--heartbeat", heartbeat.String(), "--log-level", "error",
		"--pprof", d.pprof}
	d.args = append(d.args, cfg.DispatcherArgs...)
	d.cmd = exec.CommandContext(ctx, cfg.Binary, d.args...)
	if cfg.DispatcherCPUs != "" {
		// taskset sets the mask before the dispatcher starts, so that every
		// thread of it inherits the mask (and GOMAXPROCS follows it).
		ts, err := exec.LookPath("taskset")
		if err != nil {
			return nil, fmt.Errorf("bench: pinning the dispatcher to CPUs %s needs taskset (util-linux): %w", cfg.DispatcherCPUs, err)
		}
		d.cmd = exec.CommandContext(ctx, ts, append([]string{"-c", cfg.DispatcherCPUs, cfg.Binary}, d.args...)...)
	}
	d.cmd.Stderr = os.Stderr
	// A benchmark killed outright takes its dispatcher with it.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	tokFile := filepath.Join(dir, "data", "admin.token")
	deadline := time.Now().Add(30 * time.Second)
	for {
		tok, err := os.ReadFile(tokFile)
		if err == nil && len(tok) > 0 {
			d.token = strings.TrimSpace(string(tok))
			d.server = fmt.Sprintf("http://127.0.0.1:%d", hp)
			if d.api, err = client.New(d.server, d.token, nil); err != nil {
				d.stop()
				return nil, err
			}
			if _, err := d.api.Whoami(ctx); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("bench: dispatcher did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var err2 error
	if d.tls, err2 = pki.ClientTLS(filepath.Join(dir, "data", "ca.pem"), "", wire.ALPN, ""); err2 != nil {
		d.stop()
		return nil, err2
	}
	return d, nil
}

// cpuTime reads the CPU time (user and system) a process has used so far;
// 0 for pid 0, no dispatcher process of the benchmark's own.
func cpuTime(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which may hold spaces: utime and
	// stime are the 12th and 13th, in clock ticks (100 per second on Linux).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: cannot parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: cannot parse /proc/%d/stat", pid)
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// machineTicks reads the CPU time of all processors from /proc/stat: the
// busy part and the total, in clock ticks (idle and iowait are not busy).
func machineTicks() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("bench: cannot parse /proc/stat")
	}
	// user nice system idle iowait irq softirq steal; guest time that
	// follows is already counted in user and nice.
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("bench: /proc/stat: %w", err)
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, nil
}

// rss reads a process's resident set size from /proc.
func rss(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
