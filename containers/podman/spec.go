package podman

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/containers/podman/v5/pkg/specgen"
	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/pando-wms/pando/containers"
)

// cpuPeriod is the CFS period for --cpus style limits, in microseconds.
const cpuPeriod = 100_000

// Label marks every container this runtime creates, so that a restarted
// pilot can find and remove what an earlier one left behind.
const Label = "io.pando.job"

// generate is the podman container spec for s, with image already resolved
// to a local name or ID. It is pure, so that tests can check exactly what a
// payload is given: its work directory read-write, the declared mounts, its
// GPUs by CDI name, no network unless asked, and nothing else of the host.
func generate(s containers.Spec, image string) (*specgen.SpecGenerator, error) {
	if s.Name == "" || len(s.Command) == 0 {
		return nil, fmt.Errorf("%w: a container needs a name and a command", containers.ErrInvalidSpec)
	}
	if !filepath.IsAbs(s.WorkDir) {
		return nil, fmt.Errorf("%w: work directory %q is not absolute", containers.ErrInvalidSpec, s.WorkDir)
	}
	g := specgen.NewSpecGenerator(image, false)
	g.Name = s.Name
	g.Command = s.Command
	// The image's entrypoint would wrap the command: the task's command is the whole argv.
	g.Entrypoint = []string{}
	g.Env = make(map[string]string, len(s.Env))
	for k, v := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(v, "\x00") {
			return nil, fmt.Errorf("%w: environment variable %q", containers.ErrInvalidSpec, k)
		}
		g.Env[k] = v
	}
	g.WorkDir = s.WorkDir
	g.Labels = map[string]string{Label: s.Name}
	g.Mounts = []rspec.Mount{bind(s.WorkDir, s.WorkDir, false)}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Target) {
			return nil, fmt.Errorf("%w: mount %s:%s is not absolute", containers.ErrInvalidSpec, m.Source, m.Target)
		}
		g.Mounts = append(g.Mounts, bind(m.Source, m.Target, m.ReadOnly))
	}
	if err := gpuDevices(g, s.GPUs); err != nil {
		return nil, err
	}
	if !s.Network {
		g.NetNS = specgen.Namespace{NSMode: specgen.NoNetwork}
	}
	noNewPrivs := true
	g.NoNewPrivileges = &noNewPrivs
	g.ResourceLimits = limits(s.Limits)
	return g, nil
}

// gpuDevices gives the container its GPUs and nothing else of the host's. An NVIDIA GPU goes
// by CDI name: the NVIDIA container toolkit's spec maps it to the device nodes and libraries of
// exactly that GPU. AMD and Intel GPUs go by device node, as ROCm and Intel document for
// containers (--device /dev/kfd --device /dev/dri/renderD128): their user-space stack is in the
// image, and AMD's CDI specs (amd.com/gpu=N) need the AMD container toolkit on the node. ROCm
// shows only the GPUs whose render nodes the container may open, Level Zero only those
// present. Device nodes belong to the render and video groups: the supplementary groups of the
// podman service, which the pilot starts as its own user, are kept (podman's --group-add
// keep-groups, which its CLI refuses remotely only because a remote service's groups are not the
// caller's); a rootless container cannot open the nodes without them.
func gpuDevices(g *specgen.SpecGenerator, gpus []containers.GPU) error {
	seen := map[string]bool{}
	nodes := false
	for _, gpu := range gpus {
		switch {
		case gpu.Vendor == "nvidia":
			g.Devices = append(g.Devices, rspec.LinuxDevice{Path: "nvidia.com/gpu=" + gpu.ID})
		case len(gpu.Devices) == 0:
			return fmt.Errorf("%w: no device nodes known for %s GPU %s", containers.ErrInvalidSpec, gpu.Vendor, gpu.ID)
		}
		for _, d := range gpu.Devices {
			if !filepath.IsAbs(d) || !strings.HasPrefix(filepath.Clean(d), "/dev/") {
				return fmt.Errorf("%w: GPU device node %q is not under /dev", containers.ErrInvalidSpec, d)
			}
			if !seen[d] {
				seen[d], nodes = true, true
				g.Devices = append(g.Devices, rspec.LinuxDevice{Path: d})
			}
		}
	}
	if nodes {
		if g.Annotations == nil {
			g.Annotations = map[string]string{}
		}
		g.Annotations[keepGroups] = "1"
	}
	return nil
}

// keepGroups is the OCI runtime annotation behind podman's --group-add keep-groups (crun honours
// it; podman's define.RunOCIKeepOriginalGroups).
const keepGroups = "run.oci.keep_original_groups"

func bind(src, dst string, ro bool) rspec.Mount {
	mode := "rw"
	if ro {
		mode = "ro"
	}
	return rspec.Mount{Type: "bind", Source: src, Destination: dst, Options: []string{"rbind", mode}}
}

func limits(l containers.Limits) *rspec.LinuxResources {
	if l == (containers.Limits{}) {
		return nil
	}
	r := &rspec.LinuxResources{}
	if l.MemoryBytes > 0 {
		mem := l.MemoryBytes
		// Swap equal to memory: no swap on top, so the limit is what the payload gets.
		r.Memory = &rspec.LinuxMemory{Limit: &mem, Swap: &mem}
	}
	if l.Cores > 0 {
		quota, period := int64(l.Cores)*cpuPeriod, uint64(cpuPeriod)
		r.CPU = &rspec.LinuxCPU{Quota: &quota, Period: &period}
	}
	if l.PIDs > 0 {
		r.Pids = &rspec.LinuxPids{Limit: int64(l.PIDs)}
	}
	return r
}
