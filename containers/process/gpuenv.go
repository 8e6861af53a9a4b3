package process

import (
	"slices"
	"strconv"
	"strings"

	"github.com/pando-wms/pando/containers"
)

// zeNoDevice is an index no node has. Level Zero reads an empty ZE_AFFINITY_MASK as no
// mask at all; it skips indexes past its last device, and a mask of nothing else leaves it
// none (compute-runtime, ExecutionEnvironment::parseAffinityMask).
const zeNoDevice = "999999"

// gpuEnv sets, for every vendor, the variables through which its runtimes find the payload's
// GPUs: the job's own, and none of a vendor it was given none of. It runs after Spec.Env: the
// assignment is authoritative, a template must not widen it.
func gpuEnv(env map[string]string, gpus []containers.GPU) {
	by := map[string][]containers.GPU{}
	for _, g := range gpus {
		by[g.Vendor] = append(by[g.Vendor], g)
	}
	nvidiaEnv(env, by["nvidia"])
	amdEnv(env, by["amd"])
	intelEnv(env, by["intel"])
}

// nvidiaEnv: CUDA reads an empty list as "no device", the NVIDIA container toolkit "void" so.
func nvidiaEnv(env map[string]string, gpus []containers.GPU) {
	ids := gpuIDs(gpus)
	env["CUDA_VISIBLE_DEVICES"], env["NVIDIA_VISIBLE_DEVICES"] = ids, ids
	if ids == "" {
		env["NVIDIA_VISIBLE_DEVICES"] = "void"
	}
}

// amdEnv: ROCr takes UUIDs or KFD indexes, and set but empty shows no GPU (ROCR-Runtime,
// RvdFilter::SelectZeroDevices). HIP numbers what ROCr shows, so the job's GPUs are 0 to n-1
// to it; an invalid index ends HIP's list, so -1 shows none. HIP would fall back on
// CUDA_VISIBLE_DEVICES, which is empty here or names NVIDIA GPUs: HIP_VISIBLE_DEVICES is
// always set.
func amdEnv(env map[string]string, gpus []containers.GPU) {
	env["ROCR_VISIBLE_DEVICES"] = gpuIDs(gpus)
	if len(gpus) == 0 {
		env["HIP_VISIBLE_DEVICES"] = "-1"
		return
	}
	hip := make([]string, len(gpus))
	for i := range hip {
		hip[i] = strconv.Itoa(i)
	}
	env["HIP_VISIBLE_DEVICES"] = strings.Join(hip, ",")
}

// intelEnv sets ZE_AFFINITY_MASK, which Level Zero (and Intel's OpenCL) read. Its indexes
// count cards under ZE_FLAT_DEVICE_HIERARCHY=COMPOSITE and tiles otherwise, in the driver's
// default order (discrete cards by PCI address, then integrated ones), which
// ZE_ENABLE_PCI_ID_DEVICE_ORDER would change: it is dropped. Where a card has several tiles and
// the payload did not choose a hierarchy, FLAT (the default of current drivers) is set so that
// an older driver, whose default was COMPOSITE, reads the mask the same way.
func intelEnv(env map[string]string, gpus []containers.GPU) {
	if len(gpus) == 0 {
		env["ZE_AFFINITY_MASK"] = zeNoDevice
		return
	}
	delete(env, "ZE_ENABLE_PCI_ID_DEVICE_ORDER")
	if env["ZE_FLAT_DEVICE_HIERARCHY"] == "COMPOSITE" {
		env["ZE_AFFINITY_MASK"] = gpuIDs(gpus)
		return
	}
	var tiles []string
	for _, g := range gpus {
		ids := g.FlatIDs
		if len(ids) == 0 {
			ids = []string{g.ID}
		}
		tiles = append(tiles, ids...)
	}
	env["ZE_AFFINITY_MASK"] = strings.Join(tiles, ",")
	multiTile := slices.ContainsFunc(gpus, func(g containers.GPU) bool { return len(g.FlatIDs) > 1 })
	if _, chosen := env["ZE_FLAT_DEVICE_HIERARCHY"]; multiTile && !chosen {
		env["ZE_FLAT_DEVICE_HIERARCHY"] = "FLAT"
	}
}

func gpuIDs(gpus []containers.GPU) string {
	ids := make([]string, len(gpus))
	for i, g := range gpus {
		ids[i] = g.ID
	}
	return strings.Join(ids, ",")
}
