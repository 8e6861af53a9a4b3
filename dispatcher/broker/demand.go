package broker

import (
	"github.com/pando-wms/pando/dispatcher/wire"
)

// Demand is a queue's ready work that fits one worker of a shape, and the
// jobs its agents run: what a harvester sizes its submissions by.
type Demand struct {
	Ready, ReadyCores, Running int
}

// Demand counts the ready jobs an agent of queue q with the given shape
// could take (jobs of q and jobs that name no queue), and the jobs running
// on q's agents.
func (b *Broker) Demand(q string, shape wire.JobResources) Demand {
	b.mu.Lock()
	defer b.mu.Unlock()
	var d Demand
	for _, t := range b.index.candidates(q, nil) {
		r := t.res
		if r.Cores > shape.Cores || r.MemoryBytes > shape.MemoryBytes || r.GPUs > shape.GPUs ||
			(shape.WalltimeSecs > 0 && r.WalltimeSecs > shape.WalltimeSecs) {
			continue
		}
		for _, j := range t.ready {
			if j.state == stateReady && j.queued {
				d.Ready++
				d.ReadyCores += r.Cores
			}
		}
	}
	for _, a := range b.agents {
		if a.queue == q && a.session != nil {
			d.Running += len(a.jobs)
		}
	}
	return d
}
