package podman

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Service is a `podman system service` the pilot started on a private
// socket and stops on exit.
type Service struct {
	Socket string
	cmd    *exec.Cmd
	done   chan struct{}
	log    *slog.Logger
}

// StartService starts podman's API service on DIR/podman.sock (DIR is made
// 0700, so only this user reaches it) and waits until it accepts
// connections. The environment (CONTAINERS_CONF among it) is passed on.
func StartService(ctx context.Context, dir string, log *slog.Logger) (*Service, error) {
	bin, err := exec.LookPath("podman")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "podman.sock")
	_ = os.Remove(sock)
	cmd := exec.Command(bin, "system", "service", "--time=0", "unix://"+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	// Its own working directory: conmon drops an "oom" marker file in the
	// working directory it inherits when a container is OOM-killed.
	cmd.Dir = dir
	logf, err := os.OpenFile(filepath.Join(dir, "podman-service.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if conf, err := nodeConf(dir); err != nil {
		log.Warn("podman configuration for this node", "err", err)
	} else if conf != "" {
		cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+conf)
		log.Info("no podman configuration here: using one fitted to this node", "file", conf)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%w: start podman service: %v", ErrUnavailable, err)
	}
	logf.Close()
	s := &Service{Socket: sock, cmd: cmd, done: make(chan struct{}), log: log}
	go func() { _ = cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
			c.Close()
			log.Info("podman service started", "socket", sock, "pid", cmd.Process.Pid)
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("%w: podman service exited at start (see %s)", ErrUnavailable, filepath.Join(dir, "podman-service.log"))
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("%w: podman service did not listen on %s within 20s", ErrUnavailable, sock)
		}
	}
}

// nodeConf writes a containers.conf for nodes that have none (no
// CONTAINERS_CONF, no /etc/containers/containers.conf), fitted to them:
// podman's default ulimits can exceed a batch slot's hard limits, which
// makes every container fail at start, and crun fails where cgroups are
// hybrid, where runc works. It returns "" where a configuration exists.
func nodeConf(dir string) (string, error) {
	if os.Getenv("CONTAINERS_CONF") != "" || exists("/etc/containers/containers.conf") {
		return "", nil
	}
	var nofile, nproc unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		return "", err
	}
	if err := unix.Getrlimit(unix.RLIMIT_NPROC, &nproc); err != nil {
		return "", err
	}
	// Within the pilot's soft limits. NPROC is capped lower still: runc
	// refused even the pilot's own value here (96364), 32768 works.
	files, procs := min(nofile.Cur, 1<<20), min(nproc.Cur, 32768)
	conf := fmt.Sprintf("[containers]\ndefault_ulimits = [\"nofile=%d:%d\", \"nproc=%d:%d\"]\n", files, files, procs, procs)
	if _, err := exec.LookPath("runc"); err == nil {
		conf += "\n[engine]\nruntime = \"runc\"\n"
	}
	path := filepath.Join(dir, "containers.conf")
	return path, os.WriteFile(path, []byte(conf), 0o600)
}

// Stop ends the service and waits for it.
func (s *Service) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	if err := os.Remove(s.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Debug("remove podman socket", "err", err)
	}
}
