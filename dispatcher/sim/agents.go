package sim

import (
	"fmt"
	"time"

	"github.com/pando-wms/pando/dispatcher/broker"
	"github.com/pando-wms/pando/dispatcher/wire"
)

// amount is a bundle of agent resources: free ones, or broker credit.
type amount struct {
	slots, cores, gpus int
	memory             int64
}

func (x *amount) add(y amount) {
	x.slots += y.slots
	x.cores += y.cores
	x.gpus += y.gpus
	x.memory += y.memory
}

func (x *amount) sub(y amount) {
	x.slots -= y.slots
	x.cores -= y.cores
	x.gpus -= y.gpus
	x.memory -= y.memory
}

// usable reports whether a job could use x (the broker's own test for an
// agent that wants work).
func (x amount) usable() bool { return x.slots > 0 && x.cores > 0 }

func (x amount) want() wire.Want {
	return wire.Want{Slots: x.slots, Cores: x.cores, MemoryBytes: x.memory, GPUs: x.gpus}
}

// agent is one simulated pilot slot, renewed each time its lifetime ends.
type agent struct {
	id    string
	queue int // index in the simulation's queues
	spec  *Agents
	hello wire.Hello
	sess  *session
	gen   int32

	full, free amount // what the node has, and what its jobs leave
	// credit is the broker's credit for the agent as the simulation
	// counts it: what Want granted less what assignments took.
	credit   amount
	running  int
	expiring bool // its lifetime is over; it ends with its last job
	dead     bool // ended and not renewed
	isFresh  bool // in the fresh list

	prev, next *agent // idle list links
	idle       bool
}

// session is an agent's connection as the broker sees it: Assigns land
// in the simulation's inbox.
type session struct {
	s *simulation
	a *agent
}

var _ broker.Session = (*session)(nil)

func (x *session) Send(msgs []wire.Message) error {
	for _, m := range msgs {
		if as, ok := m.(*wire.Assign); ok {
			x.s.inbox = append(x.s.inbox, delivery{x.a, as})
		}
	}
	return nil
}

func (x *session) Close(int, string)   {}
func (x *session) LastSeen() time.Time { return x.s.clock() }

// delivery is an Assign pushed to an agent.
type delivery struct {
	a  *agent
	as *wire.Assign
}

// startAgents creates every agent of the open queues and connects them
// at the first submit time.
func (s *simulation) startAgents() error {
	for qi := range s.queues {
		q := &s.queues[qi]
		if !q.Open() {
			continue
		}
		for gi := range q.Agents {
			spec := &q.Agents[gi]
			gpus := make([]wire.GPU, spec.GPUs)
			for i := range gpus {
				gpus[i] = wire.GPU{Index: i, Model: spec.GPUModel, Vendor: "nvidia", MemoryBytes: int64(spec.GPUMemory)}
			}
			res := wire.Resources{Cores: spec.Cores, MemoryBytes: int64(spec.Memory), GPUs: gpus,
				Runtimes: []string{"process"}, Arch: spec.Arch}
			for i := 0; i < spec.Count; i++ {
				id := fmt.Sprintf("%s/%d/%d", q.Name, gi, i)
				a := &agent{id: id, queue: qi, spec: spec,
					full:  amount{slots: spec.Cores, cores: spec.Cores, gpus: spec.GPUs, memory: int64(spec.Memory)},
					hello: wire.Hello{Version: wire.Version, Kind: "pilot", Name: id, AgentID: id, Queue: q.Name, Resources: res}}
				s.stats.queues[qi].agents++
				s.stats.queues[qi].cores += spec.Cores
				s.stats.queues[qi].gpus += spec.GPUs
				life := time.Duration(spec.Lifetime)
				s.maxLifetime = max(s.maxLifetime, life)
				// The first pilots of a group end at staggered times.
				first := time.Duration(float64(life) * float64(i+1) / float64(spec.Count))
				if err := s.connect(a, first); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// connect starts a's next pilot, which lives for life (0: for ever).
func (s *simulation) connect(a *agent, life time.Duration) error {
	a.gen++
	a.sess = &session{s: s, a: a}
	a.hello.Deadline = 0
	if life > 0 {
		a.hello.Deadline = s.clock().Add(life).Unix()
		s.events.push(event{at: s.now + life, seq: s.nextSeq(), kind: agentDone, agent: a, gen: a.gen})
	}
	if _, err := s.b.Connect(&a.hello, a.sess); err != nil {
		return fmt.Errorf("agent %s: %w", a.id, err)
	}
	a.free, a.credit = a.full, amount{}
	a.expiring = false
	s.freed(a)
	return nil
}

// lifeOver ends a's pilot at the end of its lifetime, or once its last
// job ends, and starts a fresh one while there may be work for it.
func (s *simulation) lifeOver(a *agent) error {
	if a.running > 0 {
		a.expiring = true
		s.unidle(a)
		return nil
	}
	s.b.Disconnect(a.id, a.sess)
	arrivalsDone := s.next >= len(s.rows)
	stuck := s.running == 0 && s.now-s.lastAssign > s.maxLifetime+time.Second
	if arrivalsDone && (s.waiting == 0 || stuck) {
		a.dead = true
		s.unidle(a)
		return nil
	}
	return s.connect(a, time.Duration(a.spec.Lifetime))
}

// freed notes that a has more free resources: it is offered work first
// at the next dispatch.
func (s *simulation) freed(a *agent) {
	if a.expiring || a.dead || !a.free.usable() {
		return
	}
	if !a.idle {
		a.idle = true
		a.prev, a.next = s.idleTail, nil
		if s.idleTail != nil {
			s.idleTail.next = a
		} else {
			s.idleHead = a
		}
		s.idleTail = a
	}
	if !a.isFresh {
		a.isFresh = true
		s.fresh = append(s.fresh, a)
	}
}

// unidle takes a off the idle list.
func (s *simulation) unidle(a *agent) {
	if !a.idle {
		return
	}
	if a.prev != nil {
		a.prev.next = a.next
	} else {
		s.idleHead = a.next
	}
	if a.next != nil {
		a.next.prev = a.prev
	} else {
		s.idleTail = a.prev
	}
	a.prev, a.next, a.idle = nil, nil, false
}

// dispatch offers ready work to agents with free resources, one agent at
// a time, as the broker would when their Want or new work comes in.
//
// After each dispatch no idle agent fits any waiting job (each was offered
// and took all it could, or nothing it fits was waiting), so only these
// need an offer: agents that freed resources (their Want); at an instant
// at which work arrived, idle agents the new work may fit, until it is all
// taken; and, as the broker offers new work to every waiting agent of its
// queue, idle agents for which older work may fit now: those of queues
// with limits after jobs ended there, and those with GPUs, which take
// CPU-only work only while no GPU work they could run waits, after GPU
// jobs started. Idle agents are offered work in the order they became
// idle.
func (s *simulation) dispatch(arrived bool) error {
	for i, a := range s.fresh {
		s.fresh[i] = nil
		a.isFresh = false
		if s.waiting > 0 && a.idle {
			if err := s.offer(a); err != nil {
				return err
			}
		}
	}
	s.fresh = s.fresh[:0]
	if !arrived {
		return nil
	}
	// What calls for a recheck from now on waits for the next arrival.
	recheck, queues, gpus := s.rechecking, s.recheck, s.recheckGPU
	s.recheck, s.recheckNext = s.recheckNext, s.recheck
	s.rechecking, s.recheckGPU = false, false
	for a := s.idleHead; a != nil && (s.arrived.left > 0 || recheck || gpus); {
		next := a.next
		newWork := s.arrived.left > 0 && s.arrived.mayFit(a)
		oldWork := s.waiting > 0 && ((recheck && queues[a.queue]) || (gpus && a.full.gpus > 0))
		if newWork || oldWork {
			if err := s.offer(a); err != nil {
				return err
			}
		}
		a = next
	}
	clear(queues)
	return nil
}

// arrivals sums up the work that arrived at one instant.
type arrivals struct {
	left   int // its jobs not assigned yet
	queue  int // the only queue that may take it, -1: any
	cores  int // the least cores, memory and GPUs a job of it needs
	memory int64
	gpus   int
}

// add counts a runnable row that arrived now; q is its queue's index, -1
// for a row that names none.
func (x *arrivals) add(r *Row, q int) {
	if x.left == 0 {
		*x = arrivals{queue: q, cores: int(r.Cores), memory: r.Memory, gpus: int(r.GPUs)}
	}
	if q != x.queue {
		x.queue = -1
	}
	x.left += int(r.Jobs)
	x.cores, x.memory, x.gpus = min(x.cores, int(r.Cores)), min(x.memory, r.Memory), min(x.gpus, int(r.GPUs))
}

// mayFit reports whether a job of the new work might fit a's free
// resources (a necessary condition only: the broker decides).
func (x *arrivals) mayFit(a *agent) bool {
	return (x.queue < 0 || x.queue == a.queue) && x.cores <= a.free.cores &&
		x.memory <= a.free.memory && x.gpus <= a.free.gpus
}

// offer grants a its free resources as credit, lets the broker match,
// collects the assignments and takes back the credit left unused: an
// agent never holds credit outside its offer, so the broker never chooses
// between agents itself (it would, in map order, when work is submitted).
func (s *simulation) offer(a *agent) error {
	w := a.free
	w.sub(a.credit)
	s.want = w.want()
	s.b.Want(a.id, a.sess, &s.want)
	a.credit = a.free
	if err := s.commit(); err != nil {
		return err
	}
	if a.credit.usable() {
		w := a.credit
		w.slots, w.cores, w.gpus, w.memory = -w.slots, -w.cores, -w.gpus, -w.memory
		s.want = w.want()
		s.b.Want(a.id, a.sess, &s.want)
		a.credit = amount{}
	}
	return nil
}
