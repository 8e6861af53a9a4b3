package broker_test

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/broker"
	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/dispatcher/wire"
)

func specFor() *task.Spec {
	return &task.Spec{Name: "t", Command: []string{"true"}, MaxAttempts: 3,
		Resources: task.Resources{Cores: 1, MemoryBytes: gib, Walltime: time.Hour}}
}

// BenchmarkAssignReport runs the dispatcher's hot path in one goroutine:
// each iteration submits a task of 10k jobs and drives every job through
// assign → commit → push → report → commit, with agents handing credit back
// after each report, as pilots do.
func BenchmarkAssignReport(b *testing.B) {
	for _, agents := range []int{1, 100} {
		b.Run(fmt.Sprintf("agents=%d", agents), func(b *testing.B) { benchAssignReport(b, agents) })
	}
}

func benchAssignReport(b *testing.B, nAgents int) {
	const jobsPerTask = 10_000
	br := broker.New(broker.Config{AgentTimeout: time.Hour, Grace: time.Hour}, slog.New(slog.DiscardHandler))
	type benchAgent struct {
		id string
		s  *fakeSession
	}
	ags := make([]benchAgent, nAgents)
	for i := range ags {
		ags[i] = benchAgent{id: fmt.Sprintf("agent-%d", i), s: newSession(time.Now())}
		if _, err := br.Connect(&wire.Hello{AgentID: ags[i].id, Name: ags[i].id}, ags[i].s); err != nil {
			b.Fatal(err)
		}
		br.Want(ags[i].id, ags[i].s, &wire.Want{Slots: 64, Cores: 64, MemoryBytes: 64 * gib})
	}
	commit := func() {
		_, after := br.TakeBatch()
		for _, f := range after {
			f(nil)
		}
	}
	done := func(error) {}
	spec := specFor()
	var nextJob, nextTask int64
	jobs := make([]store.Job, jobsPerTask)
	rep := &wire.Report{}
	total := 0

	b.ReportAllocs()
	for b.Loop() {
		nextTask++
		t := store.Task{ID: nextTask, MaxAttempts: 3, Created: time.Now()}
		for i := range jobs {
			nextJob++
			jobs[i] = store.Job{ID: nextJob, TaskID: t.ID, Index: i, State: store.Ready, MaxAttempts: 3}
		}
		br.AddTask(t, spec, jobs)
		left := jobsPerTask
		for left > 0 {
			commit() // pushes the Assigns
			progress := false
			for _, a := range ags {
				for _, m := range a.s.take() {
					as := m.(*wire.Assign)
					if err := br.Report(a.id, as.JobID, as.Attempt, rep, done); err != nil {
						b.Fatal(err)
					}
					br.Want(a.id, a.s, &wire.Want{Slots: 1, Cores: 1, MemoryBytes: gib})
					left--
					progress = true
				}
			}
			if !progress {
				b.Fatalf("stalled with %d jobs left", left)
			}
		}
		commit()
		total += jobsPerTask
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "jobs/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(total), "ns/job")
}
