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
	queues map[string]*taskList
}

// taskList is a rank-ordered list of tasks. Tasks leave mostly from the
// front (the best runs dry first) and arrive mostly at the back (aging
// ranks newer tasks lower), so the list keeps a head offset: taking the
// front is O(1), not a copy of the whole backlog.
type taskList struct {
	ts   []*taskState
	head int
}

// tasks returns the live part of the list, best first.
func (l *taskList) tasks() []*taskState {
	if l == nil {
		return nil
	}
	return l.ts[l.head:]
}

func (l *taskList) len() int { return len(l.ts) - l.head }

func (l *taskList) insert(t *taskState) {
	q := l.ts[l.head:]
	i := l.head + sort.Search(len(q), func(i int) bool { return before(t, q[i]) })
	if i == l.head && l.head > 0 { // a new best task: reuse the freed front
		l.head--
		l.ts[l.head] = t
		return
	}
	l.ts = append(l.ts, nil)
	copy(l.ts[i+1:], l.ts[i:])
	l.ts[i] = t
}

func (l *taskList) remove(t *taskState) {
	q := l.ts[l.head:]
	if len(q) > 0 && q[0] == t {
		l.ts[l.head] = nil
		l.head++
	} else {
		for i, o := range q {
			if o == t {
				copy(q[i:], q[i+1:])
				l.ts[len(l.ts)-1] = nil
				l.ts = l.ts[:len(l.ts)-1]
				break
			}
		}
	}
	if l.head > 32 && l.head > len(l.ts)/2 { // compact now and then
		n := copy(l.ts, l.ts[l.head:])
		clear(l.ts[n:])
		l.ts, l.head = l.ts[:n], 0
	}
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
		lt = &leafTasks{queues: make(map[string]*taskList)}
		x.leaves[t.share] = lt
	}
	q := lt.queues[t.queue]
	if q == nil {
		q = &taskList{}
		lt.queues[t.queue] = q
	}
	q.insert(t)
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
	q.remove(t)
	if q.len() == 0 {
		delete(lt.queues, t.queue)
		if len(lt.queues) == 0 {
			delete(x.leaves, t.share)
		}
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
		for _, t := range lt.queues[q].tasks() {
			f(t)
		}
		if q != "" {
			for _, t := range lt.queues[""].tasks() {
				f(t)
			}
		}
	}
}
