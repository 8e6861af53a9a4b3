package share

import (
	"math"
	"slices"
	"time"
)

// Charge is what a running job counts against its share; End takes it back.
type Charge struct {
	cores, start, expect float64
}

func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// decayTo brings n's ended usage forward to now.
func (t *Tree) decayTo(n *Node, now float64) {
	if now > n.doneAt {
		n.done *= math.Exp(-(now - n.doneAt) / t.tau)
		n.doneAt = now
	}
}

// expectation is the expected length of a job of leaf n.
func (t *Tree) expectation(n *Node) float64 {
	if n.expect > 0 {
		return n.expect
	}
	return t.guess
}

// Start counts a job of cores started now against n and its parents.
func (t *Tree) Start(n *Node, cores int, now time.Time) Charge {
	c := Charge{cores: float64(cores), start: seconds(now), expect: t.expectation(n)}
	for ; n != nil; n = n.parent {
		n.runCores += c.cores
		n.runStart += c.cores * c.start
		n.charge += c.cores * c.expect
	}
	return c
}

// End moves a job from running to ended usage and learns its length.
func (t *Tree) End(n *Node, c Charge, now time.Time) {
	end := seconds(now)
	d := max(end-c.start, 0)
	used := c.cores * d
	if n.expect == 0 {
		n.expect = d
	} else {
		n.expect += ewmaWeight * (d - n.expect)
	}
	t.guess += ewmaWeight * (d - t.guess)
	for ; n != nil; n = n.parent {
		n.runCores -= c.cores
		n.runStart -= c.cores * c.start
		n.charge -= c.cores * c.expect
		t.decayTo(n, end)
		n.done += used
		if n.runCores < epsilon { // clear float dust once nothing runs
			n.runCores, n.runStart, n.charge = 0, 0, 0
		}
	}
}

// Usage is n's usage in core-seconds: ended jobs, decayed, and running
// jobs by their elapsed time.
func (t *Tree) Usage(n *Node, now time.Time) float64 {
	s := seconds(now)
	t.decayTo(n, s)
	return n.done + max(n.runCores*s-n.runStart, 0)
}

// Achieved is n's usage in percent of its siblings' (and its own) total;
// 0 when none of them used anything.
func (t *Tree) Achieved(n *Node, now time.Time) float64 {
	if n.parent == nil {
		return 100
	}
	var sum float64
	for _, c := range n.parent.children {
		sum += t.Usage(c, now)
	}
	if sum <= 0 {
		return 0
	}
	return 100 * t.Usage(n, now) / sum
}

// claim is n's usage for ordering: ended jobs decayed, running jobs by
// their expected length.
func (t *Tree) claim(n *Node, now float64) float64 {
	t.decayTo(n, now)
	return n.done + n.charge
}

// Order appends to buf n's children that have ready work, the one
// furthest below its target first, and returns it. Children with no
// target left come last, least used first.
func (t *Tree) Order(n *Node, now time.Time, buf []*Node) []*Node {
	s := seconds(now)
	buf = buf[:0]
	for _, c := range n.children {
		if c.Ready > 0 {
			buf = append(buf, c)
		}
	}
	if len(buf) < 2 {
		return buf
	}
	ks := t.scratch[:0]
	for _, c := range buf {
		use := t.claim(c, s)
		key := math.Inf(1)
		if tg := c.Target(); tg > 0 {
			key = use / tg
		}
		ks = append(ks, keyed{c, key, use})
	}
	t.scratch = ks
	slices.SortStableFunc(ks, func(a, b keyed) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		case a.use < b.use:
			return -1
		case a.use > b.use:
			return 1
		}
		return 0
	})
	for i := range ks {
		buf[i] = ks[i].n
	}
	return buf
}

type keyed struct {
	n        *Node
	key, use float64
}

// AddReady changes the ready count of n and its parents by d.
func (n *Node) AddReady(d int) {
	for ; n != nil; n = n.parent {
		n.Ready += d
	}
}

// Status is one share as listings show it.
type Status struct {
	Path         string  `json:"path"`
	Target       float64 `json:"target"`   // percent of parent
	Explicit     bool    `json:"explicit"` // set by an operator (else what siblings leave)
	Achieved     float64 `json:"achieved"` // percent of parent's usage
	UsageSeconds float64 `json:"usage_core_seconds"`
	RunningCores float64 `json:"running_cores"`
	ReadyTasks   int     `json:"ready_tasks"`
}

// Report lists every share, parents before children, in path order.
func (t *Tree) Report(now time.Time) []Status {
	var out []Status
	var walk func(n *Node)
	walk = func(n *Node) {
		for _, c := range n.children {
			out = append(out, Status{Path: c.Path, Target: c.Target(), Explicit: c.explicit,
				Achieved: t.Achieved(c, now), UsageSeconds: t.Usage(c, now),
				RunningCores: c.runCores, ReadyTasks: c.Ready})
			walk(c)
		}
	}
	walk(t.root)
	return out
}
