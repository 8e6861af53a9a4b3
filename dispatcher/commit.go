package dispatcher

import (
	"context"
	"time"
)

// commitLoop writes the broker's pending changes in group commits: while
// one commit runs, the next batch accumulates. A failed commit is retried
// with back-off, holding back the pushes and acknowledgements that wait on
// it, so memory may run ahead of the disk but nothing is promised before it
// is durable.
func (s *Server) commitLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.broker.Pending():
		}
		s.commitOnce(ctx)
	}
}

func (s *Server) commitOnce(ctx context.Context) {
	batch, after := s.broker.TakeBatch()
	if batch == nil {
		return
	}
	backoff := 50 * time.Millisecond
	for {
		err := s.store.Apply(context.Background(), batch)
		if err == nil {
			if s.storeErr.Swap(nil) != nil {
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
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	for _, f := range after {
		f(nil)
	}
}

// flush commits what is left at shutdown.
func (s *Server) flush() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.commitOnce(ctx)
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
