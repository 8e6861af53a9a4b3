package dispatcher

import (
	"context"
	"fmt"
	"time"

	"github.com/pando-wms/pando/dispatcher/api"
)

// commitLoop writes the broker's pending changes in group commits: while
// one commit runs, the next batch accumulates. A failed commit is retried
// with back-off, holding back the pushes and acknowledgements that wait on
// it, so memory may run ahead of the disk but nothing is promised before it
// is durable.
//
// A store that splits commits (store.Pipelined) has them flushed by
// syncLoop: the next batch is written while the last is being flushed, and
// one flush covers every batch written before it began. Under a stream of
// small submissions the wait for the disk, not the writing, was what kept
// this loop busy and each submission waiting.
func (s *Server) commitLoop(ctx context.Context) {
	defer close(s.toSync)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.broker.Pending():
		}
		if c := s.commitOnce(ctx); c != nil {
			select {
			case s.toSync <- *c:
			case <-ctx.Done():
				// syncLoop still drains what was queued; this one is
				// flushed at shutdown by flush's own Sync.
				s.lateSync = append(s.lateSync, *c)
				return
			}
		}
	}
}

// written is a group commit written and not yet known durable.
type written struct {
	start time.Time
	rows  int
	after []func(error)
}

// commitOnce writes one batch, retrying until it is written or ctx ends.
// With a store that splits commits it returns the commit, to be flushed;
// else the batch is durable when it returns and its callbacks have run.
func (s *Server) commitOnce(ctx context.Context) *written {
	batch, after := s.broker.TakeBatch()
	if batch == nil {
		return nil
	}
	c := &written{start: time.Now(), rows: len(batch.Jobs), after: after}
	for _, t := range batch.Tasks {
		c.rows += len(t.Jobs)
	}
	write := s.store.Apply
	if s.pipe != nil {
		write = s.pipe.Write
	}
	backoff := 50 * time.Millisecond
	for {
		err := write(context.Background(), batch)
		if err == nil {
			if !s.syncFailed.Load() && s.storeErr.Swap(nil) != nil {
				s.log.Info("group commits succeed again")
			}
			break
		}
		s.storeErr.Store(&err)
		s.log.Error("group commit failed; retrying", "jobs", len(batch.Jobs), "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			for _, f := range after {
				f(err)
			}
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	if s.pipe != nil {
		return c
	}
	s.durable(nil, *c)
	return nil
}

// syncLoop flushes written commits, as many at once as are waiting, and
// then runs what waited on them. It returns when commitLoop has closed
// toSync and every commit queued before is flushed.
//
// A failed flush is not retried: the kernel may have dropped the pages it
// could not write and report the next flush clean, so nothing written since
// the last good one can be called durable. The dispatcher stops instead;
// a restart recovers what the disk holds, and none of it was promised.
func (s *Server) syncLoop() {
	for c := range s.toSync {
		cs := []written{c}
	more:
		for {
			select {
			case c, ok := <-s.toSync:
				if !ok {
					break more
				}
				cs = append(cs, c)
			default:
				break more
			}
		}
		s.durable(s.flushStore(context.Background()), cs...)
	}
}

// durable runs what waited on commits, once they are durable (err nil) or
// known not to be.
func (s *Server) durable(err error, cs ...written) {
	for _, c := range cs {
		if err == nil {
			s.metrics.observeCommit(time.Since(c.start), c.rows)
		}
		for _, f := range c.after {
			f(err)
		}
	}
}

// flush commits what is left at shutdown, after commitLoop and syncLoop
// have returned.
func (s *Server) flush() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := s.commitOnce(ctx)
	cs := s.lateSync
	if c != nil {
		cs = append(cs, *c)
	}
	if len(cs) > 0 {
		s.durable(s.flushStore(ctx), cs...)
	}
}

// flushStore syncs the store. After one failure it fails without trying:
// see syncLoop.
func (s *Server) flushStore(ctx context.Context) error {
	if s.syncFailed.Load() {
		return fmt.Errorf("%w: an earlier flush of the store failed", api.ErrUnavailable)
	}
	start := time.Now()
	err := s.pipe.Sync(ctx)
	s.metrics.sync.Observe(time.Since(start).Seconds())
	if err != nil {
		s.syncFailed.Store(true)
		s.storeErr.Store(&err)
		s.log.Error("flushing group commits failed; stopping: a restart recovers what is on disk", "err", err)
		s.fail(fmt.Errorf("dispatcher: store: %w", err))
	}
	return err
}

// tickLoop drives the broker's timers.
func (s *Server) tickLoop(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.broker.Tick()
		case <-prune.C:
			s.pruneOwners()
		}
	}
}
