package probe

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pando-wms/pando/dispatcher/wire"
)

// gpus lists the GPUs that amdgpu, i915 and xe drive among devs, in PCI
// address order, indexed from first on; NVIDIA's are NVML's. A GPU counts
// when its driver made a render node and that node is in root/dev: a GPU
// the pilot cannot open is not offered. A GPU split into partitions (an
// MI300X in CPX mode) has a render node per partition; it counts once.
func (s sysfs) gpus(devs []pciDev, first int) []wire.GPU {
	var gpus []wire.GPU
	var gfx map[int]uint64 // read on the first AMD GPU
	for _, d := range devs {
		amd := d.vendor == vendorAMD && d.driver == "amdgpu"
		intel := d.vendor == vendorIntel && (d.driver == "i915" || d.driver == "xe")
		render := children(filepath.Join(d.dir, "drm"), "renderD")
		if !amd && !intel || len(render) == 0 {
			continue
		}
		var g wire.GPU
		var ok bool
		var err error
		if amd {
			if gfx == nil {
				gfx = s.kfdTargets()
			}
			g, ok, err = amdGPU(d, render[0], gfx)
		} else {
			g, ok, err = intelGPU(d)
		}
		switch {
		case err != nil:
			s.log.Warn("probe: skipping GPU", "addr", d.addr, "err", err)
		case !ok: // an integrated Intel GPU, or no display function
		case !s.hasNode("dri", render[0]):
			s.log.Info("probe: GPU without a device node here, not offered", "addr", d.addr, "node", render[0])
		default:
			g.Index = first + len(gpus)
			gpus = append(gpus, g)
		}
	}
	return gpus
}

// amdGPU describes an amdgpu device. gfx maps render minors to KFD's
// gfx_target_version; see amdCompute.
func amdGPU(d pciDev, render string, gfx map[int]uint64) (wire.GPU, bool, error) {
	g := wire.GPU{Vendor: "amd"}
	mem, err := readUint(filepath.Join(d.dir, "mem_info_vram_total"))
	if err != nil {
		return g, false, err
	}
	g.MemoryBytes = mem
	name, err := readOptional(filepath.Join(d.dir, "product_name"))
	if err != nil {
		return g, false, err
	}
	g.Model = amdModel(name, d.device)
	// unique_id: 16 hex digits where the board has a serial (GFX9 and later), else empty.
	if g.UUID, err = readOptional(filepath.Join(d.dir, "unique_id")); err != nil {
		return g, false, err
	}
	if minor, ok := nameNumber(render, "renderD"); ok {
		g.ComputeMajor, g.ComputeMinor = amdCompute(gfx[minor])
	}
	return g, true, nil
}

// amdCompute turns KFD's gfx_target_version into a compute capability.
// The version is major*10000 + minor*100 + stepping, in decimal: 90010 is
// gfx90a (MI200), 90402 gfx942 (MI300), 90008 gfx908 (MI100). Major is the
// first part; minor keeps the other two, minor*100 + stepping, because
// MI100, MI200 and Vega differ only in the stepping. So 90010 is 9.10 and
// 90402 is 9.402, and (major, minor) orders as the gfx versions do.
func amdCompute(v uint64) (major, minor int) {
	return int(v / 10000), int(v % 10000)
}

// kfdTargets reads the KFD topology (ROCm's view of the GPUs) into a map
// from render minor (128 for renderD128) to gfx_target_version. A node file
// that cannot be read leaves its GPU without a compute capability.
func (s sysfs) kfdTargets() map[int]uint64 {
	dir := s.path("sys", "class", "kfd", "kfd", "topology", "nodes")
	targets := map[int]uint64{}
	for _, n := range children(dir, "") {
		p := filepath.Join(dir, n, "properties")
		minor, gfx, err := readKFDNode(p)
		if err != nil {
			s.log.Warn("probe: unreadable KFD node", "path", p, "err", err)
			continue
		}
		if gfx != 0 { // CPU nodes have no gfx target
			targets[minor] = gfx
		}
	}
	return targets
}

// readKFDNode reads the two properties kfdTargets needs from a node's
// "name value" lines.
func readKFDNode(path string) (minor int, gfx uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		var v uint64
		switch name {
		case "gfx_target_version":
			v, err = strconv.ParseUint(value, 10, 32)
			gfx = v
		case "drm_render_minor":
			v, err = strconv.ParseUint(value, 10, 31)
			minor = int(v)
		default:
			continue
		}
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", name, err)
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if found < 2 {
		return 0, 0, fmt.Errorf("no gfx_target_version or drm_render_minor")
	}
	return minor, gfx, nil
}

// intelGPU describes an i915 or xe device. ok is false for one outside the
// display class (0x03), and for an integrated GPU: Intel wires it at 0000:00:02.0 on every chipset, and a
// discrete GPU there (in a VM) is kept when it reports local memory.
func intelGPU(d pciDev) (g wire.GPU, ok bool, err error) {
	if d.class>>16 != 0x03 {
		return g, false, nil
	}
	mem, err := intelMemory(d)
	if err != nil {
		return g, false, err
	}
	if mem == 0 && d.addr == "0000:00:02.0" {
		return g, false, nil
	}
	return wire.GPU{Vendor: "intel", Model: intelModel(d.device), MemoryBytes: mem}, true, nil
}

// intelMemory is the device's local memory: xe reports each tile's as
// tileN/physical_vram_size_bytes in the PCI device's directory (discrete
// GPUs only), Intel's out-of-tree i915 as lmem_total_bytes in the DRM
// card's (drm/cardN). Mainline i915 reports neither: the memory is then
// unknown, 0.
func intelMemory(d pciDev) (int64, error) {
	var total int64
	for _, t := range children(d.dir, "tile") {
		v, err := readOptionalUint(filepath.Join(d.dir, t, "physical_vram_size_bytes"))
		if err != nil {
			return 0, err
		}
		total += v
	}
	if total > 0 {
		return total, nil
	}
	cards := children(filepath.Join(d.dir, "drm"), "card")
	if len(cards) == 0 {
		return 0, nil
	}
	return readOptionalUint(filepath.Join(d.dir, "drm", cards[0], "lmem_total_bytes"))
}
