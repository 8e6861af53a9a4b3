package podman

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/pando-wms/pando/containers"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/pilot"
	"github.com/pando-wms/pando/pilot/probe"
)

// A job given two of a DGX A100's GPUs (go-nvml's mock inventory, as the
// pilot's probe reports it) gets exactly those two by CDI name, and the
// variables that name them; no other device.
func TestGPUsByCDIName(t *testing.T) {
	s := dgxa100.New()
	for _, d := range s.Devices {
		d.(*dgxa100.Device).GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.SUCCESS }
	}
	gpus, _, _, err := probe.ProbeGPUs(s, slog.New(slog.DiscardHandler))
	if err != nil || len(gpus) != 8 {
		t.Fatalf("probe: %d GPUs, %v", len(gpus), err)
	}
	given, err := pilot.NameGPUs(t.TempDir(), gpus, []int{3, 5})
	if err != nil {
		t.Fatal(err)
	}
	a := &wire.Assign{JobID: 9, Attempt: 1, Image: "img", Command: []string{"nvidia-smi"}, Resources: wire.JobResources{Cores: 1, GPUs: 2}}
	g, err := generate(pilot.PayloadSpec("pando-9-1", a, "/work/job-9.1", given), "img")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"nvidia.com/gpu=" + gpus[3].UUID, "nvidia.com/gpu=" + gpus[5].UUID}
	if devs := devicePaths(g.Devices); !slices.Equal(devs, want) {
		t.Errorf("devices %v, want %v", devs, want)
	}
	if g.Env["PANDO_GPUS"] != gpus[3].UUID+","+gpus[5].UUID || g.Env["PANDO_GPU_VENDOR"] != "nvidia" {
		t.Errorf("PANDO_GPUS %q, PANDO_GPU_VENDOR %q", g.Env["PANDO_GPUS"], g.Env["PANDO_GPU_VENDOR"])
	}
	if _, ok := g.Annotations[keepGroups]; ok {
		t.Error("groups kept for CDI devices, which need none")
	}
}

// AMD and Intel GPUs are given by device node: /dev/kfd once and each GPU's
// own render and card nodes, with the groups that open them kept.
func TestGPUsByDeviceNode(t *testing.T) {
	mi300 := func(id, render, card string) containers.GPU {
		return containers.GPU{Vendor: "amd", ID: id, Devices: []string{"/dev/kfd", "/dev/dri/" + render, "/dev/dri/" + card}}
	}
	for _, tc := range []struct {
		name string
		gpus []containers.GPU
		want []string
	}{
		{name: "one amd", gpus: []containers.GPU{mi300("GPU-a1b2c3d4e5f60718", "renderD129", "card1")},
			want: []string{"/dev/kfd", "/dev/dri/renderD129", "/dev/dri/card1"}},
		{name: "two amd", gpus: []containers.GPU{mi300("GPU-a1b2c3d4e5f60718", "renderD129", "card1"), mi300("3", "renderD131", "card3")},
			want: []string{"/dev/kfd", "/dev/dri/renderD129", "/dev/dri/card1", "/dev/dri/renderD131", "/dev/dri/card3"}},
		{name: "intel", gpus: []containers.GPU{{Vendor: "intel", ID: "1", FlatIDs: []string{"2", "3"},
			Devices: []string{"/dev/dri/renderD130", "/dev/dri/card2"}}},
			want: []string{"/dev/dri/renderD130", "/dev/dri/card2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := containers.Spec{Name: "pando-1-1", Command: []string{"rocminfo"}, WorkDir: "/work/job-1.1", GPUs: tc.gpus}
			g, err := generate(s, "img")
			if err != nil {
				t.Fatal(err)
			}
			if devs := devicePaths(g.Devices); !slices.Equal(devs, tc.want) {
				t.Errorf("devices %v, want %v", devs, tc.want)
			}
			if g.Annotations[keepGroups] != "1" {
				t.Errorf("annotations %v: the render and video groups are not kept", g.Annotations)
			}
		})
	}
}

// The pilot's path for an AMD GPU: found in sysfs by its unique_id, named,
// and given to the container as /dev/kfd and its own DRM nodes only.
func TestAMDGPUFromSysfs(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{"dev/kfd": ""}
	for _, g := range []struct{ slot, uid, render, card string }{
		{"0000:c1:00.0", "a1b2c3d4e5f60718", "renderD128", "card0"},
		{"0000:c6:00.0", "0f1e2d3c4b5a6978", "renderD129", "card1"},
	} {
		dir := "sys/bus/pci/devices/" + g.slot + "/"
		files[dir+"uevent"] = "DRIVER=amdgpu\nPCI_SLOT_NAME=" + g.slot + "\n"
		files[dir+"vendor"], files[dir+"class"], files[dir+"unique_id"] = "0x1002\n", "0x038000\n", g.uid+"\n"
		files[dir+"drm/"+g.render+"/dev"], files[dir+"drm/"+g.card+"/dev"] = "", ""
		files["dev/dri/"+g.render], files["dev/dri/"+g.card] = "", ""
	}
	for p, content := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	probed := []wire.GPU{{Index: 0, UUID: "GPU-5d1e", Vendor: "nvidia"},
		{Index: 1, UUID: "a1b2c3d4e5f60718", Vendor: "amd"}, {Index: 2, UUID: "0f1e2d3c4b5a6978", Vendor: "amd"}}
	given, err := pilot.NameGPUs(root, probed, []int{2})
	if err != nil {
		t.Fatal(err)
	}
	a := &wire.Assign{JobID: 9, Attempt: 1, Image: "img", Command: []string{"rocminfo"}, Resources: wire.JobResources{Cores: 1, GPUs: 1}}
	g, err := generate(pilot.PayloadSpec("pando-9-1", a, "/work/job-9.1", given), "img")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/dev/kfd", "/dev/dri/renderD129", "/dev/dri/card1"}
	if devs := devicePaths(g.Devices); !slices.Equal(devs, want) {
		t.Errorf("devices %v, want %v", devs, want)
	}
	if g.Env["PANDO_GPUS"] != "GPU-0f1e2d3c4b5a6978" || g.Env["PANDO_GPU_VENDOR"] != "amd" {
		t.Errorf("PANDO_GPUS %q, PANDO_GPU_VENDOR %q", g.Env["PANDO_GPUS"], g.Env["PANDO_GPU_VENDOR"])
	}
}

// A GPU that cannot be given (no device nodes known, or nodes outside /dev)
// is refused rather than left out or given whole.
func TestGPUWithoutDeviceNodesRefused(t *testing.T) {
	for _, gpu := range []containers.GPU{
		{Vendor: "amd", ID: "0"},
		{Vendor: "intel", ID: "0", Devices: []string{"/sys/class/drm/renderD128"}},
		{Vendor: "", ID: "0"},
	} {
		s := containers.Spec{Name: "pando-1-1", Command: []string{"true"}, WorkDir: "/work/job-1.1", GPUs: []containers.GPU{gpu}}
		if _, err := generate(s, "img"); !errors.Is(err, containers.ErrInvalidSpec) {
			t.Errorf("%+v: generate = %v, want ErrInvalidSpec", gpu, err)
		}
	}
}

func devicePaths(devs []rspec.LinuxDevice) []string {
	var out []string
	for _, d := range devs {
		out = append(out, d.Path)
	}
	return out
}
