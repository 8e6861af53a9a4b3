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
