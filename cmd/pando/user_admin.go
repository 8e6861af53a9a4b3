package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pando-wms/pando/dispatcher/api"
	"github.com/pando-wms/pando/dispatcher/wire"
)

func (u *userCLI) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens", Args: cobra.NoArgs}
	create := &cobra.Command{
		Use:   "create --role ROLE --name NAME",
		Short: "Create a token (admin only) and print its secret, shown only this once",
		Args:  cobra.NoArgs,
	}
	out := outputFlag(create)
	role := create.Flags().String("role", "user", "role: user, operator, admin or agent")
	name := create.Flags().String("name", "", "whom the token is for (a user name, or an agent's)")
	create.MarkFlagRequired("name")
	create.RunE = run(func(cmd *cobra.Command, args []string) error {
		c, err := u.client()
		if err != nil {
			return err
		}
		r, err := c.CreateToken(cmd.Context(), *role, *name)
		if err != nil {
			return fmt.Errorf("create token: %w", err)
		}
		return emit(cmd.OutOrStdout(), out, r, func(w io.Writer, r api.TokenResponse) {
			fmt.Fprintln(w, r.Token)
		})
	})
	cmd.AddCommand(create)
	return cmd
}

func (u *userCLI) whoamiCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "whoami", Short: "Show whom the token belongs to", Args: cobra.NoArgs}
	out := outputFlag(cmd)
	cmd.RunE = run(func(cmd *cobra.Command, args []string) error {
		c, err := u.client()
		if err != nil {
			return err
		}
		me, err := c.Whoami(cmd.Context())
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), out, me, func(w io.Writer, me api.Whoami) {
			fmt.Fprintf(w, "Name:\t%s\nRole:\t%s\nServer:\t%s\n", me.Name, me.Role, c.Server())
		})
	})
	return cmd
}

func (u *userCLI) agentsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "agents", Short: "List agents (operators and admins)", Args: cobra.NoArgs}
	out := outputFlag(cmd)
	cmd.RunE = run(func(cmd *cobra.Command, args []string) error {
		c, err := u.client()
		if err != nil {
			return err
		}
		agents, err := c.Agents(cmd.Context())
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), out, nonNil(agents), agentsTable)
	})
	return cmd
}

func (u *userCLI) workersCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "workers", Short: "List the batch workers harvesters keep (operators and admins)", Args: cobra.NoArgs}
	out := outputFlag(cmd)
	queue := cmd.Flags().String("queue", "", "only this queue's workers")
	cmd.RunE = run(func(cmd *cobra.Command, args []string) error {
		c, err := u.client()
		if err != nil {
			return err
		}
		ws, err := c.Workers(cmd.Context(), *queue)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), out, nonNil(ws), workersTable)
	})
	return cmd
}

func workersTable(w io.Writer, ws []api.Worker) {
	row(w, "NAME", "QUEUE", "HARVESTER", "BATCH", "BATCH ID", "STATE", "SUBMITTED", "UPDATED", "REASON")
	for _, x := range ws {
		state := x.State
		if x.ExitCode != 0 {
			state = fmt.Sprintf("%s (exit %d)", x.State, x.ExitCode)
		}
		row(w, x.Name, x.Queue, x.Harvester, x.Batch, x.BatchID, state, timeText(x.Submitted), timeText(x.Updated), clip(x.Reason, 50))
	}
}

func agentsTable(w io.Writer, agents []api.Agent) {
	row(w, "ID", "NAME", "KIND", "QUEUE", "STATE", "SINCE", "RUNNING", "CORES", "MEMORY", "GPUS")
	for _, a := range agents {
		state := "lost"
		if a.Connected {
			state = "connected"
		}
		r := a.Resources
		row(w, a.ID, a.Name, a.Kind, a.Queue, state, timeText(a.Since), a.Running,
			r.Cores, bytesText(r.MemoryBytes), gpusText(r))
	}
}

// gpusText is "2 NVIDIA A100" or, for a mixed node, "3 (A100, T4)".
func gpusText(r wire.Resources) string {
	if len(r.GPUs) == 0 {
		return "-"
	}
	var models []string
	seen := map[string]bool{}
	for _, g := range r.GPUs {
		if !seen[g.Model] {
			seen[g.Model] = true
			models = append(models, g.Model)
		}
	}
	if len(models) == 1 {
		return fmt.Sprintf("%d %s", len(r.GPUs), models[0])
	}
	return fmt.Sprintf("%d (%s)", len(r.GPUs), strings.Join(models, ", "))
}
