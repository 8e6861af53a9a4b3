package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/pando-wms/pando/dispatcher/store"
)

func testTaskFilters(t *testing.T, open Opener) {
	ctx := context.Background()
	s := fresh(t, open)
	a1, _ := create(t, s, "alice", 3)
	b1, _ := create(t, s, "bob", 4)
	a2, _ := create(t, s, "alice", 0)
	for _, c := range []struct {
		f    store.TaskFilter
		want []int64
	}{
		{store.TaskFilter{}, []int64{a1.ID, b1.ID, a2.ID}},
		{store.TaskFilter{Owner: "alice"}, []int64{a1.ID, a2.ID}},
		{store.TaskFilter{Owner: "nobody"}, nil},
		{store.TaskFilter{AfterID: a1.ID}, []int64{b1.ID, a2.ID}},
		{store.TaskFilter{Limit: 2}, []int64{a1.ID, b1.ID}},
		{store.TaskFilter{Owner: "alice", AfterID: a1.ID, Limit: 1}, []int64{a2.ID}},
		{store.TaskFilter{AfterID: a2.ID}, nil},
	} {
		got, err := s.Tasks(ctx, c.f)
		if err != nil {
			t.Fatalf("Tasks(%+v): %v", c.f, err)
		}
		if !slices.Equal(ids(got), c.want) {
			t.Errorf("Tasks(%+v) = %v, want %v", c.f, ids(got), c.want)
		}
	}
}

func testJobFilters(t *testing.T, open Opener) {
	ctx := context.Background()
	s := fresh(t, open)
	a1, aj1 := create(t, s, "alice", 3)
	_, bj := create(t, s, "bob", 2)
	_, aj2 := create(t, s, "alice", 2)
	apply(t, s, &store.Batch{Jobs: []store.Job{
		setState(aj1[1], store.Running, 1), setState(bj[0], store.Running, 1),
		setState(aj2[1], store.Finished, 1),
	}})
	aliceAll := append(ids(aj1), ids(aj2)...)
	for _, c := range []struct {
		f    store.JobFilter
		want []int64
	}{
		{store.JobFilter{TaskID: a1.ID}, ids(aj1)},
		{store.JobFilter{Owner: "alice"}, aliceAll},
		{store.JobFilter{Owner: "bob"}, ids(bj)},
		{store.JobFilter{Owner: "nobody"}, nil},
		{store.JobFilter{State: store.Running}, []int64{aj1[1].ID, bj[0].ID}},
		{store.JobFilter{TaskID: a1.ID, State: store.Ready}, []int64{aj1[0].ID, aj1[2].ID}},
		{store.JobFilter{Owner: "alice", State: store.Finished}, []int64{aj2[1].ID}},
		{store.JobFilter{Owner: "alice", AfterID: aj1[2].ID, Limit: 1}, []int64{aj2[0].ID}},
		{store.JobFilter{Limit: 2}, ids(aj1[:2])},
	} {
		got, err := s.Jobs(ctx, c.f)
		if err != nil {
			t.Fatalf("Jobs(%+v): %v", c.f, err)
		}
		if !slices.Equal(ids(got), c.want) {
			t.Errorf("Jobs(%+v) = %v, want %v", c.f, ids(got), c.want)
		}
	}
	// Paging with AfterID and Limit visits every job once, in order.
	var paged []int64
	f := store.JobFilter{Owner: "alice", Limit: 2}
	for {
		page, err := s.Jobs(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, ids(page)...)
		f.AfterID = page[len(page)-1].ID
	}
	if !slices.Equal(paged, aliceAll) {
		t.Errorf("paged jobs %v, want %v", paged, aliceAll)
	}
}

func testTaskCounts(t *testing.T, open Opener) {
	ctx := context.Background()
	s := fresh(t, open)
	task, jobs := create(t, s, "alice", 5)
	create(t, s, "alice", 3) // another task's jobs must not count
	apply(t, s, &store.Batch{Jobs: []store.Job{
		setState(jobs[0], store.Running, 1), setState(jobs[1], store.Running, 1),
		setState(jobs[2], store.Finished, 1),
	}})
	got, err := s.TaskCounts(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[store.State]int{store.Ready: 2, store.Running: 2, store.Finished: 1}
	for _, st := range store.States {
		if got[st] != want[st] {
			t.Errorf("TaskCounts = %v, want %v", got, want)
			break
		}
	}
}

// LiveJobs and LiveTasks leave out jobs in final states, and tasks with
// none but such jobs (or none at all).
func testLive(t *testing.T, open Opener) {
	ctx := context.Background()
	s := fresh(t, open)
	done, dj := create(t, s, "alice", 3)
	live, lj := create(t, s, "bob", 3)
	create(t, s, "bob", 0)
	apply(t, s, &store.Batch{Jobs: []store.Job{
		setState(dj[0], store.Finished, 1), setState(dj[1], store.Failed, 1),
		setState(dj[2], store.Cancelled, 1), setState(lj[0], store.Finished, 1),
		setState(lj[1], store.Assigned, 1),
	}})
	jobs, err := s.LiveJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := ids(jobs)
	slices.Sort(got)
	if want := []int64{lj[1].ID, lj[2].ID}; !slices.Equal(got, want) {
		t.Errorf("LiveJobs = %v, want %v", got, want)
	}
	tasks, err := s.LiveTasks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(tasks); !slices.Equal(got, []int64{live.ID}) {
		t.Errorf("LiveTasks = %v, want [%d] (not %d)", got, live.ID, done.ID)
	}
}
