package broker_test

import (
	"slices"
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/wire"
)

func TestAssignPushedOnlyAfterCommit(t *testing.T) {
	h := newHarness(t, defaultConfig())
	task, ids := h.addTask(taskOpts{image: "", cores: 2, memory: 3 * gib, gpus: 1, walltime: 90 * time.Second})
	h.commit() // nothing pending from AddTask itself is required; drain anyway
	h.clk.Advance(time.Second)
	a := h.connect("a1", "")
	a.wantW(&wire.Want{Slots: 1, Cores: 2, MemoryBytes: 3 * gib, GPUs: 1})

	if m := a.s.take(); len(m) != 0 {
		t.Fatalf("sent before commit: %v", m)
	}
	if j := h.live(ids[0]); j.State != store.Assigned || j.Attempt != 1 || j.AgentID != "a1" {
		t.Fatalf("live before commit = %+v, want assigned attempt 1 to a1", j)
	}

	batch := h.commit()
	j := batchJob(t, batch, ids[0])
	if j.State != store.Assigned || j.Attempt != 1 || j.AgentID != "a1" || j.AgentName != "name-a1" {
		t.Errorf("batch job = %+v, want assigned attempt 1 to a1", j)
	}
	// An attempt's record is written when it ends; the job row names it.
	if len(batch.Attempts) != 0 {
		t.Errorf("batch has %d attempt records, want none before the attempt ends", len(batch.Attempts))
	}

	as := a.assigns()
	if len(as) != 1 {
		t.Fatalf("got %d assigns after commit, want 1", len(as))
	}
	got := as[0]
	if got.JobID != ids[0] || got.TaskID != task.ID || got.Index != 0 || got.Attempt != 1 {
		t.Errorf("assign = %+v", got)
	}
	if got.SubmitUnixNano != task.Created.UnixNano() || got.SubmitUnixNano == 0 {
		t.Errorf("SubmitUnixNano = %d, want %d", got.SubmitUnixNano, task.Created.UnixNano())
	}
	if !slices.Equal(got.Command, []string{"run", "{index}"}) || got.Env["A"] != "1" {
		t.Errorf("assign command/env = %v %v", got.Command, got.Env)
	}
	want := wire.JobResources{Cores: 2, MemoryBytes: 3 * gib, WalltimeSecs: 90, GPUs: 1}
	if got.Resources != want {
		t.Errorf("resources = %+v, want %+v", got.Resources, want)
	}
	if b := h.commit(); len(b.Jobs) != 0 || len(b.Attempts) != 0 {
		t.Errorf("second commit not empty: %+v", b)
	}
}

func TestAssignNotPushedWhenCommitFails(t *testing.T) {
	h := newHarness(t, defaultConfig())
	h.addTask(taskOpts{})
	a := h.connect("a1", "")
	a.want(1)
	h.commitErr(errCommit)
	if m := a.s.take(); len(m) != 0 {
		t.Fatalf("pushed %d messages after a failed commit", len(m))
	}
}

func TestTakeBatchEmpty(t *testing.T) {
	h := newHarness(t, defaultConfig())
	if b, after := h.b.TakeBatch(); b != nil || after != nil {
		t.Fatalf("TakeBatch on idle broker = %v, %v", b, after)
	}
	select {
	case <-h.b.Pending():
		t.Fatal("Pending signalled with nothing pending")
	default:
	}
	h.addTask(taskOpts{})
	a := h.connect("a1", "")
	a.want(1)
	select {
	case <-h.b.Pending():
	default:
		t.Fatal("Pending not signalled after an assignment")
	}
}

// A job assigned in the batch that inserts it is inserted in its new state,
// with no separate update; its siblings are inserted as submitted.
func TestSubmitAssignedInOneWrite(t *testing.T) {
	h := newHarness(t, defaultConfig())
	a := h.connect("a1", "")
	a.want(1)
	h.commit()
	tk, spec, jobs := h.newTask(taskOpts{jobs: 2})
	h.b.Submit(store.NewTask{Task: tk, Jobs: jobs}, spec, func(error) {})
	b := h.commit()
	if len(b.Jobs) != 0 {
		t.Fatalf("batch updates %+v; want the jobs inserted in their current state", b.Jobs)
	}
	if len(b.Tasks) != 1 || len(b.Tasks[0].Jobs) != 2 {
		t.Fatalf("batch tasks %+v", b.Tasks)
	}
	got := b.Tasks[0].Jobs
	if got[0].State != store.Assigned || got[0].Attempt != 1 || got[0].AgentID != "a1" || got[0].Created.IsZero() || got[0].TaskID != tk.ID {
		t.Fatalf("first job inserted as %+v; want assigned to a1, attempt 1", got[0])
	}
	if got[1].State != store.Ready || got[1].Attempt != 0 {
		t.Fatalf("second job inserted as %+v; want ready", got[1])
	}
	if as := a.assigns(); len(as) != 1 || as[0].JobID != jobs[0].ID {
		t.Fatalf("assigns %+v", as)
	}
	// Later changes are updates again.
	if _, err := a.report(&wire.Assign{JobID: jobs[0].ID, Attempt: 1}, &wire.Report{}); err != nil {
		t.Fatal(err)
	}
	if j := batchJob(t, h.commit(), jobs[0].ID); j.State != store.Finished {
		t.Fatalf("after the report: %+v", j)
	}
}

func TestCreditSlots(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{jobs: 5})
	a := h.connect("a1", "")
	a.wantW(&wire.Want{Slots: 2, Cores: 2, MemoryBytes: 8 * gib})
	h.commit()
	if got := jobIDs(a.assigns()); !equalIDs(got, ids[:2]) {
		t.Fatalf("first want: assigned %v, want %v", got, ids[:2])
	}
	// Credit is used up; nothing more without a new Want.
	h.b.Tick()
	h.commit()
	if got := a.assigns(); len(got) != 0 {
		t.Fatalf("assigned %d more without credit", len(got))
	}
	// A later Want adds to what is left.
	a.want(1)
	h.commit()
	if got := jobIDs(a.assigns()); !equalIDs(got, ids[2:3]) {
		t.Fatalf("second want: assigned %v, want %v", got, ids[2:3])
	}
}

func TestCreditCoresAndMemory(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, big := h.addTask(taskOpts{cores: 4})
	a := h.connect("a1", "")
	a.wantW(&wire.Want{Slots: 2, Cores: 2, MemoryBytes: 8 * gib})
	h.commit()
	if got := a.assigns(); len(got) != 0 {
		t.Fatalf("4-core job assigned on 2 cores of credit")
	}
	a.wantW(&wire.Want{Cores: 2}) // adds cores to the same session's credit
	h.commit()
	if got := jobIDs(a.assigns()); !equalIDs(got, big) {
		t.Fatalf("after more cores: assigned %v, want %v", got, big)
	}

	_, fat := h.addTask(taskOpts{memory: 16 * gib})
	b := h.connect("b1", "")
	b.wantW(&wire.Want{Slots: 4, Cores: 4, MemoryBytes: 8 * gib})
	h.commit()
	if got := b.assigns(); len(got) != 0 {
		t.Fatalf("16 GiB job assigned on 8 GiB of credit")
	}
	b.wantW(&wire.Want{MemoryBytes: 8 * gib})
	h.commit()
	if got := jobIDs(b.assigns()); !equalIDs(got, fat) {
		t.Fatalf("after more memory: assigned %v, want %v", got, fat)
	}

	_, gpu := h.addTask(taskOpts{gpus: 1})
	c := h.connect("c1", "")
	c.want(4)
	h.commit()
	if got := c.assigns(); len(got) != 0 {
		t.Fatalf("GPU job assigned without GPU credit")
	}
	c.wantW(&wire.Want{GPUs: 1})
	h.commit()
	if got := jobIDs(c.assigns()); !equalIDs(got, gpu) {
		t.Fatalf("after a GPU: assigned %v, want %v", got, gpu)
	}
}

// A job that does not fit does not block smaller work behind it.
func TestCreditSkipsTaskThatDoesNotFit(t *testing.T) {
	h := newHarness(t, defaultConfig())
	h.addTask(taskOpts{priority: 10, cores: 8})
	_, small := h.addTask(taskOpts{priority: 1, jobs: 2})
	a := h.connect("a1", "")
	a.want(2)
	h.commit()
	if got := jobIDs(a.assigns()); !equalIDs(got, small) {
		t.Fatalf("assigned %v, want the small jobs %v", got, small)
	}
}

func TestCreditResetOnNewSession(t *testing.T) {
	h := newHarness(t, defaultConfig())
	a := h.connect("a1", "")
	a.want(4) // no work yet: the credit stays
	a.disconnect()
	a2 := h.connect("a1", "")
	a.want(4) // from the old session: ignored
	_, ids := h.addTask(taskOpts{jobs: 3})
	h.commit()
	if got := a.assigns(); len(got) != 0 {
		t.Fatalf("old session got %d assigns", len(got))
	}
	if got := a2.assigns(); len(got) != 0 {
		t.Fatalf("new session got %d assigns on the old session's credit", len(got))
	}
	a2.want(1)
	h.commit()
	if got := jobIDs(a2.assigns()); !equalIDs(got, ids[:1]) {
		t.Fatalf("assigned %v, want %v", got, ids[:1])
	}
}

func TestDeadline(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, long := h.addTask(taskOpts{walltime: 2 * time.Hour, priority: 5})
	hello := h.hello("a1", "")
	hello.Deadline = h.clk.Now().Add(time.Hour).Unix()
	a := h.connectHello(hello)
	a.want(2)
	h.commit()
	if got := a.assigns(); len(got) != 0 {
		t.Fatalf("2h job assigned to an agent with 1h left")
	}
	_, short := h.addTask(taskOpts{walltime: 30 * time.Minute})
	h.commit()
	if got := jobIDs(a.assigns()); !equalIDs(got, short) {
		t.Fatalf("assigned %v, want the short job %v", got, short)
	}
	// A Want with a later deadline lets the long job through.
	a.wantW(&wire.Want{Deadline: h.clk.Now().Add(3 * time.Hour).Unix()})
	h.commit()
	if got := jobIDs(a.assigns()); !equalIDs(got, long) {
		t.Fatalf("after a later deadline: assigned %v, want %v", got, long)
	}
	// Exactly fitting walltime is accepted; one second over is not.
	_, exact := h.addTask(taskOpts{walltime: time.Hour})
	b := h.connect("b1", "")
	b.wantW(&wire.Want{Slots: 1, Cores: 1, MemoryBytes: gib, Deadline: h.clk.Now().Add(time.Hour - time.Second).Unix()})
	h.commit()
	if got := b.assigns(); len(got) != 0 {
		t.Fatalf("1h job assigned with 59m59s left")
	}
	b.wantW(&wire.Want{Deadline: h.clk.Now().Add(time.Hour).Unix()})
	h.commit()
	if got := jobIDs(b.assigns()); !equalIDs(got, exact) {
		t.Fatalf("assigned %v, want %v", got, exact)
	}
}

func TestImageNeedsPodman(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{image: "docker.io/library/busybox"})
	none := h.connect("none", "")
	proc := h.connect("proc", "", "process")
	none.want(1)
	proc.want(1)
	h.commit()
	if n, p := none.assigns(), proc.assigns(); len(n)+len(p) != 0 {
		t.Fatalf("image job went to an agent without podman")
	}
	pod := h.connect("pod", "", "process", "podman")
	pod.want(1)
	as := pod.runOne()
	if as.JobID != ids[0] || as.Image != "docker.io/library/busybox" {
		t.Fatalf("assign = %+v", as)
	}
	// Jobs without an image go anywhere.
	_, plain := h.addTask(taskOpts{})
	h.commit()
	got := append(none.assigns(), proc.assigns()...)
	if !equalIDs(jobIDs(got), plain) {
		t.Fatalf("plain job: assigned %v, want %v", jobIDs(got), plain)
	}
}

func TestPriorityThenAgeThenIndex(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, low := h.addTask(taskOpts{jobs: 2, priority: 0})
	_, highOld := h.addTask(taskOpts{jobs: 3, priority: 10})
	_, mid := h.addTask(taskOpts{jobs: 1, priority: 5})
	_, highNew := h.addTask(taskOpts{jobs: 2, priority: 10})
	want := slices.Concat(highOld, highNew, mid, low)

	a := h.connect("a1", "")
	var got []int64
	for range want {
		a.want(1)
		got = append(got, a.runOne().JobID)
	}
	if !equalIDs(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	a.want(1)
	h.commit()
	if as := a.assigns(); len(as) != 0 {
		t.Fatalf("assigned %d jobs from an empty index", len(as))
	}

	// One Want for everything gives the same order in one push.
	h2 := newHarness(t, defaultConfig())
	_, l := h2.addTask(taskOpts{jobs: 2})
	_, hi := h2.addTask(taskOpts{jobs: 2, priority: 3})
	b := h2.connect("b1", "")
	b.want(10)
	h2.commit()
	if got := jobIDs(b.assigns()); !equalIDs(got, slices.Concat(hi, l)) {
		t.Fatalf("one push order %v, want %v", got, slices.Concat(hi, l))
	}
}

func TestQueueMatching(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, inQ := h.addTask(taskOpts{queue: "q", jobs: 2})
	_, anyQ := h.addTask(taskOpts{jobs: 2, priority: 1})

	other := h.connect("other", "other")
	other.want(10)
	h.commit()
	if got := jobIDs(other.assigns()); !equalIDs(got, anyQ) {
		t.Fatalf("agent of queue other got %v, want only the queueless jobs %v", got, anyQ)
	}

	_, anyQ2 := h.addTask(taskOpts{jobs: 1})
	noq := h.connect("noq", "")
	h.commit()
	if got := jobIDs(other.assigns()); !equalIDs(got, anyQ2) {
		t.Fatalf("queueless work not pushed to hungry agent of queue other: %v", got)
	}
	noq.want(10)
	h.commit()
	if got := noq.assigns(); len(got) != 0 {
		t.Fatalf("agent without queue got %v from queue q", jobIDs(got))
	}

	q := h.connect("q", "q")
	q.want(10)
	h.commit()
	if got := jobIDs(q.assigns()); !equalIDs(got, inQ) {
		t.Fatalf("agent of queue q got %v, want %v", got, inQ)
	}
}

// An agent of a queue takes its queue's tasks and queueless tasks merged
// in priority order.
func TestQueueMergeOrder(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, q1 := h.addTask(taskOpts{queue: "q", priority: 1})
	_, n5 := h.addTask(taskOpts{priority: 5})
	_, q9 := h.addTask(taskOpts{queue: "q", priority: 9})
	_, n1 := h.addTask(taskOpts{priority: 1})
	_, other := h.addTask(taskOpts{queue: "x", priority: 100})
	a := h.connect("a", "q")
	a.want(10)
	h.commit()
	want := slices.Concat(q9, n5, q1, n1)
	if got := jobIDs(a.assigns()); !equalIDs(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	h.live(other[0]) // still ready
	if j := h.live(other[0]); j.State != store.Ready {
		t.Fatalf("queue x job = %s", j.State)
	}
}

func TestHungryAgentsFed(t *testing.T) {
	h := newHarness(t, defaultConfig())
	a := h.connect("a1", "")
	b := h.connect("b1", "q")
	a.want(3)
	b.want(3)
	h.commit()
	if len(a.assigns())+len(b.assigns()) != 0 {
		t.Fatal("assigned with no work")
	}
	_, ids := h.addTask(taskOpts{jobs: 5, queue: "q"})
	h.commit()
	if got := a.assigns(); len(got) != 0 {
		t.Fatalf("queueless agent got queue q work")
	}
	if got := jobIDs(b.assigns()); !equalIDs(got, ids[:3]) {
		t.Fatalf("hungry agent got %v, want %v", got, ids[:3])
	}
	_, ids2 := h.addTask(taskOpts{jobs: 5})
	h.commit()
	if got := jobIDs(a.assigns()); !equalIDs(got, ids2[:3]) {
		t.Fatalf("hungry agent got %v, want %v", got, ids2[:3])
	}
	if got := b.assigns(); len(got) != 0 {
		t.Fatalf("agent without credit got %d jobs", len(got))
	}
	// Credit left over after a partial match keeps the agent hungry.
	c := h.connect("c1", "")
	c.want(5)
	h.commit()
	if got := jobIDs(c.assigns()); !equalIDs(got, ids2[3:]) {
		t.Fatalf("c got %v, want %v", got, ids2[3:])
	}
	_, ids3 := h.addTask(taskOpts{jobs: 4})
	h.commit()
	if got := jobIDs(c.assigns()); !equalIDs(got, ids3[:3]) {
		t.Fatalf("partially fed agent got %v, want %v", got, ids3[:3])
	}
}

func TestHungryAgentFedByRetry(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, ids := h.addTask(taskOpts{})
	a := h.connect("a1", "")
	b := h.connect("b1", "")
	a.want(1)
	as := a.runOne()
	b.want(1) // hungry: nothing ready
	h.commit()
	a.mustReport(as, &wire.Report{ExitCode: 1})
	got := b.assigns()
	if len(got) != 1 || got[0].JobID != ids[0] || got[0].Attempt != 2 {
		t.Fatalf("retry not pushed to the hungry agent: %+v", got)
	}
}

func TestAgentsListing(t *testing.T) {
	h := newHarness(t, defaultConfig())
	h.addTask(taskOpts{jobs: 2})
	b := h.connect("b", "q")
	a := h.connect("a", "")
	a.want(2)
	h.commit()
	b.disconnect()
	ag := h.b.Agents()
	if len(ag) != 1 || ag[0].ID != "a" || !ag[0].Connected || ag[0].Running != 2 || ag[0].Since != t0 {
		t.Fatalf("Agents() = %+v", ag)
	}
	h.connect("c", "x")
	ag = h.b.Agents()
	if len(ag) != 2 || ag[0].Name != "name-a" || ag[1].Name != "name-c" || ag[1].Queue != "x" {
		t.Fatalf("Agents() = %+v", ag)
	}
	a.disconnect()
	ag = h.b.Agents()
	if ag[0].ID != "a" || ag[0].Connected || ag[0].Running != 2 {
		t.Fatalf("disconnected agent with jobs = %+v", ag[0])
	}
}

func TestConnectRefusesEmptyID(t *testing.T) {
	h := newHarness(t, defaultConfig())
	if _, err := h.b.Connect(&wire.Hello{Name: "x"}, newSession(t0)); err == nil {
		t.Fatal("Connect with empty agent ID accepted")
	}
}
