package pilot_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pando-wms/pando/containers/process"
	"github.com/pando-wms/pando/dispatcher"
	"github.com/pando-wms/pando/dispatcher/api/client"
	"github.com/pando-wms/pando/dispatcher/pki"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/pilot"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env is an in-process dispatcher and pilot on loopback QUIC.
type env struct {
	t     *testing.T
	srv   *dispatcher.Server
	api   *client.Client
	stops []func()
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newEnv(t *testing.T, dir string) *env {
	return newEnvWith(t, dispatcher.Config{DataDir: dir})
}

// newEnvWith runs a dispatcher on cfg with the test's addresses and timers.
func newEnvWith(t *testing.T, cfg dispatcher.Config) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg.AgentAddr, cfg.HTTPAddr, cfg.Logger = "127.0.0.1:0", "127.0.0.1:0", quiet()
	cfg.Heartbeat, cfg.AgentTimeout, cfg.Grace, cfg.RetryBackoff = 200*time.Millisecond, time.Second, time.Second, -1
	srv, err := dispatcher.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	tok, err := os.ReadFile(srv.AdminTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	api, err := client.New("http://"+srv.HTTPAddr().String(), strings.TrimSpace(string(tok)), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, api: api}
	e.stops = append(e.stops, func() { cancel(); <-done })
	t.Cleanup(e.stop)
	return e
}

func (e *env) stop() {
	for i := len(e.stops) - 1; i >= 0; i-- {
		e.stops[i]()
	}
	e.stops = nil
}

func (e *env) pilot(cfg pilot.Config) *pilot.Pilot {
	e.t.Helper()
	tlsConf, err := pki.ClientTLS(e.srv.CAFile(), "", wire.ALPN, "")
	if err != nil {
		e.t.Fatal(err)
	}
	tok, _ := os.ReadFile(e.srv.AdminTokenFile())
	cfg.Dispatcher, cfg.TLS, cfg.Token = e.srv.AgentAddr().String(), tlsConf, strings.TrimSpace(string(tok))
	cfg.Runtime, cfg.Logger, cfg.WorkDir = process.New(quiet()), quiet(), e.t.TempDir()
	if cfg.Resources.Cores == 0 {
		cfg.Resources = wire.Resources{Cores: 2, MemoryBytes: 1 << 30, Runtimes: []string{"process"}}
	}
	p, err := pilot.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	e.stops = append(e.stops, func() { cancel(); <-done })
	return p
}

func (e *env) submit(spec string) int64 {
	e.t.Helper()
	r, err := e.api.Submit(context.Background(), []byte(spec))
	if err != nil {
		e.t.Fatal(err)
	}
	return r.ID
}

// waitState waits until the task reaches one of the final states.
func (e *env) waitTask(id int64) string {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		t, err := e.api.Task(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if t.State == "finished" || t.State == "failed" || t.State == "cancelled" {
			return t.State
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("task %d did not end", id)
	return ""
}

func TestRunsJobsAndShutsDownCleanly(t *testing.T) {
	e := newEnv(t, t.TempDir())
	e.pilot(pilot.Config{Name: "p1"})
	id := e.submit("command: [\"/bin/sh\", \"-c\", \"echo out; echo err >&2\"]\njobs: 6\n")
	if st := e.waitTask(id); st != "finished" {
		t.Fatalf("task %s, want finished", st)
	}
	jobs, err := e.api.Jobs(context.Background(), id, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := e.api.Logs(context.Background(), jobs[0].ID, false, 0, 0, &b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "out") || !strings.Contains(b.String(), "err") {
		t.Errorf("log %q lacks stdout and stderr", b.String())
	}
	e.stop() // goleak in TestMain checks every goroutine ended
}

func TestWalltimeExceeded(t *testing.T) {
	e := newEnv(t, t.TempDir())
	e.pilot(pilot.Config{Name: "p1"})
	id := e.submit("command: [\"/bin/sleep\", \"30\"]\nresources: {walltime: 1s}\n")
	if st := e.waitTask(id); st != "failed" {
		t.Fatalf("task %s, want failed", st)
	}
	jobs, _ := e.api.Jobs(context.Background(), id, "", 0, 0)
	if j := jobs[0]; j.ErrorCode != 2003 || j.Attempt != 1 {
		t.Fatalf("job error %d attempt %d, want 2003 (walltime, not retried) on attempt 1", j.ErrorCode, j.Attempt)
	}
}

// A dispatcher stopped and started again on the same data: the pilot
// reconnects by itself, re-attaches its running job, and it finishes once.
func TestReattachAfterDispatcherRestart(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, dir)
	addr := e.srv.AgentAddr().String()
	e.pilot(pilot.Config{Name: "p1"})
	marker := filepath.Join(t.TempDir(), "ran")
	id := e.submit("command: [\"/bin/sh\", \"-c\", \"sleep 2; echo x >> " + marker + "\"]\n")
	for {
		t0, _ := e.api.Task(context.Background(), id)
		if t0.Counts["running"] == 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopPilot := e.stops[1]
	e.stops[0]() // the dispatcher only
	e.stops = []func(){stopPilot}

	ctx, cancel := context.WithCancel(context.Background())
	srv, err := dispatcher.New(ctx, dispatcher.Config{DataDir: dir, AgentAddr: addr, HTTPAddr: "127.0.0.1:0",
		Heartbeat: 200 * time.Millisecond, AgentTimeout: time.Second, Grace: 10 * time.Second, RetryBackoff: -1, Logger: quiet()})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	e.stops = append(e.stops, func() { cancel(); <-done })
	tok, _ := os.ReadFile(srv.AdminTokenFile())
	e.api, _ = client.New("http://"+srv.HTTPAddr().String(), strings.TrimSpace(string(tok)), nil)
	if st := e.waitTask(id); st != "finished" {
		t.Fatalf("task %s, want finished", st)
	}
	jobs, _ := e.api.Jobs(context.Background(), id, "", 0, 0)
	if jobs[0].Attempt != 1 {
		t.Errorf("job finished in attempt %d, want 1 (re-attached, not retried)", jobs[0].Attempt)
	}
	if data, _ := os.ReadFile(marker); string(data) != "x\n" {
		t.Errorf("payload ran %q, want once", data)
	}
}

// Each job gets exactly its own GPUs: concurrent jobs see disjoint devices in
// CUDA_VISIBLE_DEVICES, and a GPU is given again only after its job ended.
func TestGPUsAssignedExclusively(t *testing.T) {
	e := newEnv(t, t.TempDir())
	gpus := []wire.GPU{{Index: 0, UUID: "GPU-aaaa"}, {Index: 1, UUID: "GPU-bbbb"}, {Index: 2}}
	e.pilot(pilot.Config{Name: "p1", Resources: wire.Resources{Cores: 8, MemoryBytes: 8 << 30, GPUs: gpus, Runtimes: []string{"process"}}})
	out := t.TempDir()
	// Each job holds its GPU for a while so that all three overlap.
	id := e.submit(`command: ["/bin/sh", "-c", "echo $CUDA_VISIBLE_DEVICES $NVIDIA_VISIBLE_DEVICES $PANDO_GPUS > ` + out + `/$PANDO_JOB_INDEX; sleep 1"]
jobs: 6
resources: {cores: 1, gpus: 1}
`)
	if st := e.waitTask(id); st != "finished" {
		t.Fatalf("task %s, want finished", st)
	}
	seen := map[string]int{}
	for i := range 6 {
		b, err := os.ReadFile(filepath.Join(out, strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b))
		if len(f) != 3 || f[0] != f[1] || f[1] != f[2] {
			t.Fatalf("job %d saw %q, want one device named three times", i, b)
		}
		seen[f[0]]++
	}
	if len(seen) != 3 || seen["GPU-aaaa"] != 2 || seen["GPU-bbbb"] != 2 || seen["2"] != 2 {
		t.Fatalf("devices given %v, want each of GPU-aaaa, GPU-bbbb and 2 twice", seen)
	}
}
