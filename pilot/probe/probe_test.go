package probe

import (
	"context"
	"runtime"
	"slices"
	"testing"
)

// TestProbeHost runs the real probe: this machine has no GPU, so the real
// NVML's Init fails and Probe must still answer.
func TestProbeHost(t *testing.T) {
	r, err := Probe(context.Background(), Options{DiskDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	if r.Cores <= 0 || r.MemoryBytes <= 0 || r.DiskBytes <= 0 {
		t.Errorf("cores %d memory %d disk %d: want all > 0", r.Cores, r.MemoryBytes, r.DiskBytes)
	}
	if r.Arch != runtime.GOARCH || r.OS == "" || r.Hostname == "" {
		t.Errorf("arch %q os %q hostname %q", r.Arch, r.OS, r.Hostname)
	}
	if !slices.Equal(r.Runtimes, []string{"process"}) {
		t.Errorf("runtimes %v, want [process]", r.Runtimes)
	}
}

func TestProbeWithMockGPUs(t *testing.T) {
	r, err := Probe(context.Background(), Options{NVML: newDGXA100(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GPUs) != 8 || r.Driver != "550.54.15" || r.CUDA != "12.4" {
		t.Errorf("gpus %d driver %q cuda %q", len(r.GPUs), r.Driver, r.CUDA)
	}
}

func TestProbeBadDiskDir(t *testing.T) {
	_, err := Probe(context.Background(), Options{NVML: newDGXA100(t), DiskDir: "/nonexistent/probe"})
	if err == nil {
		t.Error("want an error for a missing disk directory")
	}
}
