package podman

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pando-wms/pando/containers"
	"github.com/pando-wms/pando/containers/runtimetest"
)

const testImage = "localhost/busybox:test"

// podmanRuntime starts a private podman service and builds the test image.
// In CI a missing podman fails the test; elsewhere it skips.
func podmanRuntime(t *testing.T) *Runtime {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("podman is required in CI: %v", err)
		}
		t.Skipf("podman not installed: %v", err)
	}
	if os.Getenv("CONTAINERS_CONF") == "" {
		_, file, _, _ := runtime.Caller(0)
		t.Setenv("CONTAINERS_CONF", filepath.Join(filepath.Dir(file), "..", "..", "test", "containers.conf"))
	}
	_, file, _, _ := runtime.Caller(0)
	build := exec.Command("sh", filepath.Join(filepath.Dir(file), "..", "..", "test", "images", "busybox.sh"))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build test image: %v\n%s", err, out)
	}
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	svc, err := StartService(ctx, t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	rt, err := New(ctx, svc.Socket, log)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestConformance(t *testing.T) {
	rt := podmanRuntime(t)
	runtimetest.Run(t, rt, runtimetest.Options{Image: testImage, Timeout: time.Minute})
}

func TestSpecIsolation(t *testing.T) {
	s := containers.Spec{Name: "pando-1-1", Command: []string{"sh", "-c", "true"}, WorkDir: "/work/job-1.1",
		Env:    map[string]string{"A": "1"},
		Mounts: []containers.Mount{{Source: "/cache/in", Target: "/cache/in", ReadOnly: true}},
		Limits: containers.Limits{Cores: 2, MemoryBytes: 1 << 30, PIDs: 100},
		GPUs:   []containers.GPU{{Vendor: "nvidia", ID: "GPU-a"}, {Vendor: "nvidia", ID: "GPU-b"}}}
	g, err := generate(s, "img")
	if err != nil {
		t.Fatal(err)
	}
	if g.NetNS.NSMode != "none" {
		t.Errorf("network %q, want none", g.NetNS.NSMode)
	}
	if len(g.Mounts) != 2 || g.Mounts[0].Source != s.WorkDir || !slices.Contains(g.Mounts[0].Options, "rw") ||
		g.Mounts[1].Destination != "/cache/in" || !slices.Contains(g.Mounts[1].Options, "ro") {
		t.Errorf("mounts %+v: want the work directory rw and the input ro, nothing else", g.Mounts)
	}
	var devs []string
	for _, d := range g.Devices {
		devs = append(devs, d.Path)
	}
	if !slices.Equal(devs, []string{"nvidia.com/gpu=GPU-a", "nvidia.com/gpu=GPU-b"}) {
		t.Errorf("devices %v, want the two GPUs by CDI name", devs)
	}
	l := g.ResourceLimits
	if *l.Memory.Limit != 1<<30 || *l.Memory.Swap != 1<<30 || *l.CPU.Quota != 200_000 || l.Pids.Limit != 100 {
		t.Errorf("limits %+v", l)
	}
	s.Network = true
	if g, _ = generate(s, "img"); g.NetNS.NSMode == "none" {
		t.Error("network asked for but none given")
	}
}

// run creates and starts one container, waits for it and returns its exit and output.
func run(t *testing.T, rt *Runtime, s containers.Spec) (containers.Exit, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out strings.Builder
	if s.Name == "" {
		s.Name = fmt.Sprintf("pando-test-%d", time.Now().UnixNano())
	}
	if s.WorkDir == "" {
		s.WorkDir = t.TempDir()
	}
	if s.Image == "" {
		s.Image = testImage
	}
	s.Stdout, s.Stderr = &out, &out
	c, err := rt.Create(ctx, s)
	if err != nil {
		return containers.Exit{}, "", err
	}
	defer c.Remove(context.Background())
	if err := c.Start(ctx); err != nil {
		return containers.Exit{}, "", err
	}
	e, err := c.Wait(ctx)
	return e, out.String(), err
}

// The podman-only behaviour: OOM detection, image archives and missing
// images, no network and nothing of the host beyond the work directory.
func TestPodman(t *testing.T) {
	rt := podmanRuntime(t)
	sh := func(script string) []string { return []string{"/bin/sh", "-c", script} }

	t.Run("OOM", func(t *testing.T) {
		e, out, err := run(t, rt, containers.Spec{Command: sh(`x=$(head -c 200000000 /dev/zero | tr '\0' a); echo survived`),
			Limits: containers.Limits{MemoryBytes: 32 << 20}})
		if err != nil || !e.OOM || e.Code != 137 {
			t.Fatalf("exit %+v, err %v, output %q: want 137 with OOM", e, err, out)
		}
	})
	t.Run("LimitNotOOM", func(t *testing.T) {
		e, _, err := run(t, rt, containers.Spec{Command: sh(`exit 3`), Limits: containers.Limits{MemoryBytes: 32 << 20, PIDs: 50, Cores: 1}})
		if err != nil || e != (containers.Exit{Code: 3}) {
			t.Fatalf("exit %+v, err %v: want plain exit 3", e, err)
		}
	})
	t.Run("NoNetwork", func(t *testing.T) {
		_, out, err := run(t, rt, containers.Spec{Command: sh(`ls /sys/class/net`)})
		if err != nil || strings.TrimSpace(out) != "lo" {
			t.Fatalf("interfaces %q (err %v), want only lo", out, err)
		}
	})
	t.Run("HostHidden", func(t *testing.T) {
		secret := filepath.Join(t.TempDir(), "pilot.token")
		if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
			t.Fatal(err)
		}
		wd := t.TempDir()
		e, out, err := run(t, rt, containers.Spec{WorkDir: wd, Command: sh(`echo ok > ` + wd + `/out; cat ` + secret)})
		if err != nil || e.Code == 0 || strings.Contains(out, "s3cret") {
			t.Fatalf("exit %+v, err %v, output %q: the host's file must not be readable", e, err, out)
		}
		if b, _ := os.ReadFile(filepath.Join(wd, "out")); string(b) != "ok\n" {
			t.Fatalf("work directory not writable: %q", b)
		}
	})
	t.Run("ReadOnlyMount", func(t *testing.T) {
		in := t.TempDir()
		if err := os.WriteFile(filepath.Join(in, "f"), []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, out, err := run(t, rt, containers.Spec{Mounts: []containers.Mount{{Source: in, Target: in, ReadOnly: true}},
			Command: sh(`cat ` + in + `/f; echo x > ` + in + `/g && echo WRITABLE`)})
		if err != nil || !strings.HasPrefix(out, "data") || strings.Contains(out, "WRITABLE") {
			t.Fatalf("output %q (err %v): want the input readable and not writable", out, err)
		}
	})
	t.Run("MissingImage", func(t *testing.T) {
		_, _, err := run(t, rt, containers.Spec{Image: "localhost/pando-no-such-image:1", Command: sh("true")})
		if !errors.Is(err, ErrImageNotFound) {
			t.Fatalf("err %v, want ErrImageNotFound", err)
		}
		_, _, err = run(t, rt, containers.Spec{Image: "oci-archive:/nonexistent/img.tar", Command: sh("true")})
		if !errors.Is(err, ErrImageNotFound) {
			t.Fatalf("archive: err %v, want ErrImageNotFound", err)
		}
	})
	t.Run("Archive", func(t *testing.T) {
		tar := filepath.Join(t.TempDir(), "img.tar")
		_, file, _, _ := runtime.Caller(0)
		if out, err := exec.Command("sh", filepath.Join(filepath.Dir(file), "..", "..", "test", "images", "busybox.sh"), tar).CombinedOutput(); err != nil {
			t.Fatalf("save archive: %v\n%s", err, out)
		}
		for range 2 { // the second run reuses the loaded image
			e, out, err := run(t, rt, containers.Spec{Image: "oci-archive:" + tar, Command: sh(`cat /etc/os-release`)})
			if err != nil || e.Code != 0 || !strings.Contains(out, "Pando test busybox") {
				t.Fatalf("exit %+v, err %v, output %q", e, err, out)
			}
		}
	})
}

// A container left running by a pilot that died is removed by the next
// pilot's sweep; containers of live pilots are left alone.
func TestSweepOrphans(t *testing.T) {
	rt := podmanRuntime(t)
	dead := exec.Command("true")
	if err := dead.Start(); err != nil {
		t.Fatal(err)
	}
	deadID, _ := processID(dead.Process.Pid)
	dead.Wait()
	// A runtime on the same service whose owner is a process that is not
	// running (the pid may be reused: the start time differs).
	ghost := &Runtime{conn: rt.conn, log: rt.log, owner: deadID + "0", archives: map[string]archiveImage{}}
	ctx := context.Background()
	mk := func(r *Runtime, name string) containers.Container {
		c, err := r.Create(ctx, containers.Spec{Name: name, Image: testImage, Command: []string{"sleep", "60"}, WorkDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Remove(context.Background()) })
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return c
	}
	orphan := mk(ghost, fmt.Sprintf("pando-orphan-%d", time.Now().UnixNano()))
	mine := mk(rt, fmt.Sprintf("pando-mine-%d", time.Now().UnixNano()))
	n, err := rt.SweepOrphans(ctx)
	if err != nil || n < 1 {
		t.Fatalf("swept %d, %v; want the orphan removed", n, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := orphan.Wait(wctx); err != nil && errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("the orphan still runs after the sweep")
	}
	sctx, cancel2 := context.WithTimeout(ctx, 2*time.Second)
	defer cancel2()
	if _, err := mine.Wait(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the live pilot's container ended: %v", err)
	}
}
