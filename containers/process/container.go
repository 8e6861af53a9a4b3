package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/pando-wms/pando/containers"
)

type container struct {
	rt    *Runtime
	log   *slog.Logger
	spec  containers.Spec
	grace time.Duration
	done  chan struct{} // closed once the payload was reaped and its output delivered

	mu       sync.Mutex
	started  bool
	removed  bool // no Start after this
	released bool // name given back to the runtime
	pid      int
	reaped   bool             // the pid may be reused: never signal it again
	state    *os.ProcessState // set when reaped
	exit     containers.Exit  // valid once done is closed
	waitErr  error            // valid once done is closed
	sampler  sampler          // CPU percent between Stats calls
	startAt  time.Time
}

var _ containers.Container = (*container)(nil)

func newContainer(rt *Runtime, s containers.Spec, grace time.Duration) *container {
	return &container{
		rt:    rt,
		log:   rt.log.With("container", s.Name),
		spec:  s,
		grace: grace,
		done:  make(chan struct{}),
	}
}

func (c *container) ID() string { return c.spec.Name }

// Start runs the payload. The process outlives ctx: ctx only bounds starting it.
func (c *container) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.removed:
		return fmt.Errorf("process: start %q: %w", c.spec.Name, containers.ErrRemoved)
	case c.started:
		return fmt.Errorf("process: start %q: %w", c.spec.Name, containers.ErrAlreadyStarted)
	}
	p, pumps, err := launch(c.spec, c.log)
	if err != nil {
		return fmt.Errorf("process: start %q: %w", c.spec.Name, err)
	}
	c.started, c.pid, c.startAt = true, p.Pid, time.Now()
	c.log.Debug("started", "pid", p.Pid, "command", c.spec.Command)
	go c.supervise(p, pumps)
	return nil
}

func (c *container) Wait(ctx context.Context) (containers.Exit, error) {
	if err := c.checkStarted("wait"); err != nil {
		return containers.Exit{}, err
	}
	select {
	case <-c.done:
		return c.exit, c.waitErr
	case <-ctx.Done():
		return containers.Exit{}, ctx.Err()
	}
}

// Kill signals the payload's process group, which holds the whole tree unless a process left it
// on purpose (setsid).
func (c *container) Kill(_ context.Context, sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		return fmt.Errorf("process: kill %q: %w", c.spec.Name, containers.ErrNotStarted)
	}
	if c.reaped {
		return nil
	}
	// Safe from pid reuse: until reaped is set the leader is alive or a zombie, and its pid,
	// which is the group id, cannot be given to another process.
	err := syscall.Kill(-c.pid, sig)
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("process: kill %q with %v: %w", c.spec.Name, sig, err)
	}
	return nil
}

func (c *container) Remove(ctx context.Context) error {
	c.mu.Lock()
	c.removed = true
	started, released := c.started, c.released
	c.mu.Unlock()
	if released {
		return nil
	}
	if started {
		if err := c.Kill(ctx, syscall.SIGKILL); err != nil {
			return err
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			return fmt.Errorf("process: remove %q: %w", c.spec.Name, ctx.Err())
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.released {
		c.released = true
		c.rt.release(c.spec.Name)
	}
	return nil
}

func (c *container) checkStarted(op string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		return fmt.Errorf("process: %s %q: %w", op, c.spec.Name, containers.ErrNotStarted)
	}
	return nil
}
