// Package containers defines how the pilot runs a payload: a Runtime creates a Container from a
// Spec, and the Container is started, watched, measured, killed and removed.
//
// The interface is container-shaped even though its first implementation (process) runs the
// payload as a plain child process: the podman runtime implements it too, and one conformance
// suite (runtimetest) runs against both, so the pilot never knows which one it holds.
package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
)

// Error kinds. Implementations wrap them with %w; callers test them with errors.Is.
var (
	// ErrUnsupported: the Spec asks for something this runtime cannot do.
	ErrUnsupported = errors.New("containers: not supported by this runtime")
	// ErrImageUnsupported: a runtime without images (process) was given one.
	ErrImageUnsupported = fmt.Errorf("%w: container image", ErrUnsupported)
	// ErrInvalidSpec: the Spec itself is wrong (no name, no command, a bad path or variable).
	ErrInvalidSpec = errors.New("containers: invalid spec")
	// ErrNameInUse: another container of this runtime, not yet removed, has the same name.
	ErrNameInUse = errors.New("containers: name in use")
	// ErrNotFound: the command does not exist or is not executable (returned by Start).
	ErrNotFound = errors.New("containers: command not found or not executable")
	// ErrNotStarted: Wait, Stats or Kill on a container that was never started.
	ErrNotStarted = errors.New("containers: not started")
	// ErrAlreadyStarted: Start called a second time.
	ErrAlreadyStarted = errors.New("containers: already started")
	// ErrRemoved: Start after Remove.
	ErrRemoved = errors.New("containers: removed")
	// ErrImageNotFound: the image is not present, could not be pulled, or its archive is missing or bad.
	ErrImageNotFound = errors.New("containers: image not found")
	// ErrUnavailable: the runtime itself cannot be reached (its service is down).
	ErrUnavailable = errors.New("containers: runtime not available")
)

// Mount makes a host path visible to the payload.
type Mount struct {
	Source, Target string
	ReadOnly       bool
}

// Limits are the resources the payload may use. Zero means unlimited.
type Limits struct {
	Cores       int
	MemoryBytes int64
	PIDs        int
}

// Spec describes one payload run.
type Spec struct {
	Name    string            // unique among this runtime's containers, e.g. "pando-42-1"
	Image   string            // container image; runtimes without images refuse a non-empty one
	Command []string          // argv; Command[0] is looked up in the payload's PATH
	Env     map[string]string // the whole environment besides the runtime's minimal base
	WorkDir string            // host directory: the payload's cwd, at the same path in a container
	Mounts  []Mount
	Limits  Limits
	GPUs    []GPU // the GPUs given to the job, all of one vendor; no others are visible where enforceable
	Network bool  // false: no network, where the runtime can enforce it

	// Stdout and Stderr receive the payload's output as it arrives. Nil discards it. They may be
	// the same writer; otherwise they are written from different goroutines.
	Stdout, Stderr io.Writer
}

// GPU is one GPU given to the payload, named as its vendor's software names it.
type GPU struct {
	Vendor string // "nvidia", "amd" or "intel"
	// ID selects it in its vendor's visibility variable on the host. NVIDIA: its UUID
	// ("GPU-…"), or its NVML index where it has none. AMD: "GPU-" and its unique_id, or where
	// it has none its index among the node's AMD GPUs in ROCm's (KFD's) order. Intel: its index
	// among the node's Level Zero devices, cards as devices (ZE_FLAT_DEVICE_HIERARCHY=COMPOSITE).
	ID string
	// FlatIDs are, for Intel, the Level Zero indexes of its tiles, tiles as devices (the FLAT
	// and COMBINED hierarchies); one for a card of one tile.
	FlatIDs []string
	// Devices are the host device nodes a container needs to use it (/dev/kfd,
	// /dev/dri/renderD128, /dev/dri/card1). None for NVIDIA: a CDI name stands for them.
	Devices []string
}

// Exit is how the payload ended.
type Exit struct {
	Code   int    // exit status, or 128+N when killed by signal N
	Signal string // "SIGKILL" when killed by a signal, else empty
	OOM    bool   // killed for exceeding its memory limit, where the runtime can tell
}

// Stats is a sample of the payload's whole process tree.
type Stats struct {
	CPUSeconds float64 // user+system time used so far
	CPUPercent float64 // since the previous Stats call (the first: since start); 100 = one core
	RSSBytes   int64
	PIDs       int
}

// Runtime creates containers. Implementations are safe for concurrent use.
type Runtime interface {
	Name() string
	Create(ctx context.Context, s Spec) (Container, error)
}

// Container is one payload run. Its methods are safe for concurrent use.
type Container interface {
	ID() string
	Start(ctx context.Context) error
	// Wait blocks until the payload ended and all its output was delivered. It may be called
	// several times and from several goroutines; ctx only bounds this call.
	Wait(ctx context.Context) (Exit, error)
	// Stats samples the whole process tree.
	Stats(ctx context.Context) (Stats, error)
	// Kill signals the whole process tree; no error if the payload already exited.
	Kill(ctx context.Context, sig syscall.Signal) error
	// Remove kills the payload if it still runs, waits for it and releases its resources and
	// name. Removing twice is not an error.
	Remove(ctx context.Context) error
}
