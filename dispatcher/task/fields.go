package task

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// spec decodes the raw nodes over the defaults. Range rules are left to
// Validate so that they hold for specs from any source.
func (r *rawSpec) spec() (*Spec, error) {
	s := &Spec{
		Name:        DefaultName,
		Jobs:        DefaultJobs,
		Priority:    DefaultPriority,
		MaxAttempts: DefaultMaxAttempts,
		Resources: Resources{
			Cores:       DefaultCores,
			MemoryBytes: DefaultMemory,
			Walltime:    DefaultWalltime,
		},
	}
	var d decoder
	d.str("name", r.Name, &s.Name)
	d.command(r.Command, &s.Command)
	d.str("image", r.Image, &s.Image)
	d.bool("network", r.Network, &s.Network)
	d.env(r.Env, &s.Env)
	d.int("jobs", r.Jobs, &s.Jobs)
	rr, res := &r.res, &s.Resources
	d.int("resources.cores", rr.Cores, &res.Cores)
	d.size("resources.memory", rr.Memory, &res.MemoryBytes)
	d.duration("resources.walltime", rr.Walltime, &res.Walltime)
	d.int("resources.gpus", rr.GPUs, &res.GPUs)
	d.str("resources.gpu_model", rr.GPUModel, &res.GPUModel)
	d.size("resources.gpu_memory", rr.GPUMemory, &res.GPUMemory)
	d.str("resources.accelerator", rr.Accelerator, &res.Accelerator)
	d.str("resources.gpu_compute", rr.GPUCompute, &res.GPUCompute)
	d.str("resources.arch", rr.Arch, &res.Arch)
	d.int("priority", r.Priority, &s.Priority)
	d.int("max_attempts", r.MaxAttempts, &s.MaxAttempts)
	d.str("queue", r.Queue, &s.Queue)
	d.str("share", r.Share, &s.Share)
	d.inputs(r.Inputs, &s.Inputs)
	d.int("files_per_job", r.FilesPerJob, &s.FilesPerJob)
	d.outputs(r.Outputs, &s.Outputs)
	d.bool("stream", r.Stream, &s.Stream)
	if d.err != nil {
		return nil, d.err
	}
	if s.Inputs != nil {
		if !absent(deref(r.Jobs)) {
			return nil, &FieldError{"jobs", "leave it out: with inputs, files_per_job decides the number of jobs"}
		}
		if absent(deref(r.FilesPerJob)) {
			s.FilesPerJob = 1
		}
		if !s.Inputs.Dataset() && s.FilesPerJob > 0 {
			s.Jobs = s.JobsFor(len(s.Inputs.Files))
		}
	}
	if s.Name == "" {
		s.Name = DefaultName
	}
	return s, nil
}

// decoder keeps the first error, so the calls in spec need no checks.
type decoder struct{ err error }

func (d *decoder) fail(field, format string, args ...any) {
	if d.err == nil {
		d.err = &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
	}
}

// scalar returns n's value; ok is false if n is absent or an error is set.
func (d *decoder) scalar(field string, n *yaml.Node) (v string, ok bool) {
	n = deref(n)
	if d.err != nil || absent(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		d.fail(field, "must be a single value, got %s (line %d)", describe(n), n.Line)
		return "", false
	}
	return n.Value, true
}

func (d *decoder) str(field string, n *yaml.Node, dst *string) {
	if v, ok := d.scalar(field, n); ok {
		*dst = v
	}
}

func (d *decoder) bool(field string, n *yaml.Node, dst *bool) {
	v, ok := d.scalar(field, n)
	if !ok {
		return
	}
	switch v {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		d.fail(field, "must be true or false, not %q", v)
	}
}

func (d *decoder) int(field string, n *yaml.Node, dst *int) {
	v, ok := d.scalar(field, n)
	if !ok {
		return
	}
	// The tag check refuses floats, which yaml would truncate into an int.
	var i int
	if deref(n).ShortTag() != "!!int" || deref(n).Decode(&i) != nil {
		d.fail(field, "must be an integer, got %s", quote(v))
		return
	}
	*dst = i
}

func (d *decoder) size(field string, n *yaml.Node, dst *int64) {
	v, ok := d.scalar(field, n)
	if !ok {
		return
	}
	b, err := ParseSize(v)
	switch {
	case err != nil:
		d.fail(field, "%v", err)
	case b <= 0:
		d.fail(field, "must be greater than 0, got %s", quote(v))
	default:
		*dst = b
	}
}

func (d *decoder) duration(field string, n *yaml.Node, dst *time.Duration) {
	v, ok := d.scalar(field, n)
	if !ok {
		return
	}
	t, err := ParseDuration(v)
	switch {
	case err != nil:
		d.fail(field, "%v", err)
	case t <= 0:
		d.fail(field, "must be greater than 0, got %s", quote(v))
	default:
		*dst = t
	}
}

// command accepts a list of strings, or one string run by /bin/sh -c.
func (d *decoder) command(n *yaml.Node, dst *[]string) {
	n = deref(n)
	switch {
	case d.err != nil:
	case absent(n):
		d.fail("command", `required: a list such as ["/bin/echo", "hello"], or a shell command string`)
	case n.Kind == yaml.ScalarNode:
		if strings.TrimSpace(n.Value) == "" {
			d.fail("command", "must not be empty")
			return
		}
		*dst = []string{"/bin/sh", "-c", n.Value}
	case n.Kind == yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for i, e := range n.Content {
			if e = deref(e); e.Kind != yaml.ScalarNode || absent(e) {
				d.fail(fmt.Sprintf("command[%d]", i), "must be a string, got %s", describe(e))
				return
			}
			out = append(out, e.Value)
		}
		*dst = out
	default:
		d.fail("command", "must be a list of strings or a string, got %s", describe(n))
	}
}

func (d *decoder) env(n *yaml.Node, dst *map[string]string) {
	n = deref(n)
	if d.err != nil || absent(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail("env", "must be a mapping of NAME: value, got %s", describe(n))
		return
	}
	m := make(map[string]string, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.fail("env", "names must be strings, got %s (line %d)", describe(k), k.Line)
			return
		}
		field := "env." + k.Value
		if _, dup := m[k.Value]; dup {
			d.fail(field, "set twice (line %d)", k.Line)
			return
		}
		if v.Kind != yaml.ScalarNode || absent(v) {
			d.fail(field, `must be a string, got %s (use "" for empty)`, describe(v))
			return
		}
		m[k.Value] = v.Value
	}
	if len(m) > 0 {
		*dst = m
	}
}

// none stands for a field left out; it is never changed.
var none yaml.Node

// deref follows an alias to its anchored node (an anchor cannot sit on an
// alias, so one step is enough); nil is a field left out.
func deref(n *yaml.Node) *yaml.Node {
	if n == nil {
		return &none
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// absent reports a field left out or set to null; both get the default.
func absent(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "null"
		}
		return quote(n.Value)
	}
	return "nothing"
}
