package probe

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
)

// newDGXA100 returns the mock with the device funcs that it leaves unset
// and ProbeGPUs calls.
func newDGXA100(t *testing.T) *dgxa100.Server {
	t.Helper()
	s := dgxa100.New()
	for i, d := range s.Devices {
		dev := d.(*dgxa100.Device)
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
			return nvml.Utilization{Gpu: uint32(10 * i)}, nvml.SUCCESS
		}
	}
	return s
}

func TestProbeGPUsDGXA100(t *testing.T) {
	s := newDGXA100(t)
	gpus, driver, cuda, err := ProbeGPUs(s, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if len(gpus) != 8 {
		t.Fatalf("got %d GPUs, want 8", len(gpus))
	}
	if driver != "550.54.15" || cuda != "12.4" {
		t.Errorf("driver, cuda = %q, %q; want 550.54.15, 12.4", driver, cuda)
	}
	seen := map[string]bool{}
	for i, g := range gpus {
		if g.Index != i || g.Vendor != "nvidia" {
			t.Errorf("gpu %d: index %d vendor %q", i, g.Index, g.Vendor)
		}
		if !strings.Contains(g.Model, "A100-SXM4-40GB") {
			t.Errorf("gpu %d: model %q", i, g.Model)
		}
		if g.MemoryBytes != 40960<<20 {
			t.Errorf("gpu %d: memory %d, want %d", i, g.MemoryBytes, int64(40960<<20))
		}
		if g.ComputeMajor != 8 || g.ComputeMinor != 0 {
			t.Errorf("gpu %d: compute %d.%d, want 8.0", i, g.ComputeMajor, g.ComputeMinor)
		}
		if g.MIG || g.Utilization != 10*i {
			t.Errorf("gpu %d: mig %v utilization %d", i, g.MIG, g.Utilization)
		}
		if g.UUID == "" || seen[g.UUID] {
			t.Errorf("gpu %d: UUID %q empty or repeated", i, g.UUID)
		}
		seen[g.UUID] = true
	}
	if n := len(s.ShutdownCalls()); n != 1 {
		t.Errorf("Shutdown called %d times, want 1", n)
	}
}

func TestProbeGPUsDeviceQuirks(t *testing.T) {
	s := newDGXA100(t)
	d1 := s.Devices[1].(*dgxa100.Device)
	d1.GetUUIDFunc = func() (string, nvml.Return) { return "", nvml.ERROR_GPU_IS_LOST }
	d2 := s.Devices[2].(*dgxa100.Device)
	d2.GetMigModeFunc = func() (int, int, nvml.Return) { return 0, 0, nvml.ERROR_NOT_SUPPORTED }
	d2.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		return nvml.Utilization{}, nvml.ERROR_NOT_SUPPORTED
	}
	d3 := s.Devices[3].(*dgxa100.Device)
	d3.MigMode = nvml.DEVICE_MIG_ENABLE

	gpus, _, _, err := ProbeGPUs(s, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if len(gpus) != 7 {
		t.Fatalf("got %d GPUs, want 7 (device 1 lost)", len(gpus))
	}
	byIndex := map[int]bool{}
	for _, g := range gpus {
		byIndex[g.Index] = g.MIG
	}
	if _, ok := byIndex[1]; ok {
		t.Error("lost device 1 reported")
	}
	if mig, ok := byIndex[2]; !ok || mig {
		t.Errorf("device 2 (no MIG support): present %v, mig %v", ok, mig)
	}
	if !byIndex[3] {
		t.Error("device 3: MIG enabled not reported")
	}
}

func TestProbeGPUsNoLibrary(t *testing.T) {
	fail := func(name string) { t.Errorf("%s called after a failed Init", name) }
	lib := &mock.Interface{
		InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND },
		// Anything else ProbeGPUs might call fails the test; the rest panic.
		ShutdownFunc:       func() nvml.Return { fail("Shutdown"); return nvml.SUCCESS },
		DeviceGetCountFunc: func() (int, nvml.Return) { fail("DeviceGetCount"); return 0, nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(int) (nvml.Device, nvml.Return) {
			fail("DeviceGetHandleByIndex")
			return nil, nvml.ERROR_UNKNOWN
		},
		SystemGetDriverVersionFunc: func() (string, nvml.Return) {
			fail("SystemGetDriverVersion")
			return "", nvml.SUCCESS
		},
		SystemGetCudaDriverVersionFunc: func() (int, nvml.Return) {
			fail("SystemGetCudaDriverVersion")
			return 0, nvml.SUCCESS
		},
	}
	gpus, driver, cuda, err := ProbeGPUs(lib, nil)
	if err != nil || len(gpus) != 0 || driver != "" || cuda != "" {
		t.Errorf("got %v, %q, %q, %v; want no GPUs and no error", gpus, driver, cuda, err)
	}
	if n := len(lib.InitCalls()); n != 1 {
		t.Errorf("Init called %d times, want 1", n)
	}
}

func TestProbeGPUsCountFails(t *testing.T) {
	s := newDGXA100(t)
	s.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
	if _, _, _, err := ProbeGPUs(s, nil); err == nil {
		t.Error("want an error when the device count fails")
	}
	if n := len(s.ShutdownCalls()); n != 1 {
		t.Errorf("Shutdown called %d times, want 1", n)
	}
}

func TestCUDAVersion(t *testing.T) {
	for v, want := range map[int]string{12040: "12.4", 11080: "11.8", 13000: "13.0", 12010: "12.1"} {
		if got := cudaVersion(v); got != want {
			t.Errorf("cudaVersion(%d) = %q, want %q", v, got, want)
		}
	}
}
