package broker_test

import (
	"errors"
	"github.com/pando-wms/pando/dispatcher/queue"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/broker"
	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/dispatcher/wire"
)

const gib = int64(1) << 30

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a settable Config.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// closeCall is one Session.Close.
type closeCall struct {
	code   int
	reason string
}

// fakeSession records what the broker sends and closes.
type fakeSession struct {
	mu       sync.Mutex
	sent     []wire.Message
	closes   []closeCall
	lastSeen time.Time
	sendErr  error
	// notify is signalled (non-blocking) on every Send.
	notify chan struct{}
	// onClose runs after a Close is recorded, like a real connection
	// whose read loop then calls Disconnect.
	onClose func()
}

func newSession(lastSeen time.Time) *fakeSession {
	return &fakeSession{lastSeen: lastSeen, notify: make(chan struct{}, 1)}
}

func (s *fakeSession) Send(msgs []wire.Message) error {
	s.mu.Lock()
	if s.sendErr != nil {
		s.mu.Unlock()
		return s.sendErr
	}
	s.sent = append(s.sent, msgs...)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return nil
}

func (s *fakeSession) Close(code int, reason string) {
	s.mu.Lock()
	s.closes = append(s.closes, closeCall{code, reason})
	f := s.onClose
	s.mu.Unlock()
	if f != nil {
		f()
	}
}

func (s *fakeSession) LastSeen() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSeen
}

func (s *fakeSession) SetLastSeen(t time.Time) {
	s.mu.Lock()
	s.lastSeen = t
	s.mu.Unlock()
}

// take returns and forgets the messages sent so far.
func (s *fakeSession) take() []wire.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.sent
	s.sent = nil
	return m
}

func (s *fakeSession) closed() []closeCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]closeCall(nil), s.closes...)
}

var _ broker.Session = (*fakeSession)(nil)

// harness is a broker on a fake clock with helpers to drive it.
type harness struct {
	t        *testing.T
	b        *broker.Broker
	clk      *fakeClock
	nextTask int64
	nextJob  int64
	tasks    map[int64]store.Task
	specs    map[int64]*task.Spec
}

func defaultConfig() broker.Config {
	return broker.Config{AgentTimeout: 30 * time.Second, Grace: 30 * time.Second}
}

func newHarness(t *testing.T, cfg broker.Config) *harness {
	t.Helper()
	clk := &fakeClock{now: t0}
	cfg.Now = clk.Now
	return &harness{t: t, b: broker.New(cfg, slog.New(slog.DiscardHandler)), clk: clk,
		tasks: make(map[int64]store.Task), specs: make(map[int64]*task.Spec)}
}

// commit takes the pending batch and runs its after funcs as a successful
// durable commit would. It returns an empty batch when nothing was pending.
func (h *harness) commit() *store.Batch {
	return h.commitErr(nil)
}

func (h *harness) commitErr(err error) *store.Batch {
	h.t.Helper()
	batch, after := h.b.TakeBatch()
	for _, f := range after {
		f(err)
	}
	if batch == nil {
		return &store.Batch{}
	}
	return batch
}

// taskOpts describes a task to submit; zero fields take defaults.
type taskOpts struct {
	jobs        int
	queue       string
	priority    int
	cores       int
	memory      int64
	gpus        int
	walltime    time.Duration
	image       string
	maxAttempts int
	share       string
	gpuModel    string
	gpuMemory   int64
	gpuCompute  string
	arch        string
	accel       string
}

// newTask makes a task and its ready jobs without handing them to the broker.
func (h *harness) newTask(o taskOpts) (store.Task, *task.Spec, []store.Job) {
	if o.jobs == 0 {
		o.jobs = 1
	}
	if o.cores == 0 {
		o.cores = 1
	}
	if o.memory == 0 {
		o.memory = gib
	}
	if o.walltime == 0 {
		o.walltime = time.Hour
	}
	if o.maxAttempts == 0 {
		o.maxAttempts = 3
	}
	h.nextTask++
	now := h.clk.Now()
	t := store.Task{ID: h.nextTask, Owner: "alice", Name: "t", Queue: o.queue,
		Priority: o.priority, Jobs: o.jobs, MaxAttempts: o.maxAttempts, Created: now}
	spec := &task.Spec{Name: "t", Command: []string{"run", "{index}"}, Image: o.image,
		Env: map[string]string{"A": "1"}, Jobs: o.jobs, Priority: o.priority,
		MaxAttempts: o.maxAttempts, Queue: o.queue, Share: o.share,
		Resources: task.Resources{Cores: o.cores, MemoryBytes: o.memory, Walltime: o.walltime, GPUs: o.gpus,
			GPUModel: o.gpuModel, GPUMemory: o.gpuMemory, GPUCompute: o.gpuCompute, Arch: o.arch, Accelerator: o.accel}}
	jobs := make([]store.Job, o.jobs)
	for i := range jobs {
		h.nextJob++
		jobs[i] = store.Job{ID: h.nextJob, TaskID: t.ID, Index: i, State: store.Ready,
			MaxAttempts: o.maxAttempts, Created: now, Updated: now}
	}
	h.tasks[t.ID], h.specs[t.ID] = t, spec
	return t, spec, jobs
}

// addTask submits a task and returns its job IDs in index order.
func (h *harness) addTask(o taskOpts) (store.Task, []int64) {
	t, spec, jobs := h.newTask(o)
	h.b.AddTask(t, spec, jobs)
	ids := make([]int64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	return t, ids
}

// agent is one fake agent connection.
type agent struct {
	h    *harness
	id   string
	s    *fakeSession
	drop []wire.RunningJob
}

func (h *harness) hello(id, queue string, runtimes ...string) *wire.Hello {
	return &wire.Hello{Version: wire.Version, Kind: "test", Name: "name-" + id, AgentID: id,
		Queue: queue, Resources: wire.Resources{Cores: 64, MemoryBytes: 256 * gib, Runtimes: runtimes, GPUs: testGPUs(4)}}
}

// testGPUs describes n A100s, as a probe would.
func testGPUs(n int) []wire.GPU {
	gs := make([]wire.GPU, n)
	for i := range gs {
		gs[i] = wire.GPU{Index: i, Model: "NVIDIA A100-SXM4-80GB", Vendor: "nvidia", MemoryBytes: 80 * gib, ComputeMajor: 8}
	}
	return gs
}

// connect opens a session for the agent described by hello.
func (h *harness) connectHello(hello *wire.Hello) *agent {
	h.t.Helper()
	if hello.Queue != "" && !h.b.HasQueue(hello.Queue) {
		h.b.PutQueue(queue.Queue{Name: hello.Queue, Kind: queue.Grid, Status: queue.Online})
	}
	s := newSession(h.clk.Now())
	drop, err := h.b.Connect(hello, s)
	if err != nil {
		h.t.Fatalf("Connect(%s): %v", hello.AgentID, err)
	}
	return &agent{h: h, id: hello.AgentID, s: s, drop: drop}
}

func (h *harness) connect(id, queue string, runtimes ...string) *agent {
	h.t.Helper()
	return h.connectHello(h.hello(id, queue, runtimes...))
}

// want grants credit for n one-core, 1 GiB jobs.
func (a *agent) want(n int) { a.wantW(&wire.Want{Slots: n, Cores: n, MemoryBytes: int64(n) * gib}) }

func (a *agent) wantW(w *wire.Want) { a.h.b.Want(a.id, a.s, w) }

func (a *agent) disconnect() { a.h.b.Disconnect(a.id, a.s) }

// assigns returns and forgets the Assigns pushed so far; it fails on any
// other message.
func (a *agent) assigns() []*wire.Assign {
	a.h.t.Helper()
	var out []*wire.Assign
	for _, m := range a.s.take() {
		as, ok := m.(*wire.Assign)
		if !ok {
			a.h.t.Fatalf("agent %s got %T, want only Assigns", a.id, m)
		}
		out = append(out, as)
	}
	return out
}

// kills returns and forgets the Kills pushed so far; it fails on any
// other message.
func (a *agent) kills() []*wire.Kill {
	a.h.t.Helper()
	var out []*wire.Kill
	for _, m := range a.s.take() {
		k, ok := m.(*wire.Kill)
		if !ok {
			a.h.t.Fatalf("agent %s got %T, want only Kills", a.id, m)
		}
		out = append(out, k)
	}
	return out
}

// runOne commits, expects exactly one Assign and returns it.
func (a *agent) runOne() *wire.Assign {
	a.h.t.Helper()
	a.h.commit()
	as := a.assigns()
	if len(as) != 1 {
		a.h.t.Fatalf("agent %s got %d assigns, want 1", a.id, len(as))
	}
	return as[0]
}

// report sends a final report and returns the done callback's state.
func (a *agent) report(as *wire.Assign, r *wire.Report) (*doneRec, error) {
	d := &doneRec{}
	err := a.h.b.Report(a.id, as.JobID, as.Attempt, r, d.done)
	return d, err
}

// mustReport reports and commits, failing unless done(nil) ran.
func (a *agent) mustReport(as *wire.Assign, r *wire.Report) *store.Batch {
	a.h.t.Helper()
	d, err := a.report(as, r)
	if err != nil {
		a.h.t.Fatalf("Report(job %d attempt %d): %v", as.JobID, as.Attempt, err)
	}
	if d.calls() != 0 {
		a.h.t.Fatalf("done called before commit")
	}
	batch := a.h.commit()
	if d.calls() != 1 || d.err != nil {
		a.h.t.Fatalf("done: %d calls, err %v; want 1 call with nil", d.calls(), d.err)
	}
	return batch
}

type doneRec struct {
	mu  sync.Mutex
	n   int
	err error
}

func (d *doneRec) done(err error) {
	d.mu.Lock()
	d.n++
	d.err = err
	d.mu.Unlock()
}

func (d *doneRec) calls() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

// live returns the broker's view of a job, failing if it is not live.
func (h *harness) live(id int64) store.Job {
	h.t.Helper()
	j, ok := h.b.Live(id)
	if !ok {
		h.t.Fatalf("job %d is not live", id)
	}
	return j
}

func (h *harness) notLive(id int64) {
	h.t.Helper()
	if j, ok := h.b.Live(id); ok {
		h.t.Fatalf("job %d is live (%s), want gone", id, j.State)
	}
}

func batchJob(t *testing.T, b *store.Batch, id int64) store.Job {
	t.Helper()
	for _, j := range b.Jobs {
		if j.ID == id {
			return j
		}
	}
	t.Fatalf("job %d not in batch (%d jobs)", id, len(b.Jobs))
	return store.Job{}
}

// batchAttempt returns the last record of the job's attempt in the batch.
func batchAttempt(t *testing.T, b *store.Batch, id int64, attempt int) store.Attempt {
	t.Helper()
	var found *store.Attempt
	for i := range b.Attempts {
		if a := &b.Attempts[i]; a.JobID == id && a.Attempt == attempt {
			found = a
		}
	}
	if found == nil {
		t.Fatalf("attempt %d of job %d not in batch %+v", attempt, id, b.Attempts)
	}
	return *found
}

// noAttempt fails if the batch writes a record of the job's attempt.
func noAttempt(t *testing.T, b *store.Batch, id int64, attempt int) {
	t.Helper()
	for _, a := range b.Attempts {
		if a.JobID == id && a.Attempt == attempt {
			t.Fatalf("batch writes attempt %d of job %d: %+v", attempt, id, a)
		}
	}
}

func jobIDs(as []*wire.Assign) []int64 {
	out := make([]int64, len(as))
	for i, a := range as {
		out[i] = a.JobID
	}
	return out
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var errCommit = errors.New("disk on fire")

// addTaskFrom submits n ready jobs of an existing task made by newTask.
func (h *harness) addTaskFrom(t store.Task, spec *task.Spec, n int) (store.Task, []int64) {
	jobs := make([]store.Job, n)
	ids := make([]int64, n)
	for i := range jobs {
		h.nextJob++
		jobs[i] = store.Job{ID: h.nextJob, TaskID: t.ID, Index: i, State: store.Ready,
			MaxAttempts: t.MaxAttempts, Created: t.Created, Updated: t.Created}
		ids[i] = h.nextJob
	}
	h.b.AddTask(t, spec, jobs)
	return t, ids
}
