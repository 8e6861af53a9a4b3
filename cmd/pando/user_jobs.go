package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/pando-wms/pando/dispatcher/api"
)

func (u *userCLI) jobsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List jobs, of one task or in one state",
		Args:  cobra.NoArgs,
	}
	out := outputFlag(cmd)
	task := cmd.Flags().Int64("task", 0, "only the jobs of task `ID`")
	state := cmd.Flags().String("state", "", "only jobs in state `S` (pending, ready, assigned, running, finished, failed, cancelled)")
	limit := cmd.Flags().Int("limit", 0, "list at most N jobs (0: all)")
	cmd.RunE = run(func(cmd *cobra.Command, args []string) error {
		c, err := u.client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		jobs, err := pageAll(*limit, func(limit int, after int64) ([]api.Job, error) {
			return c.Jobs(ctx, *task, *state, limit, after)
		}, func(j api.Job) int64 { return j.ID })
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), out, nonNil(jobs), jobsTable)
	})
	return cmd
}

func jobsTable(w io.Writer, jobs []api.Job) {
	row(w, "ID", "TASK", "INDEX", "STATE", "ATTEMPT", "EXIT", "ERROR", "AGENT")
	for _, j := range jobs {
		e := j.ErrorName // short enough for a column; pando job ID has the text
		if e == "" {
			e = clip(j.Error, 40)
		}
		row(w, j.ID, j.Task, j.Index, j.State, fmt.Sprintf("%d/%d", j.Attempt, j.MaxAttempts),
			exitText(j.ExitCode), e, j.Agent)
	}
}

func (u *userCLI) jobCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job ID",
		Short: "Show a job and its attempts",
		Args:  cobra.ExactArgs(1),
	}
	out := outputFlag(cmd)
	cmd.RunE = run(func(cmd *cobra.Command, args []string) error {
		id, c, err := u.idClient(args[0])
		if err != nil {
			return err
		}
		j, err := c.Job(cmd.Context(), id)
		if err != nil {
			return fmt.Errorf("job %d: %w", id, err)
		}
		return emit(cmd.OutOrStdout(), out, j, jobView)
	})
	cmd.AddCommand(u.whyCmd())
	return cmd
}

func jobView(w io.Writer, j api.Job) {
	kv := func(k string, v any) { fmt.Fprintf(w, "%s:\t%s\n", k, cell(fmt.Sprint(v))) }
	kv("ID", j.ID)
	kv("Task", j.Task)
	kv("Index", j.Index)
	kv("State", j.State)
	kv("Attempt", fmt.Sprintf("%d of %d", j.Attempt, j.MaxAttempts))
	kv("Exit code", exitText(j.ExitCode))
	kv("Error", errText(j.ErrorCode, j.ErrorName, j.Error))
	kv("Agent", j.Agent)
	kv("Created", timeText(j.Created))
	kv("Updated", timeText(j.Updated))
	kv("Started", timePtrText(j.Started))
	kv("Ended", timePtrText(j.Ended))
	for _, fs := range []struct {
		title string
		files []api.File
	}{{"INPUT", j.Inputs}, {"OUTPUT", j.Outputs}} {
		if len(fs.files) == 0 {
			continue
		}
		fmt.Fprintln(w)
		row(w, fs.title, "SIZE", "ADLER32", "STORED AT")
		for _, f := range fs.files {
			row(w, f.Name, f.Size, orDash(f.Adler32), fmt.Sprintf("%s:%s/%s", f.Endpoint, f.Bucket, f.Path))
		}
	}
	if len(j.Attempts) == 0 {
		return
	}
	fmt.Fprintln(w)
	row(w, "ATTEMPT", "STATE", "AGENT", "EXIT", "ERROR", "STARTED", "ENDED", "CPU", "MAX RSS")
	for _, a := range j.Attempts {
		cpu := "-"
		if a.CPUSeconds > 0 {
			cpu = fmt.Sprintf("%.1fs", a.CPUSeconds)
		}
		row(w, a.Attempt, a.State, a.Agent, exitText(a.ExitCode), errText(a.ErrorCode, a.ErrorName, clip(a.Error, 60)),
			timePtrText(a.Started), timePtrText(a.Ended), cpu, bytesText(a.MaxRSSBytes))
	}
}

// actionCmd is kill or retry: the same shape, on a task or a job.
func (u *userCLI) actionCmd(name, done, short string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   name + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
	}
	out := outputFlag(cmd)
	cmd.RunE = run(func(cmd *cobra.Command, args []string) error {
		id, c, err := u.idClient(args[0])
		if err != nil {
			return err
		}
		act := c.Kill
		if name == "retry" {
			act = c.Retry
		}
		r, err := act(cmd.Context(), id)
		if err != nil {
			return fmt.Errorf("%s %d: %w", name, id, err)
		}
		return emit(cmd.OutOrStdout(), out, r, func(w io.Writer, r api.ActionResponse) {
			fmt.Fprintf(w, "%s %d: %s %s\n", r.Kind, r.ID, plural(r.Affected, "job"), done)
		})
	})
	return cmd
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
