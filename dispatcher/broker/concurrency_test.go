package broker_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pando-wms/pando/dispatcher/broker"
	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/wire"
)

func TestReportDoneGetsCommitError(t *testing.T) {
	h := newHarness(t, defaultConfig())
	h.addTask(taskOpts{})
	a := h.connect("a1", "")
	a.want(1)
	as := a.runOne()
	d, err := a.report(as, &wire.Report{})
	if err != nil {
		t.Fatal(err)
	}
	h.commitErr(errCommit)
	if d.calls() != 1 || !errors.Is(d.err, errCommit) {
		t.Fatalf("done: %d calls, err %v; want the commit error", d.calls(), d.err)
	}
}

// committer is the dispatcher's commit loop in miniature: it takes batches
// as Pending signals and counts jobs reaching a final state.
func committer(ctx context.Context, b *broker.Broker, final *atomic.Int64) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.Pending():
		}
		batch, after := b.TakeBatch()
		if batch != nil {
			for _, j := range batch.Jobs {
				switch j.State {
				case store.Finished, store.Failed, store.Cancelled:
					final.Add(1)
				}
			}
		}
		for _, f := range after {
			f(nil)
		}
	}
}

// runAgent takes pushed Assigns, reports each (sometimes failing), and
// gives its credit back, until ctx ends. With reconnect, it drops its
// connection every 50 reports and comes back with an empty running list.
func runAgent(ctx context.Context, t *testing.T, b *broker.Broker, id string, seed uint64, reconnect bool) {
	rng := rand.New(rand.NewPCG(seed, 1))
	var s *fakeSession
	connect := func() bool {
		s = newSession(time.Now())
		if _, err := b.Connect(&wire.Hello{AgentID: id, Name: id}, s); err != nil {
			t.Errorf("Connect: %v", err)
			return false
		}
		b.Want(id, s, &wire.Want{Slots: 4, Cores: 4, MemoryBytes: 4 * gib})
		return true
	}
	if !connect() {
		return
	}
	defer func() { b.Disconnect(id, s) }()
	reports := 0
	for {
		if reconnect && reports >= 50 {
			reports = 0
			b.Disconnect(id, s)
			if !connect() {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.notify:
		case <-time.After(time.Millisecond):
		}
		for _, m := range s.take() {
			as, ok := m.(*wire.Assign)
			if !ok {
				continue // Kill: the report below is refused anyway
			}
			_ = b.Phase(id, as.JobID, as.Attempt, "run")
			exit := 0
			if rng.IntN(4) == 0 {
				exit = 3
			}
			err := b.Report(id, as.JobID, as.Attempt, &wire.Report{ExitCode: exit}, func(error) {})
			if err != nil && !errors.Is(err, broker.ErrUnknownJob) && !errors.Is(err, broker.ErrStale) {
				t.Errorf("Report: %v", err)
			}
			b.Want(id, s, &wire.Want{Slots: 1, Cores: 1, MemoryBytes: gib})
			reports++
		}
	}
}

func TestConcurrentSmoke(t *testing.T) {
	defer goleak.VerifyNone(t)
	const (
		agents   = 8
		tasks    = 40
		perTask  = 50
		attempts = 3
	)
	b := broker.New(broker.Config{AgentTimeout: time.Hour, Grace: time.Hour}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var (
		final   atomic.Int64
		wg, bg  sync.WaitGroup
		nextJob atomic.Int64
	)
	bg.Go(func() { committer(ctx, b, &final) })
	bg.Go(func() {
		for ctx.Err() == nil {
			b.Tick()
			time.Sleep(100 * time.Microsecond)
		}
	})
	for i := range agents {
		bg.Go(func() { runAgent(ctx, t, b, fmt.Sprintf("agent-%d", i), uint64(i), i%2 == 1) })
	}
	// Submitters, and a killer of every tenth task.
	for w := range 4 {
		wg.Go(func() {
			for k := w; k < tasks; k += 4 {
				id := int64(k + 1)
				task := store.Task{ID: id, MaxAttempts: attempts, Priority: k % 3, Created: time.Now()}
				jobs := make([]store.Job, perTask)
				for i := range jobs {
					jobs[i] = store.Job{ID: nextJob.Add(1), TaskID: id, Index: i, State: store.Ready, MaxAttempts: attempts}
				}
				b.AddTask(task, specFor(), jobs)
				if k%10 == 9 {
					b.KillTask(id, "smoke")
				}
				_ = b.Agents()
				_, _ = b.Live(jobs[0].ID)
			}
		})
	}
	wg.Wait()

	deadline := time.Now().Add(20 * time.Second)
	for final.Load() < tasks*perTask && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	bg.Wait()
	if got := final.Load(); got != tasks*perTask {
		t.Fatalf("%d of %d jobs reached a final state", got, tasks*perTask)
	}
	for _, a := range b.Agents() {
		if a.Running != 0 {
			t.Errorf("agent %s still runs %d jobs", a.ID, a.Running)
		}
	}
}
