package pilot

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/pando-wms/pando/containers"
	"github.com/pando-wms/pando/dispatcher/wire"
)

// writeTree writes files (path relative to root: content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// pciGPU is the sysfs of one PCI GPU function: slot 0000:xx:00.0, driver,
// vendor, class and DRM nodes, with the render node in /dev.
func pciGPU(files map[string]string, slot, driver, vendor, class, render, card string) string {
	dir := "sys/bus/pci/devices/" + slot
	files[dir+"/uevent"] = "DRIVER=" + driver + "\nPCI_SLOT_NAME=" + slot + "\n"
	files[dir+"/vendor"], files[dir+"/class"] = vendor+"\n", class+"\n"
	files[dir+"/drm/"+render+"/dev"], files[dir+"/drm/"+card+"/dev"] = "", ""
	files["dev/dri/"+render], files["dev/dri/"+card] = "", ""
	return dir
}

// amdNode is the KFD topology file of a GPU node.
func amdNode(minor string) string {
	return "cpu_cores_count 0\nsimd_count 440\ngfx_target_version 90010\ndrm_render_minor " + minor + "\n"
}

// An AMD node: two NVIDIA GPUs by NVML, then three MI250X GCDs, the first
// with a unique_id; KFD numbers the other two in the reverse of PCI order.
func amdTree(t *testing.T) string {
	root := t.TempDir()
	f := map[string]string{"dev/kfd": ""}
	d := pciGPU(f, "0000:c1:00.0", "amdgpu", "0x1002", "0x038000", "renderD128", "card0")
	f[d+"/unique_id"] = "a1b2c3d4e5f60718\n"
	pciGPU(f, "0000:c6:00.0", "amdgpu", "0x1002", "0x038000", "renderD129", "card1")
	pciGPU(f, "0000:d1:00.0", "amdgpu", "0x1002", "0x038000", "renderD130", "card2")
	pciGPU(f, "0000:01:00.0", "nvidia", "0x10de", "0x030200", "renderD131", "card3")
	nodes := "sys/class/kfd/kfd/topology/nodes/"
	f[nodes+"0/properties"] = "cpu_cores_count 64\nsimd_count 0\ndrm_render_minor 0\n"
	f[nodes+"1/properties"] = amdNode("130")
	f[nodes+"2/properties"] = amdNode("129")
	f[nodes+"3/properties"] = amdNode("128")
	writeTree(t, root, f)
	return root
}

// An Intel node: the integrated GPU, a Max 1550 driven by xe (two tiles), one
// by i915 (two GTs) and a Flex 170 (one tile).
func intelTree(t *testing.T) string {
	root := t.TempDir()
	f := map[string]string{}
	pciGPU(f, "0000:00:02.0", "i915", "0x8086", "0x030000", "renderD128", "card0")
	d := pciGPU(f, "0000:29:00.0", "xe", "0x8086", "0x038000", "renderD129", "card1")
	f[d+"/tile0/physical_vram_size_bytes"], f[d+"/tile1/physical_vram_size_bytes"] = "68719476736\n", "68719476736\n"
	d = pciGPU(f, "0000:9a:00.0", "i915", "0x8086", "0x038000", "renderD130", "card2")
	f[d+"/drm/card2/gt/gt0/id"], f[d+"/drm/card2/gt/gt1/id"] = "0\n", "1\n"
	pciGPU(f, "0000:b3:00.0", "i915", "0x8086", "0x038000", "renderD131", "card3")
	writeTree(t, root, f)
	return root
}

func TestNameGPUs(t *testing.T) {
	nv := []wire.GPU{{Index: 0, UUID: "GPU-5d1e", Vendor: "nvidia"}, {Index: 1, UUID: "GPU-9f0a", Vendor: "nvidia"}}
	amd := []wire.GPU{{Index: 2, UUID: "a1b2c3d4e5f60718", Vendor: "amd"}, {Index: 3, Vendor: "amd"}, {Index: 4, Vendor: "amd"}}
	intel := []wire.GPU{{Index: 0, Vendor: "intel"}, {Index: 1, Vendor: "intel"}, {Index: 2, Vendor: "intel"}}
	amdDevs := func(render, card string) []string {
		return []string{"/dev/kfd", "/dev/dri/" + render, "/dev/dri/" + card}
	}
	for _, tc := range []struct {
		name    string
		root    string
		gpus    []wire.GPU
		want    []containers.GPU
		wantErr bool
	}{
		{name: "nvidia", root: t.TempDir(), gpus: append(nv, wire.GPU{Index: 2}), want: []containers.GPU{
			{Vendor: "nvidia", ID: "GPU-5d1e"}, {Vendor: "nvidia", ID: "GPU-9f0a"}, {Vendor: "nvidia", ID: "2"}}},
		// By unique_id, else by index in KFD's order, not PCI's.
		{name: "amd", root: amdTree(t), gpus: slices.Concat(nv, amd), want: []containers.GPU{
			{Vendor: "nvidia", ID: "GPU-5d1e"}, {Vendor: "nvidia", ID: "GPU-9f0a"},
			{Vendor: "amd", ID: "GPU-a1b2c3d4e5f60718", Devices: amdDevs("renderD128", "card0")},
			{Vendor: "amd", ID: "1", Devices: amdDevs("renderD129", "card1")},
			{Vendor: "amd", ID: "0", Devices: amdDevs("renderD130", "card2")}}},
		// Cards counted without the integrated GPU, tiles with xe's tiles and i915's GTs.
		{name: "intel", root: intelTree(t), gpus: intel, want: []containers.GPU{
			{Vendor: "intel", ID: "0", FlatIDs: []string{"0", "1"}, Devices: []string{"/dev/dri/renderD129", "/dev/dri/card1"}},
			{Vendor: "intel", ID: "1", FlatIDs: []string{"2", "3"}, Devices: []string{"/dev/dri/renderD130", "/dev/dri/card2"}},
			{Vendor: "intel", ID: "2", FlatIDs: []string{"4"}, Devices: []string{"/dev/dri/renderD131", "/dev/dri/card3"}}}},
		// Not in sysfs: named by rank among the vendor's GPUs, without device nodes.
		{name: "missing", root: t.TempDir(), gpus: slices.Concat(nv, amd[:2], intel[:1]), wantErr: true, want: []containers.GPU{
			{Vendor: "nvidia", ID: "GPU-5d1e"}, {Vendor: "nvidia", ID: "GPU-9f0a"},
			{Vendor: "amd", ID: "GPU-a1b2c3d4e5f60718"}, {Vendor: "amd", ID: "1"}, {Vendor: "intel", ID: "0"}}},
		// Three Intel GPUs in sysfs, two offered: which is which is unknown.
		{name: "intel mismatch", root: intelTree(t), gpus: intel[:2], wantErr: true, want: []containers.GPU{
			{Vendor: "intel", ID: "0"}, {Vendor: "intel", ID: "1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := make([]int, len(tc.gpus))
			for i := range all {
				all[i] = i
			}
			got, err := NameGPUs(tc.root, tc.gpus, all)
			if (err != nil) != tc.wantErr {
				t.Errorf("err = %v, want an error: %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("named\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

// A job gets GPUs of one vendor that fit it: the vendor that fits it most
// tightly, never a mix, and only free ones.
func TestPickGPUs(t *testing.T) {
	h100 := wire.GPU{Vendor: "nvidia", Model: "NVIDIA H100 80GB HBM3", MemoryBytes: 80 << 30}
	mi300 := wire.GPU{Vendor: "amd", Model: "AMD Instinct MI300X", MemoryBytes: 192 << 30}
	max1550 := wire.GPU{Vendor: "intel", Model: "Intel Data Center GPU Max 1550", MemoryBytes: 128 << 30}
	mixed := []wire.GPU{h100, h100, h100, mi300, mi300, max1550}
	for _, tc := range []struct {
		name string
		gpus []wire.GPU
		held []int
		r    wire.JobResources
		want []int
	}{
		{name: "none asked", gpus: mixed, r: wire.JobResources{}, want: nil},
		{name: "one: the tightest vendor", gpus: mixed, r: wire.JobResources{GPUs: 1}, want: []int{5}},
		{name: "two: amd", gpus: mixed, r: wire.JobResources{GPUs: 2}, want: []int{3, 4}},
		{name: "three: nvidia only", gpus: mixed, r: wire.JobResources{GPUs: 3}, want: []int{0, 1, 2}},
		{name: "four: no vendor has four", gpus: mixed, r: wire.JobResources{GPUs: 4}, want: nil},
		{name: "held are skipped", gpus: mixed, held: []int{0, 3}, r: wire.JobResources{GPUs: 2}, want: []int{1, 2}},
		{name: "by model", gpus: mixed, r: wire.JobResources{GPUs: 1, GPUModel: "H100"}, want: []int{0}},
		{name: "by memory", gpus: mixed, r: wire.JobResources{GPUs: 2, GPUMemory: 100 << 30}, want: []int{3, 4}},
		{name: "by compute capability: nvidia only", gpus: []wire.GPU{mi300, {Vendor: "nvidia", ComputeMajor: 8}, {Vendor: "nvidia", ComputeMajor: 9}},
			r: wire.JobResources{GPUs: 1, GPUCompute: 900}, want: []int{2}},
		{name: "by vendor", gpus: mixed, r: wire.JobResources{GPUs: 1, Accelerator: "nvidia"}, want: []int{0}},
		{name: "accelerator not a GPU vendor", gpus: mixed, r: wire.JobResources{GPUs: 1, Accelerator: "tpu"}, want: []int{5}},
		{name: "bad model matches none", gpus: mixed, r: wire.JobResources{GPUs: 1, GPUModel: "("}, want: nil},
		{name: "no vendor reported is nvidia", gpus: []wire.GPU{{}, {}}, r: wire.JobResources{GPUs: 2, Accelerator: "nvidia"}, want: []int{0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			held := make([]bool, len(tc.gpus))
			for _, i := range tc.held {
				held[i] = true
			}
			if got := PickGPUs(tc.gpus, held, tc.r); !slices.Equal(got, tc.want) {
				t.Errorf("PickGPUs = %v, want %v", got, tc.want)
			}
		})
	}
}
