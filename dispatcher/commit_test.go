package dispatcher

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/broker"
	"github.com/pando-wms/pando/dispatcher/store"
)

// flushStub is a store whose flushes fail on demand. Only Write and Sync
// are used by the commit pipeline; the embedded Store stays nil.
type flushStub struct {
	store.Store
	mu      sync.Mutex
	writes  int
	syncErr error
}

func (f *flushStub) Write(context.Context, *store.Batch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	return nil
}

func (f *flushStub) Sync(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncErr
}

func (f *flushStub) failSyncs(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncErr = err
}

// pipeline runs a server's commit and flush loops over st, as Run does.
func pipeline(t *testing.T, st *flushStub) (*Server, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	s := &Server{log: log, store: st, pipe: st, cancel: cancel, metrics: newMetrics(),
		broker: broker.New(broker.Config{}, log), toSync: make(chan written), fatal: make(chan error, 1)}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.commitLoop(ctx) }()
	go func() { defer wg.Done(); s.syncLoop() }()
	return s, func() { cancel(); wg.Wait(); s.flush() }
}

// durableAfter waits for what broker.Sync reports about the changes so far.
func durableAfter(t *testing.T, s *Server) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	s.broker.Sync(func(err error) { done <- err })
	return done
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("a commit's callback never ran")
		return nil
	}
}

// A failed flush acknowledges nothing written before it, stops the
// server with the error, and no later flush is believed: the kernel may
// have dropped the pages it could not write and report the next one clean.
func TestFailedFlushStopsTheServer(t *testing.T) {
	st := &flushStub{}
	s, stop := pipeline(t, st)
	if err := wait(t, durableAfter(t, s)); err != nil {
		t.Fatalf("flush that succeeds: %v", err)
	}

	st.failSyncs(syscall.EIO)
	if err := wait(t, durableAfter(t, s)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("flush that fails: callback got %v, want EIO", err)
	}
	select {
	case err := <-s.fatal:
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("server stopped with %v, want EIO", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server was not stopped")
	}

	// The disk answers again; what is written now is still not durable.
	st.failSyncs(nil)
	later := durableAfter(t, s)
	stop()
	if err := wait(t, later); err == nil {
		t.Error("a commit after a failed flush was reported durable")
	}
}

// Shutdown flushes what the loops left written but unflushed.
func TestShutdownFlushes(t *testing.T) {
	st := &flushStub{}
	s, stop := pipeline(t, st)
	done := durableAfter(t, s)
	stop()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if st.writes == 0 {
		t.Error("nothing was written")
	}
}
