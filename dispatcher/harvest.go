package dispatcher

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pando-wms/pando/dispatcher/api"
	"github.com/pando-wms/pando/dispatcher/errcode"
	"github.com/pando-wms/pando/dispatcher/wire"
)

// harvesterStreams is the stream key a harvester's session always
// expects: it never settles, so the session's stream acceptor keeps running
// for the harvester's queries.
var harvesterStreams = wire.RunningJob{JobID: -1}

// workerSets holds what each harvester last reported of its workers, per
// queue. It lives in memory: harvesters report every cycle.
type workerSets struct {
	mu   sync.Mutex
	sets map[[2]string]workerSet // harvester agent ID, queue
}

type workerSet struct {
	harvester string // its name
	batch     string
	updated   time.Time
	workers   []wire.WorkerState
}

// harvest answers a harvester's demand query or stores its worker report.
func (s *Server) harvest(ss *session, m wire.Message) wire.Message {
	if ss.hello.Kind != wire.KindHarvester {
		msg := "only harvesters ask for demand and report workers"
		if _, ok := m.(*wire.DemandQuery); ok {
			return &wire.Demand{Code: int(errcode.DispatcherStale), Message: msg}
		}
		return &wire.Ack{Code: int(errcode.DispatcherStale), Message: msg}
	}
	switch m := m.(type) {
	case *wire.DemandQuery:
		if !s.broker.HasQueue(m.Queue) {
			return &wire.Demand{Code: int(errcode.DispatcherBadQueue),
				Message: fmt.Sprintf("unknown queue %q: an operator creates it with `pando queue create %s --kind hpc`", m.Queue, m.Queue)}
		}
		d := s.broker.Demand(m.Queue, wire.JobResources{Cores: m.Cores, MemoryBytes: m.MemoryBytes, WalltimeSecs: m.WalltimeSecs, GPUs: m.GPUs})
		return &wire.Demand{Ready: d.Ready, ReadyCores: d.ReadyCores, Running: d.Running}
	case *wire.WorkerReport:
		s.workers.mu.Lock()
		if s.workers.sets == nil {
			s.workers.sets = map[[2]string]workerSet{}
		}
		s.workers.sets[[2]string{ss.hello.AgentID, m.Queue}] = workerSet{harvester: ss.hello.Name, batch: m.Batch,
			updated: time.Now(), workers: m.Workers}
		s.workers.mu.Unlock()
		return &wire.Ack{}
	}
	return &wire.Ack{Code: int(errcode.DispatcherStale), Message: "unexpected message"}
}

// Workers lists the workers harvesters reported, of one queue or all.
func (s *Server) Workers(queue string) []api.Worker {
	s.workers.mu.Lock()
	defer s.workers.mu.Unlock()
	var out []api.Worker
	for k, set := range s.workers.sets {
		if queue != "" && k[1] != queue {
			continue
		}
		for _, w := range set.workers {
			out = append(out, api.Worker{Harvester: set.harvester, Queue: k[1], Batch: set.batch, Name: w.Name,
				BatchID: w.BatchID, State: w.State, Reason: w.Reason, ExitCode: w.ExitCode,
				Submitted: time.Unix(w.SubmittedUnix, 0).UTC(), Updated: time.Unix(w.UpdatedUnix, 0).UTC(), Reported: set.updated.UTC()})
		}
	}
	slices.SortFunc(out, func(a, b api.Worker) int {
		if c := a.Submitted.Compare(b.Submitted); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out
}
