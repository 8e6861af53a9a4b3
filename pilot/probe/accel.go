package probe

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/pando-wms/pando/dispatcher/wire"
)

// accelerators counts the node's non-GPU accelerators by kind and model:
// the devices accelModels names (TPUs, Gaudis, NPUs, FPGAs) and any other
// device a driver of the Linux accel subsystem bound (kind "accel"). A card
// counts once whatever its number of functions, as cards are told apart by
// slot.
//
// A device is left out where sysfs names its device nodes and none of them
// is in root/dev: the pilot could not open it. FPGAs are counted as present:
// their nodes depend on the vendor's stack (XRT, OPAE), not on the kernel.
func (s sysfs) accelerators(devs []pciDev) []wire.Accelerator {
	counted := map[string]bool{}
	counts := map[accelModel]int{}
	for _, d := range devs {
		m, ok := identify(d)
		if !ok || counted[d.slot()] {
			continue
		}
		if m.kind != kindFPGA {
			nodes := s.accelNodes(d)
			if len(nodes) > 0 && !slices.ContainsFunc(nodes, func(n string) bool { return s.hasNode(n) }) {
				s.log.Info("probe: accelerator without a device node here, not offered",
					"addr", d.addr, "kind", m.kind, "nodes", nodes)
				continue
			}
		}
		counted[d.slot()] = true
		counts[m]++
	}
	accels := make([]wire.Accelerator, 0, len(counts))
	for m, n := range counts {
		accels = append(accels, wire.Accelerator{Kind: m.kind, Model: m.model, Count: n})
	}
	slices.SortFunc(accels, func(a, b wire.Accelerator) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Model, b.Model))
	})
	return accels
}

// identify says what d is, if it is an accelerator.
func identify(d pciDev) (accelModel, bool) {
	if m, ok := accelModels[pciID{d.vendor, d.device}]; ok {
		if d.vendor == vendorGoogle && d.device == 0x0027 {
			m.model = tpuModel(d)
		}
		return m, true
	}
	if len(children(filepath.Join(d.dir, "accel"), "accel")) == 0 {
		return accelModel{}, false
	}
	model := fmt.Sprintf("%04x:%04x", d.vendor, d.device)
	if d.driver != "" {
		model = d.driver + " " + model
	}
	return accelModel{kindAccel, model}, true
}

// accelNodes lists, relative to /dev, the nodes through which d can be
// opened, as far as sysfs tells: accelN of the accel subsystem
// (/dev/accel/accelN), Google's TPU driver's accelN (/dev/accelN), and for
// a device given to vfio-pci (TPU v5e and later) its IOMMU group
// (/dev/vfio/N). An empty list: sysfs does not tell.
func (s sysfs) accelNodes(d pciDev) []string {
	var nodes []string
	for _, n := range children(filepath.Join(d.dir, "accel"), "accel") {
		nodes = append(nodes, filepath.Join("accel", n), n)
	}
	if d.driver == "vfio-pci" {
		// iommu_group links to .../kernel/iommu_groups/N.
		if target, err := os.Readlink(filepath.Join(d.dir, "iommu_group")); err == nil {
			nodes = append(nodes, filepath.Join("vfio", filepath.Base(target)))
		}
	}
	return nodes
}
