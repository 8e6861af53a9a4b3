package sim

import "time"

type eventKind uint8

const (
	jobEnd    eventKind = iota // a job's runtime (or walltime) is over
	agentDone                  // a pilot's lifetime is over
)

// event is something that happens at a simulated time. Events at the same
// time happen in the order they were scheduled.
type event struct {
	at      time.Duration
	seq     uint64
	agent   *agent
	jobID   int64
	row     int32
	attempt int32
	gen     int32 // agentDone: the pilot generation it ends
	kind    eventKind
	killed  bool // jobEnd: killed at its walltime
}

// eventHeap is a binary min-heap of events by (at, seq). It is written
// out rather than using container/heap, which boxes every event.
type eventHeap []event

func (h eventHeap) less(i, k int) bool {
	if h[i].at != h[k].at {
		return h[i].at < h[k].at
	}
	return h[i].seq < h[k].seq
}

func (h *eventHeap) push(e event) {
	*h = append(*h, e)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *eventHeap) pop() event {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = event{}
	s = s[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && s.less(l, m) {
			m = l
		}
		if r := l + 1; r < n && s.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}
