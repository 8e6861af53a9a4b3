// Package gctune keeps the garbage collector's headroom above a floor.
//
// GOGC sets the headroom as a fraction of what the last collection left
// alive. A dispatcher with a small live heap (a few thousand agents, a
// busy queue) then collects several times a second although memory is
// plentiful: at 1,000 agents and 6,000 jobs/s the live heap is ~60 MB and
// the collector took ~8% of the dispatcher's CPU. One holding 100,000
// agents has the opposite need: its heap is gigabytes of long-lived
// connection state, where GOGC=100 doubles the process for nothing. A
// fixed floor under a low percentage serves both: collections stay rare
// while the heap is small, and the headroom stays a small fraction once it
// is large.
package gctune

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// maxPercent bounds the percentage the floor may ask for, so that a nearly
// empty heap does not turn into an effectively disabled collector.
const maxPercent = 10_000

// Config is the policy: the headroom is the larger of Percent of the live
// heap (with stacks and globals, as GOGC counts it) and Headroom bytes.
type Config struct {
	Percent  int   // as GOGC; negative: the collector runs only at the memory limit, and Run does nothing
	Headroom int64 // bytes; 0: Percent alone
	Every    time.Duration
	Log      *slog.Logger
}

// Percent is the GOGC value that gives the policy's headroom above base
// bytes of live heap, stacks and globals.
func Percent(cfg Config, base uint64) int {
	if cfg.Percent < 0 || cfg.Headroom <= 0 || base == 0 {
		return cfg.Percent
	}
	p := min(uint64(cfg.Headroom)*100/base, maxPercent)
	return max(cfg.Percent, int(p))
}

var samples = []string{"/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes", "/gc/cycles/total:gc-cycles"}

// Run applies the policy after every collection until ctx ends, checking
// for one every cfg.Every (default 1s). It sets GOGC to cfg.Percent first.
func Run(ctx context.Context, cfg Config) {
	if cfg.Every <= 0 {
		cfg.Every = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	debug.SetGCPercent(cfg.Percent)
	if cfg.Percent < 0 || cfg.Headroom <= 0 {
		return
	}
	s := make([]metrics.Sample, len(samples))
	for i, name := range samples {
		s[i].Name = name
	}
	cur, cycles := cfg.Percent, uint64(0)
	t := time.NewTicker(cfg.Every)
	defer t.Stop()
	for {
		metrics.Read(s)
		if n := s[3].Value.Uint64(); n != cycles {
			cycles = n
			base := s[0].Value.Uint64() + s[1].Value.Uint64() + s[2].Value.Uint64()
			// Only a change of a tenth or more: the goal moves with every
			// collection, and each SetGCPercent takes the heap lock.
			if p := Percent(cfg, base); p*10 < cur*9 || p*10 > cur*11 {
				debug.SetGCPercent(p)
				cfg.Log.Debug("gc percent", "percent", p, "live_bytes", base)
				cur = p
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
