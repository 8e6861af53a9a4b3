package storetest

import (
	"context"
	"testing"

	"github.com/pando-wms/pando/dispatcher/store"
)

// Tasks inserted by Apply take IDs from ReserveIDs; reserved IDs never
// collide with CreateTask's, and a job may be inserted and updated in one
// batch.
func testApplyNewTasks(t *testing.T, open Opener) {
	ctx := context.Background()
	s := fresh(t, open)
	first, err := s.ReserveIDs(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	task, jobs := newTask("alice", 3)
	task.ID = first
	for i := range jobs {
		jobs[i].ID, jobs[i].TaskID = first+1+int64(i), first
	}
	upd := jobs[1]
	upd.State, upd.Attempt, upd.AgentID, upd.AgentName, upd.Updated = store.Assigned, 1, "a1", "pilot-1", at(5)
	b := &store.Batch{Tasks: []store.NewTask{{Task: *task, Jobs: jobs}}, Jobs: []store.Job{upd}}
	if err := s.Apply(ctx, b); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	got, err := s.Task(ctx, first)
	if err != nil || got.Owner != "alice" || got.Jobs != 3 {
		t.Fatalf("Task(%d) = %+v, %v", first, got, err)
	}
	j, err := s.Job(ctx, upd.ID)
	if err != nil || j.State != store.Assigned || j.AgentName != "pilot-1" || j.TaskID != first {
		t.Fatalf("Job(%d) = %+v, %v; want assigned to pilot-1", upd.ID, j, err)
	}
	if j, _ := s.Job(ctx, jobs[0].ID); j == nil || j.State != store.Ready {
		t.Fatalf("Job(%d) = %+v, want ready", jobs[0].ID, j)
	}
	// CreateTask continues after the reserved range.
	t2, _ := create(t, s, "bob", 1)
	if t2.ID < first+100 {
		t.Fatalf("CreateTask took ID %d inside the reserved range [%d, %d)", t2.ID, first, first+100)
	}
	next, err := s.ReserveIDs(ctx, 10)
	if err != nil || next <= t2.ID+1 {
		t.Fatalf("ReserveIDs after CreateTask = %d, %v; want past %d", next, err, t2.ID+1)
	}
	if _, err := s.ReserveIDs(ctx, 0); err == nil {
		t.Error("ReserveIDs(0) succeeded")
	}
	// A batch whose task insert fails writes nothing.
	dup := &store.Batch{Tasks: []store.NewTask{{Task: *task, Jobs: jobs}}}
	if err := s.Apply(ctx, dup); err == nil {
		t.Fatal("Apply of a task ID already stored succeeded")
	}
}
