package runtimetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pando-wms/pando/containers"
)

// Both streams at once, each larger than a pipe or copy buffer, must arrive whole and apart.
func (s *suite) testOutput(t *testing.T) {
	const nOut, nErr = 1200000, 1100000
	p := s.start(t, `(head -c 1100000 /dev/zero | tr '\0' e >&2) & head -c 1200000 /dev/zero | tr '\0' o; wait`)
	if e := s.wait(t, p); e.Code != 0 {
		t.Fatalf("exit %+v, stderr %.200q", e, p.err)
	}
	if out := p.out.String(); out != strings.Repeat("o", nOut) {
		t.Errorf("stdout: %d bytes, %d of them 'o'; want %d 'o'", len(out), strings.Count(out, "o"), nOut)
	}
	if errOut := p.err.String(); errOut != strings.Repeat("e", nErr) {
		t.Errorf("stderr: %d bytes, %d of them 'e'; want %d 'e'", len(errOut), strings.Count(errOut, "e"), nErr)
	}
}

// Output reaches the writer while the payload still runs, not when it ends.
func (s *suite) testOutputLive(t *testing.T) {
	p := s.start(t, `echo first; echo first-err >&2; sleep 100; echo never`)
	s.eventually(t, "the first line", func() bool {
		return p.out.String() == "first\n" && p.err.String() == "first-err\n"
	})
	ctx, cancel := context.WithTimeout(s.ctx(t), 50*time.Millisecond)
	defer cancel()
	if e, err := p.c.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait while running = %+v, %v; want context.DeadlineExceeded", e, err)
	}
	if err := p.c.Kill(s.ctx(t), syscall.SIGKILL); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	s.wait(t, p)
	if out := p.out.String(); out != "first\n" {
		t.Errorf("stdout = %q, want %q", out, "first\n")
	}
}

// One writer for both streams gets every line.
func (s *suite) testOutputSameWriter(t *testing.T) {
	p := s.start(t, `echo a; echo b >&2; echo c`, func(sp *containers.Spec) { sp.Stderr = sp.Stdout })
	s.wait(t, p)
	lines := strings.Fields(p.out.String())
	slices.Sort(lines)
	if !slices.Equal(lines, []string{"a", "b", "c"}) {
		t.Errorf("output = %q, want lines a, b, c", p.out.String())
	}
}

// Nil writers discard; a payload writing a lot must not block on them.
func (s *suite) testOutputNilWriters(t *testing.T) {
	p := s.start(t, `head -c 2000000 /dev/zero; head -c 2000000 /dev/zero >&2; exit 4`,
		func(sp *containers.Spec) { sp.Stdout, sp.Stderr = nil, nil })
	if e := s.wait(t, p); e.Code != 4 {
		t.Errorf("exit %+v, want code 4", e)
	}
}

// A background process that still holds stdout when the main process exits must not make Wait
// hang.
func (s *suite) testBackgroundHoldsOutput(t *testing.T) {
	p := s.start(t, `sleep 100 & echo main done`)
	if e := s.wait(t, p); e.Code != 0 {
		t.Errorf("exit %+v, want code 0", e)
	}
	if out := p.out.String(); out != "main done\n" {
		t.Errorf("stdout = %q", out)
	}
}
