package sim

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/pando-wms/pando/dispatcher/broker"
	"github.com/pando-wms/pando/dispatcher/errcode"
	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/dispatcher/wire"
)

// Config is what a replay runs on besides the trace.
type Config struct {
	// Queues and their agents; nil: DefaultQueues. Checked by CheckQueues.
	Queues []Queue
	// Shares are the targets set before the replay. When there are any,
	// a task must name one of them (or default) and no share with
	// sub-shares, as the dispatcher requires; otherwise shares come into
	// being as tasks name them, without targets.
	Shares []ShareTarget
	// ShareWindow and Aging are the broker's (dispatcher defaults: 10m,
	// 1m; a negative Aging turns aging off).
	ShareWindow time.Duration
	Aging       time.Duration
	// ReserveAfter is the broker's (dispatcher default 10m; negative:
	// never).
	ReserveAfter time.Duration
	// Logger is the broker's; nil: discarded.
	Logger *slog.Logger
}

// epoch is the simulated wall clock at the trace's start.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// simulation is one replay. It is single-threaded: the broker's lock is
// only ever taken from its goroutine.
type simulation struct {
	ctx    context.Context
	b      *broker.Broker
	queues []Queue
	rows   []Row
	ids    []int64 // each row's task ID; its jobs follow it
	fit    *fitter

	now    time.Duration // since epoch
	next   int           // the next row to arrive
	events eventHeap
	seq    uint64

	idleHead, idleTail *agent
	fresh              []*agent
	arrived            arrivals // the work that arrived now
	recheck            []bool   // queues with limits in which jobs ended
	recheckNext        []bool   // the other buffer
	rechecking         bool     // any of them
	recheckGPU         bool     // GPU jobs started
	queueIndex         map[string]int
	want               wire.Want
	inbox              []delivery

	waiting, running int // jobs
	lastAssign       time.Duration
	maxLifetime      time.Duration

	known map[string]bool // shares the broker has
	// checkShares: refuse tasks of shares the shares file did not set.
	checkShares bool
	shareMemo   map[string]string
	spec        task.Spec // reused: the broker copies what it keeps
	okReport    wire.Report
	killed      wire.Report
	stats       *stats
}

func noop(error) {}

// Run replays rows (sorted by submit time, in place) and returns the
// results.
func Run(ctx context.Context, rows []Row, cfg Config) (*Result, error) {
	began := time.Now()
	s, err := newSimulation(ctx, rows, cfg)
	if err != nil {
		return nil, err
	}
	if err := s.startAgents(); err != nil {
		return nil, err
	}
	if err := s.loop(); err != nil {
		return nil, err
	}
	return s.result(time.Since(began)), nil
}

// newSimulation sets up the broker with the queues and shares of cfg.
func newSimulation(ctx context.Context, rows []Row, cfg Config) (*simulation, error) {
	if cfg.Queues == nil {
		cfg.Queues = DefaultQueues()
	}
	if err := CheckQueues(cfg.Queues); err != nil {
		return nil, err
	}
	if cfg.ShareWindow <= 0 {
		cfg.ShareWindow = broker.DefaultShareWindow
	}
	if cfg.Aging == 0 {
		cfg.Aging = broker.DefaultAging
	}
	if cfg.ReserveAfter == 0 {
		cfg.ReserveAfter = broker.DefaultReserveAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkRows(rows); err != nil {
		return nil, err
	}
	if !slices.IsSortedFunc(rows, bySubmit) {
		slices.SortStableFunc(rows, bySubmit)
	}
	nq := len(cfg.Queues)
	s := &simulation{ctx: ctx, queues: cfg.Queues, rows: rows, fit: newFitter(cfg.Queues),
		killed:  wire.Report{ExitCode: -1, ErrorCode: int(errcode.PayloadWalltime)},
		spec:    task.Spec{Name: "sim", Command: []string{"sim"}, MaxAttempts: 1},
		stats:   newStats(nq, len(rows)),
		recheck: make([]bool, nq), recheckNext: make([]bool, nq), queueIndex: map[string]int{},
		known: map[string]bool{}, shareMemo: map[string]string{}, checkShares: len(cfg.Shares) > 0}
	s.b = broker.New(broker.Config{Now: s.clock, AgentTimeout: 1 << 62, Grace: 1 << 62,
		ShareWindow: cfg.ShareWindow, Aging: max(cfg.Aging, 0), ReserveAfter: max(cfg.ReserveAfter, 0)}, cfg.Logger)
	for i, q := range cfg.Queues {
		s.b.PutQueue(q.Queue)
		s.queueIndex[q.Name] = i
	}
	for _, t := range cfg.Shares {
		if err := s.b.SetShare(t.Path, t.Target); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		s.known[t.Path] = true
	}
	s.ids = make([]int64, len(rows))
	id := int64(1)
	for i := range rows {
		s.ids[i] = id
		id += 1 + int64(rows[i].Jobs)
		s.stats.jobs += int64(rows[i].Jobs)
	}
	if len(rows) > 0 {
		s.now = rows[0].Submit
		s.stats.first = s.now
	}
	return s, nil
}

// checkRows holds rows that were not read from a file to the same rules,
// and gives them the default walltime.
func checkRows(rows []Row) error {
	for i := range rows {
		r := &rows[i]
		if r.Jobs < 1 || r.Cores < 1 || r.GPUs < 0 || r.Memory < 0 || r.Submit < 0 || r.Runtime < 0 || r.Walltime < 0 {
			return fmt.Errorf("%w: row %d (line %d): jobs and cores must be positive, other numbers not negative", ErrTrace, i+1, r.Line)
		}
		finish(r)
	}
	return nil
}

func bySubmit(x, y Row) int {
	switch {
	case x.Submit < y.Submit:
		return -1
	case x.Submit > y.Submit:
		return 1
	}
	return 0
}

func (s *simulation) clock() time.Time { return epoch.Add(s.now) }

func (s *simulation) nextSeq() uint64 { s.seq++; return s.seq }

// loop runs every instant at which something happens, in time order: jobs
// end and pilots' lives end, work arrives, and then the broker matches.
func (s *simulation) loop() error {
	for i := 0; ; i++ {
		if i%4096 == 0 {
			if err := s.ctx.Err(); err != nil {
				return err
			}
		}
		t, ok := s.nextTime()
		if !ok {
			break
		}
		s.stats.advance(t - s.now)
		s.now = t
		for len(s.events) > 0 && s.events[0].at == t {
			if err := s.handle(s.events.pop()); err != nil {
				return err
			}
		}
		arrived := false
		s.arrived = arrivals{}
		for s.next < len(s.rows) && s.rows[s.next].Submit == t {
			s.arrive(s.next)
			s.next++
			arrived = true
		}
		if err := s.commit(); err != nil {
			return err
		}
		if err := s.dispatch(arrived); err != nil {
			return err
		}
	}
	s.stats.neverMatched(s)
	return nil
}

func (s *simulation) nextTime() (time.Duration, bool) {
	switch {
	case len(s.events) > 0 && s.next < len(s.rows):
		return min(s.events[0].at, s.rows[s.next].Submit), true
	case len(s.events) > 0:
		return s.events[0].at, true
	case s.next < len(s.rows):
		return s.rows[s.next].Submit, true
	}
	return 0, false
}

func (s *simulation) handle(e event) error {
	a := e.agent
	if e.kind == agentDone {
		if e.gen != a.gen {
			return nil
		}
		return s.lifeOver(a)
	}
	rep := &s.okReport
	if e.killed {
		rep = &s.killed
	}
	if err := s.b.Report(a.id, e.jobID, int(e.attempt), rep, noop); err != nil {
		return fmt.Errorf("simulation out of step with the broker: %w", err)
	}
	r := &s.rows[e.row]
	a.running--
	s.running--
	if q := &s.queues[a.queue]; q.MaxRunning > 0 || q.MaxCores > 0 || (q.MaxGPUJobs > 0 && r.GPUs > 0) {
		s.recheck[a.queue], s.rechecking = true, true
	}
	a.free.add(jobAmount(r))
	s.stats.ended(s, e, a)
	if a.expiring && a.running == 0 {
		return s.lifeOver(a)
	}
	s.freed(a)
	return nil
}

func jobAmount(r *Row) amount {
	return amount{slots: 1, cores: int(r.Cores), gpus: int(r.GPUs), memory: r.Memory}
}

// arrive submits row i's task, or counts its jobs as unrunnable.
func (s *simulation) arrive(i int) {
	r := &s.rows[i]
	why := s.shareWhy(r.Share)
	shareOK := why == ""
	if shareOK {
		why = s.fit.why(r)
	}
	s.stats.arrived(s, i, why)
	id := s.ids[i]
	t := store.Task{ID: id, Owner: "sim", Name: "sim", Queue: r.Queue, Priority: int(r.Priority),
		MaxAttempts: 1, Created: s.clock()}
	sp := &s.spec
	sp.Queue, sp.Share, sp.Priority = r.Queue, r.Share, int(r.Priority)
	sp.Resources = task.Resources{Cores: int(r.Cores), MemoryBytes: r.Memory, Walltime: r.Walltime,
		GPUs: int(r.GPUs), GPUModel: r.GPUModel}
	if why != "" {
		// Not submitted: it would wait for ever. A task without jobs
		// still makes its share exist, as the dispatcher's would.
		if shareOK && !s.known[r.Share] {
			s.known[r.Share] = true
			sp.Jobs = 0
			s.b.Submit(store.NewTask{Task: t}, sp, noop)
		}
		return
	}
	t.Jobs, sp.Jobs = int(r.Jobs), int(r.Jobs)
	jobs := make([]store.Job, r.Jobs)
	for k := range jobs {
		jobs[k] = store.Job{ID: id + 1 + int64(k), TaskID: id, Index: k, State: store.Ready,
			MaxAttempts: 1, Created: t.Created, Updated: t.Created}
	}
	s.b.Submit(store.NewTask{Task: t, Jobs: jobs}, sp, noop)
	s.known[r.Share] = true
	s.waiting += int(r.Jobs)
	q := -1
	if r.Queue != "" {
		q = s.queueIndex[r.Queue]
	}
	s.arrived.add(r, q)
}

// shareWhy says why the dispatcher would refuse a task of the share at
// path, once the shares were configured: it must exist and have no
// sub-shares. Without a shares file every share is taken as it comes.
func (s *simulation) shareWhy(path string) string {
	if !s.checkShares {
		return ""
	}
	why, ok := s.shareMemo[path]
	if !ok {
		if err := s.b.ShareUsable(path); err != nil {
			why = "refused at submit: " + err.Error()
		}
		s.shareMemo[path] = why
	}
	return why
}

// commit plays the dispatcher's committer without a store: the pending
// batch is dropped and what waited for it runs, which pushes Assigns.
func (s *simulation) commit() error {
	_, after := s.b.TakeBatch()
	for _, f := range after {
		f(nil)
	}
	for i, d := range s.inbox {
		s.inbox[i] = delivery{}
		if err := s.started(d.a, d.as); err != nil {
			return err
		}
	}
	s.inbox = s.inbox[:0]
	return nil
}

// started runs an assigned job until its runtime or walltime is over.
func (s *simulation) started(a *agent, as *wire.Assign) error {
	i := sort.Search(len(s.ids), func(i int) bool { return s.ids[i] > as.TaskID }) - 1
	if i < 0 || s.ids[i] != as.TaskID {
		return fmt.Errorf("simulation out of step with the broker: assigned job %d of unknown task %d", as.JobID, as.TaskID)
	}
	r := &s.rows[i]
	need := jobAmount(r)
	a.free.sub(need)
	a.credit.sub(need)
	if !a.free.usable() {
		s.unidle(a)
	}
	a.running++
	s.running++
	s.waiting--
	if r.Submit == s.now {
		s.arrived.left--
	}
	if r.GPUs > 0 {
		s.recheckGPU = true
	}
	s.lastAssign = s.now
	run := min(r.Runtime, r.Walltime)
	s.events.push(event{at: s.now + run, seq: s.nextSeq(), kind: jobEnd, agent: a,
		jobID: as.JobID, attempt: int32(as.Attempt), row: int32(i), killed: r.Runtime > r.Walltime})
	s.stats.started(s, i, a)
	return nil
}
