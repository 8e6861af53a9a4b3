package process

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pando-wms/pando/containers"
)

// supervise waits for the payload to end, ends what it left behind, collects its output and
// publishes the exit. It is the only goroutine that reaps the child.
func (c *container) supervise(p *os.Process, pp *pumps) {
	exited := waitExited(p.Pid)
	c.mu.Lock()
	// Like a container, the payload ends when its main process ends: leftover background
	// processes would hold the output pipes and use resources nobody accounts for. The leader is
	// a zombie here, so its pid (the group id) cannot have been reused.
	if exited {
		err := syscall.Kill(-p.Pid, syscall.SIGKILL)
		if err != nil && !errors.Is(err, syscall.ESRCH) {
			c.log.Warn("killing the payload's leftover processes", "err", err)
		}
	}
	c.reaped = true
	c.mu.Unlock()

	state, err := p.Wait()
	c.mu.Lock()
	c.state = state
	c.mu.Unlock()
	pp.wait(c.grace)

	if err != nil {
		c.waitErr = fmt.Errorf("process: wait %q: %w", c.spec.Name, err)
	} else {
		c.exit = exitOf(state)
		c.log.Debug("exited", "code", c.exit.Code, "signal", c.exit.Signal)
	}
	close(c.done) // publishes exit and waitErr
}

// waitExited blocks until pid has exited, without reaping it (WNOWAIT). False means it could not
// tell; p.Wait then reports why.
func waitExited(pid int) bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err == nil
		}
	}
}

// exitOf reports a death by signal N as 128+N, as shells and container engines do.
func exitOf(state *os.ProcessState) containers.Exit {
	ws, ok := state.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return containers.Exit{Code: 128 + int(ws.Signal()), Signal: unix.SignalName(ws.Signal())}
	}
	return containers.Exit{Code: state.ExitCode()}
}
