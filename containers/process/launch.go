package process

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pando-wms/pando/containers"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// launch starts the payload with its output pumped to the spec's writers.
func launch(s containers.Spec, log *slog.Logger) (*os.Process, *pumps, error) {
	env := environ(s)
	path, err := lookPath(s.Command[0], env["PATH"], s.WorkDir)
	if err != nil {
		return nil, nil, err
	}
	// Checked here because a missing cwd fails in the child with the same ENOENT as a missing
	// command, and must not be reported as ErrNotFound.
	if fi, err := os.Stat(s.WorkDir); err != nil || !fi.IsDir() {
		return nil, nil, fmt.Errorf("%w: WorkDir %s is not a directory", containers.ErrInvalidSpec, s.WorkDir)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, nil, err
	}
	defer devnull.Close()
	pp, stdout, stderr, err := newPumps(s.Stdout, s.Stderr, devnull, log)
	if err != nil {
		return nil, nil, err
	}
	p, err := os.StartProcess(path, s.Command, &os.ProcAttr{
		Dir:   s.WorkDir,
		Env:   envList(env),
		Files: []*os.File{devnull, stdout, stderr},
		Sys: &syscall.SysProcAttr{
			Setpgid: true, // its own group, so Kill reaches the whole tree
			// A dying pilot takes its payload along. Only the direct child gets this signal,
			// and it is tied to the forking OS thread, which Go only ends for goroutines that
			// exit while locked to their thread: do not start payloads from such goroutines.
			Pdeathsig: syscall.SIGKILL,
		},
	})
	pp.closeWriteEnds() // the child holds its own copies; EOF arrives when all holders exit
	if err != nil {
		pp.abort()
		return nil, nil, startError(err)
	}
	pp.run()
	return p, pp, nil
}

// environ is the payload's whole environment. The pilot's own is not passed on: it holds the
// pilot's token file path and other secrets.
func environ(s containers.Spec) map[string]string {
	path := os.Getenv("PATH")
	if path == "" {
		path = defaultPath
	}
	env := map[string]string{"PATH": path, "HOME": s.WorkDir, "TMPDIR": s.WorkDir, "LANG": "C.UTF-8"}
	maps.Copy(env, s.Env)
	gpuEnv(env, s.GPUs)
	return env
}

func envList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		list = append(list, k+"="+env[k])
	}
	return list
}

// lookPath finds name in the payload's PATH (not the pilot's). A name with a slash is taken
// relative to workDir, where the child resolves it after its chdir.
func lookPath(name, path, workDir string) (string, error) {
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			name = filepath.Join(workDir, name)
		}
		return name, executable(name)
	}
	for _, dir := range filepath.SplitList(path) {
		// A relative entry would resolve inside the job's directory: never search it.
		if !filepath.IsAbs(dir) {
			continue
		}
		if p := filepath.Join(dir, name); executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %q is not in PATH", containers.ErrNotFound, name)
}

func executable(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", containers.ErrNotFound, err)
	case fi.IsDir():
		return fmt.Errorf("%w: %s is a directory", containers.ErrNotFound, path)
	}
	if err := unix.Access(path, unix.X_OK); err != nil {
		return fmt.Errorf("%w: %s: %w", containers.ErrNotFound, path, err)
	}
	return nil
}

// startError maps exec failures that lookPath could not foresee (a race, a bad interpreter line,
// a binary for another machine) to ErrNotFound.
func startError(err error) error {
	for _, e := range []syscall.Errno{unix.ENOENT, unix.EACCES, unix.ENOEXEC, unix.ENOTDIR, unix.EISDIR, unix.ELOOP} {
		if errors.Is(err, e) {
			return fmt.Errorf("%w: %w", containers.ErrNotFound, err)
		}
	}
	return err
}
