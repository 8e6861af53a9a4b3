package sim

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Result is what a replay reports. Percentages are 0-100.
type Result struct {
	Jobs             int64 `json:"jobs"` // in the trace
	Ran              int64 `json:"ran"`
	WalltimeExceeded int64 `json:"walltime_exceeded"`
	Unrunnable       int64 `json:"unrunnable"`
	// MakespanS is from the first submit to the last job's end.
	MakespanS float64 `json:"makespan_s"`
	// Utilisation is the cores' (slots') busy time over their time.
	Utilisation    float64 `json:"utilisation"`
	GPUUtilisation float64 `json:"gpu_utilisation"`
	WaitP50S       float64 `json:"wait_p50_s"`
	WaitP95S       float64 `json:"wait_p95_s"`
	Agents         int     `json:"agents"`
	Cores          int     `json:"cores"`
	GPUs           int     `json:"gpus"`

	Shares            []ShareResult `json:"shares"`
	Queues            []QueueResult `json:"queues"`
	UnrunnableReasons []Unrunnable  `json:"unrunnable_reasons"`

	// WallS is the replay's own run time; JobsPerMinWall its rate.
	WallS          float64 `json:"wall_s"`
	JobsPerMinWall float64 `json:"jobs_per_min_wall"`
}

// ShareResult is one share, parents before children. Jobs and waits are
// of its subtree.
type ShareResult struct {
	Path     string  `json:"path"`
	Target   float64 `json:"target"`   // percent of the parent
	Explicit bool    `json:"explicit"` // set in the shares file
	// Achieved is its core-seconds in percent of its parent's.
	Achieved float64 `json:"achieved"`
	// AchievedContended is the same over the time during which every
	// sibling with runnable work had jobs waiting; null if never.
	AchievedContended *float64 `json:"achieved_contended"`
	CoreSeconds       float64  `json:"core_seconds"`
	Jobs              int64    `json:"jobs"` // that ran
	Unrunnable        int64    `json:"unrunnable"`
	WaitP50S          float64  `json:"wait_p50_s"`
	WaitP95S          float64  `json:"wait_p95_s"`
}

// QueueResult is one queue's agents and what they ran.
type QueueResult struct {
	Name        string  `json:"name"`
	Status      string  `json:"status"`
	Agents      int     `json:"agents"`
	Cores       int     `json:"cores"`
	Jobs        int64   `json:"jobs"`
	Utilisation float64 `json:"utilisation"`
}

// Unrunnable is a reason jobs never ran.
type Unrunnable struct {
	Reason    string `json:"reason"`
	Jobs      int64  `json:"jobs"`
	Rows      int64  `json:"rows"`
	FirstLine int    `json:"first_line,omitempty"`
}

func (s *simulation) result(wall time.Duration) *Result {
	st := s.stats
	res := &Result{Jobs: st.jobs, Ran: st.ran, WalltimeExceeded: st.killed,
		WallS: wall.Seconds(), UnrunnableReasons: slices.Clone(st.reasons)}
	if res.UnrunnableReasons == nil {
		res.UnrunnableReasons = []Unrunnable{}
	}
	for _, u := range st.reasons {
		res.Unrunnable += u.Jobs
	}
	slices.SortStableFunc(res.UnrunnableReasons, func(x, y Unrunnable) int { return cmp.Compare(y.Jobs, x.Jobs) })
	if wall > 0 {
		res.JobsPerMinWall = float64(st.jobs) / wall.Minutes()
	}
	span := 0.0
	if st.ran > 0 {
		span = (st.last - st.first).Seconds()
	}
	res.MakespanS = ms(span)
	for qi, q := range s.queues {
		qs := st.queues[qi]
		res.Agents += qs.agents
		res.Cores += qs.cores
		res.GPUs += qs.gpus
		res.Queues = append(res.Queues, QueueResult{Name: q.Name, Status: string(q.Status), Agents: qs.agents,
			Cores: qs.cores, Jobs: qs.jobs, Utilisation: percent(qs.usage, float64(qs.cores)*span)})
	}
	res.Utilisation = percent(st.usage, float64(res.Cores)*span)
	res.GPUUtilisation = percent(st.gpus, float64(res.GPUs)*span)
	all := st.subtreeWaits(0)
	res.WaitP50S, res.WaitP95S = ms(percentile(all, 0.50)), ms(percentile(all, 0.95))
	res.Shares = s.shareResults()
	return res
}

// shareResults lists the broker's shares with the replay's figures.
func (s *simulation) shareResults() []ShareResult {
	st := s.stats
	out := []ShareResult{}
	for _, b := range s.b.Shares() {
		r := ShareResult{Path: b.Path, Target: b.Target, Explicit: b.Explicit}
		if n, ok := st.byPath[b.Path]; ok {
			nd := &st.nodes[n]
			var sum, contended float64
			for _, c := range st.nodes[nd.parent].children {
				sum += st.nodes[c].usage
				contended += st.nodes[c].contended
			}
			r.Achieved = percent(nd.usage, sum)
			if contended > 0 && nd.submitted {
				v := percent(nd.contended, contended)
				r.AchievedContended = &v
			}
			r.CoreSeconds = nd.usage
			waits := st.subtreeWaits(n)
			r.Jobs = int64(len(waits))
			r.Unrunnable = st.subtreeUnrunnable(n)
			r.WaitP50S, r.WaitP95S = ms(percentile(waits, 0.50)), ms(percentile(waits, 0.95))
		}
		out = append(out, r)
	}
	return out
}

// subtreeWaits returns the waits of n's subtree, sorted.
func (st *stats) subtreeWaits(n int32) []float64 {
	var w []float64
	var walk func(n int32)
	walk = func(n int32) {
		w = append(w, st.nodes[n].waits...)
		for _, c := range st.nodes[n].children {
			walk(c)
		}
	}
	walk(n)
	slices.Sort(w)
	return w
}

func (st *stats) subtreeUnrunnable(n int32) int64 {
	u := st.nodes[n].unrunnable
	for _, c := range st.nodes[n].children {
		u += st.subtreeUnrunnable(c)
	}
	return u
}

// percentile is the nearest-rank percentile of sorted values (0 if none).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(k, 0), len(sorted)-1)]
}

// ms rounds seconds to milliseconds, the trace's resolution in practice.
func ms(s float64) float64 { return math.Round(s*1e3) / 1e3 }

func percent(x, of float64) float64 {
	if of <= 0 {
		return 0
	}
	return 100 * x / of
}
