package sim

import (
	"strings"
	"time"
)

// stats accumulates what the replay reports.
type stats struct {
	jobs        int64 // in the trace
	ran, killed int64
	first, last time.Duration // first submit, last job end
	usage, gpus float64       // core- and GPU-seconds

	nodes   []shareNode // [0] is the root
	byPath  map[string]int32
	groups  []int32 // nodes with at least two children that had runnable work
	rowNode []int32 // each arrived row's share

	queues  []queueStats
	reasons []Unrunnable
	byWhy   map[string]int
}

// shareNode mirrors a share of the broker's tree with what happened to
// its jobs; counts are of its subtree unless said otherwise.
type shareNode struct {
	path      string
	parent    int32 // -1: the root
	children  []int32
	submitted bool  // had runnable work
	active    int32 // children that had runnable work
	busy      int32 // children with jobs waiting
	waiting   int64
	runCores  int64
	usage     float64 // core-seconds
	contended float64 // core-seconds while every active sibling had jobs waiting
	// Its own jobs (not its children's).
	waits      []float64 // seconds from submit to assignment
	unrunnable int64
}

type queueStats struct {
	agents, cores, gpus int
	jobs                int64
	usage               float64 // core-seconds
}

func newStats(queues, rows int) *stats {
	return &stats{nodes: []shareNode{{parent: -1}}, byPath: map[string]int32{"": 0},
		rowNode: make([]int32, rows), queues: make([]queueStats, queues), byWhy: map[string]int{}}
}

// node returns the share at path, creating it and its parents.
func (st *stats) node(path string) int32 {
	if n, ok := st.byPath[path]; ok {
		return n
	}
	parent := int32(0)
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		parent = st.node(path[:i])
	}
	n := int32(len(st.nodes))
	st.nodes = append(st.nodes, shareNode{path: path, parent: parent})
	st.nodes[parent].children = append(st.nodes[parent].children, n)
	st.byPath[path] = n
	return n
}

// advance integrates usage under contention over the dt that passed.
func (st *stats) advance(dt time.Duration) {
	if dt <= 0 {
		return
	}
	sec := dt.Seconds()
	for _, g := range st.groups {
		p := &st.nodes[g]
		if p.busy != p.active {
			continue
		}
		for _, c := range p.children {
			if n := &st.nodes[c]; n.submitted {
				n.contended += float64(n.runCores) * sec
			}
		}
	}
}

// addWaiting changes the waiting jobs of n and its parents by d.
func (st *stats) addWaiting(n int32, d int64) {
	for n > 0 {
		nd := &st.nodes[n]
		was := nd.waiting > 0
		nd.waiting += d
		if is := nd.waiting > 0; is != was {
			if is {
				st.nodes[nd.parent].busy++
			} else {
				st.nodes[nd.parent].busy--
			}
		}
		n = nd.parent
	}
}

func (st *stats) markSubmitted(n int32) {
	for ; n > 0 && !st.nodes[n].submitted; n = st.nodes[n].parent {
		st.nodes[n].submitted = true
		p := st.nodes[n].parent
		if st.nodes[p].active++; st.nodes[p].active == 2 {
			st.groups = append(st.groups, p)
		}
	}
}

// arrived counts row i's jobs as waiting, or as unrunnable for why.
func (st *stats) arrived(s *simulation, i int, why string) {
	r := &s.rows[i]
	n := st.node(r.Share)
	st.rowNode[i] = n
	if why != "" {
		st.nodes[n].unrunnable += int64(r.Jobs)
		st.unrunnable(why, int64(r.Jobs), 1, int(r.Line))
		return
	}
	st.markSubmitted(n)
	st.addWaiting(n, int64(r.Jobs))
}

func (st *stats) unrunnable(why string, jobs, rows int64, line int) {
	k, ok := st.byWhy[why]
	if !ok {
		k = len(st.reasons)
		st.byWhy[why] = k
		st.reasons = append(st.reasons, Unrunnable{Reason: why, FirstLine: line})
	}
	st.reasons[k].Jobs += jobs
	st.reasons[k].Rows += rows
}

// started counts a job of row i assigned to a now.
func (st *stats) started(s *simulation, i int, a *agent) {
	r := &s.rows[i]
	n := st.rowNode[i]
	st.nodes[n].waits = append(st.nodes[n].waits, (s.now - r.Submit).Seconds())
	st.addWaiting(n, -1)
	for ; n > 0; n = st.nodes[n].parent {
		st.nodes[n].runCores += int64(r.Cores)
	}
	st.queues[a.queue].jobs++
}

// ended counts the job of e, which ran on a, as ended now.
func (st *stats) ended(s *simulation, e event, a *agent) {
	r := &s.rows[e.row]
	run := min(r.Runtime, r.Walltime).Seconds()
	used := float64(r.Cores) * run
	for n := st.rowNode[e.row]; n > 0; n = st.nodes[n].parent {
		st.nodes[n].runCores -= int64(r.Cores)
		st.nodes[n].usage += used
	}
	st.queues[a.queue].usage += used
	st.usage += used
	st.gpus += float64(r.GPUs) * run
	st.ran++
	if e.killed {
		st.killed++
	}
	st.last = max(st.last, s.now)
}

// neverMatched counts the jobs still waiting at the end as unrunnable.
func (st *stats) neverMatched(s *simulation) {
	if s.waiting == 0 {
		return
	}
	for i := 1; i < len(st.nodes); i++ {
		nd := &st.nodes[i]
		own := nd.waiting
		for _, c := range nd.children {
			own -= st.nodes[c].waiting
		}
		nd.unrunnable += own
	}
	st.unrunnable("never matched: still waiting when nothing else could happen", int64(s.waiting), 0, 0)
}
