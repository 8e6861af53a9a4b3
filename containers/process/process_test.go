package process

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pando-wms/pando/containers"
	"github.com/pando-wms/pando/containers/runtimetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	runtimetest.Run(t, New(quiet()), runtimetest.Options{Shell: "/bin/sh"})
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// run creates and starts a payload with the given command, removed at the end of the test.
func run(t *testing.T, rt *Runtime, s containers.Spec) containers.Container {
	t.Helper()
	if s.Name == "" {
		s.Name = t.Name()
	}
	if s.WorkDir == "" {
		s.WorkDir = t.TempDir()
	}
	c, err := rt.Create(t.Context(), s)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Remove(context.Background()); err != nil {
			t.Errorf("Remove: %v", err)
		}
	})
	if err := c.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return c
}

func wait(t *testing.T, c containers.Container) containers.Exit {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	e, err := c.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return e
}

func TestCreateRefuses(t *testing.T) {
	ok := containers.Spec{Name: "x", Command: []string{"true"}, WorkDir: "/tmp"}
	for _, tc := range []struct {
		name string
		edit func(*containers.Spec)
		want error
	}{
		{"image", func(s *containers.Spec) { s.Image = "busybox" }, containers.ErrImageUnsupported},
		{"image is unsupported", func(s *containers.Spec) { s.Image = "busybox" }, containers.ErrUnsupported},
		{"remapped mount", func(s *containers.Spec) {
			s.Mounts = []containers.Mount{{Source: "/data", Target: "/input"}}
		}, containers.ErrUnsupported},
		{"no name", func(s *containers.Spec) { s.Name = "" }, containers.ErrInvalidSpec},
		{"no command", func(s *containers.Spec) { s.Command = nil }, containers.ErrInvalidSpec},
		{"relative WorkDir", func(s *containers.Spec) { s.WorkDir = "work" }, containers.ErrInvalidSpec},
		{"bad env name", func(s *containers.Spec) { s.Env = map[string]string{"A=B": "c"} }, containers.ErrInvalidSpec},
	} {
		s := ok
		tc.edit(&s)
		if _, err := New(quiet()).Create(t.Context(), s); !errors.Is(err, tc.want) {
			t.Errorf("%s: Create = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// A missing WorkDir is a bad spec, not a missing command, though the kernel says ENOENT to both.
func TestMissingWorkDir(t *testing.T) {
	s := containers.Spec{Name: "x", Command: []string{"true"}, WorkDir: filepath.Join(t.TempDir(), "gone")}
	c, err := New(quiet()).Create(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context()); !errors.Is(err, containers.ErrInvalidSpec) {
		t.Errorf("Start = %v, want ErrInvalidSpec", err)
	}
}

// The environment is exactly the base, Spec.Env and the GPU assignment, which Spec.Env cannot widen.
func TestEnvironment(t *testing.T) {
	t.Setenv("PATH", "/usr/bin:/bin")
	var out strings.Builder
	wd := t.TempDir()
	c := run(t, New(quiet()), containers.Spec{
		Command: []string{"env"}, WorkDir: wd, Stdout: &out,
		Env:  map[string]string{"JOB": "42", "CUDA_VISIBLE_DEVICES": "all", "LANG": "en_US.UTF-8"},
		GPUs: []containers.GPU{{Vendor: "nvidia", ID: "GPU-a"}, {Vendor: "nvidia", ID: "GPU-b"}},
	})
	wait(t, c)
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	slices.Sort(got)
	want := []string{
		"CUDA_VISIBLE_DEVICES=GPU-a,GPU-b", "HIP_VISIBLE_DEVICES=-1", "HOME=" + wd, "JOB=42", "LANG=en_US.UTF-8",
		"NVIDIA_VISIBLE_DEVICES=GPU-a,GPU-b", "PATH=/usr/bin:/bin", "ROCR_VISIBLE_DEVICES=", "TMPDIR=" + wd,
		"ZE_AFFINITY_MASK=" + zeNoDevice,
	}
	if !slices.Equal(got, want) {
		t.Errorf("environment:\n got %q\nwant %q", got, want)
	}
}

// Commands are looked up in the payload's PATH, and relative paths in WorkDir.
func TestLookPath(t *testing.T) {
	wd := t.TempDir()
	bin := filepath.Join(wd, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	script := []byte("#!/bin/sh\necho \"$0\"\n")
	for _, p := range []string{filepath.Join(bin, "mycmd"), filepath.Join(wd, "run.sh")} {
		if err := os.WriteFile(p, script, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ cmd, want string }{
		{"mycmd", filepath.Join(bin, "mycmd")},
		{"./run.sh", filepath.Join(wd, "run.sh")},
	} {
		var out strings.Builder
		c := run(t, New(quiet()), containers.Spec{
			Name: tc.cmd, Command: []string{tc.cmd}, WorkDir: wd, Stdout: &out,
			Env: map[string]string{"PATH": "relative:" + bin + ":/usr/bin:/bin"},
		})
		if e := wait(t, c); e.Code != 0 || strings.TrimSpace(out.String()) != tc.want {
			t.Errorf("%s: exit %+v, $0 = %q, want %q", tc.cmd, e, out.String(), tc.want)
		}
	}
}

func TestKillTerm(t *testing.T) {
	c := run(t, New(quiet()), containers.Spec{Command: []string{"sleep", "100"}})
	if err := c.Kill(t.Context(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, c); e != (containers.Exit{Code: 143, Signal: "SIGTERM"}) {
		t.Errorf("exit %+v, want 143 by SIGTERM", e)
	}
}

// A process that left the payload's group (setsid) and keeps stdout open delays Wait by the
// grace period only.
func TestEscapedOutputBounded(t *testing.T) {
	rt := New(quiet())
	rt.OutputGrace = 100 * time.Millisecond
	wd := t.TempDir()
	var out strings.Builder
	c := run(t, rt, containers.Spec{
		Command: []string{"/bin/sh", "-c", `setsid sh -c 'echo $$ > escaped; exec sleep 100' & while [ ! -s escaped ]; do :; done; echo hi`},
		WorkDir: wd, Stdout: &out,
	})
	t.Cleanup(func() { killPIDFile(t, filepath.Join(wd, "escaped")) })
	if e := wait(t, c); e.Code != 0 || out.String() != "hi\n" {
		t.Errorf("exit %+v, stdout %q", e, out.String())
	}
}

func killPIDFile(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("escaped process: %v", err)
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// CPU time of children the payload already waited for is counted, and survives its exit.
func TestStatsCountsReapedChildren(t *testing.T) {
	wd := t.TempDir()
	c := run(t, New(quiet()), containers.Spec{
		Command: []string{"/bin/sh", "-c",
			`for i in 1 2 3; do sh -c 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done'; done; : > ready; sleep 100`},
		WorkDir: wd,
	})
	deadline := time.Now().Add(30 * time.Second)
	for _, err := os.Stat(filepath.Join(wd, "ready")); err != nil; _, err = os.Stat(filepath.Join(wd, "ready")) {
		if time.Now().After(deadline) {
			t.Fatal("the payload did not get ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, err := c.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.CPUSeconds < 0.05 || st.CPUPercent <= 0 {
		t.Errorf("Stats = %+v, want the children's CPU time counted", st)
	}
	if err := c.Kill(t.Context(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wait(t, c)
	final, err := c.Stats(t.Context())
	if err != nil || final.CPUSeconds < st.CPUSeconds || final.PIDs != 0 {
		t.Errorf("Stats after exit = %+v, %v; want CPU >= %v and no PIDs", final, err, st.CPUSeconds)
	}
}

// A job given no GPUs is told it has none of any vendor, even if Spec.Env says otherwise.
func TestNoGPUsHidesAll(t *testing.T) {
	var out strings.Builder
	c := run(t, New(quiet()), containers.Spec{
		Command: []string{"env"}, WorkDir: t.TempDir(), Stdout: &out,
		Env: map[string]string{"CUDA_VISIBLE_DEVICES": "0", "ROCR_VISIBLE_DEVICES": "0", "HIP_VISIBLE_DEVICES": "0", "ZE_AFFINITY_MASK": "0"},
	})
	wait(t, c)
	for _, kv := range []string{"CUDA_VISIBLE_DEVICES=\n", "NVIDIA_VISIBLE_DEVICES=void\n", "ROCR_VISIBLE_DEVICES=\n",
		"HIP_VISIBLE_DEVICES=-1\n", "ZE_AFFINITY_MASK=" + zeNoDevice + "\n"} {
		if !strings.Contains(out.String(), kv) {
			t.Errorf("environment lacks %q:\n%s", kv, out.String())
		}
	}
}
