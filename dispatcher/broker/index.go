package broker

import (
	"sort"

	"github.com/pando-wms/pando/dispatcher/share"
)

// readyIndex holds the tasks that have ready jobs, by share and then by
// queue, each list in rank order (priority with aging, then age). Jobs of
// one task share their resource shape, so matching scans tasks, not jobs:
// a few hundred entries even when millions of jobs wait.
type readyIndex struct {
	leaves   map[*share.Node]*leafTasks
	perQueue map[string]int // indexed tasks by task queue
	gpuTasks int            // indexed tasks whose jobs need GPUs
}

// leafTasks are one share's indexed tasks by queue ("" : tasks that name none).
type leafTasks struct {
	queues map[string][]*taskState
}

func newReadyIndex() *readyIndex {
	return &readyIndex{leaves: make(map[*share.Node]*leafTasks), perQueue: make(map[string]int)}
}

// before orders tasks: higher rank first, then the older.
func before(a, b *taskState) bool {
	if a.rank != b.rank {
		return a.rank > b.rank
	}
	return a.id < b.id
}

// push adds j to its task's ready list, indexing the task if needed.
func (x *readyIndex) push(j *jobState) {
	t := j.task
	t.ready = append(t.ready, j)
	if t.indexed {
		return
	}
	lt := x.leaves[t.share]
	if lt == nil {
		lt = &leafTasks{queues: make(map[string][]*taskState)}
		x.leaves[t.share] = lt
	}
	q := lt.queues[t.queue]
	i := sort.Search(len(q), func(i int) bool { return before(t, q[i]) })
	q = append(q, nil)
	copy(q[i+1:], q[i:])
	q[i] = t
	lt.queues[t.queue] = q
	t.indexed = true
	t.share.AddReady(1)
	x.perQueue[t.queue]++
	if t.res.GPUs > 0 {
		x.gpuTasks++
	}
}

// pop takes the oldest ready job of t, unindexing t when it runs dry.
func (x *readyIndex) pop(t *taskState) *jobState {
	for len(t.ready) > 0 {
		j := t.ready[0]
		t.ready[0] = nil
		t.ready = t.ready[1:]
		if j.state == stateReady && j.queued {
			j.queued = false
			t.nready--
			if len(t.ready) == 0 {
				x.unindex(t)
			}
			return j
		}
	}
	x.unindex(t)
	return nil
}

// unindex removes t from its share's lists. Jobs still in t.ready that were
// killed meanwhile are skipped lazily by pop.
func (x *readyIndex) unindex(t *taskState) {
	if !t.indexed {
		return
	}
	t.ready = nil
	lt := x.leaves[t.share]
	q := lt.queues[t.queue]
	for i, o := range q {
		if o == t {
			copy(q[i:], q[i+1:])
			q[len(q)-1] = nil
			q = q[:len(q)-1]
			break
		}
	}
	if len(q) == 0 {
		delete(lt.queues, t.queue)
		if len(lt.queues) == 0 {
			delete(x.leaves, t.share)
		}
	} else {
		lt.queues[t.queue] = q
	}
	t.indexed = false
	t.share.AddReady(-1)
	if x.perQueue[t.queue]--; x.perQueue[t.queue] == 0 {
		delete(x.perQueue, t.queue)
	}
	if t.res.GPUs > 0 {
		x.gpuTasks--
	}
}

// empty reports whether no ready work exists that an agent of queue q may take.
func (x *readyIndex) empty(q string) bool {
	return x.perQueue[q] == 0 && x.perQueue[""] == 0
}

// any reports whether any queue holds ready work.
func (x *readyIndex) any() bool { return len(x.perQueue) > 0 }

// each calls f for every indexed task an agent of queue q may take, in no
// particular order.
func (x *readyIndex) each(q string, f func(*taskState)) {
	for _, lt := range x.leaves {
		for _, t := range lt.queues[q] {
			f(t)
		}
		if q != "" {
			for _, t := range lt.queues[""] {
				f(t)
			}
		}
	}
}
