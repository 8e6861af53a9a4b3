package podman

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containers/podman/v5/pkg/bindings/containers"
	"golang.org/x/sys/unix"

	pc "github.com/pando-wms/pando/containers"
)

type container struct {
	rt   *Runtime
	id   string
	spec pc.Spec

	mu      sync.Mutex
	started bool
	removed bool
	oom     *oomWatch
	lastCPU uint64 // ns, at the last Stats call
	lastAt  time.Time

	waited  chan struct{} // closed when the exit is known and output delivered
	exit    pc.Exit
	waitErr error
	outDone chan struct{} // closed when the attach stream ended
}

func (c *container) ID() string { return c.id }

// Start attaches to the container's output, then starts it, so that no
// output is lost however short the payload.
func (c *container) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.removed:
		return pc.ErrRemoved
	case c.started:
		return pc.ErrAlreadyStarted
	}
	ready := make(chan bool, 1)
	attachErr := make(chan error, 1)
	go func() {
		defer close(c.outDone)
		stream := true
		err := containers.Attach(c.rt.call(context.Background()), c.id, nil, writerOrDiscard(c.spec.Stdout), writerOrDiscard(c.spec.Stderr),
			ready, &containers.AttachOptions{Stream: &stream})
		if err != nil {
			attachErr <- err
		}
	}()
	select {
	case <-ready:
	case err := <-attachErr:
		return classify(err, "attach")
	case <-ctx.Done():
		return ctx.Err()
	}
	// Initialise first: the cgroup then exists and the OOM watch is in place
	// before the payload runs, however fast it runs out of memory.
	// Attaching may have initialised it already ("state improper"): fine.
	if err := containers.ContainerInit(c.rt.call(ctx), c.id, nil); err != nil && !strings.Contains(err.Error(), "state improper") {
		// The attach stream ends with the container; remove is the caller's.
		return classify(err, "start")
	}
	cgroup := ""
	if data, err := containers.Inspect(c.rt.call(ctx), c.id, nil); err == nil && data.State != nil {
		// Podman fills CgroupPath only once the container runs; the
		// initialised container's process already sits in its cgroup.
		cgroup = memoryCgroup(data.State.Pid)
	}
	oom := watchOOM(cgroup)
	if err := containers.Start(c.rt.call(ctx), c.id, nil); err != nil {
		oom.stop()
		return classify(err, "start")
	}
	c.started, c.oom = true, oom
	go c.await()
	return nil
}

// await learns the exit and waits for the output to drain.
func (c *container) await() {
	defer close(c.waited)
	ctx := c.rt.call(context.Background())
	code, err := containers.Wait(ctx, c.id, &containers.WaitOptions{Conditions: []string{"exited", "stopped"}})
	<-c.outDone
	oom := err == nil && code == 137 && c.oom.oom()
	c.oom.stop()
	if err != nil {
		c.waitErr = classify(err, "wait")
		return
	}
	c.exit = pc.Exit{Code: int(code), OOM: oom}
	if code > 128 && code < 128+65 {
		// The shell's convention, which podman follows: 128+N is death by signal N.
		c.exit.Signal = unix.SignalName(syscall.Signal(code - 128))
	}
}

func (c *container) Wait(ctx context.Context) (pc.Exit, error) {
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if !started {
		return pc.Exit{}, pc.ErrNotStarted
	}
	select {
	case <-c.waited:
		return c.exit, c.waitErr
	case <-ctx.Done():
		return pc.Exit{}, ctx.Err()
	}
}

func (c *container) Stats(ctx context.Context) (pc.Stats, error) {
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if !started {
		return pc.Stats{}, pc.ErrNotStarted
	}
	stream := false
	ch, err := containers.Stats(c.rt.call(ctx), []string{c.id}, &containers.StatsOptions{Stream: &stream})
	if err != nil {
		return pc.Stats{}, classify(err, "stats")
	}
	var rep *pc.Stats
	for r := range ch { // drain: the bindings' goroutine ends when the channel is read out
		if rep != nil || r.Error != nil || len(r.Stats) == 0 {
			if r.Error != nil && rep == nil {
				err = r.Error
			}
			continue
		}
		s := r.Stats[0]
		rep = &pc.Stats{CPUSeconds: float64(s.CPUNano) / 1e9, RSSBytes: int64(s.MemUsage), PIDs: int(s.PIDs)}
		now := time.Now()
		c.mu.Lock()
		if !c.lastAt.IsZero() && now.After(c.lastAt) && s.CPUNano >= c.lastCPU {
			rep.CPUPercent = float64(s.CPUNano-c.lastCPU) / float64(now.Sub(c.lastAt).Nanoseconds()) * 100
		}
		c.lastCPU, c.lastAt = s.CPUNano, now
		c.mu.Unlock()
	}
	if rep == nil {
		if err == nil {
			err = errors.New("no stats returned")
		}
		return pc.Stats{}, classify(err, "stats")
	}
	return *rep, nil
}

// Kill signals every process of the container; the payload's PID 1 gets
// the signal as it is, so a shell can trap it.
func (c *container) Kill(ctx context.Context, sig syscall.Signal) error {
	c.mu.Lock()
	if !c.started {
		c.mu.Unlock()
		return pc.ErrNotStarted
	}
	c.mu.Unlock()
	select {
	case <-c.waited:
		return nil // already ended
	default:
	}
	name := unix.SignalName(sig)
	if err := containers.Kill(c.rt.call(ctx), c.id, &containers.KillOptions{Signal: &name}); err != nil {
		select {
		case <-c.waited:
			return nil // it ended meanwhile
		default:
		}
		if strings.Contains(err.Error(), "not running") || strings.Contains(err.Error(), "state improper") {
			return nil
		}
		return classify(err, "kill")
	}
	return nil
}

// Remove kills the container if it runs, waits for its output, and removes it.
func (c *container) Remove(ctx context.Context) error {
	c.mu.Lock()
	if c.removed {
		c.mu.Unlock()
		return nil
	}
	c.removed = true
	started := c.started
	c.mu.Unlock()
	force, ignore, timeout := true, true, uint(0)
	_, err := containers.Remove(c.rt.call(ctx), c.id, &containers.RemoveOptions{Force: &force, Ignore: &ignore, Timeout: &timeout})
	if started {
		select {
		case <-c.waited:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err != nil {
		return classify(err, "remove")
	}
	return nil
}

// writerOrDiscard wraps w in a pointer: the bindings test writers with
// reflect's IsNil, which panics on struct values such as io.Discard.
func writerOrDiscard(w io.Writer) io.Writer {
	if w == nil {
		w = io.Discard
	}
	return &writer{w}
}

type writer struct{ w io.Writer }

func (w *writer) Write(p []byte) (int, error) { return w.w.Write(p) }
