// Package runtimetest is the conformance suite every containers.Runtime must pass. Each
// implementation's tests call Run with the options that differ between runtimes.
package runtimetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pando-wms/pando/containers"
)

// Options is what differs between runtimes.
type Options struct {
	Image   string        // image for every payload; empty for runtimes without images
	Shell   string        // a POSIX shell in the image (or on the host); default "/bin/sh"
	Timeout time.Duration // bound for each case, so a broken runtime fails instead of hanging; default 30 s
}

// Run runs every case as a subtest. Cases are sequential: one of them uses t.Setenv.
func Run(t *testing.T, rt containers.Runtime, o Options) {
	if o.Shell == "" {
		o.Shell = "/bin/sh"
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	s := &suite{rt: rt, o: o}
	for _, c := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"Output", s.testOutput},
		{"OutputLive", s.testOutputLive},
		{"OutputSameWriter", s.testOutputSameWriter},
		{"OutputNilWriters", s.testOutputNilWriters},
		{"BackgroundHoldsOutput", s.testBackgroundHoldsOutput},
		{"ExitCode", s.testExitCode},
		{"Env", s.testEnv},
		{"WorkDir", s.testWorkDir},
		{"KillTree", s.testKillTree},
		{"KillSignal", s.testKillSignal},
		{"KillAfterExit", s.testKillAfterExit},
		{"Stats", s.testStats},
		{"NotFound", s.testNotFound},
		{"NotStarted", s.testNotStarted},
		{"StartTwice", s.testStartTwice},
		{"Remove", s.testRemove},
		{"RemoveRunning", s.testRemoveRunning},
		{"NameInUse", s.testNameInUse},
		{"WaitTwice", s.testWaitTwice},
	} {
		t.Run(c.name, c.fn)
	}
}

type suite struct {
	rt  containers.Runtime
	o   Options
	seq atomic.Int64
}

// payload is one created container with its captured output.
type payload struct {
	c        containers.Container
	spec     containers.Spec
	out, err *buffer
}

// create makes a container running script in the shell; edits adjust the spec. Remove is
// registered as cleanup.
func (s *suite) create(t *testing.T, script string, edits ...func(*containers.Spec)) *payload {
	t.Helper()
	p := &payload{out: &buffer{}, err: &buffer{}}
	p.spec = containers.Spec{
		Name:    fmt.Sprintf("pando-rt-%d-%d", os.Getpid(), s.seq.Add(1)),
		Image:   s.o.Image,
		Command: []string{s.o.Shell, "-c", script},
		WorkDir: t.TempDir(),
		Stdout:  p.out,
		Stderr:  p.err,
	}
	for _, edit := range edits {
		edit(&p.spec)
	}
	c, err := s.rt.Create(s.ctx(t), p.spec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	p.c = c
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
		defer cancel()
		if err := c.Remove(ctx); err != nil {
			t.Errorf("Remove: %v", err)
		}
	})
	return p
}

// start is create followed by a successful Start.
func (s *suite) start(t *testing.T, script string, edits ...func(*containers.Spec)) *payload {
	t.Helper()
	p := s.create(t, script, edits...)
	if err := p.c.Start(s.ctx(t)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return p
}

func (s *suite) wait(t *testing.T, p *payload) containers.Exit {
	t.Helper()
	e, err := p.c.Wait(s.ctx(t))
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return e
}

// ctx bounds one call; it ends with the test.
func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), s.o.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or the case's timeout passes.
func (s *suite) eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(s.o.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// buffer is a bytes.Buffer that the runtime may write while the test reads.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
