package task

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"go.yaml.in/yaml/v3"
)

// FieldError is a problem with one field of a task file. Field is its dotted
// path ("resources.memory", "env.FOO", "command[0]"); it is empty for a key
// the top-level mapping does not know.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// rawSpec holds the value nodes of a task file by field, nil for a field
// left out. Values are decoded by hand (spec) so that every error names
// its field.
type rawSpec struct {
	Name, Command, Image, Network, Env, Jobs, Resources, Priority, MaxAttempts,
	Queue, Share, Inputs, FilesPerJob, Outputs, Stream *yaml.Node
	res rawResources // Resources, once checked to be a mapping
}

type rawResources struct {
	Cores, Memory, Walltime, GPUs, GPUModel, GPUMemory, Accelerator, GPUCompute, Arch *yaml.Node
}

// The keys of a task file and of its resources mapping, as slot knows them.
var (
	specFields = []string{"name", "command", "image", "network", "env", "jobs", "resources",
		"priority", "max_attempts", "queue", "share", "inputs", "files_per_job", "outputs", "stream"}
	resourcesFields = []string{"cores", "memory", "walltime", "gpus", "gpu_model", "gpu_memory",
		"accelerator", "gpu_compute", "arch"}
)

// slot returns where the value of key name goes; nil for an unknown key.
func (r *rawSpec) slot(name string) **yaml.Node {
	switch name {
	case "name":
		return &r.Name
	case "command":
		return &r.Command
	case "image":
		return &r.Image
	case "network":
		return &r.Network
	case "env":
		return &r.Env
	case "jobs":
		return &r.Jobs
	case "resources":
		return &r.Resources
	case "priority":
		return &r.Priority
	case "max_attempts":
		return &r.MaxAttempts
	case "queue":
		return &r.Queue
	case "share":
		return &r.Share
	case "inputs":
		return &r.Inputs
	case "files_per_job":
		return &r.FilesPerJob
	case "outputs":
		return &r.Outputs
	case "stream":
		return &r.Stream
	}
	return nil
}

func (r *rawResources) slot(name string) **yaml.Node {
	switch name {
	case "cores":
		return &r.Cores
	case "memory":
		return &r.Memory
	case "walltime":
		return &r.Walltime
	case "gpus":
		return &r.GPUs
	case "gpu_model":
		return &r.GPUModel
	case "gpu_memory":
		return &r.GPUMemory
	case "accelerator":
		return &r.Accelerator
	case "gpu_compute":
		return &r.GPUCompute
	case "arch":
		return &r.Arch
	}
	return nil
}

// slots is a rawSpec or rawResources.
type slots interface{ slot(name string) **yaml.Node }

// Parse reads a task file (YAML, or JSON, which is YAML), applies the
// defaults to fields it leaves out and validates the result. The text is
// parsed once, a JSON object without the YAML parser: checks and decoding
// work on the node tree.
func Parse(data []byte) (*Spec, error) {
	root, ok := jsonDocument(data)
	if !ok {
		var err error
		if root, err = document(data); err != nil {
			return nil, err
		}
	}
	return parseNode(root)
}

// parseNode decodes and validates a task file's root mapping.
func parseNode(root *yaml.Node) (*Spec, error) {
	var raw rawSpec
	if err := fill(root, &raw, specFields, "", false); err != nil {
		return nil, err
	}
	if res := deref(raw.Resources); !absent(res) {
		if res.Kind != yaml.MappingNode {
			return nil, &FieldError{Field: "resources", Msg: fmt.Sprintf("must be a mapping such as {cores: 1, memory: 2GiB}, got %s (line %d)", describe(res), res.Line)}
		}
		if err := fill(res, &raw.res, resourcesFields, "resources", false); err != nil {
			return nil, err
		}
	}
	s, err := raw.spec()
	if err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// document returns the task file's one document, a mapping. It refuses
// what decoding into a struct would let through silently: no document, a
// null or non-mapping one, and a second one.
func document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		return nil, errors.New("task file is empty")
	}
	if err != nil {
		return nil, fmt.Errorf("task file: %w", err)
	}
	if len(doc.Content) != 1 || absent(deref(doc.Content[0])) {
		return nil, errors.New("task file is empty")
	}
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("task file must be a mapping of fields (name, command, jobs, ...), got %s", describe(root))
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, fmt.Errorf("task file holds more than one YAML document (line %d): submit one task per file", next.Line)
	case !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("task file: %w", err)
	}
	return root, nil
}

// fill puts the values of mapping n into dst's slots, as YAML decoding
// into a struct does: a key twice is an error, an unknown key too (named
// under parent), and keys merged in with "<<" fill only the slots still
// empty (keep), after the mapping's own keys and in the order merged.
func fill(n *yaml.Node, dst slots, known []string, parent string, keep bool) error {
	var merged []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		for j := 0; j < i; j += 2 {
			if p := n.Content[j]; p.Kind == k.Kind && p.Value == k.Value {
				return fmt.Errorf("duplicate field %q (line %d, first set at line %d)", k.Value, k.Line, p.Line)
			}
		}
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			merged = append(merged, v)
			continue
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
			return &FieldError{Field: parent, Msg: fmt.Sprintf("field names must be strings, got %s (line %d)", describe(k), k.Line)}
		}
		s := dst.slot(k.Value)
		if s == nil {
			return unknownField(parent, k.Value, k.Line, known)
		}
		if !keep || *s == nil {
			*s = v
		}
	}
	for _, v := range merged {
		ms := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			ms = v.Content
		}
		for _, m := range ms {
			if m = deref(m); m.Kind != yaml.MappingNode {
				return &FieldError{Field: parent, Msg: fmt.Sprintf("<< must merge a mapping or a list of mappings, got %s (line %d)", describe(m), m.Line)}
			}
			if err := fill(m, dst, known, parent, true); err != nil {
				return err
			}
		}
	}
	return nil
}

func unknownField(parent, name string, line int, known []string) error {
	text := fmt.Sprintf("unknown field %q (line %d)", name, line)
	if s := suggest(name, known); s != "" {
		text += fmt.Sprintf("; did you mean %q?", s)
	}
	return &FieldError{Field: parent, Msg: text}
}

// hints name the field meant by common words from other systems.
var hints = map[string]string{
	"cpus": "cores", "cpu": "cores", "ncores": "cores", "mem": "memory",
	"time": "walltime", "wall_time": "walltime", "retries": "max_attempts",
	"cmd": "command", "args": "command", "environment": "env", "container": "image",
}

// suggest returns the known name meant by name, if it can tell.
func suggest(name string, known []string) string {
	if h, ok := hints[name]; ok && slices.Contains(known, h) {
		return h
	}
	for _, k := range known {
		if editDistance(name, k) <= 2 {
			return k
		}
	}
	return ""
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
