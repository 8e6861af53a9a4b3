package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/pando-wms/pando/dispatcher/store"
)

// A task takes the next ID and its jobs the IDs right after it; the next
// task follows its predecessor's last job.
func testIDSequence(t *testing.T, open Opener) {
	s := fresh(t, open)
	a, aj := create(t, s, "alice", 20)
	b, _ := create(t, s, "alice", 0)
	c, cj := create(t, s, "bob", 3)
	if a.ID <= 0 {
		t.Fatalf("first task ID %d, want > 0", a.ID)
	}
	for i, j := range aj {
		if j.ID != a.ID+1+int64(i) || j.TaskID != a.ID {
			t.Errorf("job %d: ID %d TaskID %d, want %d and %d", i, j.ID, j.TaskID, a.ID+1+int64(i), a.ID)
		}
	}
	if b.ID != a.ID+21 {
		t.Errorf("task after 20 jobs: ID %d, want %d", b.ID, a.ID+21)
	}
	if c.ID != b.ID+1 || cj[0].ID != c.ID+1 || cj[2].ID != c.ID+3 {
		t.Errorf("third task: ID %d jobs %v, want %d and %d..%d", c.ID, ids(cj), b.ID+1, b.ID+2, b.ID+4)
	}
}

// Every field of tasks, jobs and attempts reads back as written, including
// nil against zero exit codes and zero times.
func testRoundTrip(t *testing.T, open Opener) {
	ctx := context.Background()
	s := fresh(t, open)
	task, jobs := newTask("alice", 3)
	task.Priority, task.MaxAttempts = -5, 7
	jobs[0].Updated = at(0) // zero Started, Ended and nil ExitCode
	jobs[1] = store.Job{Index: 1, State: store.Finished, Attempt: 2, MaxAttempts: 4,
		AgentID: "agent-1", AgentName: "pilot@site", ExitCode: intp(0),
		Created: at(1), Updated: at(2), Started: at(3), Ended: at(4),
		Assigned: at(2), CPUSeconds: 12.5, MaxRSSBytes: 1 << 33}
	jobs[2] = store.Job{Index: 2, State: store.Failed, Attempt: 3, MaxAttempts: 3,
		ExitCode: intp(-137), ErrorCode: 1305, Error: "payload: killed\n(OOM)",
		Created: at(5), Updated: at(6), Started: at(7), Ended: at(8)}
	if err := s.CreateTask(ctx, task, jobs); err != nil {
		t.Fatal(err)
	}
	got, err := s.Task(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(*got, *task); d != "" {
		t.Errorf("Task: %s", d)
	}
	for _, want := range jobs {
		got, err := s.Job(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d := diff(*got, want); d != "" {
			t.Errorf("Job %d: %s", want.Index, d)
		}
	}
	all, err := s.Jobs(ctx, store.JobFilter{TaskID: task.ID})
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(all, jobs); d != "" {
		t.Errorf("Jobs: %s", d)
	}
	attempts := []store.Attempt{
		{JobID: jobs[0].ID, Attempt: 1, State: store.Running, Assigned: at(1)},
		{JobID: jobs[0].ID, Attempt: 2, AgentID: "a", AgentName: "n", State: store.Failed,
			ExitCode: intp(0), ErrorCode: 42, Error: "stage-in", Assigned: at(2),
			Started: at(3), Ended: at(4), CPUSeconds: 12.5, MaxRSSBytes: 1 << 33},
	}
	apply(t, s, &store.Batch{Attempts: attempts})
	gotA, err := s.Attempts(ctx, jobs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(gotA, attempts); d != "" {
		t.Errorf("Attempts: %s", d)
	}
}

// Lookups of what does not exist return store.ErrNotFound; empty results
// of things that do exist are not errors.
func testNotFound(t *testing.T, open Opener) {
	ctx := context.Background()
	s := fresh(t, open)
	task, jobs := create(t, s, "alice", 1)
	empty, _ := create(t, s, "alice", 0)
	missing := empty.ID + 1000
	checks := map[string]error{}
	_, checks["Task"] = s.Task(ctx, missing)
	_, checks["Job"] = s.Job(ctx, missing)
	_, checks["Job(task ID)"] = s.Job(ctx, task.ID)
	_, checks["Task(job ID)"] = s.Task(ctx, jobs[0].ID)
	_, checks["TaskCounts"] = s.TaskCounts(ctx, missing)
	_, checks["Attempts"] = s.Attempts(ctx, missing)
	_, checks["TokenByHash"] = s.TokenByHash(ctx, "0123")
	for name, err := range checks {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of a missing ID: %v, want ErrNotFound", name, err)
		}
	}
	if as, err := s.Attempts(ctx, jobs[0].ID); err != nil || len(as) != 0 {
		t.Errorf("Attempts of a job never assigned: %v, %v; want none", as, err)
	}
	if m, err := s.TaskCounts(ctx, empty.ID); err != nil || len(m) != 0 {
		t.Errorf("TaskCounts of a task without jobs: %v, %v; want none", m, err)
	}
}

// Everything written survives Close and reopening the same directory, and
// the ID sequence goes on where it stopped.
func testPersistence(t *testing.T, open Opener) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	task, jobs := create(t, s, "alice", 4)
	jobs[1] = setState(jobs[1], store.Finished, 1)
	jobs[1].ExitCode = intp(0)
	att := store.Attempt{JobID: jobs[1].ID, Attempt: 1, State: store.Finished, ExitCode: intp(0), Ended: at(1)}
	apply(t, s, &store.Batch{Jobs: jobs[1:2], Attempts: []store.Attempt{att}})
	tok := store.Token{Hash: "ab12", Name: "alice", Role: store.RoleUser, Created: at(2)}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s = open(t, dir)
	defer s.Close()
	got, err := s.Jobs(ctx, store.JobFilter{TaskID: task.ID})
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(got, jobs); d != "" {
		t.Errorf("jobs after reopen: %s", d)
	}
	gotT, err := s.Task(ctx, task.ID)
	if err != nil || diff(*gotT, *task) != "" {
		t.Errorf("task after reopen: %+v, %v", gotT, err)
	}
	gotA, err := s.Attempts(ctx, jobs[1].ID)
	if err != nil || diff(gotA, []store.Attempt{att}) != "" {
		t.Errorf("attempts after reopen: %+v, %v", gotA, err)
	}
	gotTok, err := s.TokenByHash(ctx, tok.Hash)
	if err != nil || diff(*gotTok, tok) != "" {
		t.Errorf("token after reopen: %+v, %v", gotTok, err)
	}
	next, _ := create(t, s, "bob", 1)
	if next.ID != jobs[3].ID+1 {
		t.Errorf("first task after reopen: ID %d, want %d", next.ID, jobs[3].ID+1)
	}
}
