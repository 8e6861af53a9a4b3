package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pando-wms/pando/dispatcher/api"
	"github.com/pando-wms/pando/dispatcher/queue"
	"github.com/pando-wms/pando/dispatcher/share"
)

// queueFlags are the queue fields a command line may set; only flags the
// user gave change a definition.
type queueFlags struct {
	kind, status                     string
	maxRunning, maxCores, maxGPUJobs int
	shares                           []string
	labels                           []string
}

func (f *queueFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.kind, "kind", "grid", "grid (pilots in batch slots) or hpc (pilots from a harvester)")
	fl.StringVar(&f.status, "status", "online", "online, test (only tasks that name the queue), draining or offline")
	fl.IntVar(&f.maxRunning, "max-running", 0, "most jobs its agents run at once (0: no limit)")
	fl.IntVar(&f.maxCores, "max-cores", 0, "most cores its running jobs hold (0: no limit)")
	fl.IntVar(&f.maxGPUJobs, "max-gpu-jobs", 0, "most GPU jobs running at once (0: no limit)")
	fl.StringSliceVar(&f.shares, "shares", nil, "shares whose work it takes, comma-separated (default: all; \"\" to clear)")
	fl.StringArrayVar(&f.labels, "label", nil, "KEY=VALUE label (repeatable; KEY= removes it)")
}

// apply sets the fields whose flags were given on q.
func (f *queueFlags) apply(cmd *cobra.Command, q *queue.Queue) error {
	ch := cmd.Flags().Changed
	if ch("kind") || q.Kind == "" {
		q.Kind = queue.Kind(f.kind)
	}
	if ch("status") || q.Status == "" {
		q.Status = queue.Status(f.status)
	}
	if ch("max-running") {
		q.MaxRunning = f.maxRunning
	}
	if ch("max-cores") {
		q.MaxCores = f.maxCores
	}
	if ch("max-gpu-jobs") {
		q.MaxGPUJobs = f.maxGPUJobs
	}
	if ch("shares") {
		q.Shares = slices.DeleteFunc(slices.Clone(f.shares), func(s string) bool { return s == "" })
	}
	for _, l := range f.labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return fmt.Errorf("--label %q: want KEY=VALUE", l)
		}
		if q.Labels == nil {
			q.Labels = map[string]string{}
		}
		if v == "" {
			delete(q.Labels, k)
		} else {
			q.Labels[k] = v
		}
	}
	return nil
}

func (u *userCLI) queueCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "queue", Short: "Create, change and inspect queues (changes: operators and admins)", Args: cobra.NoArgs}
	cmd.AddCommand(u.queueCreateCmd(), u.queueSetCmd(), u.queueShowCmd(), u.queueListCmd(),
		u.queueStatusCmd("drain", queue.Draining, "Stop giving the queue new work; running jobs finish"),
		u.queueStatusCmd("offline", queue.Offline, "Take the queue offline: no new work, idle agents refused"),
		u.queueStatusCmd("online", queue.Online, "Put the queue back online"))
	for _, c := range cmd.Commands() {
		silenceErrors(c)
	}
	return cmd
}

func (u *userCLI) queueCreateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "create NAME", Short: "Create a queue", Args: cobra.ExactArgs(1)}
	var f queueFlags
	f.add(cmd)
	out := outputFlag(cmd)
	cmd.RunE = run(func(cmd *cobra.Command, args []string) error {
		q := queue.Queue{Name: args[0]}
		if err := f.apply(cmd, &q); err != nil {
			return err
		}
		c, err := u.client()
		if err != nil {
			return err
		}
		got, err := c.CreateQueue(cmd.Context(), q)
		if err != nil {
			return fmt.Errorf("create queue %s: %w", q.Name, err)
		}
		return emit(cmd.OutOrStdout(), out, got, queueView)
	})
	return cmd
}

func (u *userCLI) queueSetCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "set NAME", Short: "Change a queue: only the fields whose flags are given", Args: cobra.ExactArgs(1)}
	var f queueFlags
	f.add(cmd)
	out := outputFlag(cmd)
	cmd.RunE = run(func(cmd *cobra.Command, args []string) error {
		return u.editQueue(cmd, out, args[0], func(q *queue.Queue) error { return f.apply(cmd, q) })
	})
	return cmd
}

func (u *userCLI) queueStatusCmd(verb string, s queue.Status, short string) *cobra.Command {
	cmd := &cobra.Command{Use: verb + " NAME", Short: short, Args: cobra.ExactArgs(1)}
	out := outputFlag(cmd)
	cmd.RunE = run(func(cmd *cobra.Command, args []string) error {
		return u.editQueue(cmd, out, args[0], func(q *queue.Queue) error { q.Status = s; return nil })
	})
	return cmd
}

// editQueue reads a queue, changes it and writes it back.
func (u *userCLI) editQueue(cmd *cobra.Command, out *outputFormat, name string, edit func(*queue.Queue) error) error {
	c, err := u.client()
	if err != nil {
		return err
	}
	cur, err := c.Queue(cmd.Context(), name)
	if err != nil {
		return fmt.Errorf("queue %s: %w", name, err)
	}
	q := cur.Queue
	if err := edit(&q); err != nil {
		return err
	}
	got, err := c.PutQueue(cmd.Context(), q)
	if err != nil {
		return fmt.Errorf("queue %s: %w", name, err)
	}
	return emit(cmd.OutOrStdout(), out, got, queueView)
}

func (u *userCLI) queueShowCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "show NAME", Short: "Show a queue and what its agents run", Args: cobra.ExactArgs(1)}
	out := outputFlag(cmd)
	cmd.RunE = run(func(cmd *cobra.Command, args []string) error {
		c, err := u.client()
		if err != nil {
			return err
		}
		q, err := c.Queue(cmd.Context(), args[0])
		if err != nil {
			return fmt.Errorf("queue %s: %w", args[0], err)
		}
		return emit(cmd.OutOrStdout(), out, q, queueView)
	})
	return cmd
}

func (u *userCLI) queueListCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "list", Short: "List queues", Args: cobra.NoArgs}
	out := outputFlag(cmd)
	cmd.RunE = run(func(cmd *cobra.Command, args []string) error {
		c, err := u.client()
		if err != nil {
			return err
		}
		qs, err := c.Queues(cmd.Context())
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), out, nonNil(qs), queuesTable)
	})
	return cmd
}

func limitText(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func queuesTable(w io.Writer, qs []api.Queue) {
	row(w, "NAME", "KIND", "STATUS", "AGENTS", "READY", "RUNNING", "MAX_RUNNING", "CORES", "MAX_CORES", "GPU_JOBS", "MAX_GPU_JOBS", "SHARES")
	for _, q := range qs {
		row(w, q.Name, q.Kind, q.Status, q.Agents, q.Ready, q.Running, limitText(q.MaxRunning),
			q.Cores, limitText(q.MaxCores), q.GPUJobs, limitText(q.MaxGPUJobs), strings.Join(q.Shares, ","))
	}
}

func queueView(w io.Writer, q api.Queue) {
	kv := func(k string, v any) { fmt.Fprintf(w, "%s:\t%s\n", k, cell(fmt.Sprint(v))) }
	kv("Name", q.Name)
	kv("Kind", q.Kind)
	kv("Status", q.Status)
	kv("Agents", q.Agents)
	kv("Ready", q.Ready)
	kv("Running", fmt.Sprintf("%d of %s jobs, %d of %s cores, %d of %s GPU jobs", q.Running, limitText(q.MaxRunning),
		q.Cores, limitText(q.MaxCores), q.GPUJobs, limitText(q.MaxGPUJobs)))
	kv("Finished", q.Finished)
	kv("Failed", q.FailedJobs)
	shares := "all"
	if len(q.Shares) > 0 {
		shares = strings.Join(q.Shares, ", ")
	}
	kv("Shares", shares)
	var labels []string
	for _, k := range slices.Sorted(maps.Keys(q.Labels)) {
		labels = append(labels, k+"="+q.Labels[k])
	}
	kv("Labels", strings.Join(labels, ", "))
}

func (u *userCLI) shareCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "share", Short: "Set fair-share targets (operators and admins)", Args: cobra.NoArgs}
	set := &cobra.Command{Use: "set PATH --target PERCENT", Short: "Set a share's target in percent of its parent (e.g. prod/mc --target 50)", Args: cobra.ExactArgs(1)}
	target := set.Flags().Float64("target", 0, "percent of the parent share (siblings sum to at most 100)")
	set.MarkFlagRequired("target")
	setOut := outputFlag(set)
	set.RunE = run(func(cmd *cobra.Command, args []string) error {
		if err := share.CheckPath(args[0]); err != nil {
			return err
		}
		c, err := u.client()
		if err != nil {
			return err
		}
		ss, err := c.SetShare(cmd.Context(), args[0], *target)
		if err != nil {
			return fmt.Errorf("share %s: %w", args[0], err)
		}
		return emit(cmd.OutOrStdout(), setOut, nonNil(ss), sharesTable)
	})
	unset := &cobra.Command{Use: "unset PATH", Short: "Remove a share's target: it then splits what its siblings leave", Args: cobra.ExactArgs(1)}
	unsetOut := outputFlag(unset)
	unset.RunE = run(func(cmd *cobra.Command, args []string) error {
		c, err := u.client()
		if err != nil {
			return err
		}
		ss, err := c.UnsetShare(cmd.Context(), args[0])
		if err != nil {
			return fmt.Errorf("share %s: %w", args[0], err)
		}
		return emit(cmd.OutOrStdout(), unsetOut, nonNil(ss), sharesTable)
	})
	cmd.AddCommand(set, unset)
	for _, c := range cmd.Commands() {
		silenceErrors(c)
	}
	return cmd
}

func (u *userCLI) sharesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "shares", Short: "Show each share's target and achieved fraction of its parent", Args: cobra.NoArgs}
	out := outputFlag(cmd)
	cmd.RunE = run(func(cmd *cobra.Command, args []string) error {
		c, err := u.client()
		if err != nil {
			return err
		}
		ss, err := c.Shares(cmd.Context())
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), out, nonNil(ss), sharesTable)
	})
	return cmd
}

func sharesTable(w io.Writer, ss []share.Status) {
	row(w, "SHARE", "TARGET%", "ACHIEVED%", "RUNNING_CORES", "READY_TASKS")
	for _, s := range ss {
		name := strings.Repeat("  ", strings.Count(s.Path, "/")) + s.Path
		target := fmt.Sprintf("%.1f", s.Target)
		if !s.Explicit {
			target += " (left)"
		}
		row(w, name, target, fmt.Sprintf("%.1f", s.Achieved), fmt.Sprintf("%g", s.RunningCores), s.ReadyTasks)
	}
}

func (u *userCLI) whyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "why ID", Short: "Explain why a job is not running", Args: cobra.ExactArgs(1)}
	out := outputFlag(cmd)
	cmd.RunE = run(func(cmd *cobra.Command, args []string) error {
		id, c, err := u.idClient(args[0])
		if err != nil {
			return err
		}
		why, err := c.Why(cmd.Context(), id)
		if err != nil {
			return fmt.Errorf("job %d: %w", id, err)
		}
		return emit(cmd.OutOrStdout(), out, why, whyView)
	})
	silenceErrors(cmd)
	return cmd
}

func whyView(w io.Writer, y api.Why) {
	fmt.Fprintf(w, "Job %d is %s.\n%s\n", y.JobID, y.State, y.Summary)
	if len(y.Queues) > 0 {
		fmt.Fprintln(w, "\nQueues:")
		for _, q := range y.Queues {
			fmt.Fprintf(w, "  %s:\t%s\n", q.Name, q.Reason)
		}
	}
	if len(y.Agents) > 0 {
		fmt.Fprintln(w, "\nAgents:")
		for _, a := range y.Agents {
			fmt.Fprintf(w, "  %s (%s):\t%s\n", a.Name, a.Queue, a.Reason)
		}
	}
}
