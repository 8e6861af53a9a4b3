package main

import (
	"errors"
	"strings"
	"testing"
)

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return -1
}

func TestWait(t *testing.T) {
	tests := []struct {
		name   string
		states []string
		args   []string
		code   int
		text   string // stdout on success, the error otherwise
	}{
		{"all finished", []string{"finished", "finished"}, []string{"wait", "1"}, 0, "task 1: 2 finished\n"},
		{"some failed", []string{"finished", "failed", "cancelled"}, []string{"wait", "1"}, 1, "task 1: 1 finished, 1 failed, 1 cancelled"},
		{"becomes finished", []string{"running", "ready"}, []string{"wait", "1"}, 0, "task 1: 2 finished\n"},
		{"a job", []string{"finished", "failed"}, []string{"wait", "3"}, 1, "job 3: 1 failed: payload_failed"},
		{"timeout", []string{"running", "running"}, []string{"wait", "1", "--timeout", "50ms"}, 2, "timed out after 50ms: task 1: 2 running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.addTask(1, tt.states...)
			f.jobs[3].ErrorName = "payload_failed"
			if tt.name == "becomes finished" {
				f.onPoll = finishAfter(3)
			}
			out, _, err := withToken(t, f).run(tt.args...)
			if exitCode(err) != tt.code {
				t.Fatalf("exit code %d (%v), want %d", exitCode(err), err, tt.code)
			}
			got := out
			if err != nil {
				got = err.Error()
			}
			if got != tt.text {
				t.Errorf("got %q, want %q", got, tt.text)
			}
		})
	}
}

// finishAfter finishes every job at the n-th poll.
func finishAfter(n int) func(f *fake, polls int) {
	return func(f *fake, polls int) {
		if polls < n {
			return
		}
		for _, j := range f.jobs {
			j.State = "finished"
		}
		for id := range f.tasks {
			f.recount(id)
		}
	}
}

func TestWaitProgressBarOnlyOnTerminal(t *testing.T) {
	f := newFake(t)
	f.addTask(1, "running", "finished")
	f.onPoll = finishAfter(3)
	c := withToken(t, f)
	c.terminal = true
	out, _, err := c.run("wait", "1")
	if err != nil || !strings.Contains(out, "\rtask 1 [###############...............] 1/2  1 running, 1 finished") {
		t.Errorf("terminal: %q, %v", out, err)
	}
	c.terminal = false
	out, _, _ = c.run("wait", "1")
	if strings.Contains(out, "\r") {
		t.Errorf("pipe: %q", out)
	}
}

func TestWaitUnknownID(t *testing.T) {
	_, _, err := withToken(t, newFake(t)).run("wait", "77")
	if err == nil || exitCode(err) != -1 || !strings.Contains(err.Error(), "job not found") {
		t.Errorf("err = %v", err)
	}
}
