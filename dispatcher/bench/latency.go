package bench

import (
	"slices"
	"sync"
	"time"
)

// latencies collects samples; at these rates a mutex is cheap enough.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// reset forgets what was collected so far (say, while agents were still connecting).
func (l *latencies) reset() {
	l.mu.Lock()
	l.d = nil
	l.mu.Unlock()
}

// quantile returns the q-quantile in milliseconds.
func (l *latencies) quantiles(qs ...float64) []float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.Sort(l.d)
	out := make([]float64, len(qs))
	if len(l.d) == 0 {
		return out
	}
	for i, q := range qs {
		k := min(int(q*float64(len(l.d))), len(l.d)-1)
		out[i] = float64(l.d[k]) / float64(time.Millisecond)
	}
	return out
}

func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d)
}
