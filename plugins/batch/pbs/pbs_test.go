package pbs_test

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
	_ "github.com/pando-wms/pando/plugins/batch/pbs"
)

func worker(t *testing.T) batch.Worker {
	return batch.Worker{Name: "pando-w1", Command: []string{"pando", "pilot", "--queue", "hpc q"}, Env: map[string]string{"PANDO_TOKEN_FILE": "/x/t"},
		Cores: 4, Memory: 8 << 30, Walltime: 90 * time.Minute, Queue: "workq", Dir: t.TempDir()}
}

// Submission, states and cancellation on PBS Pro 22's recorded outputs.
func TestRecordedOutputs(t *testing.T) {
	qstat, err := filepath.Abs("testdata/qstat.json")
	if err != nil {
		t.Fatal(err)
	}
	bin := batchtest.FakeBin(t, map[string]string{
		"qsub":  "echo 101.pbs01",
		"qstat": "cat " + qstat + "; echo 'qstat: Unknown Job Id 999.pbs01' >&2; exit 153",
		"qdel":  `case "$1" in 999*) echo "qdel: Unknown Job Id $1" >&2; exit 153;; esac`,
	})
	sys, err := batch.New(batch.Config{Kind: "pbs", Bin: bin})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w := worker(t)
	id, err := sys.Submit(ctx, w)
	if err != nil || id != "101.pbs01" {
		t.Fatalf("Submit = %q, %v", id, err)
	}
	script, _ := os.ReadFile(filepath.Join(w.Dir, "pando-w1.pbs"))
	for _, want := range []string{"#PBS -N pando-w1", "select=1:ncpus=4:mem=8192mb", "walltime=01:30:00", "#PBS -q workq",
		"export PANDO_TOKEN_FILE=/x/t", "exec pando pilot --queue 'hpc q'"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("job script lacks %q:\n%s", want, script)
		}
	}
	sts := batchtest.States(t, sys, map[string]batch.State{"101.pbs01": batch.Queued, "102.pbs01": batch.Running, "103.pbs01": batch.Finished,
		"104.pbs01": batch.Failed, "105.pbs01": batch.Cancelled, "106.pbs01": batch.Failed, "999.pbs01": batch.Missing})
	if sts["104.pbs01"].ExitCode != 3 || !strings.Contains(sts["101.pbs01"].Reason, "Insufficient") {
		t.Errorf("exit code or reason lost: %+v %+v", sts["104.pbs01"], sts["101.pbs01"])
	}
	if err := sys.Cancel(ctx, "999.pbs01"); err != nil {
		t.Errorf("Cancel of an unknown job: %v", err)
	}
	if err := sys.Cancel(ctx, "102.pbs01"); err != nil {
		t.Errorf("Cancel: %v", err)
	}
}

// A refused job, a server that cannot be reached and a hung qsub each get
// their own error kind.
func TestErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, qsub string
		want       error
	}{
		{"rejected", "echo 'qsub: Unknown queue' >&2; exit 170", batch.ErrRejected},
		{"down", "echo 'Connection refused\nqsub: cannot connect to server pbs01 (errno=15010)' >&2; exit 111", batch.ErrUnavailable},
		{"hung", "sleep 5", batch.ErrUnavailable},
	} {
		sys, err := batch.New(batch.Config{Kind: "pbs", Bin: batchtest.FakeBin(t, map[string]string{"qsub": tc.qsub}), Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sys.Submit(ctx, worker(t)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
