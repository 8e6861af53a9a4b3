package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pando-wms/pando/dispatcher/api/client"
	"github.com/pando-wms/pando/dispatcher/store"
)

func (u *userCLI) waitCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wait ID",
		Short: "Wait until a task's (or a job's) jobs have ended",
		Long: "Wait until no job of the task (or the job, for a job ID) is pending, ready,\n" +
			"assigned or running. Exit status 0 if every job finished, 1 if any failed\n" +
			"or was cancelled, 2 on --timeout.",
		Args: cobra.ExactArgs(1),
	}
	timeout := cmd.Flags().Duration("timeout", 0, "give up after `D` (e.g. 30m) with exit status 2")
	cmd.RunE = run(func(cmd *cobra.Command, args []string) error {
		id, c, err := u.idClient(args[0])
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		if *timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *timeout)
			defer cancel()
		}
		out := cmd.OutOrStdout()
		var show func(progress)
		if u.terminal(out) {
			show = func(p progress) { fmt.Fprint(out, p.bar()) }
		}
		p, err := u.waitFor(ctx, c, id, show, cmd.ErrOrStderr())
		if show != nil && p.label != "" {
			fmt.Fprintln(out) // end the progress line
		}
		return waitResult(cmd, out, p, err, *timeout)
	})
	return cmd
}

// waitResult maps the end of a wait to its output and exit status.
func waitResult(cmd *cobra.Command, out io.Writer, p progress, err error, timeout time.Duration) error {
	switch {
	case err != nil && errors.Is(err, context.DeadlineExceeded) && cmd.Context().Err() == nil:
		return &exitError{code: 2, msg: fmt.Sprintf("timed out after %v: %s", timeout, p.summary())}
	case err != nil:
		return err
	case !p.ok():
		return &exitError{code: 1, msg: p.summary()}
	}
	fmt.Fprintln(out, p.summary())
	return nil
}

// waitFor polls the task id, or the job id when no task has that ID (they
// share one ID sequence), until nothing is live. Once the dispatcher has
// answered, a lost dispatcher is ridden out for retryFor.
func (u *userCLI) waitFor(ctx context.Context, c *client.Client, id int64, show func(progress), errw io.Writer) (progress, error) {
	fetch := taskProgress
	p, err := fetch(ctx, c, id)
	if client.IsNotFound(err) {
		fetch = jobProgress
		p, err = fetch(ctx, c, id)
	}
	if err != nil {
		return p, fmt.Errorf("wait %d: %w", id, err)
	}
	var failing time.Time
	for {
		if show != nil {
			show(p)
		}
		if p.live() == 0 {
			return p, nil
		}
		if !sleep(ctx, u.poll) {
			return p, ctx.Err()
		}
		next, err := fetch(ctx, c, id)
		switch {
		case err == nil:
			p, failing = next, time.Time{}
		case !transient(err):
			return p, err
		case failing.IsZero():
			failing = time.Now()
			if show != nil {
				fmt.Fprintln(errw) // off the progress line
			}
			fmt.Fprintf(errw, "%v; retrying\n", err)
		case time.Since(failing) > u.retryFor:
			return p, err
		}
	}
}

// progress is a task's or a job's jobs, counted by state.
type progress struct {
	label  string         // "task 1" or "job 5"
	counts map[string]int // state -> jobs
	detail string         // a job's error, for its summary
}

func taskProgress(ctx context.Context, c *client.Client, id int64) (progress, error) {
	t, err := c.Task(ctx, id)
	return progress{label: fmt.Sprintf("task %d", id), counts: t.Counts}, err
}

func jobProgress(ctx context.Context, c *client.Client, id int64) (progress, error) {
	j, err := c.Job(ctx, id)
	p := progress{label: fmt.Sprintf("job %d", id), counts: map[string]int{j.State: 1}}
	if j.State != string(store.Finished) {
		p.detail = errText(j.ErrorCode, j.ErrorName, j.Error)
	}
	return p, err
}

// live counts the jobs not in a final state. A state this CLI does not
// know counts as live: waiting too long beats stopping too soon.
func (p progress) live() int {
	n := 0
	for s, k := range p.counts {
		if !store.State(s).Final() {
			n += k
		}
	}
	return n
}

func (p progress) total() int {
	n := 0
	for _, k := range p.counts {
		n += k
	}
	return n
}

func (p progress) ok() bool { return p.counts[string(store.Finished)] == p.total() }

// summary is "task 1: 18 finished, 2 failed", states in lifecycle order.
func (p progress) summary() string {
	var parts []string
	for _, s := range p.states() {
		parts = append(parts, fmt.Sprintf("%d %s", p.counts[s], s))
	}
	if len(parts) == 0 {
		parts = []string{"no jobs"}
	}
	s := p.label + ": " + strings.Join(parts, ", ")
	if p.detail != "" {
		s += ": " + p.detail
	}
	return s
}

// states lists the states with jobs: known ones in lifecycle order, then
// any others by name.
func (p progress) states() []string {
	var known, other []string
	for _, s := range store.States {
		if p.counts[string(s)] > 0 {
			known = append(known, string(s))
		}
	}
	for s, k := range p.counts {
		if k > 0 && !isKnown(s) {
			other = append(other, s)
		}
	}
	sort.Strings(other)
	return append(known, other...)
}

func isKnown(s string) bool {
	for _, k := range store.States {
		if string(k) == s {
			return true
		}
	}
	return false
}

// bar is the live progress line: \r, the bar, the counts, and an erase to
// the end of the line for when the line got shorter.
func (p progress) bar() string {
	const width = 30
	total, done := p.total(), p.total()-p.live()
	filled := width
	if total > 0 {
		filled = width * done / total
	}
	return fmt.Sprintf("\r%s [%s%s] %d/%d  %s\x1b[K", p.label,
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total,
		strings.TrimPrefix(p.summary(), p.label+": "))
}
