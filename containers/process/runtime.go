// Package process is the runtime for sites without a container engine: the payload runs as a
// child process of the pilot, in its own process group, with a minimal environment.
//
// What it cannot do, because it has no namespaces and no cgroups (the hosts run cgroups v1 and the
// pilot has no delegated hierarchy): isolate the filesystem or the network (Network is ignored),
// remap or write-protect mounts (only Source == Target is accepted), hide GPUs (only each
// vendor's variables, CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES, ZE_AFFINITY_MASK and the
// like, tell the payload which are its own; see gpuEnv), enforce
// Limits, or tell an OOM kill from any other SIGKILL (Exit.OOM is always false). Limits are
// recorded only; the pilot's sampler enforces memory from Stats. RLIMIT_AS is deliberately not
// used: it counts virtual memory and breaks JVMs, Go and CUDA programs that reserve large address
// ranges. Limits.PIDs is ignored: RLIMIT_NPROC counts all processes of the user, the pilot's own
// included, not the payload's.
package process

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pando-wms/pando/containers"
)

// DefaultOutputGrace is how long Wait keeps reading output after the payload's process group was
// killed at exit, for a process that left the group (setsid) but still holds the pipes.
const DefaultOutputGrace = 5 * time.Second

// Runtime runs payloads as child processes.
type Runtime struct {
	// OutputGrace overrides DefaultOutputGrace; set it before the first Create.
	OutputGrace time.Duration

	log   *slog.Logger
	mu    sync.Mutex
	names map[string]bool // names of containers not yet removed
}

var _ containers.Runtime = (*Runtime)(nil)

// New returns a process runtime. A nil log means slog.Default().
func New(log *slog.Logger) *Runtime {
	if log == nil {
		log = slog.Default()
	}
	return &Runtime{log: log.With("runtime", "process"), names: map[string]bool{}}
}

// Name implements containers.Runtime.
func (*Runtime) Name() string { return "process" }

// Create checks the spec and reserves its name; nothing runs until Start.
func (r *Runtime) Create(ctx context.Context, s containers.Spec) (containers.Container, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validate(s); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names[s.Name] {
		return nil, fmt.Errorf("process: create %q: %w", s.Name, containers.ErrNameInUse)
	}
	r.names[s.Name] = true
	grace := r.OutputGrace
	if grace <= 0 {
		grace = DefaultOutputGrace
	}
	return newContainer(r, s, grace), nil
}

func (r *Runtime) release(name string) {
	r.mu.Lock()
	delete(r.names, name)
	r.mu.Unlock()
}

func validate(s containers.Spec) error {
	invalid := func(why string) error {
		return fmt.Errorf("process: create %q: %w: %s", s.Name, containers.ErrInvalidSpec, why)
	}
	switch {
	case s.Image != "":
		return fmt.Errorf("process: create %q: %w", s.Name, containers.ErrImageUnsupported)
	case s.Name == "":
		return invalid("no name")
	case len(s.Command) == 0 || s.Command[0] == "":
		return invalid("no command")
	case !filepath.IsAbs(s.WorkDir):
		return invalid("WorkDir must be an absolute path")
	}
	for k, v := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(v, "\x00") {
			return invalid(fmt.Sprintf("environment variable %q", k))
		}
	}
	// Without a mount namespace the payload sees host paths, so only identity mounts can hold.
	for _, m := range s.Mounts {
		if filepath.Clean(m.Source) != filepath.Clean(m.Target) {
			return fmt.Errorf("process: create %q: %w: mount %s at a different path %s",
				s.Name, containers.ErrUnsupported, m.Source, m.Target)
		}
	}
	return nil
}
