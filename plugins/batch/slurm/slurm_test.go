package slurm_test

import (
	"testing"

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
