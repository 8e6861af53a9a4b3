// Package s3test starts a real S3 server for tests and benchmarks:
// versitygw (Apache-2.0) over a directory, on loopback. `make test` installs it
// (test/deps.sh); in CI a missing versitygw fails the test, elsewhere it skips.
package s3test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is a running versitygw.
type Server struct {
	URL                  string // http://127.0.0.1:PORT
	AccessKey, SecretKey string
	Dir                  string // the posix directory behind it: DIR/BUCKET/OBJECT
	cmd                  *exec.Cmd
	done                 chan struct{}
}

// Binary finds versitygw: $PANDO_VERSITYGW, the PATH, or GOPATH/bin.
func Binary() (string, error) {
	if p := os.Getenv("PANDO_VERSITYGW"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("versitygw not found (make test installs it: test/deps.sh)")
}

// Start runs versitygw until the test ends, with the given buckets made.
func Start(t testing.TB, buckets ...string) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	s, err := Launch(bin, t.TempDir(), buckets...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Launch runs versitygw over dir with the given buckets made; Stop ends it.
func Launch(bin, dir string, buckets ...string) (*Server, error) {
	s := &Server{AccessKey: "pandotest", SecretKey: "pandotestsecret", Dir: dir, done: make(chan struct{})}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, b := range buckets {
		if err := os.Mkdir(filepath.Join(s.Dir, b), 0o755); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	s.URL = "http://" + addr
	s.cmd = exec.Command(bin, "--port", addr, "--access", s.AccessKey, "--secret", s.SecretKey, "--quiet", "posix", s.Dir)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("versitygw did not listen on %s", addr)
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("versitygw exited at start")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop ends the server (a test of an unreachable endpoint calls it early).
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}
