package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A task with `queue: gpu` goes only to pilots of that queue.
func TestQueueRouting(t *testing.T) {
	c := newCluster(t, fastTimers...)
	c.startPilot()
	// The queue-less pilot is alive and takes queue-less work.
	if code := c.waitTask(c.submit("name: plain\ncommand: [\"/bin/true\"]\n"), 30*time.Second); code != 0 {
		t.Fatalf("queue-less task on the queue-less pilot: pando wait exit %d", code)
	}
	c.pando("queue", "create", "gpu")
	id := c.submit("name: forgpu\ncommand: [\"/bin/true\"]\nqueue: gpu\nresources: {walltime: 1m}\n")
	jobID := c.jobs(id)[0].ID
	time.Sleep(1500 * time.Millisecond)
	if j := c.job(jobID); j.State != "ready" || j.Agent != "" {
		t.Fatalf("queue gpu job on a queue-less pilot: state %s agent %q, want ready and unassigned", j.State, j.Agent)
	}
	c.startPilot("--queue", "gpu")
	if code := c.waitTask(id, 30*time.Second); code != 0 {
		t.Fatalf("pando wait: exit %d, want 0", code)
	}
	if j := c.job(jobID); j.Agent != "pilot-2" {
		t.Errorf("queue gpu job ran on %q, want pilot-2", j.Agent)
	}
}

// `pando logs -f` prints a running payload's output as it comes and
// returns when the job ends.
func TestLogsFollow(t *testing.T) {
	c := newCluster(t, fastTimers...)
	c.startPilot()
	id := c.submit("name: follow\ncommand: [\"/bin/sh\", \"-c\", \"echo first line; sleep 3; echo second line\"]\nresources: {walltime: 1m}\n")
	jobID := c.jobs(id)[0].ID
	c.waitState(jobID, "running", 30*time.Second)
	f := c.startCLI(c.tokenFile, "logs", "-f", fmt.Sprint(jobID))
	c.waitFor("first line from logs -f", 10*time.Second, func() bool {
		return strings.Contains(f.out.String(), "first line")
	})
	if out := f.out.String(); strings.Contains(out, "second line") {
		t.Fatalf("logs -f printed nothing before the payload ended:\n%s", out)
	}
	if j := c.job(jobID); j.State != "running" {
		t.Errorf("job %s when logs -f printed its first line, want running", j.State)
	}
	if !f.exited(15 * time.Second) {
		t.Fatalf("logs -f still running after the job ended:\n%s", f.out.String())
	}
	if f.err != nil {
		t.Errorf("logs -f: %v", f.err)
	}
	if out := f.out.String(); out != "first line\nsecond line\n" {
		t.Errorf("logs -f printed %q, want both lines once", out)
	}
}

// `pando kill` of a task cancels its running jobs and stops their payloads,
// children included.
func TestKillRunningTask(t *testing.T) {
	c := newCluster(t, fastTimers...)
	c.startPilot("--cores", "4")
	marker := filepath.Join(c.dir, "marker")
	id := c.submit(fmt.Sprintf("name: killme\ncommand: [\"/bin/sh\", \"-c\", \"(sleep 3; touch %s.$PANDO_JOB_INDEX) & wait\"]\njobs: 2\nresources: {walltime: 1m}\n", marker))
	c.waitFor("both jobs running", 30*time.Second, func() bool {
		for _, j := range c.jobs(id) {
			if j.State != "running" {
				return false
			}
		}
		return true
	})
	killed := time.Now()
	c.pando("kill", fmt.Sprint(id))
	for _, j := range c.jobs(id) {
		j = c.waitState(j.ID, "cancelled", 10*time.Second)
		if j.ErrorCode != 3001 {
			t.Errorf("job %d: error_code %d %q, want 3001", j.ID, j.ErrorCode, j.Error)
		}
	}
	if code := c.waitTask(id, 10*time.Second); code == 0 {
		t.Error("pando wait on a killed task: exit 0")
	}
	time.Sleep(time.Until(killed.Add(3500 * time.Millisecond)))
	if m, _ := filepath.Glob(marker + ".*"); len(m) != 0 {
		t.Errorf("payloads kept running after kill: %v", m)
	}
}

// A payload past its walltime is killed: failed with 2003, not retried.
func TestJobWalltime(t *testing.T) {
	c := newCluster(t, fastTimers...)
	c.startPilot()
	id := c.submit("name: slow\ncommand: [\"sleep\", \"30\"]\nresources: {walltime: 2s}\nmax_attempts: 3\n")
	began := time.Now()
	if code := c.waitTask(id, 20*time.Second); code != 1 {
		t.Fatalf("pando wait: exit %d, want 1", code)
	}
	if d := time.Since(began); d > 15*time.Second {
		t.Errorf("walltime of 2s enforced after %s", d)
	}
	j := c.job(c.jobs(id)[0].ID)
	if j.State != "failed" || j.ErrorCode != 2003 || j.Attempt != 1 || len(j.Attempts) != 1 {
		t.Errorf("job: state %s error %d %q attempt %d (%d attempts), want failed 2003 attempt 1",
			j.State, j.ErrorCode, j.Error, j.Attempt, len(j.Attempts))
	}
}

// `pando pilot --walltime 3s` exits by itself when its time is up.
func TestPilotWalltimeIdle(t *testing.T) {
	c := newCluster(t, fastTimers...)
	began := time.Now()
	p := c.startPilot("--walltime", "3s")
	if !p.exited(10 * time.Second) {
		t.Fatal("idle pilot still running 10s after a 3s walltime")
	}
	if d := time.Since(began); d < 2500*time.Millisecond {
		t.Errorf("pilot exited after %s, before its 3s walltime", d)
	}
	if p.err != nil {
		t.Errorf("pilot at its walltime: %v, want exit 0", p.err)
	}
}

// A payload gets the PANDO_* job variables and none of the pilot's
// environment, such as its PANDO_TOKEN_FILE.
func TestPayloadEnvironment(t *testing.T) {
	c := newCluster(t, fastTimers...)
	c.pilotAs(c.tokenFile, []string{"PANDO_TOKEN_FILE=" + c.tokenFile, "PANDO_TEST_CANARY=tweet"})
	id := c.submit("name: env\ncommand: [\"/bin/sh\", \"-c\", \"env; echo pwd=$(pwd)\"]\njobs: 1\nresources: {walltime: 1m}\n")
	if code := c.waitTask(id, 30*time.Second); code != 0 {
		t.Fatalf("pando wait: exit %d, want 0", code)
	}
	j := c.jobs(id)[0]
	out := c.pando("logs", fmt.Sprint(j.ID))
	for _, want := range []string{
		fmt.Sprintf("PANDO_TASK_ID=%d\n", id), fmt.Sprintf("PANDO_JOB_ID=%d\n", j.ID),
		"PANDO_JOB_INDEX=0\n", "PANDO_ATTEMPT=1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("payload environment lacks %q", strings.TrimSpace(want))
		}
	}
	for _, leak := range []string{"PANDO_TOKEN_FILE", "PANDO_TEST_CANARY", c.tokenFile} {
		if strings.Contains(out, leak) {
			t.Errorf("payload sees the pilot's %s", leak)
		}
	}
	i := strings.Index(out, "pwd=")
	if i < 0 {
		t.Fatalf("no pwd in log:\n%s", out)
	}
	pwd := strings.TrimSpace(out[i+4:])
	if pilotDir := filepath.Join(c.dir, "pilot-1"); !strings.HasPrefix(pwd, pilotDir+string(os.PathSeparator)) {
		t.Errorf("payload ran in %s, want a directory under the pilot's %s", pwd, pilotDir)
	}
	if t.Failed() {
		t.Logf("payload log:\n%s", out)
	}
}
