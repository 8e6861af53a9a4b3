package broker

import (
	"github.com/pando-wms/pando/dispatcher/share"
)

// Stats is a snapshot of the broker's counts, for metrics.
type Stats struct {
	Ready   []Count // by the queue the task names ("" : any) and share
	Running []Count // assigned or running, by the agent's queue and share
	Ended   []Count // attempts ended, by the agent's queue and share
	Agents  []Count // connected agents by queue; Share holds the agent kind
	Shares  []share.Status
}

// Count is one labelled number. Failed is used by Ended only.
type Count struct {
	Queue, Share string
	N, Failed    int64
}

type countKey struct{ queue, share string }

// endTally counts ended attempts per queue and share.
type endTally map[countKey]*[2]int64

func (e endTally) add(queue, share string, ok bool) {
	c := e[countKey{queue, share}]
	if c == nil {
		c = new([2]int64)
		e[countKey{queue, share}] = c
	}
	if ok {
		c[0]++
	} else {
		c[1]++
	}
}

// Stats returns the current counts. It walks tasks, agents and their jobs:
// call it at scrape intervals, not per job.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	var st Stats
	ready := map[countKey]int64{}
	for _, t := range b.tasks {
		if t.nready > 0 {
			ready[countKey{t.queue, t.share.Path}] += int64(t.nready)
		}
	}
	running := map[countKey]int64{}
	agents := map[countKey]int64{}
	for _, a := range b.agents {
		if a.session != nil {
			agents[countKey{a.queue, a.kind}]++
		}
		for _, j := range a.jobs {
			q := a.queue
			if j.runQ != nil {
				q = j.runQ.def.Name
			}
			running[countKey{q, j.task.share.Path}]++
		}
	}
	st.Ready, st.Running, st.Agents = counts(ready), counts(running), counts(agents)
	for k, c := range b.ended {
		st.Ended = append(st.Ended, Count{Queue: k.queue, Share: k.share, N: c[0], Failed: c[1]})
	}
	st.Shares = b.shares.Report(b.cfg.Now())
	return st
}

func counts(m map[countKey]int64) []Count {
	out := make([]Count, 0, len(m))
	for k, n := range m {
		out = append(out, Count{Queue: k.queue, Share: k.share, N: n})
	}
	return out
}
