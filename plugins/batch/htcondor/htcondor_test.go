package htcondor_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pando-wms/pando/plugins/batch"
	"github.com/pando-wms/pando/plugins/batch/batchtest"
	_ "github.com/pando-wms/pando/plugins/batch/htcondor"
)

// Submission, states (queue, then history) and removal on HTCondor 23's
// recorded JSON outputs.
func TestRecordedOutputs(t *testing.T) {
	q, _ := filepath.Abs("testdata/condor_q.json")
	h, _ := filepath.Abs("testdata/condor_history.json")
	bin := batchtest.FakeBin(t, map[string]string{
		"condor_submit":  "echo '201.0 - 201.0'",
		"condor_q":       "cat " + q,
		"condor_history": "cat " + h,
		"condor_rm":      `case "$1" in 999*) echo "Couldn't find/remove all jobs matching constraint (ClusterId == 999 && ProcId == 0)" >&2; echo "Job $1 not found" >&2; exit 1;; esac; echo "Job $1 marked for removal"`,
	})
	sys, err := batch.New(batch.Config{Kind: "htcondor", Bin: bin})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w := batch.Worker{Name: "pando-w1", Command: []string{"pando", "pilot"}, Env: map[string]string{"A": "b c"},
		Cores: 2, Memory: 4 << 30, Walltime: time.Hour, Dir: t.TempDir()}
	id, err := sys.Submit(ctx, w)
	if err != nil || id != "201.0" {
		t.Fatalf("Submit = %q, %v", id, err)
	}
	sub, _ := os.ReadFile(filepath.Join(w.Dir, "pando-w1.sub"))
	for _, want := range []string{"request_cpus = 2", "request_memory = 4096", "EnteredCurrentStatus > 3600", "executable = " + filepath.Join(w.Dir, "pando-w1.sh")} {
		if !strings.Contains(string(sub), want) {
			t.Errorf("submit file lacks %q:\n%s", want, sub)
		}
	}
	sts := batchtest.States(t, sys, map[string]batch.State{"201.0": batch.Queued, "202.0": batch.Running, "203.0": batch.Finished,
		"204.0": batch.Failed, "205.0": batch.Queued, "206.0": batch.Cancelled, "999.0": batch.Missing})
	if sts["204.0"].ExitCode != 3 || !strings.HasPrefix(sts["205.0"].Reason, "held: ") {
		t.Errorf("exit code or hold reason lost: %+v %+v", sts["204.0"], sts["205.0"])
	}
	if err := sys.Cancel(ctx, "999.0"); err != nil {
		t.Errorf("Cancel of an unknown job: %v", err)
	}
	if err := sys.Cancel(ctx, "202.0"); err != nil {
		t.Errorf("Cancel: %v", err)
	}
	down := batchtest.FakeBin(t, map[string]string{"condor_submit": "echo 'ERROR: Failed to connect to local queue manager' >&2; exit 1"})
	sys, _ = batch.New(batch.Config{Kind: "htcondor", Bin: down})
	if _, err := sys.Submit(ctx, w); !errors.Is(err, batch.ErrUnavailable) {
		t.Errorf("schedd down: %v, want ErrUnavailable", err)
	}
}
