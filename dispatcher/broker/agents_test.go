package broker_test

import (
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/errcode"
	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/dispatcher/wire"
)

func TestDisconnectGraceThenRetry(t *testing.T) {
	h := newHarness(t, defaultConfig()) // Grace 30s
	_, ids := h.addTask(taskOpts{})
	a := h.connect("a1", "")
	a.want(1)
	as := a.runOne()
	a.disconnect()

	h.clk.Advance(30 * time.Second) // lost only strictly after the grace
	h.b.Tick()
	h.commit()
	if j := h.live(ids[0]); j.State != store.Assigned || j.AgentID != "a1" {
		t.Fatalf("within grace: %+v", j)
	}
	b := h.connect("b1", "")
	b.want(1)
	h.commit()
	if got := b.assigns(); len(got) != 0 {
		t.Fatal("job of an agent in grace assigned elsewhere")
	}

	h.clk.Advance(time.Second)
	h.b.Tick()
	batch := h.commit()
	j := batchJob(t, batch, ids[0])
	if j.State != store.Assigned || j.Attempt != 2 || j.AgentID != "b1" {
		t.Fatalf("after grace: %+v, want reassigned to b1 as attempt 2", j)
	}
	at := batchAttempt(t, batch, ids[0], 1)
	if at.State != store.Failed || at.ErrorCode != int(errcode.DispatcherAgentLost) || at.AgentID != "a1" {
		t.Fatalf("lost attempt record = %+v", at)
	}
	// The new attempt is in the job's row until it ends.
	noAttempt(t, batch, ids[0], 2)
	if !j.Assigned.Equal(h.clk.Now()) {
		t.Fatalf("attempt 2 assigned at %v, want %v", j.Assigned, h.clk.Now())
	}
	got := b.assigns()
	if len(got) != 1 || got[0].JobID != as.JobID || got[0].Attempt != 2 {
		t.Fatalf("b got %+v", got)
	}
	for _, ag := range h.b.Agents() {
		if ag.ID == "a1" {
			t.Fatalf("lost agent still listed: %+v", ag)
		}
	}
	// The old agent's late report is fenced.
	if _, err := a.report(as, &wire.Report{}); err == nil {
		t.Fatal("report from the lost agent accepted")
	}
}

// A lost job on its last attempt fails for good with the agent-lost code.
func TestAgentLostOnLastAttempt(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{maxAttempts: 1})
	a := h.connect("a1", "")
	a.want(1)
	a.runOne()
	a.disconnect()
	h.clk.Advance(time.Minute)
	h.b.Tick()
	j := batchJob(t, h.commit(), ids[0])
	if j.State != store.Failed || j.ErrorCode != int(errcode.DispatcherAgentLost) {
		t.Fatalf("record = %+v", j)
	}
	h.notLive(ids[0])
}

func TestReconnectReattaches(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{jobs: 2})
	a := h.connect("a1", "")
	a.want(2)
	h.commit()
	as := a.assigns()
	if err := h.b.Phase("a1", as[0].JobID, 1, "run"); err != nil {
		t.Fatal(err)
	}
	h.commit()
	a.disconnect()
	h.clk.Advance(20 * time.Second)

	hello := h.hello("a1", "")
	hello.Running = []wire.RunningJob{{JobID: as[0].JobID, Attempt: 1}, {JobID: as[1].JobID, Attempt: 1}}
	a2 := h.connectHello(hello)
	if len(a2.drop) != 0 {
		t.Fatalf("drop = %+v, want empty", a2.drop)
	}
	h.clk.Advance(time.Hour)
	h.b.Tick()
	if b := h.commit(); len(b.Jobs) != 0 {
		t.Fatalf("Tick after re-attach wrote %+v", b.Jobs)
	}
	for _, id := range ids {
		if j := h.live(id); j.Attempt != 1 || j.AgentID != "a1" {
			t.Fatalf("job %d after re-attach: %+v", id, j)
		}
	}
	if j := h.live(as[0].JobID); j.State != store.Running {
		t.Fatalf("running job became %s", j.State)
	}
	a2.mustReport(as[0], &wire.Report{})
	a2.mustReport(as[1], &wire.Report{})
	if ag := h.b.Agents(); len(ag) != 1 || !ag[0].Connected || ag[0].Running != 0 {
		t.Fatalf("agents = %+v", ag)
	}
	// The old session is dead: its Wants are ignored.
	h.addTask(taskOpts{})
	a.want(1)
	h.commit()
	if got := a.s.take(); len(got) != 0 {
		t.Fatal("old session got work")
	}
}

func TestReconnectDropsJobsNoLongerItsOwn(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{jobs: 3})
	a := h.connect("a1", "")
	a.want(3)
	h.commit()
	as := a.assigns()
	a.disconnect()
	h.b.KillJob(as[0].JobID, "killed while away")
	h.commit()

	hello := h.hello("a1", "")
	hello.Running = []wire.RunningJob{
		{JobID: as[0].JobID, Attempt: 1}, // killed meanwhile
		{JobID: as[1].JobID, Attempt: 1}, // still its own
		{JobID: as[2].JobID, Attempt: 7}, // wrong attempt
		{JobID: 999, Attempt: 1},         // never existed
	}
	a2 := h.connectHello(hello)
	want := []wire.RunningJob{hello.Running[0], hello.Running[2], hello.Running[3]}
	if len(a2.drop) != len(want) {
		t.Fatalf("drop = %+v, want %+v", a2.drop, want)
	}
	for i := range want {
		if a2.drop[i] != want[i] {
			t.Fatalf("drop = %+v, want %+v", a2.drop, want)
		}
	}
	// Its attempt 1 of as[2] is not what it runs: retried.
	if j := h.live(ids[2]); j.State != store.Ready || j.ErrorCode != int(errcode.DispatcherAgentGone) {
		t.Fatalf("job with mismatched attempt: %+v", j)
	}
	if j := h.live(ids[1]); j.State != store.Assigned || j.AgentID != "a1" {
		t.Fatalf("re-attached job: %+v", j)
	}
}

// A job now running elsewhere is dropped by the agent that reconnects late.
func TestReconnectAfterReassignmentDrops(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{})
	a := h.connect("a1", "")
	a.want(1)
	a.runOne()
	a.disconnect()
	h.clk.Advance(time.Minute)
	h.b.Tick()
	b := h.connect("b1", "")
	b.want(1)
	if as := b.runOne(); as.Attempt != 2 {
		t.Fatalf("reassigned as attempt %d", as.Attempt)
	}
	hello := h.hello("a1", "")
	hello.Running = []wire.RunningJob{{JobID: ids[0], Attempt: 1}}
	a2 := h.connectHello(hello)
	if len(a2.drop) != 1 || a2.drop[0] != hello.Running[0] {
		t.Fatalf("drop = %+v", a2.drop)
	}
	if j := h.live(ids[0]); j.AgentID != "b1" || j.Attempt != 2 {
		t.Fatalf("job = %+v", j)
	}
}

func TestReconnectWithoutJobRetries(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{})
	a := h.connect("a1", "")
	a.want(1)
	as := a.runOne()
	a.disconnect()

	a2 := h.connect("a1", "") // Hello.Running empty
	if len(a2.drop) != 0 {
		t.Fatalf("drop = %+v", a2.drop)
	}
	batch := h.commit()
	j := batchJob(t, batch, ids[0])
	if j.State != store.Ready || j.Attempt != 1 || j.ErrorCode != int(errcode.DispatcherAgentGone) {
		t.Fatalf("record = %+v, want ready with 3004", j)
	}
	if at := batchAttempt(t, batch, ids[0], 1); at.State != store.Failed || at.ErrorCode != 3004 {
		t.Fatalf("attempt = %+v", at)
	}
	// Credit was reset by the new session: nothing assigned until it asks.
	if got := a2.assigns(); len(got) != 0 {
		t.Fatal("assigned without credit")
	}
	a2.want(1)
	if as2 := a2.runOne(); as2.JobID != as.JobID || as2.Attempt != 2 {
		t.Fatalf("retry = %+v", as2)
	}
}

// A new session of a connected agent replaces the old one, which is closed
// (outside the broker's lock: Close calls back into it).
func TestConnectReplacesSession(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{jobs: 2})
	a := h.connect("a1", "")
	a.s.onClose = func() { h.b.Disconnect("a1", a.s) }
	a.want(1)
	as := a.runOne()

	hello := h.hello("a1", "")
	hello.Running = []wire.RunningJob{{JobID: as.JobID, Attempt: 1}}
	a2 := h.connectHello(hello)
	if c := a.s.closed(); len(c) != 1 || c[0].code != wire.CloseReplaced {
		t.Fatalf("old session closes = %+v", c)
	}
	if len(a2.drop) != 0 {
		t.Fatalf("drop = %+v", a2.drop)
	}
	// The old session's Disconnect did not disturb the new one.
	if ag := h.b.Agents(); len(ag) != 1 || !ag[0].Connected || ag[0].Running != 1 {
		t.Fatalf("agents = %+v", ag)
	}
	a.want(1) // old session: ignored
	h.commit()
	if len(a.s.take()) != 0 {
		t.Fatal("old session got work")
	}
	a2.want(1)
	if got := a2.runOne(); got.JobID != ids[1] {
		t.Fatalf("new session got %+v", got)
	}
	h.clk.Advance(time.Hour)
	a2.s.SetLastSeen(h.clk.Now())
	h.b.Tick()
	if j := h.live(ids[0]); j.Attempt != 1 || j.AgentID != "a1" {
		t.Fatalf("job lost after replacement: %+v", j)
	}
}

func TestTickClosesSilentSession(t *testing.T) {
	h := newHarness(t, defaultConfig()) // AgentTimeout 30s
	_, ids := h.addTask(taskOpts{})
	quiet := h.connect("quiet", "")
	chatty := h.connect("chatty", "")
	quiet.s.onClose = func() { h.b.Disconnect("quiet", quiet.s) }
	quiet.want(1)
	quiet.runOne()

	h.clk.Advance(30 * time.Second)
	chatty.s.SetLastSeen(h.clk.Now())
	h.b.Tick()
	if c := quiet.s.closed(); len(c) != 0 {
		t.Fatalf("closed at exactly AgentTimeout: %+v", c)
	}
	h.clk.Advance(time.Second)
	h.b.Tick()
	if c := quiet.s.closed(); len(c) != 1 || c[0].code != wire.CloseHeartbeatLost {
		t.Fatalf("quiet closes = %+v", c)
	}
	if c := chatty.s.closed(); len(c) != 0 {
		t.Fatalf("chatty closed: %+v", c)
	}
	// Closed → disconnected → its job is lost after the grace period.
	h.clk.Advance(31 * time.Second)
	chatty.s.SetLastSeen(h.clk.Now())
	h.b.Tick()
	if j := h.live(ids[0]); j.State != store.Ready || j.ErrorCode != int(errcode.DispatcherAgentLost) {
		t.Fatalf("job after timeout+grace = %+v", j)
	}
}

func TestRecover(t *testing.T) {
	h := newHarness(t, defaultConfig()) // AgentTimeout 30s + Grace 30s
	tk, spec, _ := h.newTask(taskOpts{maxAttempts: 3})
	exit := 1
	old := t0.Add(-time.Hour)
	jobs := []store.Job{
		{ID: 1, TaskID: tk.ID, Index: 0, State: store.Ready, MaxAttempts: 3, Created: old, Updated: old},
		{ID: 2, TaskID: tk.ID, Index: 1, State: store.Running, Attempt: 1, MaxAttempts: 3,
			AgentID: "a1", AgentName: "name-a1", Created: old, Updated: old, Started: old},
		{ID: 3, TaskID: tk.ID, Index: 2, State: store.Assigned, Attempt: 2, MaxAttempts: 3,
			AgentID: "a2", AgentName: "name-a2", Created: old, Updated: old},
		{ID: 4, TaskID: tk.ID, Index: 3, State: store.Ready, Attempt: 1, MaxAttempts: 3,
			ExitCode: &exit, ErrorCode: 2001, Created: old, Updated: old},
		{ID: 5, TaskID: tk.ID, Index: 4, State: store.Running, Attempt: 3, MaxAttempts: 3,
			AgentID: "a2", AgentName: "name-a2", Created: old, Updated: old},
		{ID: 6, TaskID: 99, Index: 0, State: store.Ready}, // tk unknown: skipped
	}
	h.b.Recover(map[int64]store.Task{tk.ID: tk}, map[int64]*task.Spec{tk.ID: spec}, jobs, nil)
	h.notLive(6)

	ag := h.b.Agents()
	if len(ag) != 2 || ag[0].ID != "a1" || ag[0].Connected || ag[0].Running != 1 || ag[1].Running != 2 {
		t.Fatalf("placeholder agents = %+v", ag)
	}

	// Ready jobs are assignable at once, in index order.
	b := h.connect("b1", "")
	b.want(2)
	h.commit()
	got := b.assigns()
	if len(got) != 2 || got[0].JobID != 1 || got[0].Attempt != 1 || got[1].JobID != 4 || got[1].Attempt != 2 {
		t.Fatalf("recovered ready jobs assigned as %+v", got)
	}

	// a1 comes back with its running job: re-attached.
	h.clk.Advance(45 * time.Second)
	hello := h.hello("a1", "")
	hello.Running = []wire.RunningJob{{JobID: 2, Attempt: 1}}
	a1 := h.connectHello(hello)
	if len(a1.drop) != 0 {
		t.Fatalf("drop = %+v", a1.drop)
	}

	// a2 never comes back: its jobs are lost after AgentTimeout+Grace.
	h.clk.Advance(15 * time.Second) // exactly 60s after Recover
	a1.s.SetLastSeen(h.clk.Now())
	b.s.SetLastSeen(h.clk.Now())
	h.b.Tick()
	if j := h.live(3); j.State != store.Assigned {
		t.Fatalf("job 3 lost before AgentTimeout+Grace: %+v", j)
	}
	h.clk.Advance(time.Second)
	h.b.Tick()
	batch := h.commit()
	j3 := batchJob(t, batch, 3)
	if j3.State != store.Ready || j3.Attempt != 2 || j3.ErrorCode != int(errcode.DispatcherAgentLost) {
		t.Fatalf("job 3 = %+v, want ready after attempt 2 with 3002", j3)
	}
	if at := batchAttempt(t, batch, 3, 2); at.State != store.Failed || at.AgentID != "a2" {
		t.Fatalf("job 3 attempt 2 = %+v", at)
	}
	j5 := batchJob(t, batch, 5)
	if j5.State != store.Failed || j5.ErrorCode != int(errcode.DispatcherAgentLost) {
		t.Fatalf("job 5 on its last attempt = %+v, want failed", j5)
	}
	if j := h.live(2); j.State != store.Running || j.AgentID != "a1" {
		t.Fatalf("re-attached job 2 = %+v", j)
	}
	a1.mustReport(&wire.Assign{JobID: 2, Attempt: 1}, &wire.Report{})
	b.want(1)
	if as := b.runOne(); as.JobID != 3 || as.Attempt != 3 {
		t.Fatalf("job 3 retry = %+v", as)
	}
}

func TestRecoverAgentReconnectsWithoutJob(t *testing.T) {
	h := newHarness(t, defaultConfig())
	tk, spec, _ := h.newTask(taskOpts{})
	h.b.Recover(map[int64]store.Task{tk.ID: tk}, map[int64]*task.Spec{tk.ID: spec}, []store.Job{
		{ID: 7, TaskID: tk.ID, State: store.Running, Attempt: 1, MaxAttempts: 3, AgentID: "a1", AgentName: "n"},
	}, nil)
	h.connect("a1", "")
	if j := h.live(7); j.State != store.Ready || j.ErrorCode != int(errcode.DispatcherAgentGone) {
		t.Fatalf("job = %+v", j)
	}
}

func TestRevive(t *testing.T) {
	h := newHarness(t, defaultConfig())
	tk, spec, _ := h.newTask(taskOpts{maxAttempts: 2})
	_, ids := h.addTaskFrom(tk, spec, 3)
	a := h.connect("a1", "")
	// Job 0 fails twice (final), job 1 is cancelled, job 2 stays running.
	a.want(3)
	h.commit()
	first := a.assigns()
	a.mustReport(first[0], &wire.Report{ExitCode: 3})
	h.b.KillJob(ids[1], "x")
	h.commit()
	if k := a.kills(); len(k) != 1 {
		t.Fatalf("kills = %+v", k)
	}
	a.want(1)
	if as := a.runOne(); as.JobID != ids[0] || as.Attempt != 2 {
		t.Fatalf("retry = %+v", as)
	} else {
		a.mustReport(as, &wire.Report{ExitCode: 3})
	}
	h.notLive(ids[0])
	h.notLive(ids[1])

	exit := 3
	stored := []store.Job{
		{ID: ids[0], TaskID: tk.ID, Index: 0, State: store.Failed, Attempt: 2, MaxAttempts: 2,
			ExitCode: &exit, ErrorCode: 2001, Created: t0, Ended: t0},
		{ID: ids[1], TaskID: tk.ID, Index: 1, State: store.Cancelled, Attempt: 0, MaxAttempts: 2,
			ErrorCode: 3001, Created: t0, Ended: t0},
		{ID: ids[2], TaskID: tk.ID, Index: 2, State: store.Failed, Attempt: 1, MaxAttempts: 2, Created: t0}, // stale: live
		{ID: 99, TaskID: tk.ID, Index: 3, State: store.Finished, Attempt: 1, MaxAttempts: 2, Created: t0},
	}
	if n := h.b.Revive(tk, spec, stored, nil, false); n != 2 {
		t.Fatalf("Revive = %d, want 2", n)
	}
	batch := h.commit()
	j0 := batchJob(t, batch, ids[0])
	if j0.State != store.Ready || j0.Attempt != 2 || j0.MaxAttempts != 4 || !j0.Ended.IsZero() {
		t.Fatalf("revived failed job = %+v, want ready, MaxAttempts 2+2", j0)
	}
	if j1 := batchJob(t, batch, ids[1]); j1.State != store.Ready || j1.MaxAttempts != 2 {
		t.Fatalf("revived cancelled job = %+v", j1)
	}
	if len(batch.Attempts) != 0 {
		t.Fatalf("Revive wrote attempt records: %+v", batch.Attempts)
	}
	// The attempt that ended job 0, held by its row, is kept before the row
	// moves on; job 1 never ran.
	if len(batch.Archive) != 1 || batch.Archive[0] != ids[0] {
		t.Fatalf("archived %v, want [%d]", batch.Archive, ids[0])
	}
	h.notLive(99)

	if j := h.live(ids[2]); j.State != store.Assigned || j.Attempt != 1 {
		t.Fatalf("live job touched by Revive: %+v", j)
	}
	a.want(3)
	h.commit()
	got := a.assigns()
	if len(got) != 2 || got[0].JobID != ids[0] || got[0].Attempt != 3 || got[1].JobID != ids[1] || got[1].Attempt != 1 {
		t.Fatalf("after revive: %+v", got)
	}
	// The revived job has two more attempts: 3 and 4.
	a.mustReport(got[0], &wire.Report{ExitCode: 3})
	a.want(1)
	as := a.runOne()
	if as.Attempt != 4 {
		t.Fatalf("attempt = %d, want 4", as.Attempt)
	}
	if j := batchJob(t, a.mustReport(as, &wire.Report{ExitCode: 3}), ids[0]); j.State != store.Failed || j.Attempt != 4 {
		t.Fatalf("after 4 attempts: %+v", j)
	}
	// Reviving a live job is a no-op.
	if n := h.b.Revive(tk, spec, []store.Job{{ID: ids[1], TaskID: tk.ID, State: store.Failed, Attempt: 1}}, nil, false); n != 0 {
		t.Fatalf("Revive of a live job = %d", n)
	}
}

// Revive pushes work to hungry agents.
func TestReviveFeedsHungry(t *testing.T) {
	h := newHarness(t, defaultConfig())
	tk, spec, _ := h.newTask(taskOpts{maxAttempts: 1, queue: "q"})
	a := h.connect("a1", "q")
	a.want(1)
	n := h.b.Revive(tk, spec, []store.Job{{ID: 5, TaskID: tk.ID, State: store.Failed, Attempt: 1, MaxAttempts: 1}}, nil, false)
	if n != 1 {
		t.Fatalf("Revive = %d", n)
	}
	if as := a.runOne(); as.JobID != 5 || as.Attempt != 2 {
		t.Fatalf("assign = %+v", as)
	}
}

// Killing a revived job before it runs again must not write an attempt
// record: it has no open attempt (and a zero record would name job 0).
func TestKillRevivedJobWritesNoAttempt(t *testing.T) {
	h := newHarness(t, defaultConfig())
	tk, spec, _ := h.newTask(taskOpts{})
	n := h.b.Revive(tk, spec, []store.Job{{ID: 5, TaskID: tk.ID, State: store.Failed, Attempt: 2, MaxAttempts: 2, ErrorCode: 2001}}, nil, false)
	if n != 1 {
		t.Fatalf("Revive = %d", n)
	}
	h.commit()
	h.b.KillJob(5, "never mind")
	batch := h.commit()
	if j := batchJob(t, batch, 5); j.State != store.Cancelled {
		t.Fatalf("job = %+v", j)
	}
	if len(batch.Attempts) != 0 {
		t.Fatalf("kill of a revived job wrote attempts %+v", batch.Attempts)
	}
}

// Killing a recovered job that waits for a retry must not rewrite the
// record of its last (failed) attempt as cancelled.
func TestKillRecoveredRetryKeepsAttempt(t *testing.T) {
	h := newHarness(t, defaultConfig())
	tk, spec, _ := h.newTask(taskOpts{})
	h.b.Recover(map[int64]store.Task{tk.ID: tk}, map[int64]*task.Spec{tk.ID: spec}, []store.Job{
		{ID: 8, TaskID: tk.ID, State: store.Ready, Attempt: 1, MaxAttempts: 3, ErrorCode: 2001},
	}, nil)
	h.b.KillJob(8, "never mind")
	batch := h.commit()
	if j := batchJob(t, batch, 8); j.State != store.Cancelled {
		t.Fatalf("job = %+v", j)
	}
	if len(batch.Attempts) != 0 {
		t.Fatalf("kill of a queued recovered job rewrote attempts %+v", batch.Attempts)
	}
}

// A retried job that is killed while queued keeps its failed attempt.
func TestKillQueuedRetryKeepsAttempt(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{})
	a := h.connect("a1", "")
	a.want(1)
	a.mustReport(a.runOne(), &wire.Report{ExitCode: 1})
	h.b.KillJob(ids[0], "x")
	batch := h.commit()
	if len(batch.Attempts) != 0 {
		t.Fatalf("kill of a queued retry wrote attempts %+v", batch.Attempts)
	}
}
