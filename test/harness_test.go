// Package test holds Pando's end-to-end tests: they run the real pando
// binary (PANDO_BIN, built by `make test`) as separate processes talking
// over loopback QUIC and HTTP.
package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bin is the pando binary under test.
func bin(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("PANDO_BIN"); b != "" {
		return b
	}
	b := filepath.Join(t.TempDir(), "pando")
	// The podman bindings' build tags, as in the Makefile.
	tags := "remote exclude_graphdriver_btrfs exclude_graphdriver_devicemapper containers_image_openpgp"
	out, err := exec.Command("go", "build", "-tags", tags, "-o", b, "../cmd/pando").CombinedOutput()
	if err != nil {
		t.Fatalf("build pando: %v\n%s", err, out)
	}
	return b
}

// proc is a running pando process with its output captured.
type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startCmd(t, name, bin(t), args...)
}

// startCmd starts any program (e.g. `ip netns exec NS pando ...`).
func startCmd(t *testing.T, name, path string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(path, args...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", name, p.out.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits (SIGKILL after 15 s).
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// kill9 kills the process with SIGKILL and waits for it.
func (p *proc) kill9() {
	p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) exited(within time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(within):
		return false
	}
}

// freePort finds a port free for both UDP and TCP on loopback.
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// cluster is a dispatcher and its pilots.
type cluster struct {
	t         *testing.T
	dir       string
	agents    string // QUIC HOST:PORT
	http      string // http://HOST:PORT
	disp      *proc
	dispArgs  []string
	tokenFile string
	caFile    string
	pilots    int
}

// fastTimers make lost agents and retries quick enough for tests.
var fastTimers = []string{"--heartbeat", "300ms", "--agent-timeout", "1500ms", "--grace", "1s", "--retry-backoff", "-1s"}

func newCluster(t *testing.T, extra ...string) *cluster {
	t.Helper()
	return newClusterOn(t, "127.0.0.1", extra...)
}

// newClusterOn runs the dispatcher's agent listener on host (the API stays
// on loopback).
func newClusterOn(t *testing.T, host string, extra ...string) *cluster {
	t.Helper()
	c := prepareCluster(t, host, extra...)
	c.startDispatcher()
	return c
}

// prepareCluster sets a cluster up without starting its dispatcher.
func prepareCluster(t *testing.T, host string, extra ...string) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{t: t, dir: dir,
		agents: fmt.Sprintf("%s:%d", host, freePort(t)), http: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	c.dispArgs = append([]string{"dispatcher", "--data", filepath.Join(dir, "data"), "--agents", c.agents, "--http", c.http}, extra...)
	c.tokenFile = filepath.Join(dir, "data", "admin.token")
	c.caFile = filepath.Join(dir, "data", "ca.pem")
	return c
}

func (c *cluster) startDispatcher() {
	c.t.Helper()
	c.disp = start(c.t, "dispatcher", c.dispArgs...)
	c.waitFor("dispatcher API", 20*time.Second, func() bool {
		_, _, code := c.pandoRaw("whoami")
		return code == 0
	})
}

// startPilot starts a pilot with the admin token (it has agent rights).
// Without a --containers flag it runs no container runtime: a podman
// service per pilot would only slow the tests that do not use one.
func (c *cluster) startPilot(args ...string) *proc {
	c.t.Helper()
	c.pilots++
	name := fmt.Sprintf("pilot-%d", c.pilots)
	a := []string{"pilot", "--dispatcher", c.agents, "--token-file", c.tokenFile, "--ca-file", c.caFile,
		"--name", name, "--workdir", filepath.Join(c.dir, name)}
	if !slices.ContainsFunc(args, func(s string) bool { return strings.HasPrefix(s, "--containers") }) {
		a = append(a, "--containers", "none")
	}
	return start(c.t, name, append(a, args...)...)
}

// pandoRaw runs a CLI command as admin and returns stdout, stderr and the
// exit status.
func (c *cluster) pandoRaw(args ...string) (string, string, int) {
	return c.pandoAs(c.tokenFile, args...)
}

func (c *cluster) pandoAs(tokenFile string, args ...string) (string, string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin(c.t), args...)
	cmd.Env = append(os.Environ(), "PANDO_SERVER=http://"+c.http, "PANDO_TOKEN_FILE="+tokenFile, "PANDO_TOKEN=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return out.String(), errb.String(), code
}

// pando runs a CLI command that must succeed.
func (c *cluster) pando(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.pandoRaw(args...)
	if code != 0 {
		c.t.Fatalf("pando %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// pandoJSON runs a CLI command with -o json and decodes its output.
func (c *cluster) pandoJSON(v any, args ...string) {
	c.t.Helper()
	out := c.pando(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("pando %s: bad JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// submit writes a task file and submits it, returning the task ID.
func (c *cluster) submit(spec string) int64 {
	c.t.Helper()
	f := filepath.Join(c.dir, fmt.Sprintf("task-%d.yaml", time.Now().UnixNano()))
	if err := os.WriteFile(f, []byte(spec), 0o600); err != nil {
		c.t.Fatal(err)
	}
	var r struct {
		ID int64 `json:"id"`
	}
	c.pandoJSON(&r, "submit", f)
	if r.ID <= 0 {
		c.t.Fatalf("submit: no id")
	}
	return r.ID
}

func (c *cluster) waitFor(what string, d time.Duration, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// job is the part of `pando jobs -o json` the tests read.
type job struct {
	ID        int64  `json:"id"`
	Task      int64  `json:"task"`
	Index     int    `json:"index"`
	State     string `json:"state"`
	Attempt   int    `json:"attempt"`
	ExitCode  *int   `json:"exit_code"`
	ErrorCode int    `json:"error_code"`
	Error     string `json:"error"`
	Agent     string `json:"agent"`
	Attempts  []struct {
		Attempt   int    `json:"attempt"`
		State     string `json:"state"`
		Agent     string `json:"agent"`
		ErrorCode int    `json:"error_code"`
	} `json:"attempts"`
}

func (c *cluster) jobs(taskID int64) []job {
	c.t.Helper()
	var js []job
	c.pandoJSON(&js, "jobs", "--task", fmt.Sprint(taskID))
	return js
}

func (c *cluster) job(id int64) job {
	c.t.Helper()
	var j job
	c.pandoJSON(&j, "job", fmt.Sprint(id))
	return j
}

// waitTask waits for `pando wait` and returns its exit status.
func (c *cluster) waitTask(id int64, d time.Duration) int {
	c.t.Helper()
	_, _, code := c.pandoRaw("wait", fmt.Sprint(id), "--timeout", d.String())
	return code
}
