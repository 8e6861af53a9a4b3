// Command pando is Pando's one binary: the dispatcher, the pilot and the
// user and operator command line.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signalContext()
	defer stop()
	root := newRoot()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return
	}
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "pando:", msg)
		}
		os.Exit(coded.ExitCode())
	}
	fmt.Fprintln(os.Stderr, "pando:", err)
	os.Exit(1)
}

// signalContext is cancelled on the first SIGINT or SIGTERM, for an orderly
// shutdown; a second signal exits at once.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		n := 0
		for range ch {
			if n++; n > 1 {
				fmt.Fprintln(os.Stderr, "pando: second signal, exiting now")
				os.Exit(130)
			}
			cancel()
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "pando",
		Short:         "Pando: a workload management system for distributed science",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	addUserCommands(root)
	root.AddCommand(newDispatcherCmd(), newPilotCmd(), newProbeCmd(), newDemoCmd(), newBenchCmd(), newPayloadCmd(), newTapeCmd(), newHarvesterCmd(), newEdgeCmd(), newSimCmd())
	return root
}
