package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A pilot stopped (SIGSTOP) for less than the agent timeout plus grace is
// disconnected, comes back, re-attaches its running job, and the payload,
// which ran on meanwhile, is not killed: the job finishes in its first
// attempt, once.
func TestPilotPausedWithinGraceReattaches(t *testing.T) {
	c := newCluster(t, "--heartbeat", "300ms", "--agent-timeout", "1500ms", "--grace", "8s", "--retry-backoff", "-1s")
	p := c.startPilot()
	marker := filepath.Join(c.dir, "ran")
	id := c.submit(fmt.Sprintf("name: paused\ncommand: [\"/bin/sh\", \"-c\", \"sleep 5; echo x >> %s\"]\n", marker))
	j := c.waitState(c.jobs(id)[0].ID, "running", 30*time.Second)
	p.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(3 * time.Second) // past the agent timeout: the dispatcher drops the connection
	p.cmd.Process.Signal(syscall.SIGCONT)
	if code := c.waitTask(id, time.Minute); code != 0 {
		t.Fatalf("pando wait: exit %d, want 0", code)
	}
	got := c.job(j.ID)
	if got.Attempt != 1 || got.State != "finished" {
		t.Fatalf("job %s in attempt %d, want finished in attempt 1 (re-attached)", got.State, got.Attempt)
	}
	if data, _ := os.ReadFile(marker); string(data) != "x\n" {
		t.Errorf("payload ran %q, want once", data)
	}
	if out := c.disp.out.String(); !strings.Contains(out, "no heartbeat") {
		t.Errorf("the dispatcher never dropped the paused pilot; the test proves nothing:\n%s", out)
	}
}

// A pilot stopped for longer than the agent timeout plus grace loses its
// job to another pilot; when it resumes, its late report of the old attempt
// is refused by fencing and the job stays finished by the other pilot.
func TestPilotPausedPastGraceIsFenced(t *testing.T) {
	c := newCluster(t, "--heartbeat", "300ms", "--agent-timeout", "1s", "--grace", "1s", "--retry-backoff", "-1s")
	a := c.startPilot()
	markers := filepath.Join(c.dir, "attempts")
	id := c.submit(fmt.Sprintf("name: fenced\ncommand: [\"/bin/sh\", \"-c\", \"sleep 2; echo $PANDO_ATTEMPT >> %s\"]\n", markers))
	j := c.waitState(c.jobs(id)[0].ID, "running", 30*time.Second)
	a.cmd.Process.Signal(syscall.SIGSTOP)
	c.startPilot()
	if code := c.waitTask(id, time.Minute); code != 0 {
		t.Fatalf("pando wait: exit %d, want 0", code)
	}
	a.cmd.Process.Signal(syscall.SIGCONT) // its payload has ended by now: it reports attempt 1
	time.Sleep(4 * time.Second)
	got := c.job(j.ID)
	if got.State != "finished" || got.Attempt != 2 || got.Agent != "pilot-2" {
		t.Fatalf("job %s attempt %d on %s, want finished in attempt 2 on pilot-2", got.State, got.Attempt, got.Agent)
	}
	if len(got.Attempts) != 2 || got.Attempts[0].ErrorCode != 3002 || got.Attempts[0].State != "failed" {
		t.Errorf("attempts %+v, want attempt 1 lost (3002)", got.Attempts)
	}
	finished := 0
	for _, at := range got.Attempts {
		if at.State == "finished" {
			finished++
		}
	}
	if finished != 1 {
		t.Errorf("%d finished attempts, want 1", finished)
	}
	if out := a.out.String(); !strings.Contains(out, "refused") && !strings.Contains(out, "dropped") && !strings.Contains(out, "discarded") {
		t.Errorf("the resumed pilot's late report was neither refused nor dropped:\n%s", out)
	}
}
