package podman

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
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
		GPUs:   []string{"GPU-a", "GPU-b"}}
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
