package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/store"
)

// Apply changes the mutable fields and leaves ID, TaskID, Index and Created
// as they were stored.
func testApplyMutableOnly(t *testing.T, open Opener) {
	ctx := context.Background()
	s := fresh(t, open)
	_, jobs := create(t, s, "alice", 2)
	other, _ := create(t, s, "bob", 0)
	upd := store.Job{ID: jobs[0].ID, TaskID: other.ID, Index: 99, State: store.Running,
		Attempt: 2, MaxAttempts: 5, AgentID: "a1", AgentName: "pilot", ExitCode: intp(3),
		ErrorCode: 7, Error: "x", Created: at(100), Updated: at(101), Started: at(102), Ended: at(103)}
	apply(t, s, &store.Batch{Jobs: []store.Job{upd}})
	want := upd
	want.TaskID, want.Index, want.Created = jobs[0].TaskID, jobs[0].Index, jobs[0].Created
	got, err := s.Job(ctx, upd.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(*got, want); d != "" {
		t.Errorf("after Apply: %s", d)
	}
	// A retry clears the exit code and times: nil and zero are written too.
	want.ExitCode, want.State, want.Started, want.Ended = nil, store.Ready, time.Time{}, time.Time{}
	apply(t, s, &store.Batch{Jobs: []store.Job{want}})
	if got, err = s.Job(ctx, upd.ID); err != nil {
		t.Fatal(err)
	}
	if d := diff(*got, want); d != "" {
		t.Errorf("after clearing: %s", d)
	}
	if got, _ := s.Job(ctx, jobs[1].ID); diff(*got, jobs[1]) != "" {
		t.Errorf("job not in the batch changed: %+v", got)
	}
}

// A batch that names a job or an attempt twice leaves the last values,
// however many rows the implementation writes per statement.
func testApplyLastWins(t *testing.T, open Opener) {
	ctx := context.Background()
	s := fresh(t, open)
	_, jobs := create(t, s, "alice", 300)
	b := &store.Batch{}
	for _, j := range jobs {
		b.Jobs = append(b.Jobs, setState(j, store.Assigned, 1), setState(j, store.Running, 2))
		a := store.Attempt{JobID: j.ID, Attempt: 1, State: store.Running}
		b.Attempts = append(b.Attempts, a)
		a.State, a.ExitCode = store.Failed, intp(2)
		b.Attempts = append(b.Attempts, a)
	}
	apply(t, s, b)
	got, err := s.Jobs(ctx, store.JobFilter{State: store.Running})
	if err != nil || len(got) != len(jobs) {
		t.Errorf("jobs named twice: %d running, %v; want all %d", len(got), err, len(jobs))
	}
	for _, j := range []store.Job{jobs[0], jobs[len(jobs)-1]} {
		as, _ := s.Attempts(ctx, j.ID)
		if len(as) != 1 || as[0].State != store.Failed {
			t.Errorf("attempt named twice: %+v, want the last values", as)
		}
	}
}

// A batch that fails part way writes nothing.
func testApplyAtomic(t *testing.T, open Opener) {
	ctx := context.Background()
	s := fresh(t, open)
	_, jobs := create(t, s, "alice", 2)
	missing := jobs[1].ID + 1000
	good := setState(jobs[0], store.Assigned, 1)
	att := store.Attempt{JobID: jobs[0].ID, Attempt: 1, State: store.Running}
	for name, b := range map[string]*store.Batch{
		"missing job":            {Jobs: []store.Job{good, {ID: missing, State: store.Running}}, Attempts: []store.Attempt{att}},
		"attempt of missing job": {Jobs: []store.Job{good}, Attempts: []store.Attempt{att, {JobID: missing, Attempt: 1}}},
	} {
		err := s.Apply(ctx, b)
		if err == nil {
			t.Errorf("%s: Apply succeeded", name)
		}
		if name == "missing job" && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
		if got, _ := s.Job(ctx, jobs[0].ID); diff(*got, jobs[0]) != "" {
			t.Errorf("%s: job changed by a failed batch: %+v", name, got)
		}
		if as, _ := s.Attempts(ctx, jobs[0].ID); len(as) != 0 {
			t.Errorf("%s: attempts written by a failed batch: %+v", name, as)
		}
	}
	if err := s.Apply(ctx, &store.Batch{}); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}

// Attempts are inserted or replaced by (JobID, Attempt) and read back in
// attempt order, whatever order they were written in.
func testAttempts(t *testing.T, open Opener) {
	ctx := context.Background()
	s := fresh(t, open)
	_, jobs := create(t, s, "alice", 2)
	id := jobs[0].ID
	a3 := store.Attempt{JobID: id, Attempt: 3, State: store.Running, Assigned: at(3)}
	a1 := store.Attempt{JobID: id, Attempt: 1, State: store.Running, Assigned: at(1)}
	a2 := store.Attempt{JobID: id, Attempt: 2, State: store.Failed, Assigned: at(2), ErrorCode: 5}
	other := store.Attempt{JobID: jobs[1].ID, Attempt: 1, State: store.Running}
	apply(t, s, &store.Batch{Attempts: []store.Attempt{a3, a1, other}})
	apply(t, s, &store.Batch{Attempts: []store.Attempt{a2}})
	a1.State, a1.ExitCode, a1.Ended, a1.CPUSeconds = store.Failed, intp(1), at(9), 3.25
	apply(t, s, &store.Batch{Attempts: []store.Attempt{a1}})
	got, err := s.Attempts(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(got, []store.Attempt{a1, a2, a3}); d != "" {
		t.Errorf("Attempts: %s", d)
	}
}

// The attempt that ends a job is kept in the job's row and listed by
// Attempts after the stored ones; Archive keeps it when a user retry
// starts the job again, and leaves a stored attempt of that number alone.
func testFinalAttempt(t *testing.T, open Opener) {
	ctx := context.Background()
	s := fresh(t, open)
	_, jobs := create(t, s, "alice", 3)
	done, cancelled, live := jobs[0], jobs[1], jobs[2]
	failed := store.Attempt{JobID: done.ID, Attempt: 1, AgentID: "a1", AgentName: "p1", State: store.Failed,
		ErrorCode: 1201, Error: "agent lost", Assigned: at(1), Ended: at(2)}
	done.State, done.Attempt, done.AgentID, done.AgentName, done.ExitCode = store.Finished, 2, "a2", "p2", intp(0)
	done.Assigned, done.Started, done.Ended, done.Updated, done.CPUSeconds, done.MaxRSSBytes = at(3), at(4), at(5), at(5), 1.5, 4096
	// Killed while waiting for its retry: its last attempt is the stored one.
	cancelledAttempt := failed
	cancelledAttempt.JobID = cancelled.ID
	cancelled = setState(cancelled, store.Cancelled, 6)
	cancelled.Attempt, cancelled.Assigned, cancelled.ErrorCode, cancelled.Error = 1, at(1), 1500, "killed by alice"
	live.State, live.Attempt, live.AgentID, live.Assigned = store.Running, 1, "a3", at(7)
	apply(t, s, &store.Batch{Jobs: []store.Job{done, cancelled, live}, Attempts: []store.Attempt{failed, cancelledAttempt}})

	last := store.Attempt{JobID: done.ID, Attempt: 2, AgentID: "a2", AgentName: "p2", State: store.Finished,
		ExitCode: intp(0), Assigned: at(3), Started: at(4), Ended: at(5), CPUSeconds: 1.5, MaxRSSBytes: 4096}
	check := func(when string, id int64, want ...store.Attempt) {
		t.Helper()
		got, err := s.Attempts(ctx, id)
		if err != nil {
			t.Fatalf("%s: Attempts(%d): %v", when, id, err)
		}
		if want == nil {
			want = []store.Attempt{}
		}
		if got == nil {
			got = []store.Attempt{}
		}
		if d := diff(got, want); d != "" {
			t.Errorf("%s: Attempts(%d): %s", when, id, d)
		}
	}
	check("finished", done.ID, failed, last)
	check("cancelled while ready", cancelled.ID, cancelledAttempt)
	check("live", live.ID)

	// A user retry: the row moves on to attempt 3, the archived attempt 2 stays.
	retry := done
	retry.State, retry.Attempt, retry.MaxAttempts, retry.AgentID, retry.AgentName = store.Assigned, 3, 5, "a4", "p4"
	retry.ExitCode, retry.Assigned, retry.Started, retry.Ended, retry.CPUSeconds, retry.MaxRSSBytes = nil, at(8), time.Time{}, time.Time{}, 0, 0
	again := cancelled
	again.State, again.Ended = store.Ready, time.Time{}
	apply(t, s, &store.Batch{Archive: []int64{done.ID, cancelled.ID, live.ID}, Jobs: []store.Job{retry, again}})
	check("retried", done.ID, failed, last)
	check("retried after a kill", cancelled.ID, cancelledAttempt)
	check("live, archived by mistake", live.ID)
	if j, err := s.Job(ctx, done.ID); err != nil || j.Attempt != 3 || !j.Assigned.Equal(at(8)) {
		t.Errorf("retried job = %+v, %v", j, err)
	}
}

// Readers running beside Apply see each batch whole or not at all: every
// batch moves all jobs of the task to the same attempt.
func testConcurrentReaders(t *testing.T, open Opener) {
	ctx := context.Background()
	s := fresh(t, open)
	task, jobs := create(t, s, "alice", 50)
	const batches = 20
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				checkUniform(t, s, task.ID, len(jobs))
			}
		})
	}
	for k := 1; k <= batches; k++ {
		b := &store.Batch{}
		for _, j := range jobs {
			j.Attempt, j.State, j.Updated = k, store.Running, at(0)
			b.Jobs = append(b.Jobs, j)
			b.Attempts = append(b.Attempts, store.Attempt{JobID: j.ID, Attempt: k, State: store.Running})
		}
		if err := s.Apply(ctx, b); err != nil {
			t.Errorf("Apply %d: %v", k, err)
			break
		}
	}
	close(done)
	wg.Wait()
	if got, err := s.Attempts(ctx, jobs[0].ID); err != nil || len(got) != batches {
		t.Errorf("Attempts after %d batches: %d, %v", batches, len(got), err)
	}
}

func checkUniform(t *testing.T, s store.Store, taskID int64, n int) {
	js, err := s.Jobs(context.Background(), store.JobFilter{TaskID: taskID})
	if err != nil || len(js) != n {
		t.Errorf("Jobs during Apply: %d jobs, %v; want %d", len(js), err, n)
		return
	}
	for _, j := range js[1:] {
		if j.Attempt != js[0].Attempt {
			t.Errorf("Jobs during Apply saw half a batch: attempts %d and %d", js[0].Attempt, j.Attempt)
			return
		}
	}
	if _, err := s.LiveJobs(context.Background()); err != nil {
		t.Errorf("LiveJobs during Apply: %v", err)
	}
}

// A store that splits commits (store.Pipelined) shows a written batch to
// readers at once, before any Sync, and Write keeps Apply's checks: a
// batch naming a missing job writes nothing.
func testPipelined(t *testing.T, open Opener) {
	ctx := context.Background()
	s := fresh(t, open)
	p, ok := s.(store.Pipelined)
	if !ok {
		t.Skip("the store does not split commits; Apply is its only write")
	}
	_, jobs := create(t, s, "alice", 2)
	jobs[0] = setState(jobs[0], store.Running, 1)
	if err := p.Write(ctx, &store.Batch{Jobs: jobs[:1]}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Job(ctx, jobs[0].ID); err != nil || got.State != store.Running {
		t.Fatalf("written, not synced: got %+v, %v; want the job running", got, err)
	}
	missing := setState(jobs[1], store.Running, 1)
	missing.ID = 1 << 40
	jobs[1] = setState(jobs[1], store.Running, 1)
	err := p.Write(ctx, &store.Batch{Jobs: []store.Job{jobs[1], missing}})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Write naming a missing job: %v, want ErrNotFound", err)
	}
	if got, _ := s.Job(ctx, jobs[1].ID); got.State != store.Ready {
		t.Errorf("a failed Write changed job %d to %s", got.ID, got.State)
	}
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}
