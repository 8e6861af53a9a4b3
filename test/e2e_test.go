package test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A 50-job task runs to the end on two pilots, each job in its own work
// directory with the PANDO_* environment.
func TestTaskFinishes(t *testing.T) {
	c := newCluster(t, fastTimers...)
	c.startPilot("--cores", "4")
	c.startPilot("--cores", "4")
	id := c.submit(`name: fifty
command: ["/bin/sh", "-c", "echo job=$PANDO_JOB_ID task=$PANDO_TASK_ID index=$PANDO_JOB_INDEX attempt=$PANDO_ATTEMPT pwd=$(pwd)"]
jobs: 50
resources: {cores: 1, memory: 64MiB, walltime: 1m}
`)
	if code := c.waitTask(id, 2*time.Minute); code != 0 {
		t.Fatalf("pando wait: exit %d, want 0", code)
	}
	jobs := c.jobs(id)
	if len(jobs) != 50 {
		t.Fatalf("got %d jobs, want 50", len(jobs))
	}
	agents := map[string]int{}
	dirs := map[string]bool{}
	for _, j := range jobs {
		if j.State != "finished" || j.ExitCode == nil || *j.ExitCode != 0 || j.Attempt != 1 {
			t.Errorf("job %d: state %s exit %v attempt %d", j.ID, j.State, j.ExitCode, j.Attempt)
		}
		agents[j.Agent]++
		out := c.pando("logs", fmt.Sprint(j.ID))
		want := fmt.Sprintf("job=%d task=%d index=%d attempt=1 pwd=", j.ID, id, j.Index)
		if !strings.HasPrefix(out, want) {
			t.Errorf("job %d log %q, want prefix %q", j.ID, out, want)
		}
		dirs[strings.TrimSpace(out[strings.Index(out, "pwd=")+4:])] = true
	}
	if len(dirs) != 50 {
		t.Errorf("jobs ran in %d distinct work directories, want 50", len(dirs))
	}
	if len(agents) != 2 {
		t.Errorf("jobs ran on %v, want both pilots", agents)
	}
}

// A payload that exits 3 is retried up to max_attempts and ends failed
// with exit code 3; `pando wait` says so with a non-zero status.
func TestFailingPayloadRetried(t *testing.T) {
	c := newCluster(t, fastTimers...)
	c.startPilot()
	id := c.submit(`name: fails
command: ["/bin/sh", "-c", "echo attempt $PANDO_ATTEMPT; exit 3"]
jobs: 1
max_attempts: 3
`)
	if code := c.waitTask(id, time.Minute); code != 1 {
		t.Fatalf("pando wait: exit %d, want 1", code)
	}
	j := c.job(c.jobs(id)[0].ID)
	if j.State != "failed" || j.ExitCode == nil || *j.ExitCode != 3 || j.Attempt != 3 {
		t.Fatalf("job: state %s exit %v attempt %d, want failed, 3, 3", j.State, j.ExitCode, j.Attempt)
	}
	if j.ErrorCode != 2001 || !strings.Contains(j.Error, "exit status 3") {
		t.Errorf("error %d %q, want 2001 payload_exit", j.ErrorCode, j.Error)
	}
	if len(j.Attempts) != 3 {
		t.Fatalf("attempts %+v, want 3", j.Attempts)
	}
	for i, a := range j.Attempts {
		if a.Attempt != i+1 || a.State != "failed" {
			t.Errorf("attempt %d: %+v", i+1, a)
		}
	}
	// A user retry gives it max_attempts more.
	c.pando("retry", fmt.Sprint(id))
	c.waitTask(id, time.Minute)
	if j := c.job(j.ID); j.Attempt != 6 || j.State != "failed" {
		t.Errorf("after retry: attempt %d state %s, want 6 failed", j.Attempt, j.State)
	}
}

// A pilot killed with SIGKILL mid-job loses its job to the other pilot,
// where it finishes.
func TestPilotKilledJobMoves(t *testing.T) {
	c := newCluster(t, fastTimers...)
	a := c.startPilot()
	id := c.submit(`name: moves
command: ["/bin/sh", "-c", "sleep 2; echo done on attempt $PANDO_ATTEMPT"]
jobs: 1
resources: {walltime: 1m}
`)
	jobID := int64(0)
	c.waitFor("job running on pilot-1", 30*time.Second, func() bool {
		js := c.jobs(id)
		jobID = js[0].ID
		return js[0].State == "running" && js[0].Agent == "pilot-1"
	})
	c.startPilot()
	a.kill9()
	if code := c.waitTask(id, time.Minute); code != 0 {
		t.Fatalf("pando wait: exit %d, want 0", code)
	}
	j := c.job(jobID)
	if j.Agent != "pilot-2" || j.Attempt != 2 {
		t.Fatalf("job finished on %s in attempt %d, want pilot-2, 2", j.Agent, j.Attempt)
	}
	if len(j.Attempts) != 2 || j.Attempts[0].ErrorCode != 3002 || j.Attempts[0].Agent != "pilot-1" {
		t.Errorf("first attempt %+v, want lost on pilot-1 with 3002", j.Attempts)
	}
}

// A pilot with a bad token is refused with a clear error and exits.
func TestPilotBadToken(t *testing.T) {
	c := newCluster(t)
	bad := c.dir + "/bad.token"
	writeFile(t, bad, "pando_not-a-real-token\n")
	p := start(t, "bad-pilot", "pilot", "--dispatcher", c.agents, "--token-file", bad, "--ca-file", c.caFile, "--containers", "none")
	if !p.exited(30 * time.Second) {
		t.Fatal("pilot with a bad token kept running")
	}
	if p.err == nil {
		t.Error("pilot with a bad token exited 0")
	}
	if out := p.out.String(); !strings.Contains(out, "unauthorized") || !strings.Contains(out, "invalid token") {
		t.Errorf("pilot output does not explain the refusal:\n%s", out)
	}
}
