package main

import (
	"github.com/spf13/cobra"

	"github.com/pando-wms/pando/harvester"
	_ "github.com/pando-wms/pando/plugins/batch/htcondor"
	_ "github.com/pando-wms/pando/plugins/batch/local"
	_ "github.com/pando-wms/pando/plugins/batch/pbs"
	_ "github.com/pando-wms/pando/plugins/batch/slurm"
)

func newHarvesterCmd() *cobra.Command {
	var (
		file string
		lf   logFlags
	)
	cmd := &cobra.Command{
		Use:   "harvester",
		Short: "Keep pilots in batch systems for the dispatcher's queues (HPC login nodes)",
		Long: `Reads --config (dispatcher, token_file, ca_file, queues: [{name, batch, max_queued,
max_running, worker: {cores, memory, walltime}}]) and, every interval, asks the
dispatcher how much ready work of each queue fits a worker, submits pilots through
the queue's batch system (slurm, pbs, htcondor, local) within its limits, follows
them, cancels queued ones no work is left for, and reports them all to the
dispatcher (pando workers). Workers it submitted survive its restarts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := lf.logger()
			if err != nil {
				return err
			}
			cfg, err := harvester.LoadConfig(file)
			if err != nil {
				return err
			}
			h, err := harvester.New(cfg, log)
			if err != nil {
				return err
			}
			return h.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&file, "config", "harvester.yaml", "the harvester's configuration file")
	lf.add(cmd)
	return cmd
}
