package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pando-wms/pando/dispatcher/bench"
	"github.com/pando-wms/pando/dispatcher/gctune"
	"github.com/pando-wms/pando/dispatcher/pki"
	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/plugins/storage/tape/emulator"
)

// harnessHeadroom is how much the benchmark process's heap may grow
// between collections (see package gctune). Its simulated agents hold as
// much connection state as the dispatcher's side of them, ~400 MB at
// 10,000 agents, and each of its collections stalls the agents and the
// HTTP client that share the machine with the dispatcher: time a
// benchmark would charge to the dispatcher. The load generator's own
// memory is not what any of them measures. GOGC in the environment wins;
// with --in-process the dispatcher shares this policy.
const harnessHeadroom = 1 << 30

func newBenchCmd() *cobra.Command {
	var stopGC context.CancelFunc
	var gcDone sync.WaitGroup
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test a dispatcher",
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			if os.Getenv("GOGC") != "" {
				return
			}
			var ctx context.Context
			ctx, stopGC = context.WithCancel(cmd.Context())
			gcDone.Go(func() { gctune.Run(ctx, gctune.Config{Percent: 100, Headroom: harnessHeadroom}) })
		},
		PersistentPostRun: func(*cobra.Command, []string) {
			if stopGC != nil {
				stopGC()
				gcDone.Wait()
			}
		},
	}
	cmd.AddCommand(newBenchDispatchCmd(), newBenchE2ECmd(), newBenchLatencyCmd(), newBenchAgentsCmd(), newBenchAbuseCmd(), newBenchStageInCmd(), newBenchCarouselCmd(), newBenchEdgeCmd())
	return cmd
}

func newBenchDispatchCmd() *cobra.Command {
	var (
		cfg                   bench.DispatchConfig
		output, caFile, pin   string
		tokenFile, cpuProfile string
		memProfile            string
	)
	cmd := &cobra.Command{
		Use:   "dispatch",
		Short: "Jobs per second through the whole lifecycle, with simulated agents over QUIC",
		Long: `Simulated agents connect over real QUIC and run every job they are pushed
at once (JobOpen, running, report). Jobs are submitted through the HTTP API
in tasks of --task-size. Without --dispatcher a dispatcher process of its own
is started on a temporary directory, with durable state as in production
(--in-process: inside this process, where --cpuprofile and --memprofile see it).
On a machine with more cores, pin it with --dispatcher-cpus and the benchmark
with taskset to measure the dispatcher on a fixed number of cores.`,
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
			stop, err := profile(cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
			res, err := bench.Dispatch(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if err := writeAllocs(memProfile); err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "agents %d, jobs %d: %.0f jobs/s (%.2fs); submit->assign p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms; connect %.2fs (%d redials); errors %d; %.1f UDP datagrams per job\n",
				res.Agents, res.Jobs, res.JobsPerSec, res.Seconds, res.P50ms, res.P99ms, res.P999ms, res.ConnectSec, res.Redials, res.Errors, res.DatagramsPerJob)
			if res.DispatcherCPUSeconds > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "dispatcher process: %.1f s of CPU, %.0f µs per job\n", res.DispatcherCPUSeconds, res.DispatcherCPUPerJob)
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Agents, "agents", 1000, "simulated agents (one QUIC connection each)")
	f.IntVar(&cfg.Jobs, "jobs", 100000, "jobs to run")
	f.IntVar(&cfg.Slots, "slots", 4, "concurrent jobs per agent")
	f.IntVar(&cfg.TaskSize, "task-size", 100, "jobs per submitted task")
	f.BoolVar(&cfg.Policy, "policy", false, "scheduling policy on: a queue with limits, three shares in two levels, an architecture constraint")
	f.StringVar(&cfg.Dispatcher, "dispatcher", "", "agents address of a running dispatcher (default: an in-process one)")
	f.StringVar(&tokenFile, "token-file", "", "with --dispatcher: an admin token file (agents and submissions)")
	f.StringVar(&caFile, "ca-file", "", "with --dispatcher: its CA file")
	f.StringVar(&pin, "pin", "", "with --dispatcher: its certificate pin instead of --ca-file")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this process to this file (with --in-process, the dispatcher's too)")
	f.StringVar(&memProfile, "memprofile", "", "write an allocation profile of this process to this file (with --in-process, the dispatcher's too)")
	f.BoolVar(&cfg.InProcess, "in-process", false, "run the dispatcher inside this process instead of as a process of its own")
	procFlags(f, &cfg.Proc)
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

// profile starts a CPU profile into file (if any); stop ends it.
func profile(file string) (stop func(), err error) {
	if file == "" {
		return func() {}, nil
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// writeAllocs writes the heap profile, whose alloc_space view counts every
// allocation since the start, into file (if any).
func writeAllocs(file string) error {
	if file == "" {
		return nil
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func newBenchLatencyCmd() *cobra.Command {
	var cfg bench.LatencyConfig
	var output, cpuProfile string
	cmd := &cobra.Command{
		Use:   "latency",
		Short: "Submit-to-assign latency under open-loop Poisson submissions, and the rate where p99 passes --target",
		Long: `Simulated agents (one slot each) connect over QUIC to a dispatcher process of
its own (pin it with --dispatcher-cpus); one-job tasks are submitted through the HTTP API at Poisson arrivals of --rate per
second for --duration, without waiting for earlier submissions. With --max-rate the
rate then doubles until p99 passes --target: that rate is knee_rate.`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			stop, err := profile(cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
			res, err := bench.Latency(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			out := cmd.OutOrStdout()
			for _, s := range res.Steps {
				fmt.Fprintf(out, "rate %6.0f/s: %6d jobs, submit->assign p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms; CPU per job: dispatcher %.0f µs, benchmark %.0f µs; machine %.0f%% busy\n", s.Rate, s.Jobs, s.P50ms, s.P99ms, s.P999ms, s.DispatcherCPUPerJob, s.BenchCPUPerJob, s.BusyPercent)
			}
			if res.KneeRate > 0 {
				fmt.Fprintf(out, "p99 first passed %s at %.0f/s\n", cfg.Target, res.KneeRate)
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Agents, "agents", 10000, "simulated agents (one QUIC connection each)")
	f.Float64Var(&cfg.Rate, "rate", 1000, "offered jobs per second")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "time per offered rate")
	f.Float64Var(&cfg.MaxRate, "max-rate", 0, "search the knee by doubling the rate up to this (0: no search)")
	f.DurationVar(&cfg.Warmup, "warmup", 5*time.Second, "load offered at --rate before measuring")
	f.DurationVar(&cfg.Target, "target", 5*time.Millisecond, "p99 target for the knee")
	f.StringVar(&cfg.TaskFormat, "task-format", "yaml", "how submissions are written: yaml (a task file, as the CLI sends) or json (as API clients send)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this process (not the dispatcher's) to this file")
	procFlags(f, &cfg.Proc)
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func newBenchAgentsCmd() *cobra.Command {
	var cfg bench.AgentsConfig
	var output string
	cmd := &cobra.Command{
		Use:   "agents",
		Short: "The dispatcher's memory per connected, heartbeating agent",
		Long: `Runs a dispatcher as a separate process, connects --agents simulated agents
over real QUIC from this one (one UDP socket, at most 256 handshakes in flight),
keeps them heartbeating for --duration, and reports the dispatcher's RSS per
agent, heartbeat round trips, and agents it wrongly declared lost.`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			res, err := bench.Agents(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d agents (%d connected at the end, %d lost): dispatcher RSS %.0f MiB (%.0f MiB idle), %.1f KiB per agent; heartbeat p50 %.2f ms, p99 %.2f ms; connect %.1fs (%d redials)\n",
				res.Agents, res.Connected, res.Lost, res.RSSMiB, res.RSSBaselineMiB, res.RSSPerAgentKiB,
				res.HeartbeatP50ms, res.HeartbeatP99ms, res.ConnectSeconds, res.Redials)
			fmt.Fprintf(cmd.OutOrStdout(), "dispatcher CPU while holding them: %.0f%% of a core\n", res.DispatcherCPUPercent)
			fmt.Fprintf(cmd.OutOrStdout(), "after 3 forced collections, per agent: %.1f KiB RSS, %.1f KiB live heap, %.1f KiB stacks (%d goroutines)\n",
				res.RSSAfterGCPerAgent, res.HeapLivePerAgentKiB, res.StackPerAgentKiB, res.Goroutines)
			return nil
		}),
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Agents, "agents", 100000, "simulated agents (one QUIC connection each)")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Minute, "steady state to hold after all connected")
	f.DurationVar(&cfg.Heartbeat, "heartbeat", 10*time.Second, "the dispatcher's heartbeat period")
	procFlags(f, &cfg.Proc)
	f.StringVar(&cfg.HeapProfile, "heap-profile", "", "write the dispatcher's heap profile, taken after the final forced collections, to this file")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

// procFlags are the flags of benchmarks that start a dispatcher process.
func procFlags(f *pflag.FlagSet, p *bench.Proc) {
	f.StringArrayVar(&p.DispatcherArgs, "dispatcher-arg", nil, "extra flag for the dispatcher process, repeatable (e.g. --dispatcher-arg=--gc-percent=25)")
	f.StringVar(&p.DispatcherCPUs, "dispatcher-cpus", "", "pin the dispatcher process to these CPUs (taskset list, e.g. 0-1); pin the benchmark itself with taskset")
}

func newBenchAbuseCmd() *cobra.Command {
	var cfg bench.AbuseConfig
	var output string
	cmd := &cobra.Command{
		Use:   "abuse",
		Short: "Latency of well-behaved agents, idle and while bad peers hit the dispatcher",
		Long: `Measures submit-to-assign latency as bench latency does, first idle, then
while garbage UDP datagrams, stalled half-open QUIC handshakes, slow HTTP
clients and oversized frames hit the same dispatcher; prints both and the
ratio of their p99.`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			res, err := bench.Abuse(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "idle: p50 %.2f ms, p99 %.2f ms; under abuse: p50 %.2f ms, p99 %.2f ms; ratio %.2f\n"+
				"abuse sent: %d garbage datagrams, %d half-open handshakes, %d slow HTTP connections, %d oversized frames refused\n",
				res.IdleP50ms, res.IdleP99ms, res.AbuseP50ms, res.AbuseP99ms, res.Ratio,
				res.Garbage, res.HalfOpen, res.SlowHTTP, res.Oversize)
			return nil
		}),
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Agents, "agents", 1000, "well-behaved simulated agents")
	f.Float64Var(&cfg.Rate, "rate", 100, "offered jobs per second")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "time per measurement")
	f.Float64Var(&cfg.Garbage, "garbage", 1000, "garbage UDP datagrams per second")
	f.IntVar(&cfg.HalfOpen, "half-open", 1000, "QUIC handshakes kept stalled at once")
	f.IntVar(&cfg.SlowHTTP, "slow-http", 100, "slow HTTP clients")
	f.Float64Var(&cfg.Oversize, "oversize", 20, "connections per second sending an oversized frame")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func newBenchStageInCmd() *cobra.Command {
	var cfg bench.StageInConfig
	var output, size, chunk string
	cmd := &cobra.Command{
		Use:   "stagein",
		Short: "Stage-in MB/s against plain minio-go GETs of the same objects, same server, same run",
		Long: `Starts a real S3 server (versitygw; make test installs it), uploads --files
objects of --size, then downloads them twice: with plain minio-go GETs written
to files, and with the pilot's stage-in (presigned URLs, parallel ranges,
adler32 verification, read-only files). Prints both rates and their ratio.`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			n, err := task.ParseSize(size)
			if err != nil {
				return fmt.Errorf("--size: %w", err)
			}
			cfg.Size = n
			if chunk != "" {
				if cfg.Chunk, err = task.ParseSize(chunk); err != nil {
					return fmt.Errorf("--chunk: %w", err)
				}
			}
			res, err := bench.StageIn(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d files, %s: stage-in %.0f MB/s (%.2fs), plain GETs %.0f MB/s (%.2fs), ratio %.2f\n",
				res.Files, task.FormatSize(res.Bytes), res.StageInMBps, res.StageInSeconds, res.RawMBps, res.RawSeconds, res.Ratio)
			fmt.Fprintf(cmd.OutOrStdout(), "node cache: hits read back over HTTP %.0f MB/s; %d concurrent readers of one object: %d upstream download(s)\n",
				res.CacheHitMBps, res.ConcurrentRead, res.ReadersFills)
			return nil
		}),
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Files, "files", 16, "objects to stage")
	f.StringVar(&size, "size", "64MiB", "size of each object")
	f.IntVar(&cfg.Parallel, "parallel", 8, "files (plain GETs) or ranges (stage-in) in flight")
	f.StringVar(&chunk, "chunk", "", "stage-in range size (default 8MiB)")
	f.StringVar(&cfg.Dir, "dir", "", "directory for the server's data and the downloads (default $TMPDIR)")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func newBenchCarouselCmd() *cobra.Command {
	var cfg bench.CarouselConfig
	var output, size, rate, buffer, winBytes string
	cmd := &cobra.Command{
		Use:   "carousel",
		Short: "Tape carousel throughput against the drives' limit and against staging everything at once",
		Long: `Runs the tape emulator twice over the same files, needed in dataset order
(spread over the cartridges), each released as soon as it is on disk (or
held by one of --consumers jobs for --hold): once through the carousel's
window, once all requested at once in dataset order, first come (what the
full disk buffer refuses is requested again). --tape-order fifo makes the
emulated tape system recall strictly in arrival order instead of reading
the files of a mounted cartridge first. Prints MB/s of both, the limit (the drives':
(cartridges x mount + files x (seek + size/rate)) / drives, or the jobs':
consumers x size / hold, whichever is lower) and ratios.`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			var err error
			for _, x := range []struct {
				name string
				in   string
				dst  *int64
			}{{"--size", size, &cfg.Size}, {"--rate", rate, &cfg.Rate}, {"--buffer", buffer, &cfg.Buffer}, {"--window-bytes", winBytes, &cfg.Window.Bytes}} {
				if *x.dst, err = task.ParseSize(x.in); err != nil {
					return fmt.Errorf("%s: %w", x.name, err)
				}
			}
			res, err := bench.Carousel(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d files, %s, tape order %s: carousel %.1f MB/s (%d mounts, %d refused, peak %d files / %s in flight), limit %.1f MB/s (ratio %.2f), first come all at once %.1f MB/s (%d mounts, %d refused; ratio %.2f)\n",
				res.Files, task.FormatSize(res.Bytes), res.TapeOrder, res.CarouselMBps, res.CarouselMounts, res.CarouselRetried, res.PeakFiles, task.FormatSize(res.PeakBytes),
				res.LimitMBps, res.RatioLimit, res.UnwindowedMBps, res.UnwindowedMount, res.UnwindowedRetry, res.RatioUnwindowed)
			return nil
		}),
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Files, "files", 80, "files to stage")
	f.IntVar(&cfg.Cartridges, "cartridges", 8, "cartridges they are spread over")
	f.IntVar(&cfg.Drives, "drives", 2, "tape drives")
	f.StringVar(&size, "size", "4MB", "size of each file")
	f.StringVar(&rate, "rate", "100MB", "read rate of a drive, per second")
	f.StringVar(&buffer, "buffer", "64MB", "the tape system's disk buffer")
	f.DurationVar(&cfg.Mount, "mount", 200*time.Millisecond, "cartridge mount time")
	f.DurationVar(&cfg.Seek, "seek", 20*time.Millisecond, "positioning time per file")
	f.StringVar(&cfg.TapeOrder, "tape-order", emulator.OrderTape, "the emulated tape system's recall order: tape or fifo")
	f.IntVar(&cfg.Window.Files, "window-files", 16, "carousel window: files in flight (default: the buffer's worth)")
	f.StringVar(&winBytes, "window-bytes", "64MB", "carousel window: bytes in flight (default: the whole buffer)")
	f.IntVar(&cfg.Consumers, "consumers", 0, "jobs reading the staged files, each holding one for --hold (0: release each file at once)")
	f.DurationVar(&cfg.Hold, "hold", 0, "how long a job holds a staged file before releasing it")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func newBenchEdgeCmd() *cobra.Command {
	var agents, jobs int
	var output string
	cmd := &cobra.Command{
		Use:   "edge",
		Short: "Dispatch through an edge against dispatching directly, same dispatcher, same run",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			res, err := bench.Edge(cmd.Context(), agents, jobs)
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d agents, %d jobs: direct %.0f jobs/s (p99 %.2f ms), through the edge %.0f jobs/s (p99 %.2f ms): throughput ratio %.2f, p99 %+.2f ms\n",
				res.Agents, res.Jobs, res.DirectPerSec, res.DirectP99ms, res.EdgePerSec, res.EdgeP99ms, res.ThroughputCost, res.LatencyCostMs)
			return nil
		}),
	}
	f := cmd.Flags()
	f.IntVar(&agents, "agents", 200, "simulated agents (one QUIC connection each, to the dispatcher or to the edge)")
	f.IntVar(&jobs, "jobs", 20000, "jobs per run")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}
