package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pando-wms/pando/dispatcher/queue"
	"github.com/pando-wms/pando/dispatcher/share"
	"github.com/pando-wms/pando/dispatcher/task"
)

// ErrConfig marks a bad queues or shares file.
var ErrConfig = errors.New("invalid simulation config")

// Queue is a queue definition and the agents it has.
type Queue struct {
	queue.Queue `yaml:",inline"`
	Agents      []Agents `yaml:"agents"`
}

// Agents are Count identical agents (pilots).
type Agents struct {
	Count    int    `yaml:"count"`
	Cores    int    `yaml:"cores"`
	Memory   Size   `yaml:"memory"` // default: 2GiB per core
	GPUs     int    `yaml:"gpus"`
	GPUModel string `yaml:"gpu_model"`
	// GPUMemory is each GPU's memory.
	GPUMemory Size   `yaml:"gpu_memory"`
	Arch      string `yaml:"arch"`
	// Lifetime is the pilot's own walltime (0: none); Walltime is an alias.
	Lifetime Duration `yaml:"lifetime"`
	Walltime Duration `yaml:"walltime"`
}

// Size is a byte size in YAML: a number of bytes or 16GiB, 512M...
type Size int64

func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := task.ParseSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = Size(v)
	return nil
}

// Duration is a duration in YAML: seconds, or 48h, 2-00:00:00...
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := task.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// ShareTarget is one share's target in percent of its parent.
type ShareTarget struct {
	Path   string  `yaml:"path" json:"path"`
	Target float64 `yaml:"target" json:"target"`
}

// DefaultQueues is the cluster without a queues file: queue "default"
// with 100 agents of 8 cores and 16GiB.
func DefaultQueues() []Queue {
	return []Queue{{
		Queue:  queue.Queue{Name: queue.Default, Kind: queue.Grid, Status: queue.Online},
		Agents: []Agents{{Count: 100, Cores: 8, Memory: 16 << 30}},
	}}
}

// DefaultMemoryPerCore is an agent's memory per core when its memory is
// not given.
const DefaultMemoryPerCore = 2 << 30

// maxAgents bounds a cluster, so that a typo cannot eat the memory.
const maxAgents = 10_000_000

// ReadQueues reads a queues file.
func ReadQueues(path string) ([]Queue, error) {
	var qs []Queue
	if err := readYAML(path, &qs); err != nil {
		return nil, err
	}
	if err := CheckQueues(qs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return qs, nil
}

// CheckQueues normalizes the queue definitions and checks the agents.
func CheckQueues(qs []Queue) error {
	if len(qs) == 0 {
		return fmt.Errorf("%w: no queues", ErrConfig)
	}
	seen, total := map[string]bool{}, 0
	for i := range qs {
		q := &qs[i]
		if err := q.Normalize(); err != nil {
			return fmt.Errorf("%w: queue %d: %w", ErrConfig, i+1, err)
		}
		if seen[q.Name] {
			return fmt.Errorf("%w: queue %s appears twice", ErrConfig, q.Name)
		}
		seen[q.Name] = true
		for k := range q.Agents {
			a := &q.Agents[k]
			if a.Lifetime == 0 {
				a.Lifetime = a.Walltime
			}
			if a.Memory == 0 {
				a.Memory = Size(a.Cores) * DefaultMemoryPerCore
			}
			where := fmt.Sprintf("queue %s, agents %d", q.Name, k+1)
			switch {
			case a.Count < 0 || a.Count > maxAgents:
				return fmt.Errorf("%w: %s: count %d: want 0 to %d", ErrConfig, where, a.Count, maxAgents)
			case a.Cores < 1:
				return fmt.Errorf("%w: %s: cores %d: want at least 1", ErrConfig, where, a.Cores)
			case a.Memory < 0 || a.GPUs < 0 || a.GPUMemory < 0 || a.Lifetime < 0:
				return fmt.Errorf("%w: %s: memory, gpus, gpu_memory and lifetime must not be negative", ErrConfig, where)
			case a.Lifetime != 0 && (a.Lifetime < Duration(time.Second) || a.Lifetime > maxSeconds*Duration(time.Second)):
				return fmt.Errorf("%w: %s: lifetime %v: want 1s to %gs", ErrConfig, where, time.Duration(a.Lifetime), float64(maxSeconds))
			}
			if total += a.Count; total > maxAgents {
				return fmt.Errorf("%w: more than %d agents", ErrConfig, maxAgents)
			}
		}
	}
	return nil
}

// ReadShares reads a shares file.
func ReadShares(path string) ([]ShareTarget, error) {
	var ss []ShareTarget
	if err := readYAML(path, &ss); err != nil {
		return nil, err
	}
	tree := share.New(0) // the same checks the dispatcher makes
	for _, s := range ss {
		if err := tree.Set(s.Path, s.Target); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
		}
	}
	return ss, nil
}

// readYAML decodes a file strictly: unknown keys are errors.
func readYAML(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s: %s", ErrConfig, path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}
