package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pando-wms/pando/containers/process"
	"github.com/pando-wms/pando/dispatcher"
	"github.com/pando-wms/pando/dispatcher/api/client"
	"github.com/pando-wms/pando/dispatcher/pki"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/pilot"
	"github.com/pando-wms/pando/pilot/probe"
)

// demoTask is the sample task the demo submits.
const demoTask = `name: demo
command: ["/bin/sh", "-c", "echo hello from job $PANDO_JOB_INDEX of task $PANDO_TASK_ID on attempt $PANDO_ATTEMPT; sleep 0.2"]
jobs: 20
resources: {cores: 1, memory: 64MiB, walltime: 1m}
priority: 100
max_attempts: 3
`

func newDemoCmd() *cobra.Command {
	var keep bool
	var lf logFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a dispatcher and a pilot in a temporary directory and push a sample task through them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lf.level, lf.format = "warn", "text"
			log, err := lf.logger()
			if err != nil {
				return err
			}
			return runDemo(cmd.Context(), cmd.OutOrStdout(), log, keep)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary directory")
	return cmd
}

func runDemo(ctx context.Context, out io.Writer, log *slog.Logger, keep bool) error {
	dir, err := os.MkdirTemp("", "pando-demo-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	srv, err := dispatcher.New(ctx, dispatcher.Config{DataDir: filepath.Join(dir, "data"),
		AgentAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Logger: log})
	if err != nil {
		return err
	}
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(ctx) }()
	defer func() { cancel(); <-srvDone }()
	fmt.Fprintf(out, "dispatcher: agents on %s (QUIC), API on http://%s, data in %s\n", srv.AgentAddr(), srv.HTTPAddr(), dir)

	token, err := os.ReadFile(srv.AdminTokenFile())
	if err != nil {
		return err
	}
	tok := strings.TrimSpace(string(token))
	pl, err := startDemoPilot(ctx, srv, tok, filepath.Join(dir, "pilot"), log)
	if err != nil {
		return err
	}
	plDone := make(chan error, 1)
	go func() { plDone <- pl.Run(ctx) }()
	defer func() { cancel(); <-plDone }()

	c, err := client.New("http://"+srv.HTTPAddr().String(), tok, nil)
	if err != nil {
		return err
	}
	sub, err := c.Submit(ctx, []byte(demoTask))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "submitted task %d with %d jobs; watching it run:\n", sub.ID, sub.Jobs)
	return watchDemo(ctx, out, c, sub.ID)
}

func startDemoPilot(ctx context.Context, srv *dispatcher.Server, token, workdir string, log *slog.Logger) (*pilot.Pilot, error) {
	tlsConf, err := pki.ClientTLS(srv.CAFile(), "", wire.ALPN, "")
	if err != nil {
		return nil, err
	}
	res, err := probe.Probe(ctx, probe.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	res.Cores = max(res.Cores, 4) // the demo's payloads mostly sleep
	return pilot.New(pilot.Config{Dispatcher: srv.AgentAddr().String(), Token: token, TLS: tlsConf,
		Name: "demo-pilot", Resources: res, WorkDir: workdir, Runtime: process.New(log), Logger: log})
}

func watchDemo(ctx context.Context, out io.Writer, c *client.Client, id int64) error {
	start := time.Now()
	last := ""
	for {
		t, err := c.Task(ctx, id)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("  %5.1fs  %-9s ready %d, running %d, finished %d, failed %d",
			time.Since(start).Seconds(), t.State, t.Counts["ready"], t.Counts["assigned"]+t.Counts["running"],
			t.Counts["finished"], t.Counts["failed"])
		if line[9:] != last {
			fmt.Fprintln(out, line)
			last = line[9:]
		}
		if t.State == "finished" || t.State == "failed" || t.State == "cancelled" {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	jobs, err := c.Jobs(ctx, id, "", 3, 0)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "output of the first jobs:")
	for _, j := range jobs {
		var b strings.Builder
		if err := c.Logs(ctx, j.ID, false, 0, 0, &b); err != nil {
			return err
		}
		fmt.Fprintf(out, "  job %d: %s", j.ID, b.String())
	}
	t, err := c.Task(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "summary: task %d %s: %d of %d jobs finished, %d failed, in %.1fs\n",
		id, t.State, t.Counts["finished"], t.Jobs, t.Counts["failed"], time.Since(start).Seconds())
	if t.State != "finished" {
		return &exitError{code: 1, msg: "demo task did not finish"}
	}
	return nil
}
