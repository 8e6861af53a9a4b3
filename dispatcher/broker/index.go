package broker

import "sort"

// readyIndex orders, per queue, the tasks that have ready jobs: priority
// first, then age (lower task ID). Jobs of one task share their resource
// shape, so matching scans tasks, not jobs: a few hundred entries even when
// millions of jobs wait.
type readyIndex struct {
	queues map[string][]*taskState
}

func newReadyIndex() *readyIndex { return &readyIndex{queues: make(map[string][]*taskState)} }

func before(a, b *taskState) bool {
	if a.priority != b.priority {
		return a.priority > b.priority
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
	q := x.queues[t.queue]
	i := sort.Search(len(q), func(i int) bool { return before(t, q[i]) })
	q = append(q, nil)
	copy(q[i+1:], q[i:])
	q[i] = t
	x.queues[t.queue] = q
	t.indexed = true
}

// pop takes the oldest ready job of t, unindexing t when it runs dry.
func (x *readyIndex) pop(t *taskState) *jobState {
	for len(t.ready) > 0 {
		j := t.ready[0]
		t.ready[0] = nil
		t.ready = t.ready[1:]
		if j.state == stateReady && j.queued {
			j.queued = false
			if len(t.ready) == 0 {
				x.unindex(t)
			}
			return j
		}
	}
	x.unindex(t)
	return nil
}

// unindex removes t from its queue's list. Jobs still in t.ready that were
// killed meanwhile are skipped lazily by pop.
func (x *readyIndex) unindex(t *taskState) {
	if !t.indexed {
		return
	}
	t.ready = nil
	q := x.queues[t.queue]
	for i, o := range q {
		if o == t {
			copy(q[i:], q[i+1:])
			q[len(q)-1] = nil
			q = q[:len(q)-1]
			break
		}
	}
	if len(q) == 0 {
		delete(x.queues, t.queue)
	} else {
		x.queues[t.queue] = q
	}
	t.indexed = false
}

// candidates returns the indexed tasks an agent of queue q may take, in
// order: tasks of queue q and tasks that name no queue, merged.
func (x *readyIndex) candidates(q string, buf []*taskState) []*taskState {
	a, b := x.queues[q], x.queues[""]
	if q == "" {
		b = nil
	}
	buf = buf[:0]
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || (len(a) > 0 && before(a[0], b[0])):
			buf, a = append(buf, a[0]), a[1:]
		default:
			buf, b = append(buf, b[0]), b[1:]
		}
	}
	return buf
}

// empty reports whether no ready work exists that an agent of queue q may take.
func (x *readyIndex) empty(q string) bool {
	return len(x.queues[q]) == 0 && len(x.queues[""]) == 0
}

// any reports whether any queue holds ready work.
func (x *readyIndex) any() bool { return len(x.queues) > 0 }
