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
// on q's agents. A queue that is draining or offline has no demand, and
// one that does not exist has none either.
func (b *Broker) Demand(q string, shape wire.JobResources) Demand {
	b.mu.Lock()
	defer b.mu.Unlock()
	var d Demand
	qs, ok := b.queues[q]
	if !ok {
		return d
	}
	d.Running = qs.running
	b.index.each(q, func(t *taskState) {
		r := t.res
		if !qs.takes(t) || r.Cores > shape.Cores || r.MemoryBytes > shape.MemoryBytes || r.GPUs > shape.GPUs ||
			(shape.WalltimeSecs > 0 && r.WalltimeSecs > shape.WalltimeSecs) {
			return
		}
		d.Ready += t.nready
		d.ReadyCores += t.nready * r.Cores
	})
	return d
}
