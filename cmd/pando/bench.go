package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/pando-wms/pando/dispatcher/bench"
	"github.com/pando-wms/pando/dispatcher/pki"
	"github.com/pando-wms/pando/dispatcher/wire"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Load-test a dispatcher"}
	cmd.AddCommand(newBenchDispatchCmd(), newBenchE2ECmd())
	return cmd
}

func newBenchDispatchCmd() *cobra.Command {
	var (
		cfg                   bench.DispatchConfig
		output, caFile, pin   string
		tokenFile, cpuProfile string
	)
	cmd := &cobra.Command{
		Use:   "dispatch",
		Short: "Jobs per second through the whole lifecycle, with simulated agents over QUIC",
		Long: `Simulated agents connect over real QUIC and run every job they are pushed
at once (JobOpen, running, report). Jobs are submitted through the HTTP API
in tasks of --task-size. Without --dispatcher an in-process dispatcher on a
temporary directory is used, with durable state as in production.`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			if cfg.Dispatcher != "" {
				var err error
				if cfg.Token, err = agentToken(tokenFile); err != nil {
					return err
				}
				if cfg.TLS, err = pki.ClientTLS(caFile, pin, wire.ALPN, ""); err != nil {
					return err
				}
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			res, err := bench.Dispatch(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "agents %d, jobs %d: %.0f jobs/s (%.2fs); submit->assign p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms; connect %.2fs (%d redials); errors %d\n",
				res.Agents, res.Jobs, res.JobsPerSec, res.Seconds, res.P50ms, res.P99ms, res.P999ms, res.ConnectSec, res.Redials, res.Errors)
			return nil
		}),
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Agents, "agents", 1000, "simulated agents (one QUIC connection each)")
	f.IntVar(&cfg.Jobs, "jobs", 100000, "jobs to run")
	f.IntVar(&cfg.Slots, "slots", 4, "concurrent jobs per agent")
	f.IntVar(&cfg.TaskSize, "task-size", 100, "jobs per submitted task")
	f.StringVar(&cfg.Dispatcher, "dispatcher", "", "agents address of a running dispatcher (default: an in-process one)")
	f.StringVar(&tokenFile, "token-file", "", "with --dispatcher: an admin token file (agents and submissions)")
	f.StringVar(&caFile, "ca-file", "", "with --dispatcher: its CA file")
	f.StringVar(&pin, "pin", "", "with --dispatcher: its certificate pin instead of --ca-file")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file")
	cmd.Flags().StringVar(&cfg.Server, "api", "", "with --dispatcher: its API URL (default $PANDO_SERVER)")
	return cmd
}

func newBenchE2ECmd() *cobra.Command {
	var cfg bench.E2EConfig
	var output string
	cmd := &cobra.Command{
		Use:   "e2e",
		Short: "Real /bin/true payloads through a dispatcher and pilots, against a plain start loop",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			res, err := bench.E2E(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d jobs on %d pilots: %.0f jobs/s (%.2fs); plain loop starting /bin/true: %.0f/s; ratio %.2f\n",
				res.Jobs, res.Pilots, res.JobsPerSec, res.Seconds, res.LimitPerSec, res.Ratio)
			return nil
		}),
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Jobs, "jobs", 2000, "jobs to run")
	f.IntVar(&cfg.Pilots, "pilots", 2, "pilots")
	f.IntVar(&cfg.Slots, "slots", 8, "concurrent jobs per pilot")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}
