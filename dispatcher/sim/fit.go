package sim

import (
	"fmt"
	"regexp"
	"time"

	"github.com/pando-wms/pando/dispatcher/queue"
	"github.com/pando-wms/pando/dispatcher/task"
)

// fitter tells, before the replay, whether any agent of any queue that
// could take a row's jobs could ever run one; if none could, it says why.
// It follows the broker's rules for what it checks (queue status, names
// and shares, cores, memory, GPUs and their model, walltime against a
// pilot's lifetime) so that the jobs it refuses would have waited forever.
type fitter struct {
	queues []Queue
	models map[string]*regexp.Regexp
	memo   map[shape]string
}

// candidates returns the agent groups of the queues that could take r's
// jobs, or why there are none.
func (f *fitter) candidates(r *Row) ([]*Agents, string) {
	var groups []*Agents
	why := ""
	for i := range f.queues {
		q := &f.queues[i]
		if r.Queue != "" && r.Queue != q.Name {
			continue
		}
		why = fmt.Sprintf("no open queue with agents serves share %s", r.Share)
		if !q.Open() || (q.Status == queue.Test && r.Queue != q.Name) || !q.Serves(r.Share) {
			continue
		}
		if q.MaxCores > 0 && int(r.Cores) > q.MaxCores {
			why = fmt.Sprintf("needs %d cores, more than max_cores of queue %s", r.Cores, q.Name)
			continue
		}
		for k := range q.Agents {
			if q.Agents[k].Count > 0 {
				groups = append(groups, &q.Agents[k])
			}
		}
	}
	if why == "" {
		why = fmt.Sprintf("no queue %s", r.Queue)
	}
	return groups, why
}

// shape is what fitting depends on.
type shape struct {
	cores, gpus     int32
	memory          int64
	walltime        time.Duration
	share, q, model string
}

func newFitter(qs []Queue) *fitter {
	return &fitter{queues: qs, models: map[string]*regexp.Regexp{}, memo: map[shape]string{}}
}

// why returns "" if r's jobs can run somewhere, else the reason they can't.
func (f *fitter) why(r *Row) string {
	s := shape{r.Cores, r.GPUs, r.Memory, r.Walltime, r.Share, r.Queue, r.GPUModel}
	if w, ok := f.memo[s]; ok {
		return w
	}
	w := f.check(r)
	f.memo[s] = w
	return w
}

func (f *fitter) check(r *Row) string {
	groups, why := f.candidates(r)
	if len(groups) == 0 {
		return why
	}
	tests := []struct {
		ok   func(a *Agents) bool
		why  string
		seen bool
	}{
		{ok: func(a *Agents) bool { return int(r.Cores) <= a.Cores }, why: fmt.Sprintf("needs %d cores", r.Cores)},
		{ok: func(a *Agents) bool { return a.Memory == 0 || r.Memory <= int64(a.Memory) }, why: "needs " + task.FormatSize(r.Memory) + " of memory"},
		{ok: func(a *Agents) bool { return f.gpusFit(r, a) }, why: f.gpuWhy(r)},
		{ok: func(a *Agents) bool { return lifetimeFits(r, a) }, why: fmt.Sprintf("walltime %v is longer than any pilot's lifetime", r.Walltime)},
	}
	for _, a := range groups {
		all := true
		for i := range tests {
			if tests[i].ok(a) {
				tests[i].seen = true
			} else {
				all = false
			}
		}
		if all {
			return ""
		}
	}
	for _, t := range tests {
		if !t.seen {
			return "no agent fits: " + t.why
		}
	}
	return "no agent fits its cores, memory, GPUs and walltime together"
}

// lifetimeFits reports whether r's walltime fits a fresh pilot of a: the
// broker compares whole seconds.
func lifetimeFits(r *Row, a *Agents) bool {
	return a.Lifetime == 0 || r.Walltime.Truncate(time.Second) <= time.Duration(a.Lifetime).Truncate(time.Second)
}

func (f *fitter) gpusFit(r *Row, a *Agents) bool {
	if r.GPUs == 0 {
		return true
	}
	if int(r.GPUs) > a.GPUs {
		return false
	}
	if r.GPUModel == "" {
		return true
	}
	re, ok := f.models[r.GPUModel]
	if !ok {
		re = regexp.MustCompile(r.GPUModel) // checked when the trace was read
		f.models[r.GPUModel] = re
	}
	return re.MatchString(a.GPUModel)
}

func (f *fitter) gpuWhy(r *Row) string {
	if r.GPUModel == "" {
		return fmt.Sprintf("needs %d GPUs", r.GPUs)
	}
	return fmt.Sprintf("needs %d GPUs matching %q", r.GPUs, r.GPUModel)
}
