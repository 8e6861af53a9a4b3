package probe

import (
	"fmt"
	"log/slog"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/pando-wms/pando/dispatcher/wire"
)

// ProbeGPUs lists the NVIDIA GPUs that lib sees, with the driver and CUDA
// driver versions. A node without NVML (no driver, no GPU) has no GPUs: that
// is not an error. A device that cannot be queried is skipped with a warning.
func ProbeGPUs(lib nvml.Interface, log *slog.Logger) (gpus []wire.GPU, driver, cuda string, err error) {
	if log == nil {
		log = slog.Default()
	}
	// After a failed Init no other nvml call is allowed: with the real
	// library the symbols are missing and the process dies.
	if ret := lib.Init(); ret != nvml.SUCCESS {
		log.Debug("probe: no NVML, no GPUs", "ret", ret.Error())
		return nil, "", "", nil
	}
	defer func() {
		if ret := lib.Shutdown(); ret != nvml.SUCCESS {
			log.Warn("probe: nvml shutdown", "ret", ret.Error())
		}
	}()

	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, "", "", fmt.Errorf("nvml device count: %s", ret.Error())
	}
	for i := range n {
		g, err := probeDevice(lib, i)
		if err != nil {
			log.Warn("probe: skipping GPU", "index", i, "err", err)
			continue
		}
		gpus = append(gpus, g)
	}

	// Versions only describe the node; a job's requirements are matched on
	// the devices, so a failure here is logged, not returned.
	if v, ret := lib.SystemGetDriverVersion(); ret == nvml.SUCCESS {
		driver = v
	} else {
		log.Warn("probe: nvml driver version", "ret", ret.Error())
	}
	if v, ret := lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS {
		cuda = cudaVersion(v)
	} else {
		log.Warn("probe: nvml cuda version", "ret", ret.Error())
	}
	return gpus, driver, cuda, nil
}

func probeDevice(lib nvml.Interface, i int) (wire.GPU, error) {
	g := wire.GPU{Index: i, Vendor: "nvidia"}
	d, ret := lib.DeviceGetHandleByIndex(i)
	if ret != nvml.SUCCESS {
		return g, fmt.Errorf("handle: %s", ret.Error())
	}
	if g.UUID, ret = d.GetUUID(); ret != nvml.SUCCESS {
		return g, fmt.Errorf("uuid: %s", ret.Error())
	}
	if g.Model, ret = d.GetName(); ret != nvml.SUCCESS {
		return g, fmt.Errorf("name: %s", ret.Error())
	}
	m, ret := d.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return g, fmt.Errorf("memory: %s", ret.Error())
	}
	g.MemoryBytes = int64(m.Total)
	if g.ComputeMajor, g.ComputeMinor, ret = d.GetCudaComputeCapability(); ret != nvml.SUCCESS {
		return g, fmt.Errorf("compute capability: %s", ret.Error())
	}
	// GPUs before Ampere answer NOT_SUPPORTED: they simply have no MIG.
	switch mode, _, ret := d.GetMigMode(); ret {
	case nvml.SUCCESS:
		g.MIG = mode == nvml.DEVICE_MIG_ENABLE
	case nvml.ERROR_NOT_SUPPORTED:
	default:
		return g, fmt.Errorf("mig mode: %s", ret.Error())
	}
	// Utilization is a hint for placement only; some devices never report it.
	if u, ret := d.GetUtilizationRates(); ret == nvml.SUCCESS {
		g.Utilization = int(u.Gpu)
	}
	return g, nil
}

// cudaVersion formats NVML's CUDA driver version (1000*major + 10*minor,
// e.g. 12040) as "12.4".
func cudaVersion(v int) string {
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}
