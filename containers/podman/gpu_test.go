package podman

import (
	"log/slog"
	"slices"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

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
	given := []string{gpus[3].UUID, gpus[5].UUID}
	a := &wire.Assign{JobID: 9, Attempt: 1, Image: "img", Command: []string{"nvidia-smi"}, Resources: wire.JobResources{Cores: 1, GPUs: 2}}
	g, err := generate(pilot.PayloadSpec("pando-9-1", a, "/work/job-9.1", given), "img")
	if err != nil {
		t.Fatal(err)
	}
	var devs []string
	for _, d := range g.Devices {
		devs = append(devs, d.Path)
	}
	want := []string{"nvidia.com/gpu=" + given[0], "nvidia.com/gpu=" + given[1]}
	if !slices.Equal(devs, want) {
		t.Errorf("devices %v, want %v", devs, want)
	}
	if g.Env["PANDO_GPUS"] != given[0]+","+given[1] {
		t.Errorf("PANDO_GPUS %q", g.Env["PANDO_GPUS"])
	}
}
