package task

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
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

// rawSpec mirrors a task file. Values stay YAML nodes and are decoded by
// hand so that every error names its field; keys not listed here are
// refused (knownFields).
type rawSpec struct {
	Name        yaml.Node    `yaml:"name"`
	Command     yaml.Node    `yaml:"command"`
	Image       yaml.Node    `yaml:"image"`
	Network     yaml.Node    `yaml:"network"`
	Env         yaml.Node    `yaml:"env"`
	Jobs        yaml.Node    `yaml:"jobs"`
	Resources   rawResources `yaml:"resources"`
	Priority    yaml.Node    `yaml:"priority"`
	MaxAttempts yaml.Node    `yaml:"max_attempts"`
	Queue       yaml.Node    `yaml:"queue"`
	Share       yaml.Node    `yaml:"share"`
	Inputs      yaml.Node    `yaml:"inputs"`
	FilesPerJob yaml.Node    `yaml:"files_per_job"`
	Outputs     yaml.Node    `yaml:"outputs"`
	Stream      yaml.Node    `yaml:"stream"`
}

type rawResources struct {
	Cores       yaml.Node `yaml:"cores"`
	Memory      yaml.Node `yaml:"memory"`
	Walltime    yaml.Node `yaml:"walltime"`
	GPUs        yaml.Node `yaml:"gpus"`
	GPUModel    yaml.Node `yaml:"gpu_model"`
	GPUMemory   yaml.Node `yaml:"gpu_memory"`
	Accelerator yaml.Node `yaml:"accelerator"`
	GPUCompute  yaml.Node `yaml:"gpu_compute"`
	Arch        yaml.Node `yaml:"arch"`
}

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
	if err := root.Decode(&raw); err != nil {
		return nil, decodeError(err)
	}
	if err := knownFields(root, specFields, ""); err != nil {
		return nil, err
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

// The keys of a task file and of its resources mapping.
var (
	specFields      = fieldNames(rawSpec{})
	resourcesFields = fieldNames(rawResources{})
)

// knownFields refuses a key of mapping n that is not in known, as the
// decoder's KnownFields would: keys merged in with "<<" included, and the
// keys of resources. parent names the mapping in the error ("" for the
// top level). Values that are not mappings are left to the decoder.
func knownFields(n *yaml.Node, known []string, parent string) error {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			merged := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				merged = v.Content
			}
			for _, m := range merged {
				if err := knownFields(m, known, parent); err != nil {
					return err
				}
			}
			continue
		}
		if !slices.Contains(known, k.Value) {
			return unknownField(parent, k.Value, k.Line, known)
		}
		if parent == "" && k.Value == "resources" {
			if err := knownFields(v, resourcesFields, "resources"); err != nil {
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

var (
	reNotMap = regexp.MustCompile(`(?s)^line (\d+): cannot unmarshal (\S+) .* into task\.rawResources$`)
	reDup    = regexp.MustCompile(`^line (\d+): mapping key "(.*)" already defined at line (\d+)$`)
)

// decodeError rewrites the decoder's first complaint to name the field.
func decodeError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		return fmt.Errorf("task file: %w", err)
	}
	msg := te.Errors[0]
	if m := reNotMap.FindStringSubmatch(msg); m != nil {
		got := map[string]string{"!!str": "a string", "!!int": "a number", "!!float": "a number", "!!bool": "a boolean", "!!seq": "a list"}[m[2]]
		if got == "" {
			got = m[2]
		}
		return &FieldError{Field: "resources", Msg: fmt.Sprintf("must be a mapping such as {cores: 1, memory: 2GiB}, got %s (line %s)", got, m[1])}
	}
	if m := reDup.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("duplicate field %q (line %s, first set at line %s)", m[2], m[1], m[3])
	}
	return fmt.Errorf("task file: %s", msg)
}

func fieldNames(v any) []string {
	t := reflect.TypeOf(v)
	names := make([]string, t.NumField())
	for i := range names {
		names[i] = t.Field(i).Tag.Get("yaml")
	}
	return names
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
