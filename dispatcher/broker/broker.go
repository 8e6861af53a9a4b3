// Package broker is the dispatcher's in-memory heart: live jobs, the ready
// index, agents and their credits, and the job state machine. It does no
// I/O of its own. Every change is recorded in a pending batch that the
// dispatcher's committer writes to the store in group commits; actions that
// must only happen once a change is durable (pushing an Assign, acknowledging
// a report) run after that commit.
package broker

import (
	"container/heap"
	"log/slog"
	"sync"
	"time"

	"github.com/pando-wms/pando/dispatcher/queue"
	"github.com/pando-wms/pando/dispatcher/share"
	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/wire"
)

const (
	statePending   = store.Pending
	stateReady     = store.Ready
	stateAssigned  = store.Assigned
	stateRunning   = store.Running
	stateFinished  = store.Finished
	stateFailed    = store.Failed
	stateCancelled = store.Cancelled
)

// Session is an agent's live connection, as the broker sees it.
type Session interface {
	// Send writes the messages to the control stream in one write.
	Send(msgs []wire.Message) error
	// Close ends the connection with a protocol close code and reason.
	Close(code int, reason string)
	// LastSeen is when the agent last sent anything.
	LastSeen() time.Time
}

// Defaults of the policy settings, shared by the dispatcher and pando sim
// so that a replay runs the policy the dispatcher would.
const (
	DefaultShareWindow  = 10 * time.Minute
	DefaultAging        = time.Minute
	DefaultReserveAfter = 10 * time.Minute
)

// Config holds the broker's timing policy.
type Config struct {
	// AgentTimeout: an agent silent this long is disconnected.
	AgentTimeout time.Duration
	// Grace: a disconnected agent's jobs are retried after this long unless
	// it reconnects and re-attaches them.
	Grace time.Duration
	// RetryBackoff is the delay before the second attempt; it doubles per
	// attempt up to MaxBackoff. Zero retries at once.
	RetryBackoff time.Duration
	MaxBackoff   time.Duration
	// Now is the clock (tests and simulations replace it).
	Now func() time.Time
	// JobEnded, if set, is called once the final state of a job with input
	// files is durable: inputs staged for it may be released. It runs
	// outside the broker's lock.
	JobEnded func(jobID int64)
	// ShareWindow is the time constant over which shares' past usage
	// decays (default 10 minutes).
	ShareWindow time.Duration
	// Aging: a waiting task gains one priority point per Aging, so that
	// low priority work is not starved forever. Zero turns aging off.
	Aging time.Duration
	// ObserveDispatch, if set, is given each job's time from ready to its
	// Assign pushed (outside the lock).
	ObserveDispatch func(time.Duration)
	// ReserveAfter: a task first in line that has waited this long for
	// free cores, memory or GPUs on agents whose nodes could run it gets
	// such an agent reserved: the agent takes no other work until the
	// task's job fits (it drains), so that large jobs are not starved by
	// a stream of small ones. Zero turns reservations off.
	ReserveAfter time.Duration
}

// Broker holds the live state. Its methods are safe for concurrent use.
type Broker struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	jobs    map[int64]*jobState
	tasks   map[int64]*taskState
	agents  map[string]*agentState
	hungry  map[*agentState]struct{}
	index   *readyIndex
	delayed delayHeap
	queues  map[string]*queueState
	shares  *share.Tree
	ended   endTally

	// Work to offer again once the current change is done (settle): the
	// queues where a limit freed up, and the GPU tasks seen indexed (when
	// they drop, GPU agents that held slots back for them take CPU work).
	refeed   map[*queueState]struct{}
	gpuSeen  int
	settling bool

	// matching scratch
	orderBufs [][]*share.Node // share order per tree depth
	gen       uint64          // match generation (taskState.noFit)
	draining  int             // agents reserved for a task
	lastScan  time.Time       // Tick's last pass over every agent

	// reported holds attempts whose final report was accepted but whose
	// commit has not landed yet (attempt -> agent ID): a resent report is
	// acknowledged once that commit is durable, and a reconnecting agent is
	// not told to drop the job meanwhile.
	reported map[wire.RunningJob]string

	// pending group commit
	newTasks []store.NewTask
	archive  []int64 // final jobs revived: keep the attempt their row holds
	dirty    map[int64]*jobState
	attempts []store.Attempt
	files    []store.File
	after    []func(error)
	signal   chan struct{}
	nextSess int64
}

// New returns an empty broker.
func New(cfg Config, log *slog.Logger) *Broker {
	if log == nil {
		log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	b := &Broker{
		cfg:    cfg,
		log:    log,
		jobs:   make(map[int64]*jobState),
		tasks:  make(map[int64]*taskState),
		agents: make(map[string]*agentState),
		hungry: make(map[*agentState]struct{}),
		index:  newReadyIndex(),
		dirty:  make(map[int64]*jobState),
		queues: map[string]*queueState{queue.Default: {def: queue.Queue{Name: queue.Default, Kind: queue.Grid, Status: queue.Online}}},
		shares: share.New(cfg.ShareWindow),
		ended:  make(endTally),
		refeed: make(map[*queueState]struct{}),

		reported: make(map[wire.RunningJob]string),
		signal:   make(chan struct{}, 1),
	}
	b.shares.Leaf(share.Default) // listed, and competing, from the start
	return b
}

// Pending is signalled whenever changes await a commit.
func (b *Broker) Pending() <-chan struct{} { return b.signal }

// TakeBatch hands the pending changes to the committer: the store batch
// and the actions to run, with the commit's result, once it is written.
func (b *Broker) TakeBatch() (*store.Batch, []func(error)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.newTasks) == 0 && len(b.archive) == 0 && len(b.dirty) == 0 && len(b.attempts) == 0 && len(b.after) == 0 {
		return nil, nil
	}
	batch := &store.Batch{Tasks: b.newTasks, Archive: b.archive, Attempts: b.attempts, Files: b.files}
	b.newTasks, b.archive, b.files = nil, nil, nil
	// A job changed in the batch that inserts it (typically assigned at
	// once) is inserted as it is now: one row write instead of two.
	for _, nt := range batch.Tasks {
		for i := range nt.Jobs {
			if j, ok := b.dirty[nt.Jobs[i].ID]; ok {
				nt.Jobs[i] = j.record()
				j.takeAttempt(batch)
				delete(b.dirty, j.id)
			}
		}
	}
	batch.Jobs = make([]store.Job, 0, len(b.dirty))
	for _, j := range b.dirty {
		batch.Jobs = append(batch.Jobs, j.record())
		j.takeAttempt(batch)
	}
	clear(b.dirty)
	b.attempts = nil
	after := b.after
	b.after = nil
	return batch, after
}

// takeAttempt adds j's current attempt to the batch if it changed.
func (j *jobState) takeAttempt(batch *store.Batch) {
	if j.attemptDirty {
		batch.Attempts = append(batch.Attempts, j.cur)
		j.attemptDirty = false
	}
}

// settle offers work again to waiting agents that a change may have
// unblocked: agents of a queue whose limit freed up, and agents with GPUs
// once GPU work they held slots for is gone. Public methods that end jobs
// or take work call it before they unlock.
func (b *Broker) settle() {
	if b.settling {
		return
	}
	b.settling = true
	defer func() { b.settling = false }()
	for len(b.refeed) > 0 || b.index.gpuTasks < b.gpuSeen {
		gpuDrop := b.index.gpuTasks < b.gpuSeen
		b.gpuSeen = b.index.gpuTasks
		qs := b.refeed
		b.refeed = make(map[*queueState]struct{})
		for a := range b.hungry {
			if _, ok := qs[a.q]; ok || (gpuDrop && len(a.res.GPUs) > 0) {
				b.match(a)
			}
		}
	}
	b.gpuSeen = b.index.gpuTasks
}

func (b *Broker) notify() {
	select {
	case b.signal <- struct{}{}:
	default:
	}
}

// touch records that j changed and must be written.
func (b *Broker) touch(j *jobState) {
	j.updated = b.cfg.Now()
	b.dirty[j.id] = j
	b.notify()
}

// Sync calls done once every change recorded so far is durable (or with
// the commit's error), so that an API call can answer after its change.
func (b *Broker) Sync(done func(error)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.afterCommit(done)
}

// afterCommit runs f once everything recorded so far is durable.
func (b *Broker) afterCommit(f func(error)) {
	b.after = append(b.after, f)
	b.notify()
}

// delayHeap holds jobs waiting out a retry back-off, earliest first.
type delayHeap []*jobState

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, k int) bool { return h[i].readyAt.Before(h[k].readyAt) }
func (h delayHeap) Swap(i, k int)      { h[i], h[k] = h[k], h[i] }
func (h *delayHeap) Push(x any)        { *h = append(*h, x.(*jobState)) }
func (h *delayHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return j
}

// releaseDelayed makes jobs whose back-off has passed ready; it returns
// how many.
func (b *Broker) releaseDelayed(now time.Time) int {
	n := 0
	for len(b.delayed) > 0 && !b.delayed[0].readyAt.After(now) {
		j := heap.Pop(&b.delayed).(*jobState)
		if j.state == stateReady && !j.queued {
			b.enqueue(j)
			n++
		}
	}
	return n
}
