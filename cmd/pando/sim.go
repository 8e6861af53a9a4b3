package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/pando-wms/pando/dispatcher/share"
	"github.com/pando-wms/pando/dispatcher/sim"
	"github.com/pando-wms/pando/dispatcher/task"
)

// simFlags are the inputs of `pando sim`.
type simFlags struct {
	trace, queues, shares, cpuProfile string
	cfg                               sim.Config
}

// simReport is what `pando sim` prints: the replay's result and the time
// reading the trace took.
type simReport struct {
	*sim.Result
	LoadS float64 `json:"load_s"`
}

func newSimCmd() *cobra.Command {
	var fl simFlags
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "sim --trace FILE [--queues FILE] [--shares FILE] [-o json]",
		Short: "What-if replay of a workload trace through the broker, in simulated time",
		Long: `Replays a workload trace (CSV or JSON; 'pando sim generate' writes a synthetic
one) through the dispatcher's broker in simulated time, and reports per share the
achieved fraction of the cores against its target and the wait times, the slot
utilisation and the makespan.

Trace columns (CSV header, or JSON keys): submit_s and runtime_s (required), jobs,
cores, memory, gpus, gpu_model, walltime, share, priority, queue. Without --queues
the cluster is queue "default" with 100 agents of 8 cores and 16GiB. The formats
are described in full by 'go doc github.com/pando-wms/pando/dispatcher/sim'.`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			rep, err := replay(cmd, &fl)
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), out, rep, simTable)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&fl.trace, "trace", "", "the workload trace, CSV or JSON ('-': standard input)")
	f.StringVar(&fl.queues, "queues", "", "YAML list of queues and their agents (default: 100 agents of 8 cores)")
	f.StringVar(&fl.shares, "shares", "", "YAML list of share targets: {path, target}")
	f.DurationVar(&fl.cfg.ShareWindow, "share-window", 0, "time constant over which shares' past usage decays (default 10m, as the dispatcher)")
	f.DurationVar(&fl.cfg.Aging, "aging", 0, "a waiting task gains one priority point per this much time (default 1m; negative: no aging)")
	f.DurationVar(&fl.cfg.ReserveAfter, "reserve-after", 0, "a task first in line that waited this long for free cores, memory or GPUs gets an agent drained for it (default 10m, as the dispatcher; negative: never)")
	f.StringVar(&fl.cpuProfile, "cpuprofile", "", "write a CPU profile of the replay to this file")
	_ = cmd.MarkFlagRequired("trace")
	out = outputFlag(cmd)
	cmd.AddCommand(newSimGenerateCmd())
	return cmd
}

func replay(cmd *cobra.Command, fl *simFlags) (*simReport, error) {
	cfg := fl.cfg
	var err error
	if fl.queues != "" {
		if cfg.Queues, err = sim.ReadQueues(fl.queues); err != nil {
			return nil, err
		}
	}
	if fl.shares != "" {
		if cfg.Shares, err = sim.ReadShares(fl.shares); err != nil {
			return nil, err
		}
	}
	began := time.Now()
	var rows []sim.Row
	if fl.trace == "-" {
		rows, err = sim.Read(bufio.NewReaderSize(cmd.InOrStdin(), 1<<16), "stdin")
	} else {
		rows, err = sim.ReadFile(fl.trace)
	}
	if err != nil {
		return nil, err
	}
	load := time.Since(began)
	stop, err := profile(fl.cpuProfile)
	if err != nil {
		return nil, err
	}
	defer stop()
	res, err := sim.Run(cmd.Context(), rows, cfg)
	if err != nil {
		return nil, err
	}
	return &simReport{Result: res, LoadS: load.Seconds()}, nil
}

func simTable(w io.Writer, r *simReport) {
	row(w, "JOBS", "RAN", "UNRUNNABLE", "WALLTIME EXCEEDED", "MAKESPAN", "UTILISATION", "WAIT P50", "WAIT P95")
	row(w, r.Jobs, r.Ran, r.Unrunnable, r.WalltimeExceeded, secondsText(r.MakespanS), pct(r.Utilisation),
		secondsText(r.WaitP50S), secondsText(r.WaitP95S))
	fmt.Fprintln(w)
	row(w, "SHARE", "TARGET", "ACHIEVED", "CONTENDED", "JOBS", "UNRUNNABLE", "WAIT P50", "WAIT P95")
	for _, s := range r.Shares {
		contended := "-"
		if s.AchievedContended != nil {
			contended = pct(*s.AchievedContended)
		}
		row(w, s.Path, pct(s.Target), pct(s.Achieved), contended, s.Jobs, s.Unrunnable,
			secondsText(s.WaitP50S), secondsText(s.WaitP95S))
	}
	fmt.Fprintln(w)
	row(w, "QUEUE", "STATUS", "AGENTS", "CORES", "JOBS", "UTILISATION")
	for _, q := range r.Queues {
		row(w, q.Name, q.Status, q.Agents, q.Cores, q.Jobs, pct(q.Utilisation))
	}
	if len(r.UnrunnableReasons) > 0 {
		fmt.Fprintln(w)
		row(w, "UNRUNNABLE", "JOBS", "ROWS", "FIRST LINE")
		for _, u := range r.UnrunnableReasons {
			row(w, u.Reason, u.Jobs, countText(u.Rows), countText(int64(u.FirstLine)))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "replayed in %.2fs (trace read in %.2fs): %.0f jobs per minute of wall time\n",
		r.WallS, r.LoadS, r.JobsPerMinWall)
}

// countText prints 0, which means unknown here, as "-".
func countText(n int64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

func pct(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + "%" }

// secondsText prints a simulated duration in seconds, or in larger units
// once it is long.
func secondsText(s float64) string {
	if s < 120 {
		return strconv.FormatFloat(s, 'f', 1, 64) + "s"
	}
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}

func newSimGenerateCmd() *cobra.Command {
	g := sim.DefaultGen()
	var (
		shares, cores, prios, memory, outFile string
		seed                                  int64
	)
	cmd := &cobra.Command{
		Use:   "generate [--jobs N] [--shares prod/mc=50,user=20] [--seed S] [--arrival poisson] [--out FILE]",
		Short: "Write a synthetic workload trace (CSV) for pando sim",
		Long: `Writes a synthetic trace as CSV with every column. The same settings and seed
always give the same trace. --shares, --cores and --priorities are the mix, as
value=weight pairs (by rows). Arrivals: poisson (exponential gaps, --rate jobs/s on
average), uniform (evenly spaced at --rate) or burst (everything at time 0). Each
row is a task of 1 to --task-size jobs; runtimes are lognormal around --runtime
with --runtime-spread as sigma, walltimes the runtime times --walltime-factor
rounded up to a minute.`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			var err error
			if g.Shares, err = sim.ParseWeights(shares, func(s string) (string, error) { return s, share.CheckPath(s) }); err != nil {
				return err
			}
			if g.Cores, err = sim.ParseWeights(cores, strconv.Atoi); err != nil {
				return err
			}
			if g.Priorities, err = sim.ParseWeights(prios, strconv.Atoi); err != nil {
				return err
			}
			if g.MemoryPerCore, err = task.ParseSize(memory); err != nil {
				return fmt.Errorf("--memory-per-core: %w", err)
			}
			g.Seed = uint64(seed)
			rows, err := sim.Generate(g)
			if err != nil {
				return err
			}
			return writeTrace(cmd.OutOrStdout(), outFile, rows)
		}),
	}
	f := cmd.Flags()
	f.IntVar(&g.Jobs, "jobs", g.Jobs, "jobs in the trace")
	f.StringVar(&shares, "shares", "default=1", "mix of jobs by share: path=weight,...")
	f.Int64Var(&seed, "seed", int64(g.Seed), "random seed")
	f.StringVar(&g.Arrival, "arrival", g.Arrival, "arrival process: poisson, uniform or burst")
	f.Float64Var(&g.Rate, "rate", g.Rate, "mean arrival rate in jobs per second (poisson, uniform)")
	f.IntVar(&g.TaskSize, "task-size", g.TaskSize, "jobs per row (task): uniform from 1 to this")
	f.DurationVar(&g.Runtime, "runtime", g.Runtime, "mean job runtime")
	f.Float64Var(&g.RuntimeSpread, "runtime-spread", g.RuntimeSpread, "sigma of the lognormal runtimes (0: all equal)")
	f.Float64Var(&g.WalltimeFactor, "walltime-factor", g.WalltimeFactor, "walltime asked, as a multiple of the runtime")
	f.StringVar(&cores, "cores", "1", "mix of cores per job: cores=weight,...")
	f.StringVar(&memory, "memory-per-core", "2GiB", "memory per core of each job")
	f.Float64Var(&g.GPUFraction, "gpu-fraction", 0, "fraction of rows whose jobs need one GPU")
	f.StringVar(&prios, "priorities", "0", "mix of priorities: priority=weight,...")
	f.StringVar(&outFile, "out", "", "write the trace to this file (default: standard output)")
	return cmd
}

func writeTrace(stdout io.Writer, path string, rows []sim.Row) error {
	if path == "" {
		return sim.WriteCSV(stdout, rows)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := sim.WriteCSV(f, rows); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
