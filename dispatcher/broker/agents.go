package broker

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pando-wms/pando/dispatcher/errcode"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/edge/cache"
)

// agentState is what the broker knows of one agent. It outlives the
// agent's connection for the grace period, so that a reconnecting agent
// re-attaches its jobs.
type agentState struct {
	id, name, kind, queue string
	q                     *queueState // its queue (nil until it connects after a restart)
	res                   wire.Resources
	session               Session
	since                 time.Time
	lostAt                time.Time // when its jobs are declared lost (disconnected agents)
	jobs                  map[int64]*jobState

	// credit granted by Want and not yet used by assignments
	slots, cores, gpus int
	memory             int64
	deadline           int64 // Unix seconds, 0: none

	cache *cache.Summary // what its node cache holds, if it said

	// reserved is the task this agent drains for (Config.ReserveAfter).
	reserved *taskState
}

// reserve makes a drain for t.
func (b *Broker) reserve(a *agentState, t *taskState) {
	b.unreserve(a)
	a.reserved = t
	t.reservedBy++
	b.draining++
}

func (b *Broker) unreserve(a *agentState) {
	if a.reserved != nil {
		a.reserved.reservedBy--
		a.reserved = nil
		b.draining--
	}
}

// AgentInfo is a snapshot of an agent for listings.
type AgentInfo struct {
	ID, Name, Kind, Queue string
	Connected             bool
	Since                 time.Time
	Running               int
	Resources             wire.Resources
}

// ErrAgentRefused means a Hello is not acceptable.
var ErrAgentRefused = errors.New("agent refused")

func (b *Broker) agentFor(id, name string) *agentState {
	a, ok := b.agents[id]
	if !ok {
		a = &agentState{id: id, name: name, jobs: make(map[int64]*jobState)}
		b.agents[id] = a
	}
	return a
}

// Connect registers an agent's new session. It re-attaches the jobs the
// agent still runs, returns those it must drop, and retries jobs the
// dispatcher assigned to it that it no longer has.
func (b *Broker) Connect(h *wire.Hello, s Session) (drop []wire.RunningJob, err error) {
	if h.AgentID == "" {
		return nil, fmt.Errorf("%w: empty agent id", ErrAgentRefused)
	}
	var old Session
	defer func() { // after unlocking: Close may call back into the broker
		if old != nil {
			old.Close(wire.CloseReplaced, "replaced by a new connection of the same agent")
		}
	}()
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.settle()
	q, err := b.queueOf(h)
	if err != nil {
		return nil, err
	}
	a := b.agentFor(h.AgentID, h.Name)
	if a.session != nil && a.session != s {
		old = a.session
		delete(b.hungry, a)
		a.q.agents--
	}
	q.agents++
	a.name, a.kind, a.queue, a.q, a.res = h.Name, h.Kind, q.def.Name, q, h.Resources
	a.session, a.since, a.lostAt = s, b.cfg.Now(), time.Time{}
	a.slots, a.cores, a.gpus, a.memory, a.deadline = 0, 0, 0, 0, h.Deadline

	has := make(map[wire.RunningJob]bool, len(h.Running))
	for _, r := range h.Running {
		has[r] = true
		if b.reported[r] == a.id {
			continue // its report awaits its commit: the agent resends it
		}
		j, ok := b.jobs[r.JobID]
		if !ok || j.agent != a || j.attempt != r.Attempt {
			drop = append(drop, r) // ended, killed or reassigned meanwhile
		} else if j.runQ == nil { // recovered after a restart: count it now
			j.runQ = q
			q.count(&j.task.res, 1)
		}
	}
	now := b.cfg.Now()
	for id, j := range a.jobs {
		if !has[wire.RunningJob{JobID: id, Attempt: j.attempt}] {
			b.detach(j)
			b.fail(j, errcode.DispatcherAgentGone, "the agent reconnected without this job", now)
		}
	}
	return drop, nil
}

// Disconnect marks the agent's session s gone. Its jobs are retried after
// the grace period unless it reconnects first.
func (b *Broker) Disconnect(agentID string, s Session) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.agents[agentID]
	if !ok || a.session != s {
		return // already replaced
	}
	a.session = nil
	a.q.agents--
	a.lostAt = b.cfg.Now().Add(b.cfg.Grace)
	b.unreserve(a)
	delete(b.hungry, a)
	if len(a.jobs) == 0 {
		delete(b.agents, agentID)
	}
}

// Want adds credit to the agent's session and assigns what fits.
func (b *Broker) Want(agentID string, s Session, w *wire.Want) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.settle()
	a, ok := b.agents[agentID]
	if !ok || a.session != s {
		return
	}
	a.slots += w.Slots
	a.cores += w.Cores
	a.memory += w.MemoryBytes
	a.gpus += w.GPUs
	if w.Deadline != 0 {
		a.deadline = w.Deadline
	}
	b.match(a)
}

// SetCache records the summary of an agent's node cache.
func (b *Broker) SetCache(agentID string, s *cache.Summary) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a, ok := b.agents[agentID]; ok {
		a.cache = s
	}
}

// feedHungry offers new ready work of queue q to agents with credit.
func (b *Broker) feedHungry(q string) {
	for a := range b.hungry {
		if b.index.empty(a.queue) {
			if !b.index.any() {
				return
			}
			continue
		}
		if q != "" && a.queue != q {
			continue
		}
		b.match(a)
	}
}

// livenessEvery spaces Tick's passes over every agent (silent sessions,
// grace periods that ended): each pass holds the broker's lock, and at
// 10,000 idle agents one every 200 ms tick took a quarter of the
// dispatcher's CPU. A second (a tenth of a shorter AgentTimeout) is
// nothing against the timeout.
const livenessEvery = time.Second

// Tick runs the timers: silent agents are closed, jobs of agents lost past
// their grace period are retried, retry back-offs expire. Call it about
// once a second.
func (b *Broker) Tick() {
	b.mu.Lock()
	now := b.cfg.Now()
	var silent []Session
	if now.Sub(b.lastScan) >= min(livenessEvery, b.cfg.AgentTimeout/10) {
		b.lastScan = now
		silent = b.scanAgents(now)
	}
	// New work reaches waiting agents when it arrives (submit, retry,
	// revive) and credit when it is granted; only jobs whose back-off just
	// ended need offering here. Rescanning every agent each tick for work
	// none of them fits would cost more with every agent.
	if b.releaseDelayed(now) > 0 {
		b.feedHungry("")
	}
	b.settle()
	b.mu.Unlock()
	for _, s := range silent {
		s.Close(wire.CloseHeartbeatLost, "no heartbeat")
	}
}

// scanAgents retries the jobs of agents lost past their grace period and
// returns the sessions silent for longer than AgentTimeout, to be closed
// once the lock is released.
func (b *Broker) scanAgents(now time.Time) []Session {
	var silent []Session
	for id, a := range b.agents {
		switch {
		case a.session != nil:
			if now.Sub(a.session.LastSeen()) > b.cfg.AgentTimeout {
				silent = append(silent, a.session)
			}
		case !a.lostAt.IsZero() && now.After(a.lostAt):
			for _, j := range a.jobs {
				b.detach(j)
				b.fail(j, errcode.DispatcherAgentLost, fmt.Sprintf("agent %s lost (no heartbeat)", a.name), now)
			}
			delete(b.agents, id)
		}
	}
	return silent
}

// Known reports whether the broker still tracks the agent (connected, or
// lost with jobs inside their grace period).
func (b *Broker) Known(agentID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.agents[agentID]
	return ok
}

// Agents lists the known agents.
func (b *Broker) Agents() []AgentInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]AgentInfo, 0, len(b.agents))
	for _, a := range b.agents {
		out = append(out, AgentInfo{ID: a.id, Name: a.name, Kind: a.kind, Queue: a.queue,
			Connected: a.session != nil, Since: a.since, Running: len(a.jobs), Resources: a.res})
	}
	slices.SortFunc(out, func(x, y AgentInfo) int { return compareStrings(x.Name, y.Name) })
	return out
}

func compareStrings(x, y string) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}
