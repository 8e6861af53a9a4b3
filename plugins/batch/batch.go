// Package batch is how a harvester talks to a batch system: submit a
// worker (a pilot in a batch job), follow the states of its workers, cancel
// them. Kinds register in init: local (pilots as plain processes), slurm,
// pbs and htcondor (driven through their command-line tools). One
// conformance suite (batch/batchtest) runs against every kind that can run
// here.
package batch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pando-wms/pando/plugins/registry"
)

// Error kinds. Implementations wrap them with %w.
var (
	// ErrUnavailable: the batch system did not answer (its CLI failed,
	// hung past its timeout, or its daemon is down); retrying may help.
	ErrUnavailable = errors.New("batch: system unavailable")
	// ErrRejected: the batch system refused the job (bad queue, limits).
	ErrRejected = errors.New("batch: submission rejected")
	// ErrConfig: the queue's batch configuration is wrong.
	ErrConfig = errors.New("batch: bad configuration")
)

// State is a worker's state as the harvester tracks it.
type State string

const (
	Queued    State = "queued"    // submitted, waiting in the batch system
	Running   State = "running"   // the batch job runs (its pilot may be connecting)
	Finished  State = "finished"  // ended with exit status 0
	Failed    State = "failed"    // ended otherwise (exit status, node failure, walltime)
	Cancelled State = "cancelled" // cancelled (by the harvester or an administrator)
	Missing   State = "missing"   // the batch system no longer knows it and we never saw it end
)

// Final reports whether s is a final state.
func (s State) Final() bool { return s == Finished || s == Failed || s == Cancelled || s == Missing }

// Worker is one batch job to submit: a pilot with its resources.
type Worker struct {
	Name     string            // a unique name, also the batch job's name
	Command  []string          // the pilot's command line
	Env      map[string]string // added to the job's environment
	Cores    int
	Memory   int64 // bytes
	Walltime time.Duration
	Queue    string // the batch system's queue or partition ("" for its default)
	Dir      string // working and log directory of the job (created by the caller)
}

// Status is what the batch system says about one worker.
type Status struct {
	ID       string
	State    State
	ExitCode int    // final states: the job's exit status, when known
	Reason   string // why it waits or failed, in the batch system's words
}

// System is one batch system. Implementations are safe for concurrent use.
type System interface {
	Kind() string
	// Submit queues w and returns the batch system's ID for it.
	Submit(ctx context.Context, w Worker) (string, error)
	// Status returns the states of the given IDs; an ID the system no
	// longer knows and never reported ended is Missing.
	Status(ctx context.Context, ids []string) (map[string]Status, error)
	// Cancel removes a worker, queued or running. Cancelling one that has
	// already ended is not an error.
	Cancel(ctx context.Context, id string) error
}

// Config configures a batch system (a queue's `batch:` and its options).
type Config struct {
	Kind string
	// Timeout bounds each command (default 30s): a hung CLI is an
	// ErrUnavailable, not a hung harvester.
	Timeout time.Duration
	// Template is a job script template (slurm, pbs, htcondor submit file);
	// empty: the kind's default.
	Template string
	// Bin is a directory holding the batch system's commands (default: PATH).
	Bin string
}

// Factory makes a System from its configuration.
type Factory func(c Config) (System, error)

var kinds = registry.New[Factory]("batch")

// Register makes a kind available; kinds register in init.
func Register(kind string, f Factory) { kinds.Register(kind, f) }

// Kinds lists the registered kinds.
func Kinds() []string { return kinds.Names() }

// New makes a System of c.Kind.
func New(c Config) (System, error) {
	f, ok := kinds.Get(c.Kind)
	if !ok {
		return nil, fmt.Errorf("%w: unknown batch system %q (known: %v)", ErrConfig, c.Kind, Kinds())
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	return f(c)
}
