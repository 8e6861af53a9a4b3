package process

import (
	"maps"
	"testing"

	"github.com/pando-wms/pando/containers"
)

// The GPU variables a payload gets, for each vendor: its own GPUs, and none of every vendor it
// was given none of, whatever its template says.
func TestGPUEnv(t *testing.T) {
	nvNone := map[string]string{"CUDA_VISIBLE_DEVICES": "", "NVIDIA_VISIBLE_DEVICES": "void"}
	amdNone := map[string]string{"ROCR_VISIBLE_DEVICES": "", "HIP_VISIBLE_DEVICES": "-1"}
	intelNone := map[string]string{"ZE_AFFINITY_MASK": zeNoDevice}
	with := func(ms ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			maps.Copy(out, m)
		}
		return out
	}
	pvc := func(id string, tiles ...string) containers.GPU {
		return containers.GPU{Vendor: "intel", ID: id, FlatIDs: tiles, Devices: []string{"/dev/dri/renderD128"}}
	}
	for _, tc := range []struct {
		name     string
		template map[string]string
		gpus     []containers.GPU
		want     map[string]string // the GPU variables; others must be absent
	}{
		{name: "none", want: with(nvNone, amdNone, intelNone)},
		{name: "none, template widens", template: map[string]string{"CUDA_VISIBLE_DEVICES": "0", "ROCR_VISIBLE_DEVICES": "0",
			"HIP_VISIBLE_DEVICES": "0", "ZE_AFFINITY_MASK": "0", "NVIDIA_VISIBLE_DEVICES": "all"},
			want: with(nvNone, amdNone, intelNone)},
		{name: "nvidia", gpus: []containers.GPU{{Vendor: "nvidia", ID: "GPU-5d1e"}, {Vendor: "nvidia", ID: "GPU-9f0a"}},
			want: with(amdNone, intelNone, map[string]string{
				"CUDA_VISIBLE_DEVICES": "GPU-5d1e,GPU-9f0a", "NVIDIA_VISIBLE_DEVICES": "GPU-5d1e,GPU-9f0a"})},
		{name: "amd by unique_id", gpus: []containers.GPU{{Vendor: "amd", ID: "GPU-a1b2c3d4e5f60718"}},
			template: map[string]string{"HIP_VISIBLE_DEVICES": "3"},
			want: with(nvNone, intelNone, map[string]string{
				"ROCR_VISIBLE_DEVICES": "GPU-a1b2c3d4e5f60718", "HIP_VISIBLE_DEVICES": "0"})},
		{name: "amd by index", gpus: []containers.GPU{{Vendor: "amd", ID: "2"}, {Vendor: "amd", ID: "GPU-a1b2c3d4e5f60718"}},
			want: with(nvNone, intelNone, map[string]string{
				"ROCR_VISIBLE_DEVICES": "2,GPU-a1b2c3d4e5f60718", "HIP_VISIBLE_DEVICES": "0,1"})},
		{name: "intel, one tile", gpus: []containers.GPU{pvc("1", "1")},
			template: map[string]string{"ZE_ENABLE_PCI_ID_DEVICE_ORDER": "1"},
			want:     with(nvNone, amdNone, map[string]string{"ZE_AFFINITY_MASK": "1"})},
		{name: "intel, two tiles: flat", gpus: []containers.GPU{pvc("1", "2", "3")},
			want: with(nvNone, amdNone, map[string]string{"ZE_AFFINITY_MASK": "2,3", "ZE_FLAT_DEVICE_HIERARCHY": "FLAT"})},
		{name: "intel, two tiles: combined kept", gpus: []containers.GPU{pvc("0", "0", "1"), pvc("1", "2", "3")},
			template: map[string]string{"ZE_FLAT_DEVICE_HIERARCHY": "COMBINED"},
			want:     with(nvNone, amdNone, map[string]string{"ZE_AFFINITY_MASK": "0,1,2,3", "ZE_FLAT_DEVICE_HIERARCHY": "COMBINED"})},
		{name: "intel, two tiles: composite", gpus: []containers.GPU{pvc("1", "2", "3")},
			template: map[string]string{"ZE_FLAT_DEVICE_HIERARCHY": "COMPOSITE"},
			want:     with(nvNone, amdNone, map[string]string{"ZE_AFFINITY_MASK": "1", "ZE_FLAT_DEVICE_HIERARCHY": "COMPOSITE"})},
		{name: "intel without tiles known", gpus: []containers.GPU{{Vendor: "intel", ID: "0"}},
			want: with(nvNone, amdNone, map[string]string{"ZE_AFFINITY_MASK": "0"})},
		// The pilot gives one vendor per job; a spec with several gets each its own.
		{name: "mixed", gpus: []containers.GPU{{Vendor: "nvidia", ID: "GPU-5d1e"}, {Vendor: "amd", ID: "1"}, pvc("0", "0")},
			want: map[string]string{"CUDA_VISIBLE_DEVICES": "GPU-5d1e", "NVIDIA_VISIBLE_DEVICES": "GPU-5d1e",
				"ROCR_VISIBLE_DEVICES": "1", "HIP_VISIBLE_DEVICES": "0", "ZE_AFFINITY_MASK": "0"}},
		// A GPU of no known vendor is given to no vendor's runtime.
		{name: "unknown vendor", gpus: []containers.GPU{{Vendor: "", ID: "0"}}, want: with(nvNone, amdNone, intelNone)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := environ(containers.Spec{WorkDir: "/w", Env: tc.template, GPUs: tc.gpus})
			for _, k := range []string{"CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES",
				"HIP_VISIBLE_DEVICES", "ZE_AFFINITY_MASK", "ZE_FLAT_DEVICE_HIERARCHY", "ZE_ENABLE_PCI_ID_DEVICE_ORDER"} {
				got, ok := env[k]
				want, wantOK := tc.want[k]
				if ok != wantOK || got != want {
					t.Errorf("%s = %q (set: %v), want %q (set: %v)", k, got, ok, want, wantOK)
				}
			}
		})
	}
}
