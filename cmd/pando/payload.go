package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pando-wms/pando/containers"
	"github.com/pando-wms/pando/containers/process"
	"github.com/pando-wms/pando/dispatcher/broker"
	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/pilot"
	"github.com/pando-wms/pando/pilot/probe"
)

func newPayloadCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "payload",
		Short: "Run and check payloads locally, as a pilot would run them",
	}
	cmd.AddCommand(newPayloadRunCmd(), newPayloadCheckCmd())
	return cmd
}

func newPayloadRunCmd() *cobra.Command {
	var (
		index         int
		workdir       string
		podmanSocket  string
		lf            logFlags
		keep, noLimit bool
	)
	cmd := &cobra.Command{
		Use:   "run TASK.yaml",
		Short: "Run one job of a task file here, exactly as a pilot would, and exit with its status",
		Long: `Runs job --job of the task file with the pilot's own code: the same runtime
(podman for a task with an image, else a plain process), environment
(PANDO_* included), work directory, mounts, limits, GPUs and walltime.
Its output streams to this terminal; the exit status is the payload's
(137 when killed for memory or walltime, which is also printed).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := lf.logger()
			if err != nil {
				return err
			}
			data, err := readTaskFile(cmd, args[0])
			if err != nil {
				return err
			}
			spec, err := task.Parse(data)
			if err != nil {
				return err
			}
			if index < 0 || index >= spec.Jobs {
				return fmt.Errorf("--job %d: the task has jobs 0 to %d", index, spec.Jobs-1)
			}
			a := &wire.Assign{Index: index, Attempt: 1, Command: spec.Command, Env: spec.Env, Image: spec.Image,
				Network: spec.Network, Resources: broker.JobResources(spec.Resources)}
			if noLimit {
				a.Resources.WalltimeSecs = 0
			}
			return runPayload(cmd.Context(), a, workdir, podmanSocket, keep, log)
		},
	}
	f := cmd.Flags()
	f.IntVar(&index, "job", 0, "index of the job to run (0 to jobs-1)")
	f.StringVar(&workdir, "workdir", "", "work directory (default: a new one in $TMPDIR)")
	f.BoolVar(&keep, "keep", false, "keep the work directory afterwards (always kept when --workdir is given)")
	f.BoolVar(&noLimit, "no-walltime", false, "do not enforce the task's walltime")
	f.StringVar(&podmanSocket, "podman-socket", "", "podman API socket (default: start a private service)")
	quietLogs(cmd, &lf)
	return cmd
}

// quietLogs adds the log flags with warn as the default: a developer's
// terminal is for the payload's output.
func quietLogs(cmd *cobra.Command, lf *logFlags) {
	lf.add(cmd)
	fl := cmd.Flags().Lookup("log-level")
	fl.DefValue = envOr("PANDO_LOG_LEVEL", "warn")
	_ = fl.Value.Set(fl.DefValue)
}

func runPayload(ctx context.Context, a *wire.Assign, workdir, socket string, keep bool, log *slog.Logger) error {
	if workdir == "" {
		dir, err := os.MkdirTemp("", "pando-payload-")
		if err != nil {
			return err
		}
		workdir = dir
		if !keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(workdir, 0o700); err != nil {
		return fmt.Errorf("--workdir: %w", err)
	}
	gpus, err := localGPUs(ctx, a.Resources, log)
	if err != nil {
		return err
	}
	var rt containers.Runtime = process.New(log)
	if a.Image != "" {
		ctr, stop, err := containerRuntime(ctx, "podman", socket, log)
		if err != nil {
			return fmt.Errorf("the task names an image: %w", err)
		}
		defer stop()
		rt = ctr
	}
	spec := pilot.PayloadSpec(fmt.Sprintf("pando-payload-%d-%d", os.Getpid(), time.Now().UnixNano()), a, workdir, gpus)
	spec.Stdout, spec.Stderr = os.Stdout, os.Stderr
	fmt.Fprintf(os.Stderr, "pando: job %d in %s (runtime %s, %d cores, %s, walltime %s)\n", a.Index, workdir, rt.Name(),
		a.Resources.Cores, task.FormatSize(a.Resources.MemoryBytes), walltimeText(a.Resources.WalltimeSecs))
	c, err := rt.Create(ctx, spec)
	if err != nil {
		return err
	}
	defer c.Remove(context.Background())
	if err := c.Start(ctx); err != nil {
		return err
	}
	why := make(chan string, 1)
	if a.Resources.WalltimeSecs > 0 {
		wall := time.Duration(a.Resources.WalltimeSecs) * time.Second
		t := time.AfterFunc(wall, func() {
			why <- fmt.Sprintf("walltime of %s exceeded", wall)
			_ = c.Kill(context.Background(), syscall.SIGKILL)
		})
		defer t.Stop()
	}
	stop := context.AfterFunc(ctx, func() {
		why <- "interrupted"
		_ = c.Kill(context.Background(), syscall.SIGKILL)
	})
	defer stop()
	exit, err := c.Wait(context.Background())
	if err != nil {
		return err
	}
	msg := ""
	select {
	case msg = <-why:
	default:
		if exit.OOM {
			msg = "out of memory: killed at its limit of " + task.FormatSize(a.Resources.MemoryBytes)
		}
	}
	if keep {
		fmt.Fprintf(os.Stderr, "pando: work directory kept: %s\n", workdir)
	}
	if exit.Code != 0 || msg != "" {
		if msg == "" {
			msg = fmt.Sprintf("payload exited with status %d", exit.Code)
		}
		return &exitError{code: max(exit.Code, 1), msg: msg}
	}
	return nil
}

func walltimeText(secs int64) string {
	if secs == 0 {
		return "none"
	}
	return (time.Duration(secs) * time.Second).String()
}

// localGPUs picks the GPUs r asks for among this node's, as a pilot would give them.
func localGPUs(ctx context.Context, r wire.JobResources, log *slog.Logger) ([]containers.GPU, error) {
	if r.GPUs == 0 {
		return nil, nil
	}
	res, err := probe.Probe(ctx, probe.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	idx := pilot.PickGPUs(res.GPUs, nil, r)
	if idx == nil {
		return nil, fmt.Errorf("the job needs %d GPUs of one vendor that fit it, and this node's are %s", r.GPUs, gpuSummary(res.GPUs))
	}
	gpus, err := pilot.NameGPUs("/", res.GPUs, idx)
	if err != nil {
		log.Warn("GPU device nodes not found: a container cannot be given them", "err", err)
	}
	return gpus, nil
}

// gpuSummary is "none" or the node's GPUs, e.g. "0 (nvidia NVIDIA H100), 1 (amd AMD Instinct MI300X)".
func gpuSummary(gpus []wire.GPU) string {
	if len(gpus) == 0 {
		return "none"
	}
	var parts []string
	for _, g := range gpus {
		parts = append(parts, fmt.Sprintf("%d (%s %s)", g.Index, cmp.Or(g.Vendor, "nvidia"), g.Model))
	}
	return strings.Join(parts, ", ")
}

// checkScript prints what a payload would find in the image, one key=value per line.
const checkScript = `. /etc/os-release 2>/dev/null; echo "os=${PRETTY_NAME:-${NAME:-unknown}}"
echo "user=$(id -un 2>/dev/null || id -u) (uid $(id -u))"
for s in /bin/bash /bin/sh /bin/ash /bin/zsh; do [ -x "$s" ] && echo "shell=$s"; done
n=0; for d in /dev/nvidia[0-9]*; do [ -e "$d" ] && n=$((n+1)); done
[ "$n" = 0 ] && for d in /dev/dri/renderD*; do [ -e "$d" ] && n=$((n+1)); done; echo "gpus=$n"
echo "arch=$(uname -m)"`

func newPayloadCheckCmd() *cobra.Command {
	var (
		socket, output string
		lf             logFlags
	)
	cmd := &cobra.Command{
		Use:   "check IMAGE",
		Short: "Start an image as a pilot would and report its OS, user, shells and the GPUs it would see",
		Long: `Starts IMAGE (a name, or oci-archive:/path and docker-archive:/path) in podman
with this node's GPUs given as a pilot gives them (NVIDIA's by CDI name, AMD's
and Intel's by device node), and reports
the OS, the user the payload runs as, the shells present and how many GPU
devices the payload sees.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := lf.logger()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			res, err := probe.Probe(ctx, probe.Options{Logger: log})
			if err != nil {
				return err
			}
			rt, stop, err := containerRuntime(ctx, "podman", socket, log)
			if err != nil {
				return err
			}
			defer stop()
			dir, err := os.MkdirTemp("", "pando-check-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			all := make([]int, len(res.GPUs))
			for i := range all {
				all[i] = i
			}
			gpus, err := pilot.NameGPUs("/", res.GPUs, all)
			if err != nil {
				log.Warn("GPU device nodes not found", "err", err)
				gpus = slices.DeleteFunc(gpus, func(g containers.GPU) bool { return g.Vendor != "nvidia" && len(g.Devices) == 0 })
			}
			a := &wire.Assign{Command: []string{"/bin/sh", "-c", checkScript}, Image: args[0],
				Resources: wire.JobResources{Cores: 1, MemoryBytes: 256 << 20}}
			spec := pilot.PayloadSpec(fmt.Sprintf("pando-check-%d", os.Getpid()), a, dir, gpus)
			var out, errOut strings.Builder
			spec.Stdout, spec.Stderr = &out, &errOut
			c, err := rt.Create(ctx, spec)
			if err != nil {
				return err
			}
			defer c.Remove(context.Background())
			if err := c.Start(ctx); err != nil {
				if errors.Is(err, containers.ErrNotFound) {
					return fmt.Errorf("image %s has no /bin/sh, which the check needs: %w", args[0], err)
				}
				return err
			}
			exit, err := c.Wait(ctx)
			if err != nil {
				return err
			}
			if exit.Code != 0 {
				return fmt.Errorf("the check script failed in %s (exit %d): %s", args[0], exit.Code, errOut.String())
			}
			report := map[string]any{"image": args[0], "host_gpus": len(res.GPUs)}
			var shells []string
			for _, line := range strings.Split(out.String(), "\n") {
				k, v, ok := strings.Cut(line, "=")
				switch {
				case !ok:
				case k == "shell":
					shells = append(shells, v)
				default:
					report[k] = v
				}
			}
			report["shells"] = shells
			if output == "json" {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(report)
			}
			fmt.Printf("image:  %s\nos:     %s\narch:   %s\nuser:   %s\nshells: %s\ngpus:   %s of the node's %d\n",
				args[0], report["os"], report["arch"], report["user"], strings.Join(shells, " "), report["gpus"], len(res.GPUs))
			return nil
		},
	}
	cmd.Flags().StringVar(&socket, "podman-socket", "", "podman API socket (default: start a private service)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	quietLogs(cmd, &lf)
	return cmd
}
