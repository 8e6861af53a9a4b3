package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/pando-wms/pando/dispatcher/api/client"
)

func (u *userCLI) logsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logs JOB",
		Short: "Print a job's log; with -f, follow it until the attempt ends",
		Args:  cobra.ExactArgs(1),
	}
	follow := cmd.Flags().BoolP("follow", "f", false, "stream the log while the attempt runs")
	attempt := cmd.Flags().Int("attempt", 0, "the log of attempt `N` (default: the current one)")
	cmd.RunE = run(func(cmd *cobra.Command, args []string) error {
		id, c, err := u.idClient(args[0])
		if err != nil {
			return err
		}
		if *follow {
			return u.followLogs(cmd, c, id, *attempt)
		}
		if err := c.Logs(cmd.Context(), id, false, 0, *attempt, cmd.OutOrStdout()); err != nil {
			return fmt.Errorf("logs of job %d: %w", id, err)
		}
		return nil
	})
	return cmd
}

// followLogs streams a job's log, and resumes it at the byte where it
// broke if the dispatcher goes away for less than retryFor. The attempt is
// pinned first, so that a resumed stream is the same log.
func (u *userCLI) followLogs(cmd *cobra.Command, c *client.Client, id int64, attempt int) error {
	ctx := cmd.Context()
	if attempt == 0 {
		j, err := c.Job(ctx, id)
		if err != nil {
			return fmt.Errorf("job %d: %w", id, err)
		}
		attempt = j.Attempt
	}
	w := &countingWriter{w: cmd.OutOrStdout()}
	var failing time.Time // start of the current run of failures
	for {
		before := w.n
		err := c.Logs(ctx, id, true, w.n, attempt, w)
		if err == nil || w.err != nil || !transient(err) {
			return err
		}
		if w.n > before || failing.IsZero() {
			failing = time.Now()
			fmt.Fprintf(cmd.ErrOrStderr(), "%v; reconnecting\n", err)
		}
		if time.Since(failing) > u.retryFor || !sleep(ctx, u.poll) {
			return err
		}
	}
}

// countingWriter counts what reached w, which is where a resumed log
// starts, and keeps w's own error apart from the stream's.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// transient reports whether err may pass if the request is made again: the
// dispatcher could not be reached, or answered 5xx (say, restarting behind
// a proxy). A 4xx will not change, and a cancelled context is the user's.
func transient(err error) bool {
	var e *client.Error
	if errors.As(err, &e) {
		return e.Status >= 500
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// sleep waits d, or less if ctx ends first; it reports whether ctx is live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
