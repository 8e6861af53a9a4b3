// Package workers runs short tasks on goroutines that are kept for a while
// after their task ends, so that their grown stacks are reused.
package workers

import (
	"context"
	"time"
)

// Pool hands tasks to idle workers or starts new ones. A fresh goroutine
// per job stream grows its stack anew through CBOR decoding each time (3% of
// the dispatcher's CPU in the dispatch benchmark); a reused one already has.
// Workers end after idle time without work, or when ctx ends.
type Pool struct {
	ctx  context.Context
	work chan func() // unbuffered: a send succeeds only when a worker idles
	idle time.Duration
}

// New returns a pool whose workers wait idle for new work before ending.
func New(ctx context.Context, idle time.Duration) *Pool {
	return &Pool{ctx: ctx, work: make(chan func()), idle: idle}
}

// Go runs f on an idle worker, or on a new one.
func (w *Pool) Go(f func()) {
	select {
	case w.work <- f:
	default:
		go w.loop(f)
	}
}

func (w *Pool) loop(f func()) {
	t := time.NewTimer(w.idle)
	defer t.Stop()
	for {
		f()
		t.Reset(w.idle)
		select {
		case f = <-w.work:
		case <-t.C:
			return
		case <-w.ctx.Done():
			return
		}
	}
}
