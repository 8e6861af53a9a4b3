// Package local is the batch kind that runs workers as processes on this
// machine: for laptops, tests and login nodes that may run pilots
// themselves. Its workers do not outlive the harvester's process: after a
// restart they are Missing.
package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pando-wms/pando/plugins/batch"
)

func init() {
	batch.Register("local", func(c batch.Config) (batch.System, error) {
		return &System{jobs: map[string]*job{}}, nil
	})
}

// System runs workers as child processes, each in its own process group.
type System struct {
	mu   sync.Mutex
	next int
	jobs map[string]*job
}

type job struct {
	cmd       *exec.Cmd
	done      chan struct{}
	exit      int
	cancelled bool
	timedOut  bool
}

func (s *System) Kind() string { return "local" }

func (s *System) Submit(ctx context.Context, w batch.Worker) (string, error) {
	if len(w.Command) == 0 {
		return "", fmt.Errorf("%w: worker %s has no command", batch.ErrRejected, w.Name)
	}
	out, err := os.Create(filepath.Join(w.Dir, w.Name+".out"))
	if err != nil {
		return "", fmt.Errorf("local: worker output: %w", err)
	}
	cmd := exec.Command(w.Command[0], w.Command[1:]...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = w.Dir, out, out
	cmd.Env = os.Environ()
	for k, v := range w.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return "", fmt.Errorf("%w: start %s: %v", batch.ErrRejected, w.Command[0], err)
	}
	out.Close()
	j := &job{cmd: cmd, done: make(chan struct{})}
	s.mu.Lock()
	s.next++
	id := strconv.Itoa(s.next)
	s.jobs[id] = j
	s.mu.Unlock()
	var timer *time.Timer
	if w.Walltime > 0 { // as a batch system would: killed at its walltime
		timer = time.AfterFunc(w.Walltime, func() {
			s.mu.Lock()
			j.timedOut = true
			s.mu.Unlock()
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		})
	}
	go func() {
		err := cmd.Wait()
		if timer != nil {
			timer.Stop()
		}
		s.mu.Lock()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			j.exit = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				j.exit = 128 + int(ws.Signal())
			}
		case err != nil:
			j.exit = -1
		}
		s.mu.Unlock()
		close(j.done)
	}()
	return id, nil
}

func (s *System) Status(_ context.Context, ids []string) (map[string]batch.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := make(map[string]batch.Status, len(ids))
	for _, id := range ids {
		j, ok := s.jobs[id]
		st := batch.Status{ID: id}
		switch {
		case !ok:
			st.State, st.Reason = batch.Missing, "not started by this harvester process"
		case !isDone(j):
			st.State = batch.Running
		case j.cancelled:
			st.State, st.ExitCode = batch.Cancelled, j.exit
		case j.timedOut:
			st.State, st.ExitCode, st.Reason = batch.Failed, j.exit, "walltime reached"
		case j.exit == 0:
			st.State = batch.Finished
		default:
			st.State, st.ExitCode = batch.Failed, j.exit
		}
		res[id] = st
	}
	return res, nil
}

func isDone(j *job) bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// Cancel stops the worker's process group (SIGTERM, SIGKILL after 10 s).
func (s *System) Cancel(_ context.Context, id string) error {
	s.mu.Lock()
	j, ok := s.jobs[id]
	if ok && !isDone(j) {
		j.cancelled = true
	}
	s.mu.Unlock()
	if !ok || isDone(j) {
		return nil
	}
	pgid := -j.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-j.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
	}
	return nil
}
