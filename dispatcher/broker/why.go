package broker

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pando-wms/pando/dispatcher/wire"
)

// Why explains why a job is not running, in words.
type Why struct {
	JobID   int64     `json:"job_id"`
	State   string    `json:"state"`
	Summary string    `json:"summary"`
	Share   string    `json:"share"`
	Queues  []WhyLine `json:"queues"`
	Agents  []WhyLine `json:"agents"`
}

// WhyLine is one queue's or agent's reason.
type WhyLine struct {
	Name   string `json:"name"`
	Queue  string `json:"queue,omitempty"`
	Fits   bool   `json:"fits"`
	Reason string `json:"reason"`
}

// maxWhyAgents bounds the agents listed one by one; the rest are counted
// by reason in the summary.
const maxWhyAgents = 50

// Why explains why a live job waits; false if the job is not live.
func (b *Broker) Why(jobID int64) (Why, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	j, ok := b.jobs[jobID]
	if !ok {
		return Why{}, false
	}
	t := j.task
	now := b.cfg.Now()
	w := Why{JobID: j.id, State: string(j.state), Share: t.share.Path}
	switch {
	case j.state == statePending:
		w.Summary = "waiting for its input files to be staged from tape"
		return w, true
	case j.state == stateAssigned || j.state == stateRunning:
		name := j.cur.AgentName
		if j.agent != nil {
			name = j.agent.name
		}
		w.Summary = fmt.Sprintf("not waiting: %s on agent %s (attempt %d)", j.state, name, j.attempt)
		return w, true
	case j.state == stateReady && !j.queued:
		w.Summary = fmt.Sprintf("waiting out its retry back-off until %s (attempt %d failed: %s)",
			j.readyAt.UTC().Format(time.RFC3339), j.attempt, j.errText)
		return w, true
	}
	w.Queues = b.whyQueues(t)
	counts := map[string]int{}
	var fit int
	unix := now.Unix()
	for _, a := range b.sortedAgents() {
		line := WhyLine{Name: a.name, Queue: a.queue}
		line.Reason, line.Fits = b.whyAgent(a, t, unix)
		if line.Fits {
			fit++
		}
		counts[line.Reason]++
		if len(w.Agents) < maxWhyAgents {
			w.Agents = append(w.Agents, line)
		}
	}
	w.Summary = b.whySummary(j, t, fit, counts, now)
	return w, true
}

func (b *Broker) sortedAgents() []*agentState {
	var out []*agentState
	for _, a := range b.agents {
		// Harvesters and edges hold sessions but take no jobs.
		if a.session != nil && a.kind != wire.KindHarvester && a.kind != wire.KindEdge {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(x, y *agentState) int { return strings.Compare(x.name, y.name) })
	return out
}

func (b *Broker) whyQueues(t *taskState) []WhyLine {
	var out []WhyLine
	for _, name := range slices.Sorted(maps.Keys(b.queues)) {
		q := b.queues[name]
		if t.queue != "" && t.queue != name {
			continue // the task names another queue
		}
		line := WhyLine{Name: name, Reason: queueWhy(q, t)}
		if line.Reason == "" {
			line.Fits = true
			line.Reason = fmt.Sprintf("takes it (%d agents connected, %d jobs running)", q.agents, q.running)
			if q.agents == 0 {
				line.Fits, line.Reason = false, "takes it, but no agent of this queue is connected"
			}
		}
		out = append(out, line)
	}
	if t.queue != "" && len(out) == 0 {
		out = append(out, WhyLine{Name: t.queue, Reason: "the task names this queue, which does not exist"})
	}
	return out
}

// queueWhy says why a queue's agents cannot take a job of t; "" if they can.
func queueWhy(q *queueState, t *taskState) string {
	d := &q.def
	switch q.misfit(t) {
	case qClosed:
		return fmt.Sprintf("queue is %s: it takes no new work", d.Status)
	case qTest:
		return "queue is in test: it takes only tasks that name it"
	case qShare:
		return fmt.Sprintf("queue serves only shares %s, not %s", strings.Join(d.Shares, ", "), t.share.Path)
	case qRunning:
		return fmt.Sprintf("queue at its limit of %d running jobs", d.MaxRunning)
	case qCores:
		return fmt.Sprintf("queue at its limit of %d cores (%d in use, the job needs %d)", d.MaxCores, q.cores, t.res.Cores)
	case qGPUJobs:
		return fmt.Sprintf("queue at its limit of %d GPU jobs", d.MaxGPUJobs)
	}
	return ""
}

// whyAgent says why agent a cannot take a job of t now.
func (b *Broker) whyAgent(a *agentState, t *taskState, now int64) (string, bool) {
	if t.queue != "" && t.queue != a.queue {
		return fmt.Sprintf("agent is in queue %s; the task names %s", a.queue, t.queue), false
	}
	if r := hardwareWhy(a, t); r != "" {
		return r, false
	}
	if r := queueWhy(a.q, t); r != "" {
		return a.queue + ": " + r, false
	}
	if a.deadline != 0 && now+t.res.WalltimeSecs > a.deadline {
		left := time.Duration(max(a.deadline-now, 0)) * time.Second
		return fmt.Sprintf("walltime too long: the job needs %v, the agent has %v left", time.Duration(t.res.WalltimeSecs)*time.Second, left), false
	}
	r := &t.res
	if o := a.reserved; o == t {
		return fmt.Sprintf("draining for this task: the job needs %d cores, %d are free", r.Cores, a.cores), false
	} else if o != nil {
		return fmt.Sprintf("draining for task %d (its jobs need %d cores, %d MiB, %d GPUs): it takes no other work until one fits",
			o.id, o.res.Cores, o.res.MemoryBytes>>20, o.res.GPUs), false
	}
	switch {
	case a.slots < 1:
		return fmt.Sprintf("busy: all its slots are taken (%d jobs running)", len(a.jobs)), false
	case r.Cores > a.cores:
		return fmt.Sprintf("busy: the job needs %d cores, %d are free", r.Cores, a.cores), false
	case r.MemoryBytes > a.memory:
		return fmt.Sprintf("busy: the job needs %d MiB of memory, %d MiB are free", r.MemoryBytes>>20, a.memory>>20), false
	case r.GPUs > a.gpus:
		return fmt.Sprintf("busy: the job needs %d GPUs, %d are free", r.GPUs, a.gpus), false
	}
	return "fits now: it goes at the next assignment", true
}

// hardwareWhy says which of t's needs a's node can never meet; "" if none.
func hardwareWhy(a *agentState, t *taskState) string {
	res, r := &a.res, &t.res
	switch hardwareMisfit(res, t) {
	case hwCores:
		return fmt.Sprintf("node too small: the job needs %d cores, the node has %d", r.Cores, res.Cores)
	case hwMemory:
		return fmt.Sprintf("node too small: the job needs %d MiB of memory, the node has %d MiB", r.MemoryBytes>>20, res.MemoryBytes>>20)
	case hwGPUCount:
		return fmt.Sprintf("not enough GPUs: the job needs %d, the node has %d", r.GPUs, len(res.GPUs))
	case hwGPUFit:
		return fmt.Sprintf("no GPU that fits: the job needs %d GPUs with %s; the node's: %s", r.GPUs, gpuNeeds(t), gpuList(res))
	case hwAccel:
		return fmt.Sprintf("no %s accelerator on the node", t.accel)
	case hwArch:
		return fmt.Sprintf("wrong architecture: the job needs %s, the node is %s", t.arch, res.Arch)
	case hwRuntime:
		return "no container runtime: the job has an image and the agent does not run podman"
	}
	return ""
}

func gpuNeeds(t *taskState) string {
	var parts []string
	if t.gpuModel != nil {
		parts = append(parts, fmt.Sprintf("model matching /%s/", t.gpuModel))
	}
	if t.res.GPUMemory > 0 {
		parts = append(parts, fmt.Sprintf("at least %d MiB", t.res.GPUMemory>>20))
	}
	if t.gpuCompute > 0 {
		parts = append(parts, fmt.Sprintf("compute capability %d.%d or more", t.gpuCompute/100, t.gpuCompute%100))
	}
	return strings.Join(parts, ", ")
}

func gpuList(res *wire.Resources) string {
	var parts []string
	for _, g := range res.GPUs {
		parts = append(parts, fmt.Sprintf("%s (%d MiB, %d.%d)", g.Model, g.MemoryBytes>>20, g.ComputeMajor, g.ComputeMinor))
	}
	return strings.Join(parts, "; ")
}

// whySummary sums up: the reason most agents give, and where the job's
// share stands.
func (b *Broker) whySummary(j *jobState, t *taskState, fit int, counts map[string]int, now time.Time) string {
	var parts []string
	if len(counts) == 0 {
		parts = append(parts, "no agent is connected")
	} else if fit == 0 {
		reasons := make([]string, 0, len(counts))
		for r := range counts {
			reasons = append(reasons, r)
		}
		slices.SortFunc(reasons, func(x, y string) int { return counts[y] - counts[x] })
		for i, r := range reasons {
			if i == 3 {
				parts = append(parts, fmt.Sprintf("%d more reasons", len(reasons)-3))
				break
			}
			parts = append(parts, fmt.Sprintf("%d agents: %s", counts[r], r))
		}
	}
	n := t.share
	parts = append(parts, fmt.Sprintf("share %s has achieved %.1f%% against a target of %.1f%% of its parent",
		n.Path, b.shares.Achieved(n, now), n.Target()))
	if ahead := b.aheadInShare(t); ahead > 0 {
		parts = append(parts, fmt.Sprintf("%d ready jobs of higher rank wait before it in its share", ahead))
	}
	return strings.Join(parts, "; ")
}

// aheadInShare counts the ready jobs of tasks ranked before t in t's share.
func (b *Broker) aheadInShare(t *taskState) int {
	lt := b.index.leaves[t.share]
	if lt == nil {
		return 0
	}
	n := 0
	for _, ts := range lt.queues {
		for _, o := range ts.tasks() {
			if o != t && before(o, t) {
				n += o.nready
			}
		}
	}
	return n
}
