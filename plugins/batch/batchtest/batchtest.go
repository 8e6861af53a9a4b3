// Package batchtest is the conformance suite every batch kind that can run
// here passes: workers reach their final states with their exit codes, a
// running worker can be cancelled, unknown IDs are missing, a refused
// submission is ErrRejected.
package batchtest

import (
	"context"
	"errors"

	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pando-wms/pando/plugins/batch"
)

// Options describe the system under test.
type Options struct {
	// BadQueue names a queue the system refuses ("": skip that case).
	BadQueue string
	// Unknown is an ID the system has never issued.
	Unknown string
}

// Run runs the suite against sys.
func Run(t *testing.T, sys batch.System, o Options) {
	ctx := context.Background()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	worker := func(name, script string) batch.Worker {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return batch.Worker{Name: "pando-test-" + name, Command: []string{"/bin/sh", "-c", script},
			Env: map[string]string{"PANDO_TEST": "it's set"}, Cores: 1, Memory: 64 << 20, Walltime: 5 * time.Minute, Dir: d}
	}
	submit := func(w batch.Worker) string {
		t.Helper()
		id, err := sys.Submit(ctx, w)
		if err != nil {
			t.Fatalf("Submit %s: %v", w.Name, err)
		}
		return id
	}
	ok := submit(worker("ok", `test "$PANDO_TEST" = "it's set" && echo done > result`))
	bad := submit(worker("bad", "exit 3"))
	long := submit(worker("long", "sleep 120"))
	wait := func(id string, want func(batch.Status) bool, what string) batch.Status {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			sts, err := sys.Status(ctx, []string{id})
			if err != nil {
				t.Fatalf("Status: %v", err)
			}
			if st := sts[id]; want(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("worker %s: %+v, waited for %s", id, sts[id], what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Run("Finished", func(t *testing.T) {
		st := wait(ok, func(s batch.Status) bool { return s.State.Final() }, "an end")
		if st.State != batch.Finished || st.ExitCode != 0 {
			t.Fatalf("ok worker ended %+v", st)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "ok", "result")); err != nil || string(b) != "done\n" {
			t.Fatalf("the worker did not run in its directory with its environment: %q %v", b, err)
		}
	})
	t.Run("Failed", func(t *testing.T) {
		st := wait(bad, func(s batch.Status) bool { return s.State.Final() }, "an end")
		if st.State != batch.Failed || st.ExitCode != 3 {
			t.Fatalf("exit 3 worker ended %+v", st)
		}
	})
	t.Run("Cancel", func(t *testing.T) {
		wait(long, func(s batch.Status) bool { return s.State == batch.Running }, "running")
		if err := sys.Cancel(ctx, long); err != nil {
			t.Fatal(err)
		}
		wait(long, func(s batch.Status) bool { return s.State == batch.Cancelled }, "cancelled")
		if err := sys.Cancel(ctx, long); err != nil {
			t.Errorf("second Cancel: %v", err)
		}
		if err := sys.Cancel(ctx, ok); err != nil {
			t.Errorf("Cancel of an ended worker: %v", err)
		}
	})
	t.Run("ManyAndUnknown", func(t *testing.T) {
		sts, err := sys.Status(ctx, []string{ok, bad, long, o.Unknown})
		if err != nil {
			t.Fatal(err)
		}
		if len(sts) != 4 || sts[o.Unknown].State != batch.Missing {
			t.Fatalf("Status of 4 IDs: %+v", sts)
		}
		if sts[ok].State != batch.Finished || sts[bad].State != batch.Failed || sts[long].State != batch.Cancelled {
			t.Fatalf("states: %+v", sts)
		}
	})
	if o.BadQueue != "" {
		t.Run("Rejected", func(t *testing.T) {
			w := worker("rejected", "true")
			w.Queue = o.BadQueue
			_, err := sys.Submit(ctx, w)
			if !errors.Is(err, batch.ErrRejected) {
				t.Fatalf("Submit to queue %q: %v, want ErrRejected", o.BadQueue, err)
			}
		})
	}
}

// FakeBin writes commands (name → shell script body) into a directory for
// Config.Bin: how kinds whose servers do not run here are tested on their
// recorded outputs. Each command appends its arguments to DIR/calls.
func FakeBin(t *testing.T, cmds map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range cmds {
		script := "#!/bin/sh\necho \"" + name + " $*\" >> " + filepath.Join(dir, "calls") + "\n" + body + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// States asks sys for the status of every ID in want and checks each
// state, as the tests of a kind's parsing do against canned command output;
// it returns the statuses for further checks.
func States(t *testing.T, sys batch.System, want map[string]batch.State) map[string]batch.Status {
	t.Helper()
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sts, err := sys.Status(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	for id, st := range want {
		if sts[id].State != st {
			t.Errorf("%s: %+v, want %s", id, sts[id], st)
		}
	}
	return sts
}
