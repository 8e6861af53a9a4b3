package broker

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pando-wms/pando/dispatcher/queue"
	"github.com/pando-wms/pando/dispatcher/share"
	"github.com/pando-wms/pando/dispatcher/wire"
)

// queueState is a queue's definition and what its agents hold now.
type queueState struct {
	def                     queue.Queue
	running, cores, gpuJobs int // jobs assigned to or running on its agents
	agents                  int // connected
	done, failed            int64
	// blocked: a match was refused for one of its limits since a job of
	// it last ended.
	blocked bool
}

// qMisfit names why a queue's agents cannot take a job now.
type qMisfit int

const (
	qOK      qMisfit = iota
	qClosed          // draining or offline
	qTest            // in test, and the task does not name it
	qShare           // it does not serve the task's share
	qRunning         // at max_running (this and the next: limits)
	qCores           // max_cores
	qGPUJobs         // max_gpu_jobs
)

// limit reports whether m is one of the queue's limits, which free up as
// its jobs end.
func (m qMisfit) limit() bool { return m >= qRunning }

// misfit says whether q's agents may take one more job of t. Matching and
// why share it.
func (q *queueState) misfit(t *taskState) qMisfit {
	d, r := &q.def, &t.res
	switch {
	case !d.Open():
		return qClosed
	case d.Status == queue.Test && t.queue != d.Name:
		return qTest
	case !d.Serves(t.share.Path):
		return qShare
	case d.MaxRunning > 0 && q.running >= d.MaxRunning:
		return qRunning
	case d.MaxCores > 0 && q.cores+r.Cores > d.MaxCores:
		return qCores
	case d.MaxGPUJobs > 0 && r.GPUs > 0 && q.gpuJobs >= d.MaxGPUJobs:
		return qGPUJobs
	}
	return qOK
}

// takes reports whether the queue's agents may take work of t at all,
// limits aside.
func (q *queueState) takes(t *taskState) bool {
	m := q.misfit(t)
	return m == qOK || m.limit()
}

// reaches reports whether the share at path is, or leads to, a share the
// queue serves.
func (q *queueState) reaches(path string) bool {
	if path == "" || len(q.def.Shares) == 0 || q.def.Serves(path) {
		return true
	}
	return slices.ContainsFunc(q.def.Shares, func(s string) bool { return strings.HasPrefix(s, path+"/") })
}

// count adds (d = 1) or removes (d = -1) one job of r.
func (q *queueState) count(r *wire.JobResources, d int) {
	q.running += d
	q.cores += d * r.Cores
	if r.GPUs > 0 {
		q.gpuJobs += d
	}
}

// PutQueue creates or replaces a queue's definition (already normalized).
// Its agents follow the new definition at once: limits and status apply to
// their next assignment, and a reopened queue's agents get work.
func (b *Broker) PutQueue(def queue.Queue) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, ok := b.queues[def.Name]
	if !ok {
		q = &queueState{}
		b.queues[def.Name] = q
	}
	q.def = def
	q.def.Shares, q.def.Labels = slices.Clone(def.Shares), maps.Clone(def.Labels)
	b.feedHungry(def.Name)
}

// QueueInfo is a queue with what its agents hold now.
type QueueInfo struct {
	queue.Queue
	Agents     int   `json:"agents"`
	Running    int   `json:"running"`
	Cores      int   `json:"running_cores"`
	GPUJobs    int   `json:"running_gpu_jobs"`
	Ready      int   `json:"ready"` // ready jobs its agents could take (work that names it or no queue)
	Finished   int64 `json:"finished"`
	FailedJobs int64 `json:"failed"`
}

// Queue returns one queue.
func (b *Broker) Queue(name string) (QueueInfo, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, ok := b.queues[name]
	if !ok {
		return QueueInfo{}, false
	}
	return b.queueInfo(q), true
}

// Queues lists the queues by name.
func (b *Broker) Queues() []QueueInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]QueueInfo, 0, len(b.queues))
	for _, q := range b.queues {
		out = append(out, b.queueInfo(q))
	}
	slices.SortFunc(out, func(x, y QueueInfo) int { return strings.Compare(x.Name, y.Name) })
	return out
}

func (b *Broker) queueInfo(q *queueState) QueueInfo {
	info := QueueInfo{Queue: q.def, Agents: q.agents, Running: q.running, Cores: q.cores,
		GPUJobs: q.gpuJobs, Finished: q.done, FailedJobs: q.failed}
	info.Shares, info.Labels = slices.Clone(q.def.Shares), maps.Clone(q.def.Labels)
	b.index.each(q.def.Name, func(t *taskState) {
		if q.takes(t) {
			info.Ready += t.nready
		}
	})
	return info
}

// QueueNames lists the known queues, for error messages.
func (b *Broker) QueueNames() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Sorted(maps.Keys(b.queues))
}

// HasQueue reports whether a queue of that name exists.
func (b *Broker) HasQueue(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.queues[name]
	return ok
}

// SetShare sets a share's target in percent of its parent.
func (b *Broker) SetShare(path string, target float64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.shares.Set(path, target)
}

// UnsetShare removes a share's explicit target.
func (b *Broker) UnsetShare(path string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.shares.Unset(path)
}

// Shares reports every share's target and achieved fraction.
func (b *Broker) Shares() []share.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.shares.Report(b.cfg.Now())
}

// ErrBadQueue marks an agent refused for its queue (unknown, offline): it
// should not retry until an operator acts.
var ErrBadQueue = errors.New("bad queue")

// queueOf returns the queue an agent joins, or why it may not.
func (b *Broker) queueOf(h *wire.Hello) (*queueState, error) {
	name := h.Queue
	if name == "" {
		name = queue.Default
	}
	q, ok := b.queues[name]
	if !ok {
		return nil, fmt.Errorf("%w: %w: unknown queue %q (an operator creates it with `pando queue create %s`)", ErrAgentRefused, ErrBadQueue, name, name)
	}
	if q.def.Status == queue.Offline && len(h.Running) == 0 {
		return nil, fmt.Errorf("%w: %w: queue %q is offline", ErrAgentRefused, ErrBadQueue, name)
	}
	return q, nil
}

// rankOf is a task's place in its share: priority, plus one point for
// each aging period it has waited since it was created.
func rankOf(priority int, created time.Time, aging time.Duration) float64 {
	if aging <= 0 {
		return float64(priority)
	}
	return float64(priority) - float64(created.UnixNano())/float64(aging)
}

// ShareTarget returns the explicit target of the share at path, if set.
func (b *Broker) ShareTarget(path string) (float64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.shares.Lookup(path)
	if !ok || !n.Explicit() {
		return 0, false
	}
	return n.Target(), true
}

// ShareUsable says whether a task may name the share at path: it exists
// (an operator set it, or it is the default) and has no sub-shares.
func (b *Broker) ShareUsable(path string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if path == share.Default {
		return nil
	}
	n, ok := b.shares.Lookup(path)
	if !ok {
		var known []string
		for _, s := range b.shares.Report(b.cfg.Now()) {
			known = append(known, s.Path)
		}
		return fmt.Errorf("unknown share %q (known: %s)", path, strings.Join(known, ", "))
	}
	if len(n.Children()) > 0 {
		var subs []string
		for _, c := range n.Children() {
			subs = append(subs, c.Path)
		}
		return fmt.Errorf("share %q has sub-shares; name one of %s", path, strings.Join(subs, ", "))
	}
	return nil
}
