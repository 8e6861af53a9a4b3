package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/pando-wms/pando/dispatcher/api"
)

func (u *userCLI) submitCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "submit TASK.yaml",
		Short: "Submit a task file (- reads standard input)",
		Long: "Submit a task file and print the new task's ID, alone on a line, so that\n" +
			"scripts can do: id=$(pando submit task.yaml)",
		Args: cobra.ExactArgs(1),
	}
	out := outputFlag(cmd)
	cmd.RunE = run(func(cmd *cobra.Command, args []string) error {
		body, err := readTaskFile(cmd, args[0])
		if err != nil {
			return err
		}
		c, err := u.client()
		if err != nil {
			return err
		}
		r, err := c.Submit(cmd.Context(), body)
		if err != nil {
			return fmt.Errorf("submit %s: %w", args[0], err)
		}
		return emit(cmd.OutOrStdout(), out, r, func(w io.Writer, r api.SubmitResponse) {
			fmt.Fprintln(w, r.ID)
		})
	})
	return cmd
}

func readTaskFile(cmd *cobra.Command, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(cmd.InOrStdin())
	}
	return os.ReadFile(name)
}

func (u *userCLI) tasksCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tasks",
		Short: "List tasks (your own; operators and admins see all)",
		Args:  cobra.NoArgs,
	}
	out := outputFlag(cmd)
	limit := cmd.Flags().Int("limit", 0, "list at most N tasks (0: all)")
	cmd.RunE = run(func(cmd *cobra.Command, args []string) error {
		c, err := u.client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		tasks, err := pageAll(*limit, func(limit int, after int64) ([]api.Task, error) {
			return c.Tasks(ctx, limit, after)
		}, func(t api.Task) int64 { return t.ID })
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), out, nonNil(tasks), tasksTable)
	})
	return cmd
}

func tasksTable(w io.Writer, tasks []api.Task) {
	row(w, "ID", "NAME", "OWNER", "STATE", "JOBS", "DONE/FAILED/RUNNING")
	for _, t := range tasks {
		progress := fmt.Sprintf("%d/%d/%d", t.Counts["finished"], t.Counts["failed"], t.Counts["running"])
		row(w, t.ID, t.Name, t.Owner, t.State, t.Jobs, progress)
	}
}

// pageAll fetches a listing page by page until an empty page, or until it
// holds limit items when limit > 0, so that no listing is silently cut at
// the dispatcher's page size. Pages come in ascending ID order; a page
// that does not move forward ends the walk rather than loop forever.
func pageAll[T any](limit int, fetch func(limit int, after int64) ([]T, error), id func(T) int64) ([]T, error) {
	var all []T
	var after int64
	for {
		want := 0
		if limit > 0 {
			want = limit - len(all)
		}
		page, err := fetch(want, after)
		if err != nil || len(page) == 0 {
			return all, err
		}
		all = append(all, page...)
		if limit > 0 && len(all) >= limit {
			return all[:limit], nil
		}
		last := id(page[len(page)-1])
		if last <= after {
			return all, nil
		}
		after = last
	}
}
