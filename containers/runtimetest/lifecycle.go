package runtimetest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pando-wms/pando/containers"
)

func (s *suite) testExitCode(t *testing.T) {
	for _, code := range []int{0, 3, 255} {
		p := s.start(t, "exit "+strconv.Itoa(code))
		if e := s.wait(t, p); e != (containers.Exit{Code: code}) {
			t.Errorf("exit %d: got %+v", code, e)
		}
	}
}

// Spec.Env reaches the payload; the host's environment (the pilot's secrets) does not.
func (s *suite) testEnv(t *testing.T) {
	t.Setenv("PANDO_RUNTIMETEST_HOST_ONLY", "leaked")
	p := s.start(t, `env`, func(sp *containers.Spec) {
		sp.Env = map[string]string{"PANDO_RT_VAR": "a b=c"}
	})
	s.wait(t, p)
	lines := strings.Split(p.out.String(), "\n")
	if !slices.Contains(lines, "PANDO_RT_VAR=a b=c") {
		t.Errorf("PANDO_RT_VAR missing from the payload's environment:\n%s", p.out)
	}
	if strings.Contains(p.out.String(), "PANDO_RUNTIMETEST_HOST_ONLY") {
		t.Errorf("the host's environment reached the payload:\n%s", p.out)
	}
}

func (s *suite) testWorkDir(t *testing.T) {
	p := s.start(t, `pwd; echo hi > marker`)
	s.wait(t, p)
	want, err := filepath.EvalSymlinks(p.spec.WorkDir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(p.out.String()); got != want && got != p.spec.WorkDir {
		t.Errorf("cwd = %q, want %q", got, p.spec.WorkDir)
	}
	if b, err := os.ReadFile(filepath.Join(p.spec.WorkDir, "marker")); err != nil || string(b) != "hi\n" {
		t.Errorf("marker written in cwd: %q, %v", b, err)
	}
}

// Kill ends the payload and its children: a background loop stops writing its beat file.
func (s *suite) testKillTree(t *testing.T) {
	p := s.start(t, `(while :; do echo x >> beat; done) & sleep 100; wait`)
	beat := filepath.Join(p.spec.WorkDir, "beat")
	s.eventually(t, "the child's first beat", func() bool { return fileSize(beat) > 0 })
	if err := p.c.Kill(s.ctx(t), syscall.SIGKILL); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if e := s.wait(t, p); e != (containers.Exit{Code: 137, Signal: "SIGKILL"}) {
		t.Errorf("exit %+v, want code 137 by SIGKILL", e)
	}
	before := fileSize(beat)
	time.Sleep(300 * time.Millisecond)
	if after := fileSize(beat); after != before {
		t.Errorf("the child still runs after Kill: beat grew from %d to %d bytes", before, after)
	}
}

// A signal the payload handles is delivered (also to a shell that is a container's PID 1).
func (s *suite) testKillSignal(t *testing.T) {
	p := s.start(t, `trap 'exit 7' TERM; echo ready; sleep 100 & wait`)
	s.eventually(t, "ready", func() bool { return p.out.String() == "ready\n" })
	if err := p.c.Kill(s.ctx(t), syscall.SIGTERM); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if e := s.wait(t, p); e != (containers.Exit{Code: 7}) {
		t.Errorf("exit %+v, want code 7 from the TERM trap", e)
	}
}

func (s *suite) testKillAfterExit(t *testing.T) {
	p := s.start(t, `true`)
	s.wait(t, p)
	if err := p.c.Kill(s.ctx(t), syscall.SIGKILL); err != nil {
		t.Errorf("Kill after exit: %v", err)
	}
}

func (s *suite) testStats(t *testing.T) {
	p := s.start(t, `sleep 100 & echo ready; sleep 100; wait`)
	s.eventually(t, "ready", func() bool { return p.out.String() == "ready\n" })
	first, err := p.c.Stats(s.ctx(t))
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if first.RSSBytes <= 0 || first.PIDs < 2 || first.CPUSeconds < 0 || first.CPUPercent < 0 {
		t.Errorf("Stats = %+v, want RSS > 0, PIDs >= 2 (shell and a sleep), no negative CPU", first)
	}
	second, err := p.c.Stats(s.ctx(t))
	if err != nil {
		t.Fatalf("second Stats: %v", err)
	}
	if second.CPUSeconds < first.CPUSeconds || second.CPUPercent < 0 {
		t.Errorf("second Stats = %+v after %+v: CPU time went back", second, first)
	}
}

// A missing or non-executable command fails Start with ErrNotFound.
func (s *suite) testNotFound(t *testing.T) {
	for _, tc := range []struct{ name, cmd string }{
		{"missing path", "/nonexistent-pando/cmd"},
		{"not in PATH", "pando-no-such-command"},
		{"not executable", "not-executable.sh"},
	} {
		p := s.create(t, "", func(sp *containers.Spec) {
			sp.Command = []string{tc.cmd}
			if tc.name == "not executable" {
				sp.Command[0] = filepath.Join(sp.WorkDir, tc.cmd)
				if err := os.WriteFile(sp.Command[0], []byte("#!/bin/sh\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
		if err := p.c.Start(s.ctx(t)); !errors.Is(err, containers.ErrNotFound) {
			t.Errorf("%s: Start = %v, want ErrNotFound", tc.name, err)
		}
	}
}

func (s *suite) testNotStarted(t *testing.T) {
	p := s.create(t, `true`)
	ctx := s.ctx(t)
	if _, err := p.c.Wait(ctx); !errors.Is(err, containers.ErrNotStarted) {
		t.Errorf("Wait = %v, want ErrNotStarted", err)
	}
	if _, err := p.c.Stats(ctx); !errors.Is(err, containers.ErrNotStarted) {
		t.Errorf("Stats = %v, want ErrNotStarted", err)
	}
	if err := p.c.Kill(ctx, syscall.SIGKILL); !errors.Is(err, containers.ErrNotStarted) {
		t.Errorf("Kill = %v, want ErrNotStarted", err)
	}
}

func (s *suite) testStartTwice(t *testing.T) {
	p := s.start(t, `true`)
	if err := p.c.Start(s.ctx(t)); !errors.Is(err, containers.ErrAlreadyStarted) {
		t.Errorf("second Start = %v, want ErrAlreadyStarted", err)
	}
	s.wait(t, p)
}

func (s *suite) testRemove(t *testing.T) {
	p := s.start(t, `true`)
	s.wait(t, p)
	for i := range 2 {
		if err := p.c.Remove(s.ctx(t)); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	if err := p.c.Start(s.ctx(t)); !errors.Is(err, containers.ErrRemoved) {
		t.Errorf("Start after Remove = %v, want ErrRemoved", err)
	}
}

// Remove kills a running payload, and its name is free again afterwards.
func (s *suite) testRemoveRunning(t *testing.T) {
	p := s.start(t, `sleep 100`)
	if err := p.c.Remove(s.ctx(t)); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	again := s.create(t, `true`, func(sp *containers.Spec) { sp.Name = p.spec.Name })
	if again.c.ID() == "" {
		t.Error("empty ID")
	}
}

func (s *suite) testNameInUse(t *testing.T) {
	p := s.create(t, `true`)
	spec := p.spec
	if _, err := s.rt.Create(s.ctx(t), spec); !errors.Is(err, containers.ErrNameInUse) {
		t.Errorf("second Create with name %q = %v, want ErrNameInUse", spec.Name, err)
	}
}

// Wait gives the same answer to several concurrent callers and again afterwards.
func (s *suite) testWaitTwice(t *testing.T) {
	p := s.start(t, `sleep 1; exit 5`)
	want := containers.Exit{Code: 5}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if e, err := p.c.Wait(s.ctx(t)); err != nil || e != want {
				t.Errorf("concurrent Wait = %+v, %v", e, err)
			}
		})
	}
	wg.Wait()
	if e := s.wait(t, p); e != want {
		t.Errorf("second Wait = %+v, want %+v", e, want)
	}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
