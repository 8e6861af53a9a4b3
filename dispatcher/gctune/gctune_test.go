package gctune

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		cfg  Config
		base uint64
		want int
	}{
		{Config{Percent: 100, Headroom: 256 * mib}, 64 * mib, 400},   // small heap: the floor decides
		{Config{Percent: 100, Headroom: 256 * mib}, 1024 * mib, 100}, // large heap: the percentage
		{Config{Percent: 10, Headroom: 256 * mib}, 5120 * mib, 10},   // 100,000 agents with a low percentage
		{Config{Percent: 10, Headroom: 256 * mib}, 1024 * mib, 25},   // the floor again
		{Config{Percent: 100, Headroom: 256 * mib}, 1, maxPercent},   // nearly empty: bounded
		{Config{Percent: 100, Headroom: 0}, 64 * mib, 100},           // no floor
		{Config{Percent: -1, Headroom: 256 * mib}, 64 * mib, -1},     // off stays off
		{Config{Percent: 100, Headroom: 256 * mib}, 0, 100},          // nothing measured yet
	} {
		if got := Percent(c.cfg, c.base); got != c.want {
			t.Errorf("Percent(%+v, %d) = %d, want %d", c.cfg, c.base, got, c.want)
		}
	}
}

// Run raises GOGC after a collection of a small heap, and ends with ctx.
func TestRunRaisesPercentForSmallHeap(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { Run(ctx, Config{Percent: 100, Headroom: 1 << 30, Every: 5 * time.Millisecond}) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		if p > 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d after collections of a heap far below the 1 GiB floor", p)
		}
	}
	cancel()
	wg.Wait()
}
