package workers

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunsEveryTaskAndEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := New(ctx, time.Minute)
	var n atomic.Int64
	var wg sync.WaitGroup
	for range 1000 {
		wg.Add(1)
		p.Go(func() { defer wg.Done(); n.Add(1) })
	}
	wg.Wait()
	if n.Load() != 1000 {
		t.Fatalf("ran %d tasks, want 1000", n.Load())
	}
	cancel() // idle workers end with the context; goleak checks
}

func TestIdleWorkersEnd(t *testing.T) {
	p := New(context.Background(), 10*time.Millisecond)
	done := make(chan struct{})
	p.Go(func() { close(done) })
	<-done
	time.Sleep(50 * time.Millisecond) // the worker times out; goleak checks
}

func TestWorkerIsReused(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := New(ctx, time.Minute)
	first := make(chan struct{})
	p.Go(func() { close(first) })
	<-first
	// The worker is idle now (or about to be): a second task reuses it.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		select {
		case p.work <- func() {}:
			return
		default:
			time.Sleep(time.Millisecond)
		}
	}
	t.Fatal("no idle worker took a second task")
}
