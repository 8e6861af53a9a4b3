package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/pando-wms/pando/dispatcher/pki"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/edge"
)

// EdgeResult compares dispatching through an edge with dispatching
// directly, on the same dispatcher in one run; JSON keys are a contract.
type EdgeResult struct {
	Agents         int     `json:"agents"`
	Jobs           int     `json:"jobs"`
	DirectPerSec   float64 `json:"direct_jobs_per_sec"`
	EdgePerSec     float64 `json:"edge_jobs_per_sec"`
	DirectP99ms    float64 `json:"direct_p99_ms"`
	EdgeP99ms      float64 `json:"edge_p99_ms"`
	ThroughputCost float64 `json:"throughput_ratio"` // edge / direct
	LatencyCostMs  float64 `json:"p99_added_ms"`     // edge - direct
}

// Edge runs the dispatch benchmark against an in-process dispatcher twice:
// agents connected directly, then through an in-process edge.
func Edge(ctx context.Context, agents, jobs int) (*EdgeResult, error) {
	cfg := DispatchConfig{Agents: agents, Jobs: jobs, Logger: slog.New(slog.DiscardHandler)}
	stop, err := startLocal(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	defer stop()
	direct, err := Dispatch(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("bench: direct: %w", err)
	}
	dir, err := os.MkdirTemp("", "pando-bench-edge-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	e, err := edge.New(edge.Config{Listen: "127.0.0.1:0", DataDir: dir, Upstream: cfg.Dispatcher, Token: cfg.Token,
		TLS: cfg.TLS, Name: "bench-edge", Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	ectx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(ectx) }()
	defer func() { cancel(); <-done }()
	if err := e.WaitUpstream(ctx); err != nil {
		return nil, err
	}
	viaEdge := cfg
	viaEdge.Dispatcher = e.Addr().String()
	if viaEdge.TLS, err = pki.ClientTLS(filepath.Join(dir, "ca.pem"), "", wire.ALPN, ""); err != nil {
		return nil, err
	}
	relayed, err := Dispatch(ctx, viaEdge)
	if err != nil {
		return nil, fmt.Errorf("bench: through the edge: %w", err)
	}
	return &EdgeResult{Agents: agents, Jobs: jobs, DirectPerSec: direct.JobsPerSec, EdgePerSec: relayed.JobsPerSec,
		DirectP99ms: direct.P99ms, EdgeP99ms: relayed.P99ms, ThroughputCost: relayed.JobsPerSec / direct.JobsPerSec,
		LatencyCostMs: relayed.P99ms - direct.P99ms}, nil
}
