package slurm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pando-wms/pando/plugins/batch"
	"github.com/pando-wms/pando/plugins/batch/batchtest"
	"github.com/pando-wms/pando/plugins/batch/slurm"
	"github.com/pando-wms/pando/plugins/batch/slurm/slurmtest"
)

// The suite against a real single-node Slurm.
func TestConformance(t *testing.T) {
	c := slurmtest.Start(t)
	t.Setenv("SLURM_CONF", c.Conf)
	sys, err := batch.New(batch.Config{Kind: "slurm"})
	if err != nil {
		t.Fatal(err)
	}
	batchtest.Run(t, sys, batchtest.Options{Unknown: "999999", BadQueue: "nosuchpartition"})
}

// squeue output as Slurm 22.05 prints it: wait statuses become exit codes.
func TestParseSqueue(t *testing.T) {
	got := slurm.ParseSqueue("2|CANCELLED|None|15|\n3|COMPLETED|None|0|\n1|FAILED|NonZeroExitCode|768|\n4|PENDING|Resources|0|\n5|TIMEOUT|TimeLimit|15|\n")
	want := map[string]batch.Status{
		"1": {ID: "1", State: batch.Failed, ExitCode: 3, Reason: "NonZeroExitCode"},
		"2": {ID: "2", State: batch.Cancelled, ExitCode: 143},
		"3": {ID: "3", State: batch.Finished},
		"4": {ID: "4", State: batch.Queued, Reason: "Resources"},
		"5": {ID: "5", State: batch.Failed, ExitCode: 143, Reason: "TimeLimit"},
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %+v, want %+v", id, got[id], w)
		}
	}
}

// Jobs squeue has forgotten come from sacct where accounting runs; a hung
// squeue is ErrUnavailable, not a hung harvester.
func TestSacctAndHangs(t *testing.T) {
	bin := batchtest.FakeBin(t, map[string]string{
		"squeue": "echo '7|RUNNING|None|0|'",
		"sacct":  "printf '8|COMPLETED|0:0\\n9|CANCELLED by 0|0:15\\n10|FAILED|2:0\\n'",
	})
	sys, err := batch.New(batch.Config{Kind: "slurm", Bin: bin})
	if err != nil {
		t.Fatal(err)
	}
	sts, err := sys.Status(context.Background(), []string{"7", "8", "9", "10", "11"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]batch.Status{
		"7":  {ID: "7", State: batch.Running},
		"8":  {ID: "8", State: batch.Finished},
		"9":  {ID: "9", State: batch.Cancelled, ExitCode: 143},
		"10": {ID: "10", State: batch.Failed, ExitCode: 2},
	}
	for id, w := range want {
		if sts[id] != w {
			t.Errorf("%s: %+v, want %+v", id, sts[id], w)
		}
	}
	if sts["11"].State != batch.Missing {
		t.Errorf("11: %+v, want missing", sts["11"])
	}
	hung := batchtest.FakeBin(t, map[string]string{"squeue": "sleep 10"})
	sys, _ = batch.New(batch.Config{Kind: "slurm", Bin: hung, Timeout: 200 * time.Millisecond})
	if _, err := sys.Status(context.Background(), []string{"1"}); !errors.Is(err, batch.ErrUnavailable) {
		t.Errorf("hung squeue: %v, want ErrUnavailable", err)
	}
}
