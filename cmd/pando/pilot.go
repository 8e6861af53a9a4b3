package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pando-wms/pando/containers"
	"github.com/pando-wms/pando/containers/podman"
	"github.com/pando-wms/pando/containers/process"
	"github.com/pando-wms/pando/dispatcher/pki"
	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/pilot"
	"github.com/pando-wms/pando/pilot/probe"
)

func newPilotCmd() *cobra.Command {
	var (
		cfg                    pilot.Config
		tokenFile, caFile, pin string
		memory, cacheSize      string
		ctrMode, podmanSocket  string
		cores                  int
		lf                     logFlags
	)
	cmd := &cobra.Command{
		Use:   "pilot",
		Short: "Run a pilot: take jobs from the dispatcher and run them on this node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := lf.logger()
			if err != nil {
				return err
			}
			cfg.Logger = log
			if cfg.Token, err = agentToken(tokenFile); err != nil {
				return err
			}
			if cfg.TLS, err = pki.DialTLS(cfg.Dispatcher, caFile, pin, wire.ALPN); err != nil {
				return fmt.Errorf("--dispatcher: %w", err)
			}
			if cfg.WorkDir != "" {
				if err := os.MkdirAll(cfg.WorkDir, 0o700); err != nil {
					return fmt.Errorf("--workdir: %w", err)
				}
			}
			res, err := probe.Probe(cmd.Context(), probe.Options{DiskDir: cfg.WorkDir, Logger: log})
			if err != nil {
				return fmt.Errorf("probe: %w", err)
			}
			if cores > 0 {
				res.Cores = cores
			}
			if memory != "" {
				if res.MemoryBytes, err = task.ParseSize(memory); err != nil {
					return fmt.Errorf("--memory: %w", err)
				}
			}
			if cacheSize != "" {
				if cfg.CacheBytes, err = task.ParseSize(cacheSize); err != nil {
					return fmt.Errorf("--cache-size: %w", err)
				}
			}
			cfg.Runtime = process.New(log.With("component", "process"))
			ctr, stop, err := containerRuntime(cmd.Context(), ctrMode, podmanSocket, log)
			if err != nil {
				return err
			}
			defer stop()
			if ctr != nil {
				cfg.Containers = ctr
				res.Runtimes = append(res.Runtimes, ctr.Name())
			}
			cfg.Resources = res
			p, err := pilot.New(cfg)
			if err != nil {
				return err
			}
			return p.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dispatcher, "dispatcher", "127.0.0.1:7443", "dispatcher (or edge) HOST:PORT")
	f.StringVar(&tokenFile, "token-file", os.Getenv("PANDO_TOKEN_FILE"), "file holding the agent token")
	f.StringVar(&caFile, "ca-file", "", "CA certificate (PEM) the dispatcher's certificate must chain to")
	f.StringVar(&pin, "pin", "", "instead of --ca-file: the SHA-256 of the dispatcher's certificate (sha256:HEX)")
	f.StringVar(&cfg.Queue, "queue", "", "queue to take work from (default: jobs that name no queue)")
	f.StringVar(&cfg.Name, "name", "", "pilot name (default HOSTNAME-PID)")
	f.IntVar(&cores, "cores", 0, "cores to offer (default: all)")
	f.StringVar(&memory, "memory", "", "memory to offer, e.g. 4GiB (default: all)")
	f.DurationVar(&cfg.Walltime, "walltime", 0, "stop taking work and exit after this long (default: no limit)")
	f.StringVar(&cfg.WorkDir, "workdir", "", "directory for job work directories (default: a new one in $TMPDIR)")
	f.BoolVar(&cfg.KeepWorkDirs, "keep-workdirs", false, "keep job work directories after their report")
	f.DurationVar(&cfg.IdleExit, "idle-exit", 0, "exit after this long without a job (default: never)")
	f.StringVar(&cfg.InputProxy, "input-proxy", "", "fetch inputs and upload outputs through this edge's input server (http://EDGE:PORT), for nodes with no route to the storage")
	f.StringVar(&cfg.CacheDir, "cache-dir", "", "node cache of staged inputs; a later pilot on the node reuses it, two at once must not share it (default: WORKDIR/cache)")
	f.StringVar(&cacheSize, "cache-size", "", "byte budget of the node cache, e.g. 50GiB (default 10GiB)")
	f.StringVar(&ctrMode, "containers", "auto", "container runtime for jobs with an image: auto (podman if installed), podman (required), none")
	f.StringVar(&podmanSocket, "podman-socket", "", "podman API socket to use (default: start a private `podman system service`)")
	lf.add(cmd)
	return cmd
}

// containerRuntime prepares the runtime for jobs that name an image: the
// podman service at socket, or one started for this pilot and stopped
// with it. In auto mode a node without podman runs image-less jobs only
// (and says so); the dispatcher sends it no others.
func containerRuntime(ctx context.Context, mode, socket string, log *slog.Logger) (containers.Runtime, func(), error) {
	nop := func() {}
	switch mode {
	case "none":
		return nil, nop, nil
	case "auto", "podman":
	default:
		return nil, nop, fmt.Errorf("--containers %q: want auto, podman or none", mode)
	}
	plog := log.With("component", "podman")
	fail := func(err error) (containers.Runtime, func(), error) {
		if mode == "podman" {
			return nil, nop, err
		}
		log.Warn("no container runtime: jobs with an image will not come here", "err", err)
		return nil, nop, nil
	}
	stop := nop
	if socket == "" {
		if _, err := exec.LookPath("podman"); err != nil && mode == "auto" {
			log.Info("podman not installed: jobs with an image will not come here")
			return nil, nop, nil
		}
		dir, err := os.MkdirTemp("", "pando-podman-")
		if err != nil {
			return fail(err)
		}
		svc, err := podman.StartService(ctx, dir, plog)
		if err != nil {
			os.RemoveAll(dir)
			return fail(err)
		}
		socket, stop = svc.Socket, func() { svc.Stop(); os.RemoveAll(dir) }
	}
	rt, err := podman.New(ctx, socket, plog)
	if err != nil {
		stop()
		return fail(err)
	}
	if n, err := rt.SweepOrphans(ctx); err != nil {
		log.Warn("could not look for payload containers of dead pilots", "err", err)
	} else if n > 0 {
		log.Warn("removed payload containers of dead pilots", "count", n)
	}
	return rt, stop, nil
}

// agentToken reads the agent's token file, or PANDO_TOKEN when no file is
// given.
func agentToken(file string) (string, error) {
	if file != "" {
		return readToken(file)
	}
	if t := strings.TrimSpace(os.Getenv("PANDO_TOKEN")); t != "" {
		return t, nil
	}
	return "", fmt.Errorf("no token: pass --token-file or set PANDO_TOKEN_FILE or PANDO_TOKEN")
}
