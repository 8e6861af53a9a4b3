package probe

import (
	"fmt"
	"path/filepath"
)

// PCI vendor IDs.
const (
	vendorAMD    = 0x1002 // AMD/ATI: GPUs
	vendorAMDCPU = 0x1022 // AMD: CPUs and their on-die devices (XDNA NPUs)
	vendorXilinx = 0x10ee
	vendorAltera = 0x1172
	vendorGoogle = 0x1ae0
	vendorHabana = 0x1da3
	vendorIntel  = 0x8086
)

// pciID names a device model.
type pciID struct{ vendor, device uint32 }

// The tables below hold the ids checked against public sources: pci.ids
// (pciutils), XRT's xocl device table (Alveo management and user
// functions), Linux's dfl-pci.c (Intel PACs), ivpu_drv.h (Intel NPUs) and
// amdxdna (AMD NPUs), and Google's tpu-info (TPUs). A device missing from
// them is reported under a generic name, or not at all where nothing else
// says what it is.

// amdGPUModels names AMD Instinct GPUs whose product_name the driver did not
// read. An MI250X or MI250 shows as two devices, one per die (GCD): ROCm
// counts them as two GPUs, and so does the probe.
var amdGPUModels = map[uint32]string{
	0x738c: "AMD Instinct MI100",
	0x738e: "AMD Instinct MI100",
	0x7408: "AMD Instinct MI250X",
	0x740c: "AMD Instinct MI250X/MI250",
	0x740f: "AMD Instinct MI210",
	0x74a0: "AMD Instinct MI300A",
	0x74a1: "AMD Instinct MI300X",
	0x74a2: "AMD Instinct MI308X",
	0x74a5: "AMD Instinct MI325X",
	0x74b5: "AMD Instinct MI300X VF",
	0x75a0: "AMD Instinct MI350X",
	0x75a3: "AMD Instinct MI355X",
}

// intelGPUModels names Intel data-centre GPUs.
var intelGPUModels = map[uint32]string{
	0x0bd5: "Intel Data Center GPU Max 1550",
	0x0bd6: "Intel Data Center GPU Max 1550",
	0x0bd7: "Intel Data Center GPU Max 1350",
	0x0bd8: "Intel Data Center GPU Max 1350",
	0x0bd9: "Intel Data Center GPU Max 1100",
	0x0bda: "Intel Data Center GPU Max 1100",
	0x0bdb: "Intel Data Center GPU Max 1100",
	0x56c0: "Intel Data Center GPU Flex 170",
	0x56c1: "Intel Data Center GPU Flex 140",
}

// Accelerator kinds as reported in wire.Accelerator.Kind.
const (
	kindTPU   = "tpu"
	kindGaudi = "gaudi"
	kindNPU   = "npu"
	kindFPGA  = "fpga"
	kindAccel = "accel" // a device of the Linux accel subsystem that no table names
)

type accelModel struct{ kind, model string }

// accelModels names accelerators. An FPGA card's management and user
// functions (Alveo 0x5004 and 0x5005) are both listed: the card is counted
// once, by slot. Golden (factory) images are left out: such a card cannot
// run a payload until it is flashed.
var accelModels = map[pciID]accelModel{
	{vendorGoogle, 0x0027}: {kindTPU, "TPU v2/v3"}, // told apart by subsystem_device, see tpuModel
	{vendorGoogle, 0x005e}: {kindTPU, "TPU v4"},
	{vendorGoogle, 0x0062}: {kindTPU, "TPU v5p"},
	{vendorGoogle, 0x0063}: {kindTPU, "TPU v5e"},
	{vendorGoogle, 0x006f}: {kindTPU, "TPU v6e"},
	{vendorGoogle, 0x0076}: {kindTPU, "TPU7x"},

	{vendorHabana, 0x1000}: {kindGaudi, "Gaudi"},
	{vendorHabana, 0x1010}: {kindGaudi, "Gaudi"}, // secured firmware
	{vendorHabana, 0x1020}: {kindGaudi, "Gaudi2"},
	{vendorHabana, 0x1060}: {kindGaudi, "Gaudi3"},
	{vendorHabana, 0x1063}: {kindGaudi, "Gaudi3"}, // PCIe add-in card (HL-338)

	{vendorIntel, 0x7d1d}:  {kindNPU, "Intel NPU (Meteor Lake)"},
	{vendorIntel, 0xad1d}:  {kindNPU, "Intel NPU (Arrow Lake)"},
	{vendorIntel, 0x643e}:  {kindNPU, "Intel NPU (Lunar Lake)"},
	{vendorIntel, 0xb03e}:  {kindNPU, "Intel NPU (Panther Lake)"},
	{vendorAMDCPU, 0x1502}: {kindNPU, "AMD XDNA"},
	{vendorAMDCPU, 0x17f0}: {kindNPU, "AMD XDNA"},

	{vendorXilinx, 0x5000}: {kindFPGA, "Alveo U200"},
	{vendorXilinx, 0x5001}: {kindFPGA, "Alveo U200"},
	{vendorXilinx, 0x5004}: {kindFPGA, "Alveo U250"},
	{vendorXilinx, 0x5005}: {kindFPGA, "Alveo U250"},
	{vendorXilinx, 0x500c}: {kindFPGA, "Alveo U280"},
	{vendorXilinx, 0x500d}: {kindFPGA, "Alveo U280"},
	{vendorXilinx, 0x5020}: {kindFPGA, "Alveo U50"},
	{vendorXilinx, 0x5021}: {kindFPGA, "Alveo U50"},
	{vendorXilinx, 0x505c}: {kindFPGA, "Alveo U55C"},
	{vendorAltera, 0x00a7}: {kindFPGA, "Stratix V"},
	{vendorAltera, 0x0530}: {kindFPGA, "Stratix IV"},
	{vendorIntel, 0x09c4}:  {kindFPGA, "Intel PAC Arria 10 GX"},
	{vendorIntel, 0x0b2b}:  {kindFPGA, "Intel FPGA PAC D5005"},
	{vendorIntel, 0x0b30}:  {kindFPGA, "Intel FPGA PAC N3000"},
}

// amdModel prefers the name the driver read from the board.
func amdModel(productName string, device uint32) string {
	if productName != "" {
		return productName
	}
	if m, ok := amdGPUModels[device]; ok {
		return m
	}
	return fmt.Sprintf("AMD GPU 0x%04x", device)
}

func intelModel(device uint32) string {
	if m, ok := intelGPUModels[device]; ok {
		return m
	}
	return fmt.Sprintf("Intel GPU 0x%04x", device)
}

// tpuModel tells TPU v2 from v3, which share a device id, by the subsystem
// id, as tpu-info does.
func tpuModel(d pciDev) string {
	sub, err := readHex(filepath.Join(d.dir, "subsystem_device"))
	switch {
	case err != nil:
		return "TPU v2/v3"
	case sub == 0x004e:
		return "TPU v2"
	case sub == 0x004f:
		return "TPU v3"
	}
	return "TPU v2/v3"
}
