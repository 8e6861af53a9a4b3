package broker

import (
	"slices"
	"time"

	"github.com/pando-wms/pando/dispatcher/queue"
	"github.com/pando-wms/pando/dispatcher/share"
	"github.com/pando-wms/pando/dispatcher/wire"
)

// misfit says why a job of a task cannot go to an agent now, from the
// most lasting reason to the most passing one. The order matters to match:
// only credit and time misfits mean "GPU work is waiting for this agent".
type misfit int

const (
	fitOK       misfit = iota
	fitHardware        // the agent's node can never run it
	fitQueue           // its queue does not take it (status, shares, limits)
	fitTime            // not enough walltime left on the agent
	fitCredit          // the agent's free slots, cores, memory or GPUs
)

// gpuMode restricts a pass of pick to GPU or CPU-only work.
type gpuMode int

const (
	anyWork gpuMode = iota
	gpuWork
	cpuWork
)

// fits reports why one job of t does not fit a's remaining credit and its
// queue's limits now, or fitOK.
func (b *Broker) fits(a *agentState, t *taskState, now int64) misfit {
	if hardwareMisfit(&a.res, t) != hwOK {
		return fitHardware
	}
	if m := a.q.misfit(t); m != qOK {
		if m.limit() {
			a.q.blocked = true // offer its agents work again when a job of it ends
		}
		return fitQueue
	}
	if a.deadline != 0 && now+t.res.WalltimeSecs > a.deadline {
		return fitTime
	}
	r := &t.res
	if a.slots < 1 || r.Cores > a.cores || r.MemoryBytes > a.memory || r.GPUs > a.gpus {
		return fitCredit
	}
	return fitOK
}

// hwMisfit names the first of a task's needs a node can never meet.
type hwMisfit int

const (
	hwOK hwMisfit = iota
	hwCores
	hwMemory
	hwGPUCount
	hwGPUFit
	hwAccel
	hwArch
	hwRuntime
)

// hardwareMisfit says whether the node an agent probed could ever run a
// job of t: cores, memory, GPUs of the right model, memory and compute
// capability, accelerators, CPU architecture and container runtime.
// Matching and why share it, so that they never disagree.
func hardwareMisfit(res *wire.Resources, t *taskState) hwMisfit {
	r := &t.res
	switch {
	// Cores and memory are also bounded by credit; an agent that reported
	// none (0) is held to its credit alone.
	case res.Cores > 0 && r.Cores > res.Cores:
		return hwCores
	case res.MemoryBytes > 0 && r.MemoryBytes > res.MemoryBytes:
		return hwMemory
	case r.GPUs > len(res.GPUs):
		return hwGPUCount
	case r.GPUs > 0 && gpusFitting(res, t) < r.GPUs:
		return hwGPUFit
	case t.accel != "" && !hasAccelerator(res, t.accel):
		return hwAccel
	case t.arch != "" && normArch(res.Arch) != t.arch:
		return hwArch
	case t.image != "" && !slices.Contains(res.Runtimes, "podman"):
		return hwRuntime
	}
	return hwOK
}

// gpusFitting counts the node's GPUs that meet t's model, memory and
// compute capability, of the one vendor that has most: the pilot gives a
// job GPUs of a single vendor.
func gpusFitting(res *wire.Resources, t *taskState) int {
	best := 0
	for i := range res.GPUs {
		v := res.GPUs[i].Vendor
		if slices.ContainsFunc(res.GPUs[:i], func(g wire.GPU) bool { return g.Vendor == v }) {
			continue // counted with the first of its vendor
		}
		n := 0
		for k := i; k < len(res.GPUs); k++ {
			if res.GPUs[k].Vendor == v && gpuFits(&res.GPUs[k], t) {
				n++
			}
		}
		best = max(best, n)
	}
	return best
}

func gpuFits(g *wire.GPU, t *taskState) bool {
	if t.res.GPUMemory > 0 && g.MemoryBytes < t.res.GPUMemory {
		return false
	}
	if t.gpuCompute > 0 && !cudaCapable(g, t.gpuCompute) {
		return false
	}
	return t.gpuModel == nil || t.gpuModel.MatchString(g.Model)
}

// cudaCapable reports whether g is an NVIDIA GPU of at least compute
// capability min (MAJOR*100+MINOR). Compute capability is CUDA's notion:
// other vendors' numbers (AMD's gfx versions) do not compare with it.
func cudaCapable(g *wire.GPU, min int) bool {
	if g.Vendor != "nvidia" && g.Vendor != "" {
		return false
	}
	return g.ComputeMajor*100+g.ComputeMinor >= min
}

func hasAccelerator(res *wire.Resources, kind string) bool {
	for _, x := range res.Accelerators {
		if x.Kind == kind && x.Count > 0 {
			return true
		}
	}
	return slices.ContainsFunc(res.GPUs, func(g wire.GPU) bool { return g.Vendor == kind })
}

// normArch maps the names kernels and Go give one architecture to Go's.
func normArch(a string) string {
	switch a {
	case "x86_64":
		return "amd64"
	case "aarch64":
		return "arm64"
	case "ppc64le", "powerpc64le":
		return "ppc64le"
	}
	return a
}

// match assigns ready jobs to a until its credit or the fitting work runs
// out, then pushes the assignments once durable. Each job goes to the
// share furthest below its target among those with work a can take. On an
// agent with GPUs, CPU-only work gets slots only while no GPU work that its
// node could run is waiting.
func (b *Broker) match(a *agentState) {
	if a.session == nil {
		return
	}
	var out []wire.Message
	var waited []time.Time
	now := b.cfg.Now()
	b.gen++
	for a.slots > 0 && a.cores > 0 && a.q.def.Open() {
		var t *taskState
		if r := a.reserved; r != nil {
			fit := fitHardware // the task is gone, or other agents took its jobs
			if r.nready >= r.reservedBy && r.indexed {
				fit = b.fits(a, r, now.Unix())
			}
			if fit == fitCredit {
				break // still draining for it: no other work
			}
			b.unreserve(a)
			if fit == fitOK {
				t = r
			}
		}
		if t == nil {
			var seen passed
			if b.index.gpuTasks > 0 && len(a.res.GPUs) > 0 {
				t = b.pick(a, gpuWork, now, &seen)
				if t == nil && !seen.gpuWaits {
					t = b.pick(a, cpuWork, now, &seen)
				}
			} else {
				t = b.pick(a, anyWork, now, &seen)
			}
			if seen.starved != nil {
				// A task ahead of t has waited too long for credit that
				// a's node could give it: drain a for it.
				b.reserve(a, seen.starved)
				break
			}
		}
		if t == nil {
			break
		}
		j := b.take(t, a)
		if j == nil {
			continue // only stale entries were left: t is unindexed now
		}
		waited = append(waited, j.readySince)
		out = append(out, b.assign(j, a))
		a.slots--
		a.cores -= t.res.Cores
		a.memory -= t.res.MemoryBytes
		a.gpus -= t.res.GPUs
	}
	if a.slots > 0 && a.cores > 0 {
		b.hungry[a] = struct{}{}
	} else {
		delete(b.hungry, a)
	}
	if len(out) == 0 {
		return
	}
	s := a.session
	b.afterCommit(func(err error) {
		if err != nil {
			return // the dispatcher is failing; the agent reconnects to a healthy one
		}
		if err := s.Send(out); err != nil {
			b.log.Debug("push assign failed", "agent", a.id, "err", err)
			return
		}
		if obs := b.cfg.ObserveDispatch; obs != nil {
			end := b.cfg.Now()
			for _, w := range waited {
				obs(end.Sub(w))
			}
		}
	})
}

// pick returns the task a's next job comes from: it walks the share tree,
// at each level into the share furthest below its target, and takes the
// first task there that fits. It notes in seen what it passed over.
func (b *Broker) pick(a *agentState, mode gpuMode, now time.Time, seen *passed) *taskState {
	return b.pickIn(b.shares.Root(), 0, a, mode, now, seen)
}

// passed is what a pick passed over on its way to the task it returned.
type passed struct {
	gpuWaits bool       // GPU work a's node could run, for want of free credit or time
	starved  *taskState // the first overdue task passed over for want of credit
}

func (b *Broker) pickIn(n *share.Node, depth int, a *agentState, mode gpuMode, now time.Time, seen *passed) *taskState {
	if !a.q.reaches(n.Path) {
		return nil
	}
	if len(n.Children()) > 0 {
		for len(b.orderBufs) <= depth {
			b.orderBufs = append(b.orderBufs, nil)
		}
		b.orderBufs[depth] = b.shares.Order(n, now, b.orderBufs[depth])
		for _, c := range b.orderBufs[depth] {
			if t := b.pickIn(c, depth+1, a, mode, now, seen); t != nil {
				return t
			}
		}
	}
	lt := b.index.leaves[n]
	if lt == nil || !a.q.def.Serves(n.Path) {
		return nil
	}
	own, anyQ := lt.queues[a.queue].tasks(), lt.queues[""].tasks()
	if a.q.def.Status == queue.Test {
		anyQ = nil // a test queue takes only work that names it
	}
	unix := now.Unix()
	for len(own) > 0 || len(anyQ) > 0 {
		var t *taskState
		if len(anyQ) == 0 || (len(own) > 0 && before(own[0], anyQ[0])) {
			t, own = own[0], own[1:]
		} else {
			t, anyQ = anyQ[0], anyQ[1:]
		}
		if t.noFit == b.gen || (mode == gpuWork) != (t.res.GPUs > 0) && mode != anyWork {
			continue
		}
		switch m := b.fits(a, t, unix); m {
		case fitOK:
			return t
		case fitCredit, fitTime:
			if t.res.GPUs > 0 {
				seen.gpuWaits = true
			}
			if m == fitCredit && seen.starved == nil && b.overdue(t, now) {
				seen.starved = t
			}
		}
		t.noFit = b.gen // credit only shrinks during one match
	}
	return nil
}

// overdue reports whether t has waited long enough for free credit to
// have an agent drain for it, has fewer agents draining than jobs waiting,
// and fewer than one agent in maxDrainingShare drains already: every
// draining agent idles cores, and draining many at once for many large
// jobs costs more than it gives (pando sim: unbounded draining at 150%
// load cut utilisation from 70% to 49% and made the large jobs wait longer).
func (b *Broker) overdue(t *taskState, now time.Time) bool {
	if b.cfg.ReserveAfter <= 0 || t.reservedBy >= t.nready || b.draining >= max(1, b.connectedAgents()/maxDrainingShare) {
		return false
	}
	since, ok := t.readySince()
	return ok && now.Sub(since) >= b.cfg.ReserveAfter
}

// maxDrainingShare: at most one connected agent in this many drains.
const maxDrainingShare = 50

func (b *Broker) connectedAgents() int {
	n := 0
	for _, q := range b.queues {
		n += q.agents
	}
	return n
}

// preferScan bounds how many ready jobs of a task are looked at for one
// whose inputs an agent holds: matching stays O(1) per assignment.
const preferScan = 64

// take pops t's next job for a: among the first ready jobs, the one with
// the most inputs in a's node cache, else the oldest.
func (b *Broker) take(t *taskState, a *agentState) *jobState {
	if a.cache == nil || t.cacheIDs == nil {
		return b.index.pop(t)
	}
	var best *jobState
	most := 0
	for _, j := range t.ready[:min(len(t.ready), preferScan)] {
		if j.state != stateReady || !j.queued {
			continue
		}
		n := 0
		for _, id := range t.cacheIDs[j.id] {
			if a.cache.Holds(id) {
				n++
			}
		}
		if n > most {
			best, most = j, n
		}
	}
	if best == nil {
		return b.index.pop(t)
	}
	best.queued = false // its entry in t.ready is skipped by pop from now on
	t.nready--
	return best
}
