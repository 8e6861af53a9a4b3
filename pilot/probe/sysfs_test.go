package probe

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pando-wms/pando/dispatcher/wire"
)

// The trees under testdata hold what sysfs and /dev show on such nodes, the
// PCI function directories named with '-' for ':' (see readPCIDev).

// probeTree runs the sysfs probes on a tree, GPUs indexed from first, and
// returns what they found and logged.
func probeTree(t *testing.T, root string, first int) ([]wire.GPU, []wire.Accelerator, string) {
	t.Helper()
	var logs bytes.Buffer
	s := sysfs{root: root, log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	devs := s.pciDevices()
	return s.gpus(devs, first), s.accelerators(devs), logs.String()
}

func TestSysfsGPUs(t *testing.T) {
	const mi250xGCD = 68702699520
	for _, tc := range []struct {
		tree  string
		first int
		want  []wire.GPU
		logs  []string // substrings the log must hold
	}{
		{tree: "amd", first: 0, want: []wire.GPU{
			{Index: 0, UUID: "a1b2c3d4e5f60718", Model: "AMD Instinct MI250X", Vendor: "amd",
				MemoryBytes: mi250xGCD, ComputeMajor: 9, ComputeMinor: 10},
			// No product_name: the model comes from the device id.
			{Index: 1, Model: "AMD Instinct MI250X/MI250", Vendor: "amd",
				MemoryBytes: mi250xGCD, ComputeMajor: 9, ComputeMinor: 10},
		}},
		// After 8 NVML GPUs.
		{tree: "amd", first: 8, want: []wire.GPU{
			{Index: 8, UUID: "a1b2c3d4e5f60718", Model: "AMD Instinct MI250X", Vendor: "amd",
				MemoryBytes: mi250xGCD, ComputeMajor: 9, ComputeMinor: 10},
			{Index: 9, Model: "AMD Instinct MI250X/MI250", Vendor: "amd",
				MemoryBytes: mi250xGCD, ComputeMajor: 9, ComputeMinor: 10},
		}},
		{tree: "intel", want: []wire.GPU{
			{Index: 0, Model: "Intel Data Center GPU Max 1550", Vendor: "intel", MemoryBytes: 128 << 30}, // xe, two tiles
			{Index: 1, Model: "Intel Data Center GPU Max 1550", Vendor: "intel", MemoryBytes: 128 << 30}, // i915 lmem_total_bytes
			{Index: 2, Model: "Intel Data Center GPU Flex 170", Vendor: "intel"},                         // mainline i915: unknown
		}, logs: []string{"without a device node", "0000:ca:00.0"}},
		{tree: "garbled", want: []wire.GPU{
			// Its KFD node is garbled: no compute capability.
			{Index: 0, Model: "AMD Instinct MI210", Vendor: "amd", MemoryBytes: mi250xGCD},
		}, logs: []string{
			"0000-83-00.0", // vendor
			"0000:03:00.0", // mem_info_vram_total
			"0000:8a:00.0", // physical_vram_size_bytes
			"unreadable KFD node",
		}},
		{tree: "gaudi"},
		{tree: "tpu"},
		{tree: "fpga"},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.tree, tc.first), func(t *testing.T) {
			gpus, _, logs := probeTree(t, filepath.Join("testdata", tc.tree), tc.first)
			if len(gpus) != len(tc.want) {
				t.Fatalf("got %d GPUs %+v, want %d", len(gpus), gpus, len(tc.want))
			}
			for i := range gpus {
				if gpus[i] != tc.want[i] {
					t.Errorf("gpu %d:\n got %+v\nwant %+v", i, gpus[i], tc.want[i])
				}
			}
			for _, s := range tc.logs {
				if !strings.Contains(logs, s) {
					t.Errorf("log lacks %q:\n%s", s, logs)
				}
			}
		})
	}
}

func TestSysfsAccelerators(t *testing.T) {
	for _, tc := range []struct {
		tree string
		want []wire.Accelerator
		logs []string
	}{
		{tree: "gaudi", want: []wire.Accelerator{{Kind: "gaudi", Model: "Gaudi2", Count: 8}}},
		// The gVNIC shares Google's vendor id.
		{tree: "tpu", want: []wire.Accelerator{{Kind: "tpu", Model: "TPU v4", Count: 4}}},
		// One chip's /dev/vfio node is missing.
		{tree: "tpu-vfio", want: []wire.Accelerator{{Kind: "tpu", Model: "TPU v5e", Count: 3}},
			logs: []string{"without a device node", "0000:00:08.0", "vfio/3"}},
		{tree: "accel", want: []wire.Accelerator{
			{Kind: "accel", Model: "qaic 17cb:a100", Count: 1},
			{Kind: "npu", Model: "Intel NPU (Meteor Lake)", Count: 1},
		}},
		// The U250's two functions are one card; the audio card is no FPGA.
		{tree: "fpga", want: []wire.Accelerator{
			{Kind: "fpga", Model: "Alveo U250", Count: 1},
			{Kind: "fpga", Model: "Intel FPGA PAC D5005", Count: 1},
		}},
		{tree: "garbled", logs: []string{"0000-b0-00.0"}},
		{tree: "amd"},
		{tree: "intel"},
	} {
		t.Run(tc.tree, func(t *testing.T) {
			_, accels, logs := probeTree(t, filepath.Join("testdata", tc.tree), 0)
			if fmt.Sprint(accels) != fmt.Sprint(tc.want) {
				t.Errorf("got %+v\nwant %+v", accels, tc.want)
			}
			for _, s := range tc.logs {
				if !strings.Contains(logs, s) {
					t.Errorf("log lacks %q:\n%s", s, logs)
				}
			}
		})
	}
}

// TestSysfsNothing: a node without these devices, or without sysfs at all,
// has none and logs no warning.
func TestSysfsNothing(t *testing.T) {
	for name, root := range map[string]string{
		"empty":   t.TempDir(),
		"missing": filepath.Join(t.TempDir(), "none"),
	} {
		t.Run(name, func(t *testing.T) {
			gpus, accels, logs := probeTree(t, root, 0)
			if len(gpus) != 0 || len(accels) != 0 || logs != "" {
				t.Errorf("got %v, %v, log %q; want nothing", gpus, accels, logs)
			}
		})
	}
}

// TestProbeSysRoot: sysfs GPUs follow NVML's, and the accelerators come
// along.
func TestProbeSysRoot(t *testing.T) {
	r, err := Probe(context.Background(), Options{NVML: newDGXA100(t), SysRoot: "testdata/amd", DiskDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GPUs) != 10 {
		t.Fatalf("got %d GPUs, want 8 NVIDIA and 2 AMD", len(r.GPUs))
	}
	for i, g := range r.GPUs {
		want := "nvidia"
		if i >= 8 {
			want = "amd"
		}
		if g.Index != i || g.Vendor != want {
			t.Errorf("gpu %d: index %d vendor %q, want vendor %q", i, g.Index, g.Vendor, want)
		}
	}
	r, err = Probe(context.Background(), Options{NVML: newDGXA100(t), SysRoot: "testdata/fpga", DiskDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GPUs) != 8 || len(r.Accelerators) != 2 {
		t.Errorf("got %d GPUs and accelerators %+v; want 8 and 2 FPGAs", len(r.GPUs), r.Accelerators)
	}
}

func TestAMDCompute(t *testing.T) {
	for v, want := range map[uint64][2]int{
		90008:  {9, 8},   // gfx908, MI100
		90010:  {9, 10},  // gfx90a, MI200
		90402:  {9, 402}, // gfx942, MI300
		110000: {11, 0},  // gfx1100
		0:      {0, 0},   // unknown
	} {
		if major, minor := amdCompute(v); major != want[0] || minor != want[1] {
			t.Errorf("amdCompute(%d) = %d.%d, want %d.%d", v, major, minor, want[0], want[1])
		}
	}
}

func TestModels(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{amdModel("AMD Instinct MI300X", 0x74a1), "AMD Instinct MI300X"},
		{amdModel("", 0x74a1), "AMD Instinct MI300X"},
		{amdModel("", 0x738c), "AMD Instinct MI100"},
		{amdModel("", 0x1234), "AMD GPU 0x1234"},
		{intelModel(0x0bd5), "Intel Data Center GPU Max 1550"},
		{intelModel(0x56a0), "Intel GPU 0x56a0"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
