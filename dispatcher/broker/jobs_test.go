package broker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/broker"
	"github.com/pando-wms/pando/dispatcher/errcode"
	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/wire"
)

func TestPhaseRunningThenFinished(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{})
	a := h.connect("a1", "")
	a.want(1)
	as := a.runOne()

	h.clk.Advance(5 * time.Second)
	started := h.clk.Now()
	if err := h.b.Phase("a1", as.JobID, as.Attempt, "stagein"); err != nil {
		t.Fatalf("Phase: %v", err)
	}
	j := h.live(ids[0])
	if j.State != store.Running || !j.Started.Equal(started) {
		t.Fatalf("after Phase: %+v, want running started %v", j, started)
	}
	batch := h.commit()
	if bj := batchJob(t, batch, ids[0]); bj.State != store.Running || !bj.Started.Equal(started) {
		t.Fatalf("job record after Phase = %+v", bj)
	}
	// A second phase changes nothing durable.
	h.clk.Advance(time.Second)
	if err := h.b.Phase("a1", as.JobID, as.Attempt, "run"); err != nil {
		t.Fatalf("Phase: %v", err)
	}
	if b := h.commit(); len(b.Jobs) != 0 {
		t.Fatalf("second phase wrote %d jobs", len(b.Jobs))
	}
	if err := h.b.Check("a1", as.JobID, as.Attempt); err != nil {
		t.Fatalf("Check: %v", err)
	}

	h.clk.Advance(time.Minute)
	ended := h.clk.Now()
	batch = a.mustReport(as, &wire.Report{ExitCode: 0, CPUSeconds: 12.5, MaxRSSBytes: 1 << 20})
	bj := batchJob(t, batch, ids[0])
	if bj.State != store.Finished || bj.ExitCode == nil || *bj.ExitCode != 0 || bj.ErrorCode != 0 ||
		!bj.Ended.Equal(ended) || !bj.Started.Equal(started) || bj.AgentID != "a1" {
		t.Fatalf("finished job record = %+v", bj)
	}
	// The attempt that ends the job is recorded by the job's row alone.
	noAttempt(t, batch, ids[0], 1)
	if bj.CPUSeconds != 12.5 || bj.MaxRSSBytes != 1<<20 || bj.Assigned.IsZero() || bj.AgentName != "name-a1" {
		t.Fatalf("attempt in the job record = %+v", bj)
	}
	h.notLive(ids[0])
	if ag := h.b.Agents(); ag[0].Running != 0 {
		t.Fatalf("agent still runs %d jobs", ag[0].Running)
	}
}

// A report without a Phase takes its start time from the report.
func TestReportStartTimeFromReport(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{})
	a := h.connect("a1", "")
	a.want(1)
	as := a.runOne()
	start := t0.Add(3 * time.Second)
	batch := a.mustReport(as, &wire.Report{StartUnixNano: start.UnixNano()})
	if j := batchJob(t, batch, ids[0]); !j.Started.Equal(start) {
		t.Fatalf("started = %v, want %v", j.Started, start)
	}
}

func TestReportRetriedUntilMaxAttempts(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{maxAttempts: 3})
	a := h.connect("a1", "")
	for attempt := 1; attempt <= 3; attempt++ {
		a.want(1)
		as := a.runOne()
		if as.Attempt != attempt {
			t.Fatalf("assign attempt %d, want %d", as.Attempt, attempt)
		}
		batch := a.mustReport(as, &wire.Report{ExitCode: 3})
		j := batchJob(t, batch, ids[0])
		if attempt == 3 { // the last is recorded by the job's row
			noAttempt(t, batch, ids[0], attempt)
		} else if at := batchAttempt(t, batch, ids[0], attempt); at.State != store.Failed ||
			at.ErrorCode != int(errcode.PayloadExit) || at.ExitCode == nil || *at.ExitCode != 3 {
			t.Fatalf("attempt %d record = %+v", attempt, at)
		}
		if attempt < 3 {
			if j.State != store.Ready || j.Attempt != attempt || j.ErrorCode != int(errcode.PayloadExit) {
				t.Fatalf("after attempt %d: %+v, want ready", attempt, j)
			}
			if l := h.live(ids[0]); l.State != store.Ready {
				t.Fatalf("live after attempt %d: %s", attempt, l.State)
			}
			continue
		}
		if j.State != store.Failed || j.Attempt != 3 || j.ExitCode == nil || *j.ExitCode != 3 ||
			j.ErrorCode != 2001 || j.Error == "" || j.Ended.IsZero() {
			t.Fatalf("final record = %+v", j)
		}
	}
	h.notLive(ids[0])
	a.want(1)
	h.commit()
	if got := a.assigns(); len(got) != 0 {
		t.Fatalf("failed job assigned again")
	}
}

func TestReportNonRetryableFailsAtOnce(t *testing.T) {
	for _, code := range []errcode.Code{errcode.PayloadWalltime, errcode.PayloadNotFound} {
		t.Run(code.Name(), func(t *testing.T) {
			h := newHarness(t, defaultConfig())
			_, ids := h.addTask(taskOpts{maxAttempts: 5})
			a := h.connect("a1", "")
			a.want(1)
			as := a.runOne()
			batch := a.mustReport(as, &wire.Report{ExitCode: 137, ErrorCode: int(code), Error: "too slow"})
			j := batchJob(t, batch, ids[0])
			if j.State != store.Failed || j.Attempt != 1 || j.ErrorCode != int(code) || j.Error != "too slow" {
				t.Fatalf("record = %+v, want failed at attempt 1 with %v", j, code)
			}
			h.notLive(ids[0])
		})
	}
}

// An error code with exit 0 (e.g. stage-out failed) still fails the attempt.
func TestReportErrorCodeWithExitZero(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{maxAttempts: 2})
	a := h.connect("a1", "")
	a.want(1)
	as := a.runOne()
	batch := a.mustReport(as, &wire.Report{ErrorCode: int(errcode.PilotLostReport)})
	j := batchJob(t, batch, ids[0])
	if j.State != store.Ready || j.ErrorCode != int(errcode.PilotLostReport) || j.Error != errcode.PilotLostReport.Text() {
		t.Fatalf("record = %+v", j)
	}
}

func TestRetryBackoff(t *testing.T) {
	cfg := defaultConfig()
	cfg.RetryBackoff = 10 * time.Second
	cfg.MaxBackoff = 15 * time.Second
	h := newHarness(t, cfg)
	_, ids := h.addTask(taskOpts{maxAttempts: 5})
	a := h.connect("a1", "")
	a.want(1)
	as := a.runOne()
	a.mustReport(as, &wire.Report{ExitCode: 1})
	if j := h.live(ids[0]); j.State != store.Ready {
		t.Fatalf("after failure: %s, want ready", j.State)
	}

	// Backing off: not assignable, even to a hungry agent.
	a.want(1)
	h.commit()
	h.clk.Advance(9 * time.Second)
	h.b.Tick()
	h.commit()
	if got := a.assigns(); len(got) != 0 {
		t.Fatalf("assigned during back-off")
	}
	h.clk.Advance(time.Second) // readyAt reached
	h.b.Tick()
	h.commit()
	got := a.assigns()
	if len(got) != 1 || got[0].Attempt != 2 {
		t.Fatalf("after back-off: %+v, want attempt 2", got)
	}

	// Second back-off doubles to 20s, capped at MaxBackoff 15s.
	a.mustReport(got[0], &wire.Report{ExitCode: 1})
	a.want(1)
	h.clk.Advance(14 * time.Second)
	h.b.Tick()
	h.commit()
	if got := a.assigns(); len(got) != 0 {
		t.Fatalf("assigned 14s into a 15s back-off")
	}
	h.clk.Advance(time.Second)
	h.b.Tick()
	h.commit()
	if got := a.assigns(); len(got) != 1 || got[0].Attempt != 3 {
		t.Fatalf("after capped back-off: %+v", got)
	}
}

// A job killed while backing off is not released by Tick.
func TestKillDuringBackoff(t *testing.T) {
	cfg := defaultConfig()
	cfg.RetryBackoff = 10 * time.Second
	h := newHarness(t, cfg)
	_, ids := h.addTask(taskOpts{jobs: 2})
	a := h.connect("a1", "")
	a.want(1)
	as := a.runOne()
	a.mustReport(as, &wire.Report{ExitCode: 1})
	if !h.b.KillJob(ids[0], "no") {
		t.Fatal("KillJob of a backing-off job = false")
	}
	h.commit()
	h.clk.Advance(time.Minute)
	a.want(2)
	h.b.Tick()
	h.commit()
	if got := jobIDs(a.assigns()); !equalIDs(got, ids[1:]) {
		t.Fatalf("assigned %v, want %v", got, ids[1:])
	}
}

func TestStaleReportsRefused(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{jobs: 2, maxAttempts: 5})
	a := h.connect("a1", "")
	b := h.connect("b1", "")
	a.want(1)
	as := a.runOne()

	refused := func(name string, err error, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: err = %v, want %v", name, err, want)
		}
	}
	rep := &wire.Report{}
	d := &doneRec{}
	refused("old attempt", h.b.Report("a1", as.JobID, 0, rep, d.done), broker.ErrStale)
	refused("future attempt", h.b.Report("a1", as.JobID, 2, rep, d.done), broker.ErrStale)
	refused("other agent", h.b.Report("b1", as.JobID, 1, rep, d.done), broker.ErrStale)
	refused("unknown job", h.b.Report("a1", 999, 1, rep, d.done), broker.ErrUnknownJob)
	refused("ready job", h.b.Report("a1", ids[1], 0, rep, d.done), broker.ErrStale)
	refused("phase other agent", h.b.Phase("b1", as.JobID, 1, "run"), broker.ErrStale)
	refused("check other agent", h.b.Check("b1", as.JobID, 1), broker.ErrStale)
	refused("check unknown", h.b.Check("a1", 999, 1), broker.ErrUnknownJob)
	h.commit()
	if d.calls() != 0 {
		t.Fatalf("done called %d times for refused reports", d.calls())
	}
	if j := h.live(as.JobID); j.State != store.Assigned || j.Attempt != 1 {
		t.Fatalf("refused reports changed the job: %+v", j)
	}

	// The attempt fails and is retried on b: a's late report is stale.
	a.mustReport(as, &wire.Report{ExitCode: 1})
	b.want(2) // the retry is queued behind ids[1]
	h.commit()
	got := b.assigns()
	if len(got) != 2 || got[0].JobID != ids[1] || got[1].JobID != as.JobID || got[1].Attempt != 2 {
		t.Fatalf("assigns = %v, want %v then the retry of %d", jobIDs(got), ids[1], as.JobID)
	}
	as2 := got[1]
	refused("report after retry", h.b.Report("a1", as.JobID, 1, rep, d.done), broker.ErrStale)
	refused("phase after retry", h.b.Phase("a1", as.JobID, 1, "run"), broker.ErrStale)
	b.mustReport(as2, &wire.Report{})
	refused("report after finish", h.b.Report("b1", as.JobID, 2, rep, d.done), broker.ErrUnknownJob)
	h.commit()
	if d.calls() != 0 {
		t.Fatalf("done called for refused reports")
	}
}

func TestKillRunningJob(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{})
	a := h.connect("a1", "")
	a.want(1)
	as := a.runOne()
	if err := h.b.Phase("a1", as.JobID, 1, "run"); err != nil {
		t.Fatal(err)
	}
	h.commit()

	if !h.b.KillJob(ids[0], "user asked") {
		t.Fatal("KillJob = false")
	}
	if m := a.s.take(); len(m) != 0 {
		t.Fatalf("Kill sent before commit: %v", m)
	}
	h.notLive(ids[0])
	batch := h.commit()
	j := batchJob(t, batch, ids[0])
	if j.State != store.Cancelled || j.ErrorCode != int(errcode.DispatcherKilled) || j.Error != "user asked" || j.Ended.IsZero() {
		t.Fatalf("killed record = %+v", j)
	}
	noAttempt(t, batch, ids[0], 1) // the job's row records it
	k := a.kills()
	if len(k) != 1 || *k[0] != (wire.Kill{JobID: ids[0], Attempt: 1, Reason: "user asked"}) {
		t.Fatalf("kills = %+v", k)
	}
	if h.b.KillJob(ids[0], "again") {
		t.Fatal("second KillJob = true")
	}
	d, err := a.report(as, &wire.Report{ExitCode: 137})
	if !errors.Is(err, broker.ErrUnknownJob) {
		t.Fatalf("report after kill: err = %v, want ErrUnknownJob", err)
	}
	h.commit()
	if d.calls() != 0 {
		t.Fatal("done called for a refused report")
	}
	if ag := h.b.Agents(); ag[0].Running != 0 {
		t.Fatalf("agent still runs %d jobs", ag[0].Running)
	}
}

// A kill right after an assignment, before the commit, pushes the Assign
// and then the Kill, in that order.
func TestKillBeforeAssignCommitted(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{})
	a := h.connect("a1", "")
	a.want(1)
	h.b.KillJob(ids[0], "oops")
	h.commit()
	m := a.s.take()
	if len(m) != 2 {
		t.Fatalf("sent %d messages, want Assign then Kill", len(m))
	}
	if _, ok := m[0].(*wire.Assign); !ok {
		t.Fatalf("first message %T", m[0])
	}
	if _, ok := m[1].(*wire.Kill); !ok {
		t.Fatalf("second message %T", m[1])
	}
}

func TestKillTask(t *testing.T) {
	h := newHarness(t, defaultConfig())
	task, ids := h.addTask(taskOpts{jobs: 5})
	_, other := h.addTask(taskOpts{jobs: 1})
	a := h.connect("a1", "")
	a.want(2)
	h.commit()
	running := a.assigns()
	if n := h.b.KillTask(task.ID, "enough"); n != 5 {
		t.Fatalf("KillTask = %d, want 5", n)
	}
	batch := h.commit()
	for _, id := range ids {
		if j := batchJob(t, batch, id); j.State != store.Cancelled {
			t.Fatalf("job %d = %s", id, j.State)
		}
		h.notLive(id)
	}
	// Jobs never assigned get no attempt record.
	for _, at := range batch.Attempts {
		if at.JobID != running[0].JobID && at.JobID != running[1].JobID {
			t.Errorf("attempt record for a never-assigned job: %+v", at)
		}
	}
	k := a.kills()
	if len(k) != 2 {
		t.Fatalf("got %d kills, want 2", len(k))
	}
	if n := h.b.KillTask(task.ID, "again"); n != 0 {
		t.Fatalf("second KillTask = %d", n)
	}
	a.want(10)
	h.commit()
	if got := jobIDs(a.assigns()); !equalIDs(got, other) {
		t.Fatalf("after KillTask assigned %v, want only %v", got, other)
	}
}

func TestKilledQueuedJobsNeverAssigned(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{jobs: 6})
	for _, i := range []int{0, 2, 5} {
		if !h.b.KillJob(ids[i], "x") {
			t.Fatalf("KillJob(%d) = false", ids[i])
		}
	}
	h.commit()
	a := h.connect("a1", "")
	a.want(10)
	h.commit()
	want := []int64{ids[1], ids[3], ids[4]}
	if got := jobIDs(a.assigns()); !equalIDs(got, want) {
		t.Fatalf("assigned %v, want %v", got, want)
	}
	// The task, drained of ready jobs, does not come back.
	a.want(10)
	h.b.Tick()
	h.commit()
	if got := a.assigns(); len(got) != 0 {
		t.Fatalf("assigned %v", jobIDs(got))
	}
}

// Killing every queued job of a task that still runs one leaves no work
// behind for agents of another shape.
func TestKillQueuedWhileTaskRuns(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{jobs: 3})
	a := h.connect("a1", "")
	a.want(1)
	as := a.runOne()
	h.b.KillJob(ids[1], "x")
	h.b.KillJob(ids[2], "x")
	_, later := h.addTask(taskOpts{jobs: 1})
	a.want(5)
	h.commit()
	if got := jobIDs(a.assigns()); !equalIDs(got, later) {
		t.Fatalf("assigned %v, want %v", got, later)
	}
	a.mustReport(as, &wire.Report{})
	h.notLive(ids[0])
}

func TestKillJobUnknown(t *testing.T) {
	h := newHarness(t, defaultConfig())
	if h.b.KillJob(42, "x") {
		t.Fatal("KillJob of an unknown job = true")
	}
	if n := h.b.KillTask(42, "x"); n != 0 {
		t.Fatalf("KillTask of an unknown task = %d", n)
	}
}

// Several jobs backing off are released each at its own time.
func TestBackoffReleaseOrder(t *testing.T) {
	cfg := defaultConfig()
	cfg.RetryBackoff = 10 * time.Second
	h := newHarness(t, cfg)
	_, ids := h.addTask(taskOpts{jobs: 3, maxAttempts: 5})
	a := h.connect("a1", "")
	a.want(3)
	h.commit()
	as := a.assigns()
	a.mustReport(as[2], &wire.Report{ExitCode: 1}) // ready at +10s
	h.clk.Advance(4 * time.Second)
	a.mustReport(as[0], &wire.Report{ExitCode: 1}) // ready at +14s
	h.clk.Advance(4 * time.Second)
	a.mustReport(as[1], &wire.Report{ExitCode: 1}) // ready at +18s
	a.want(3)
	var order []int64
	for range 20 {
		h.clk.Advance(time.Second)
		h.b.Tick()
		h.commit()
		order = append(order, jobIDs(a.assigns())...)
	}
	if want := []int64{ids[2], ids[0], ids[1]}; !equalIDs(order, want) {
		t.Fatalf("released %v, want %v", order, want)
	}
}
