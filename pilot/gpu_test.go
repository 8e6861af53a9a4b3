package pilot_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/pilot"
)

// gpuVars are the variables through which GPU runtimes find their devices.
var gpuVars = []string{"CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES",
	"ZE_AFFINITY_MASK", "PANDO_GPUS", "PANDO_GPU_VENDOR"}

// printGPUVars is a shell command that writes gpuVars, one NAME=value a line, to out/$PANDO_JOB_INDEX.
func printGPUVars(out string) string {
	var b strings.Builder
	for _, v := range gpuVars {
		b.WriteString(v + `=$` + v + `\n`)
	}
	return `printf "` + b.String() + `" > ` + out + `/$PANDO_JOB_INDEX`
}

func readVars(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		vars[k] = v
	}
	return vars
}

const (
	amdUID   = "a1b2c3d4e5f60718"
	amdUID2  = "0f1e2d3c4b5a6978"
	zeNone   = "999999" // an index no node has: Level Zero shows no device
	nvNone   = "CUDA_VISIBLE_DEVICES= NVIDIA_VISIBLE_DEVICES=void"
	amdNone  = "ROCR_VISIBLE_DEVICES= HIP_VISIBLE_DEVICES=-1"
	noneVars = nvNone + " " + amdNone + " ZE_AFFINITY_MASK=" + zeNone
)

// The variables a job gets on NVIDIA, AMD, Intel and mixed nodes: its own
// GPUs in its vendor's variables, and every other vendor's "none".
func TestGPUEnvPerVendor(t *testing.T) {
	nv := func(i int, uuid string) wire.GPU {
		return wire.GPU{Index: i, UUID: uuid, Vendor: "nvidia", Model: "NVIDIA H100"}
	}
	amd := func(i int, uid string) wire.GPU {
		return wire.GPU{Index: i, UUID: uid, Vendor: "amd", Model: "AMD Instinct MI300X"}
	}
	intel := func(i int) wire.GPU {
		return wire.GPU{Index: i, Vendor: "intel", Model: "Intel Data Center GPU Max 1100"}
	}
	for _, tc := range []struct {
		name      string
		gpus      []wire.GPU
		resources string
		want      string // NAME=value ..., the variables of gpuVars
	}{
		{name: "nvidia", gpus: []wire.GPU{nv(0, "GPU-aaaa"), nv(1, "GPU-bbbb")}, resources: "gpus: 2",
			want: "CUDA_VISIBLE_DEVICES=GPU-aaaa,GPU-bbbb NVIDIA_VISIBLE_DEVICES=GPU-aaaa,GPU-bbbb " + amdNone +
				" ZE_AFFINITY_MASK=" + zeNone + " PANDO_GPUS=GPU-aaaa,GPU-bbbb PANDO_GPU_VENDOR=nvidia"},
		{name: "amd", gpus: []wire.GPU{amd(0, amdUID), amd(1, amdUID2)}, resources: "gpus: 2",
			want: nvNone + " ROCR_VISIBLE_DEVICES=GPU-" + amdUID + ",GPU-" + amdUID2 + " HIP_VISIBLE_DEVICES=0,1 ZE_AFFINITY_MASK=" + zeNone +
				" PANDO_GPUS=GPU-" + amdUID + ",GPU-" + amdUID2 + " PANDO_GPU_VENDOR=amd"},
		// Indexed among Intel's GPUs, not the node's: NVML's come first.
		{name: "intel", gpus: []wire.GPU{intel(0), intel(1)}, resources: "gpus: 1",
			want: nvNone + " " + amdNone + " ZE_AFFINITY_MASK=0 PANDO_GPUS=0 PANDO_GPU_VENDOR=intel"},
		{name: "mixed, amd asked for", gpus: []wire.GPU{nv(0, "GPU-aaaa"), nv(1, "GPU-bbbb"), amd(2, amdUID), intel(3)},
			resources: "gpus: 1, accelerator: amd",
			want: nvNone + " ROCR_VISIBLE_DEVICES=GPU-" + amdUID + " HIP_VISIBLE_DEVICES=0 ZE_AFFINITY_MASK=" + zeNone +
				" PANDO_GPUS=GPU-" + amdUID + " PANDO_GPU_VENDOR=amd"},
		{name: "mixed, intel by model", gpus: []wire.GPU{nv(0, "GPU-aaaa"), amd(1, amdUID), intel(2)},
			resources: "gpus: 1, gpu_model: Max",
			want:      nvNone + " " + amdNone + " ZE_AFFINITY_MASK=0 PANDO_GPUS=0 PANDO_GPU_VENDOR=intel"},
		// Two GPUs of one vendor, though there are four GPUs free.
		{name: "mixed, two of one vendor", gpus: []wire.GPU{nv(0, "GPU-aaaa"), amd(1, amdUID), intel(2), nv(3, "GPU-bbbb")},
			resources: "gpus: 2",
			want: "CUDA_VISIBLE_DEVICES=GPU-aaaa,GPU-bbbb NVIDIA_VISIBLE_DEVICES=GPU-aaaa,GPU-bbbb " + amdNone +
				" ZE_AFFINITY_MASK=" + zeNone + " PANDO_GPUS=GPU-aaaa,GPU-bbbb PANDO_GPU_VENDOR=nvidia"},
		{name: "mixed, no GPU", gpus: []wire.GPU{nv(0, "GPU-aaaa"), amd(1, amdUID), intel(2)}, resources: "cores: 1",
			want: noneVars + " PANDO_GPUS= PANDO_GPU_VENDOR="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, t.TempDir())
			e.pilot(pilot.Config{Name: "p1", Resources: wire.Resources{Cores: 4, MemoryBytes: 4 << 30, GPUs: tc.gpus, Runtimes: []string{"process"}}})
			out := t.TempDir()
			// The template tries to widen every vendor's set: the pilot's values win.
			id := e.submit(`command: ["/bin/sh", "-c", "` + strings.ReplaceAll(printGPUVars(out), `"`, `\"`) + `"]
env: {CUDA_VISIBLE_DEVICES: all, ROCR_VISIBLE_DEVICES: "0,1,2,3", HIP_VISIBLE_DEVICES: "0,1,2,3", ZE_AFFINITY_MASK: "0,1,2,3"}
resources: {` + tc.resources + `}
`)
			if st := e.waitTask(id); st != "finished" {
				t.Fatalf("task %s, want finished", st)
			}
			got := readVars(t, filepath.Join(out, "0"))
			for _, kv := range strings.Fields(tc.want) {
				k, v, _ := strings.Cut(kv, "=")
				if got[k] != v {
					t.Errorf("%s=%q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// On a mixed node every job gets GPUs of one vendor, and no GPU is given to
// two jobs at once: the intervals in which each GPU was held do not overlap.
func TestGPUsExclusiveOnMixedNode(t *testing.T) {
	e := newEnv(t, t.TempDir())
	gpus := []wire.GPU{{Index: 0, UUID: "GPU-aaaa", Vendor: "nvidia"}, {Index: 1, UUID: "GPU-bbbb", Vendor: "nvidia"},
		{Index: 2, UUID: amdUID, Vendor: "amd"}, {Index: 3, Vendor: "intel"}}
	e.pilot(pilot.Config{Name: "p1", Resources: wire.Resources{Cores: 8, MemoryBytes: 8 << 30, GPUs: gpus, Runtimes: []string{"process"}}})
	out := t.TempDir()
	script := printGPUVars(out) + `; echo START=$(date +%s%N) >> ` + out + `/$PANDO_JOB_INDEX; sleep 0.5; echo END=$(date +%s%N) >> ` + out + `/$PANDO_JOB_INDEX`
	id := e.submit(`command: ["/bin/sh", "-c", "` + strings.ReplaceAll(script, `"`, `\"`) + `"]
jobs: 12
resources: {cores: 1, gpus: 1}
`)
	if st := e.waitTask(id); st != "finished" {
		t.Fatalf("task %s, want finished", st)
	}
	type span struct{ start, end int64 }
	held := map[string][]span{} // by vendor/ID
	for i := range 12 {
		v := readVars(t, filepath.Join(out, strconv.Itoa(i)))
		own := map[string]string{"nvidia": v["CUDA_VISIBLE_DEVICES"], "amd": v["ROCR_VISIBLE_DEVICES"], "intel": v["ZE_AFFINITY_MASK"]}
		none := map[string]string{"nvidia": "", "amd": "", "intel": zeNone}
		vendor := v["PANDO_GPU_VENDOR"]
		for other, val := range own {
			if other == vendor && (val != v["PANDO_GPUS"] || val == none[other]) {
				t.Errorf("job %d (%s): its variable is %q, PANDO_GPUS %q", i, vendor, val, v["PANDO_GPUS"])
			}
			if other != vendor && val != none[other] {
				t.Errorf("job %d (%s) also sees %s GPUs %q", i, vendor, other, val)
			}
		}
		start, _ := strconv.ParseInt(v["START"], 10, 64)
		end, _ := strconv.ParseInt(v["END"], 10, 64)
		key := vendor + "/" + v["PANDO_GPUS"]
		for _, s := range held[key] {
			if start < s.end && s.start < end {
				t.Errorf("GPU %s given to two jobs at once", key)
			}
		}
		held[key] = append(held[key], span{start, end})
	}
	if len(held) != 4 {
		t.Errorf("GPUs used: %v; want all four", held)
	}
}
