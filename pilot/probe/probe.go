// Package probe reports what a pilot on this node can offer: CPU, memory,
// disk and load; NVIDIA GPUs through NVML; AMD (amdgpu) and Intel (i915, xe)
// GPUs from Linux sysfs; and, also from sysfs, accelerators: Google TPUs,
// Habana Gaudis, NPUs and other devices of the Linux accel subsystem, and
// FPGA cards (AMD/Xilinx Alveo, Intel/Altera) known by their PCI ids.
package probe

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"

	"github.com/pando-wms/pando/dispatcher/wire"
)

// Options configures Probe.
type Options struct {
	NVML    nvml.Interface // nil: nvml.New() (the real library)
	DiskDir string         // directory whose filesystem's free space is reported ("" : os.TempDir())
	SysRoot string         // root of the sys and dev trees read for devices NVML does not see ("": "/")
	Logger  *slog.Logger   // nil: slog.Default()
}

// Probe reports this node's resources. Cores, memory, disk and NVIDIA GPU
// enumeration are what matching needs, so their failures are errors; the
// descriptive fields (host, CPU model, load) and the devices read from
// sysfs are best effort. GPUs found in sysfs are indexed after NVML's.
func Probe(ctx context.Context, o Options) (wire.Resources, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	lib := o.NVML
	if lib == nil {
		lib = nvml.New()
	}
	dir := o.DiskDir
	if dir == "" {
		dir = os.TempDir()
	}

	r := wire.Resources{
		OS:       runtime.GOOS,
		Arch:     runtime.GOARCH,
		Runtimes: []string{"process"},
	}
	describeHost(ctx, &r, log)

	cores, err := cpu.CountsWithContext(ctx, true)
	if err != nil {
		return wire.Resources{}, fmt.Errorf("probe: cpu count: %w", err)
	}
	r.Cores = cores
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return wire.Resources{}, fmt.Errorf("probe: memory: %w", err)
	}
	r.MemoryBytes = int64(vm.Total)
	du, err := disk.UsageWithContext(ctx, dir)
	if err != nil {
		return wire.Resources{}, fmt.Errorf("probe: disk %s: %w", dir, err)
	}
	r.DiskBytes = int64(du.Free)

	r.GPUs, r.Driver, r.CUDA, err = ProbeGPUs(lib, log)
	if err != nil {
		return wire.Resources{}, fmt.Errorf("probe: %w", err)
	}
	// Other devices are best effort: what sysfs cannot tell is not offered.
	root := o.SysRoot
	if root == "" {
		root = "/"
	}
	sys := sysfs{root: root, log: log}
	devs := sys.pciDevices()
	r.GPUs = append(r.GPUs, sys.gpus(devs, len(r.GPUs))...)
	r.Accelerators = sys.accelerators(devs)
	return r, nil
}

// describeHost fills the fields that only describe the node; a failure
// here must not keep a pilot from starting.
func describeHost(ctx context.Context, r *wire.Resources, log *slog.Logger) {
	if hi, err := host.InfoWithContext(ctx); err != nil {
		log.Warn("probe: host info", "err", err)
	} else {
		r.Hostname = hi.Hostname
		if hi.Platform != "" {
			r.OS += " " + hi.Platform + " " + hi.PlatformVersion
		}
	}
	if r.Hostname == "" {
		r.Hostname, _ = os.Hostname()
	}
	if ci, err := cpu.InfoWithContext(ctx); err != nil {
		log.Warn("probe: cpu info", "err", err)
	} else if len(ci) > 0 {
		r.CPUModel = ci[0].ModelName
	}
	if la, err := load.AvgWithContext(ctx); err != nil {
		log.Warn("probe: load average", "err", err)
	} else {
		r.Load1 = la.Load1
	}
}
