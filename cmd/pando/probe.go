package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/pilot/probe"
)

func newProbeCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "Print the resources a pilot on this node would report",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := probe.Probe(cmd.Context(), probe.Options{})
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Printf("host:     %s (%s, %s)\n", res.Hostname, res.OS, res.Arch)
			fmt.Printf("cpu:      %d cores, %s\n", res.Cores, res.CPUModel)
			fmt.Printf("memory:   %s\n", task.FormatSize(res.MemoryBytes))
			fmt.Printf("disk:     %s free\n", task.FormatSize(res.DiskBytes))
			fmt.Printf("load:     %.2f\n", res.Load1)
			fmt.Printf("runtimes: %s\n", strings.Join(res.Runtimes, ", "))
			if len(res.GPUs) == 0 {
				fmt.Println("gpus:     none")
			}
			for _, g := range res.GPUs {
				fmt.Printf("gpu %d:    %s, %s, %s, compute %d.%d\n", g.Index, g.Model, task.FormatSize(g.MemoryBytes), g.UUID, g.ComputeMajor, g.ComputeMinor)
			}
			if res.Driver != "" {
				fmt.Printf("driver:   %s (CUDA %s)\n", res.Driver, res.CUDA)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}
