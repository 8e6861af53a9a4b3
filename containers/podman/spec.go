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
	for _, id := range s.GPUs {
		// A CDI name: the NVIDIA container toolkit's spec maps it to the
		// device nodes and libraries of exactly that GPU.
		g.Devices = append(g.Devices, rspec.LinuxDevice{Path: "nvidia.com/gpu=" + id})
	}
	if !s.Network {
		g.NetNS = specgen.Namespace{NSMode: specgen.NoNetwork}
	}
	noNewPrivs := true
	g.NoNewPrivileges = &noNewPrivs
	g.ResourceLimits = limits(s.Limits)
	return g, nil
}

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
