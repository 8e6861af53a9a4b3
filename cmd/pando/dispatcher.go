package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/pando-wms/pando/dispatcher"
	"github.com/pando-wms/pando/dispatcher/carousel"
	"github.com/pando-wms/pando/dispatcher/gctune"
	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/plugins/storage"
	_ "github.com/pando-wms/pando/plugins/storage/posix" // storage kinds register themselves
	_ "github.com/pando-wms/pando/plugins/storage/s3"
	_ "github.com/pando-wms/pando/plugins/storage/tape"
)

func newDispatcherCmd() *cobra.Command {
	var cfg dispatcher.Config
	var lf logFlags
	var profAddr, memLimit, storageFile string
	gcHeadroom := "256MiB"
	gcPercent := -2 // unset: GOGC or the runtime's default
	cmd := &cobra.Command{
		Use:   "dispatcher",
		Short: "Run the central dispatcher",
		Long: `Run the dispatcher: agents connect over QUIC to --agents, users and tools
use the HTTP API on --http. On first start it creates its CA, certificate
(DIR/ca.pem for agents) and an admin token (DIR/admin.token) in --data.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := lf.logger()
			if err != nil {
				return err
			}
			cfg.Logger = log
			gc, err := gcPolicy(memLimit, gcPercent, gcHeadroom, log)
			if err != nil {
				return err
			}
			var gcDone sync.WaitGroup
			gctx, stopGC := context.WithCancel(cmd.Context())
			gcDone.Go(func() { gctune.Run(gctx, gc) })
			defer gcDone.Wait()
			defer stopGC()
			if profAddr != "" {
				stop, err := serveProfiles(cmd.Context(), profAddr, log)
				if err != nil {
					return err
				}
				defer stop()
			}
			if storageFile != "" {
				eps, err := storage.LoadFile(storageFile)
				if err != nil {
					return fmt.Errorf("--storage: %w", err)
				}
				if cfg.Storage, err = storage.OpenAll(cmd.Context(), eps); err != nil {
					return fmt.Errorf("--storage: %w", err)
				}
				cfg.Windows = map[string]carousel.Window{}
				for _, e := range eps {
					log.Info("storage endpoint", "name", e.Name, "kind", e.Kind, "url", e.URL)
					w := carousel.Window{Files: e.WindowFiles}
					if e.WindowBytes != "" {
						if w.Bytes, err = task.ParseSize(e.WindowBytes); err != nil {
							return fmt.Errorf("--storage: endpoint %q: window_bytes: %w", e.Name, err)
						}
					}
					cfg.Windows[e.Name] = w
				}
			}
			srv, err := dispatcher.New(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", "pando-data", "data directory (state, certificates, tokens, logs)")
	f.StringVar(&cfg.AgentAddr, "agents", "0.0.0.0:7443", "UDP address for agents (QUIC)")
	f.StringVar(&cfg.HTTPAddr, "http", "127.0.0.1:7480", "TCP address for the HTTP API")
	f.StringSliceVar(&cfg.Hosts, "host", nil, "extra host names or IPs for the TLS certificate")
	f.DurationVar(&cfg.Heartbeat, "heartbeat", 0, "agent heartbeat period (default 10s)")
	f.DurationVar(&cfg.AgentTimeout, "agent-timeout", 0, "silence after which an agent is disconnected (default 3 heartbeats)")
	f.DurationVar(&cfg.Grace, "grace", 0, "time a lost agent has to reconnect before its jobs are retried (default 30s)")
	f.DurationVar(&cfg.RetryBackoff, "retry-backoff", 0, "delay before the first retry, doubling per attempt (default 1s; negative: none)")
	f.DurationVar(&cfg.ShareWindow, "share-window", 0, "time constant over which shares' past usage decays (default 10m)")
	f.DurationVar(&cfg.Aging, "aging", 0, "a waiting task gains one priority point per this much time (default 1m; negative: no aging)")
	f.DurationVar(&cfg.ReserveAfter, "reserve-after", 0, "a task first in line that waited this long for free cores, memory or GPUs gets an agent drained for it (default 10m; negative: never)")
	f.DurationVar(&cfg.CommitTimeout, "commit-timeout", 0, "how long an API call waits for its change to be durable before answering 503 (default 30s)")
	f.StringVar(&storageFile, "storage", "", "YAML file of named storage endpoints (endpoints: [{name, kind: s3|posix|tape, url, access_key, secret_key, window_files, window_bytes}])")
	f.StringVar(&memLimit, "memory-limit", "", "soft memory limit of the process (e.g. 6GiB); the garbage collector works harder near it (default: GOMEMLIMIT, else none)")
	f.IntVar(&gcPercent, "gc-percent", gcPercent, "heap growth between collections in percent of the live heap, like GOGC (default: GOGC, else 100): lower holds many idle agents in less memory for more CPU")
	f.StringVar(&gcHeadroom, "gc-headroom", gcHeadroom, "the heap may always grow this much between collections, whatever --gc-percent gives (fewer collections while the live heap is small); 0: --gc-percent alone")
	f.StringVar(&profAddr, "pprof", os.Getenv("PANDO_PPROF"), "serve Go's /debug/pprof on this loopback address, for profiling (env PANDO_PPROF)")
	lf.add(cmd)
	return cmd
}

// gcPolicy applies --memory-limit and returns the collector policy of
// --gc-percent and --gc-headroom. Holding 100,000 idle agents is mostly
// long-lived heap and goroutine stacks, so the collector's headroom above
// the live heap is the largest single lever on memory; a small dispatcher
// under load wants the opposite (see package gctune).
func gcPolicy(limit string, percent int, headroom string, log *slog.Logger) (gctune.Config, error) {
	cfg := gctune.Config{Percent: percent, Log: log.With("component", "gc")}
	if limit != "" {
		n, err := task.ParseSize(limit)
		if err != nil || n <= 0 {
			return cfg, fmt.Errorf("--memory-limit %q: want a size such as 6GiB", limit)
		}
		debug.SetMemoryLimit(n)
		log.Info("memory limit set", "bytes", n)
	}
	switch {
	case percent == -2: // unset: what GOGC says, else the runtime's default
		cfg.Percent = debug.SetGCPercent(100)
		debug.SetGCPercent(cfg.Percent)
	case percent < -1:
		return cfg, fmt.Errorf("--gc-percent %d: want a percentage, or -1 to collect only at the memory limit", percent)
	}
	if headroom != "0" {
		n, err := task.ParseSize(headroom)
		if err != nil || n < 0 {
			return cfg, fmt.Errorf("--gc-headroom %q: want a size such as 256MiB, or 0", headroom)
		}
		cfg.Headroom = n
	}
	return cfg, nil
}

// serveProfiles serves net/http/pprof on a loopback address of its own: the
// profiles are unauthenticated, so they never share the API's listener.
func serveProfiles(ctx context.Context, addr string, log *slog.Logger) (stop func(), err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof %q: %w", addr, err)
	}
	if ip := net.ParseIP(cmp.Or(host, "0.0.0.0")); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("--pprof %q: profiles are served on a loopback address only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server", "err", err)
		}
	}()
	log.Info("profiles served", "addr", ln.Addr().String())
	return func() { srv.Close(); <-done }, nil
}
