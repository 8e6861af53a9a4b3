package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/store"
)

// rowsPerSec reports rows written per second of benchmark time.
func rowsPerSec(b *testing.B, rowsPerOp int) {
	b.ReportMetric(float64(b.N*rowsPerOp)/b.Elapsed().Seconds(), "rows/s")
}

func benchJobs(n int) []store.Job {
	jobs := make([]store.Job, n)
	now := time.Now()
	for i := range jobs {
		jobs[i] = store.Job{Index: i, State: store.Ready, MaxAttempts: 3, Created: now, Updated: now}
	}
	return jobs
}

func BenchmarkCreateTask(b *testing.B) {
	const n = 10_000
	db := openTest(b, b.TempDir())
	ctx := context.Background()
	jobs := benchJobs(n)
	for b.Loop() {
		t := &store.Task{Owner: "bench", Queue: "grid", Jobs: n, Spec: []byte(`{}`), Created: time.Now()}
		if err := db.CreateTask(ctx, t, jobs); err != nil {
			b.Fatal(err)
		}
	}
	rowsPerSec(b, n+1)
}

// BenchmarkApply writes group commits of job updates and attempt upserts,
// as the dispatcher does: each job moves on one state and its current
// attempt is inserted or updated. The dispatch benchmark's commits carry a
// few dozen rows; a backlog after a stall carries hundreds.
func BenchmarkApply(b *testing.B) {
	for _, perBatch := range []int{30, 500} {
		b.Run(fmt.Sprintf("rows=%d", perBatch), func(b *testing.B) { benchApply(b, perBatch) })
	}
}

func benchApply(b *testing.B, perBatch int) {
	const total = 100_000
	db := openTest(b, b.TempDir())
	ctx := context.Background()
	var jobs []store.Job
	for range total / 10_000 {
		js := benchJobs(10_000)
		if err := db.CreateTask(ctx, &store.Task{Owner: "bench", Jobs: len(js)}, js); err != nil {
			b.Fatal(err)
		}
		jobs = append(jobs, js...)
	}
	batch := &store.Batch{Jobs: make([]store.Job, perBatch), Attempts: make([]store.Attempt, perBatch)}
	next := 0
	for b.Loop() {
		now := time.Now()
		for i := range perBatch {
			j := &jobs[next]
			next = (next + 1) % len(jobs)
			j.Attempt++
			j.State, j.AgentID, j.Updated, j.Started = store.Running, "agent-1", now, now
			batch.Jobs[i] = *j
			batch.Attempts[i] = store.Attempt{JobID: j.ID, Attempt: (j.Attempt + 1) / 2, AgentID: "agent-1",
				State: store.Running, Assigned: now, Started: now}
		}
		if err := db.Apply(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	rowsPerSec(b, 2*perBatch)
}

// BenchmarkApplyOneJobTask is a group commit under one-job submissions (bench
// latency): one new task with its job, and the final update of an earlier
// job. Its cost is mostly the commit's own (write lock, WAL frames) and,
// in "apply", the flush; "write" leaves the flush to the dispatcher's
// syncLoop (store.Pipelined).
func BenchmarkApplyOneJobTask(b *testing.B) {
	for _, flush := range []bool{true, false} {
		name := map[bool]string{true: "apply", false: "write"}[flush]
		b.Run(name, func(b *testing.B) { benchOneJobTask(b, flush) })
	}
}

func benchOneJobTask(b *testing.B, flush bool) {
	db := openTest(b, b.TempDir())
	ctx := context.Background()
	next, err := db.ReserveIDs(ctx, 1<<30)
	if err != nil {
		b.Fatal(err)
	}
	write := db.Write
	if flush {
		write = db.Apply
	}
	var prev store.Job
	for b.Loop() {
		now := time.Now()
		j := store.Job{ID: next + 1, TaskID: next, State: store.Assigned, Attempt: 1, MaxAttempts: 3,
			AgentID: "agent-1", Created: now, Updated: now, Assigned: now}
		batch := &store.Batch{Tasks: []store.NewTask{{
			Task: store.Task{ID: next, Owner: "bench", Name: "latency", Jobs: 1, MaxAttempts: 3, Spec: []byte(`{}`), Created: now},
			Jobs: []store.Job{j}}}}
		next += 2
		if prev.ID != 0 {
			prev.State, prev.Updated, prev.Ended = store.Finished, now, now
			batch.Jobs = []store.Job{prev}
		}
		if err := write(ctx, batch); err != nil {
			b.Fatal(err)
		}
		prev = j
	}
}
