package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pando-wms/pando/containers/process"
	"github.com/pando-wms/pando/dispatcher"
	"github.com/pando-wms/pando/dispatcher/api/client"
	"github.com/pando-wms/pando/dispatcher/pki"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/pilot"
)

// E2EConfig configures `pando bench e2e`.
type E2EConfig struct {
	Jobs   int
	Pilots int // default 2
	Slots  int // concurrent jobs per pilot (default 8)
	Logger *slog.Logger
}

// E2EResult compares Pando's rate with the machine's own limit for
// starting the same payload; JSON keys are a contract.
type E2EResult struct {
	Jobs        int     `json:"jobs"`
	Pilots      int     `json:"pilots"`
	Seconds     float64 `json:"seconds"`
	JobsPerSec  float64 `json:"jobs_per_sec"`
	LimitPerSec float64 `json:"limit_per_sec"` // a plain loop starting /bin/true
	Ratio       float64 `json:"ratio"`         // jobs_per_sec / limit_per_sec
}

// E2E runs real /bin/true payloads through an in-process dispatcher and
// pilots with the process runtime, then a plain loop of the same starts.
func E2E(ctx context.Context, cfg E2EConfig) (*E2EResult, error) {
	if cfg.Jobs <= 0 {
		return nil, fmt.Errorf("bench: --jobs must be positive")
	}
	cfg.Pilots = max(cfg.Pilots, 1)
	if cfg.Slots <= 0 {
		cfg.Slots = 8
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp("", "pando-bench-e2e-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	rate, secs, err := runE2E(ctx, cfg, dir)
	if err != nil {
		return nil, err
	}
	limit, err := startLoop(ctx, cfg.Jobs)
	if err != nil {
		return nil, err
	}
	return &E2EResult{Jobs: cfg.Jobs, Pilots: cfg.Pilots, Seconds: secs, JobsPerSec: rate,
		LimitPerSec: limit, Ratio: rate / limit}, nil
}

func runE2E(ctx context.Context, cfg E2EConfig, dir string) (rate, secs float64, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv, err := dispatcher.New(ctx, dispatcher.Config{DataDir: filepath.Join(dir, "data"),
		AgentAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Logger: cfg.Logger})
	if err != nil {
		return 0, 0, err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	tok, err := os.ReadFile(srv.AdminTokenFile())
	if err != nil {
		return 0, 0, err
	}
	token := strings.TrimSpace(string(tok))
	tlsConf, err := pki.ClientTLS(srv.CAFile(), "", wire.ALPN, "")
	if err != nil {
		return 0, 0, err
	}
	pilots := make(chan error, cfg.Pilots)
	defer func() {
		cancel()
		for range cfg.Pilots {
			<-pilots
		}
	}()
	for i := range cfg.Pilots {
		p, err := pilot.New(pilot.Config{Dispatcher: srv.AgentAddr().String(), Token: token, TLS: tlsConf,
			Name: fmt.Sprintf("bench-pilot-%d", i), WorkDir: filepath.Join(dir, fmt.Sprintf("pilot-%d", i)),
			Resources: wire.Resources{Cores: cfg.Slots, MemoryBytes: int64(cfg.Slots) << 30, Runtimes: []string{"process"}},
			Runtime:   process.New(cfg.Logger), Logger: cfg.Logger})
		if err != nil {
			return 0, 0, err
		}
		go func() { pilots <- p.Run(ctx) }()
	}
	api, err := client.New("http://"+srv.HTTPAddr().String(), token, nil)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	spec := fmt.Sprintf("name: bench-e2e\ncommand: [\"/bin/true\"]\njobs: %d\nresources: {cores: 1, memory: 64MiB, walltime: 1m}\n", cfg.Jobs)
	sub, err := api.Submit(ctx, []byte(spec))
	if err != nil {
		return 0, 0, err
	}
	for {
		t, err := api.Task(ctx, sub.ID)
		if err != nil {
			return 0, 0, err
		}
		if t.State == "finished" {
			break
		}
		if t.State == "failed" || t.State == "cancelled" {
			return 0, 0, fmt.Errorf("bench: task %s: %v", t.State, t.Counts)
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	el := time.Since(start).Seconds()
	return float64(cfg.Jobs) / el, el, nil
}

// startLoop is the machine's limit: start /bin/true n times, one after the
// other, from Go.
func startLoop(ctx context.Context, n int) (float64, error) {
	start := time.Now()
	for range n {
		if err := exec.CommandContext(ctx, "/bin/true").Run(); err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
