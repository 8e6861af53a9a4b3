package task

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Inputs are a task's input files: a dataset (an endpoint, a bucket and a
// prefix, listed when the task is submitted) or an explicit list of files.
type Inputs struct {
	Endpoint string    `json:"endpoint,omitempty"`
	Bucket   string    `json:"bucket,omitempty"`
	Prefix   string    `json:"prefix,omitempty"`
	Files    []FileRef `json:"files,omitempty"`
}

// Dataset reports whether the inputs name a dataset rather than files.
func (in *Inputs) Dataset() bool { return len(in.Files) == 0 }

// FileRef names one stored object.
type FileRef struct {
	Endpoint string `json:"endpoint"`
	Bucket   string `json:"bucket"`
	Path     string `json:"path"`
}

func (f FileRef) String() string { return f.Endpoint + ":" + f.Bucket + "/" + f.Path }

// Outputs say which files of a job's work directory are kept and where:
// each file matching one of Patterns is uploaded to Endpoint, Bucket, under
// Path (a template) followed by its name in the work directory.
type Outputs struct {
	Endpoint string   `json:"endpoint"`
	Bucket   string   `json:"bucket"`
	Path     string   `json:"path"`
	Patterns []string `json:"patterns"`
}

// DefaultOutputPath keeps each job's outputs apart.
const DefaultOutputPath = "{task}/{job}/"

// Limits on data fields.
const (
	maxInputFiles = 1_000_000
	maxPathLen    = 1024
	maxPatterns   = 64
)

var (
	endpointRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	placeholderRe = regexp.MustCompile(`\{[^{}]*\}`)
	placeholders  = map[string]bool{"{task}": true, "{job}": true, "{index}": true, "{attempt}": true}
)

// OutputKey expands the output path template for one job attempt and
// appends name (the file's path relative to the work directory).
func (o *Outputs) OutputKey(taskID, jobID int64, index, attempt int, name string) string {
	r := strings.NewReplacer("{task}", fmt.Sprint(taskID), "{job}", fmt.Sprint(jobID),
		"{index}", fmt.Sprint(index), "{attempt}", fmt.Sprint(attempt))
	return r.Replace(o.Path) + name
}

// inputs accepts {endpoint, bucket, prefix} or a list whose items are
// "ENDPOINT:BUCKET/PATH" strings or {endpoint, bucket, path} mappings.
func (d *decoder) inputs(n *yaml.Node, dst **Inputs) {
	n = deref(n)
	if d.err != nil || absent(n) {
		return
	}
	in := &Inputs{}
	switch n.Kind {
	case yaml.MappingNode:
		d.mapping("inputs", n, map[string]*string{"endpoint": &in.Endpoint, "bucket": &in.Bucket, "prefix": &in.Prefix})
	case yaml.SequenceNode:
		for i, e := range n.Content {
			field := fmt.Sprintf("inputs[%d]", i)
			var f FileRef
			switch e = deref(e); e.Kind {
			case yaml.ScalarNode:
				ep, rest, ok1 := strings.Cut(e.Value, ":")
				b, p, ok2 := strings.Cut(rest, "/")
				if !ok1 || !ok2 {
					d.fail(field, `must be "ENDPOINT:BUCKET/PATH" or {endpoint, bucket, path}, got %s`, quote(e.Value))
					return
				}
				f = FileRef{ep, b, p}
			case yaml.MappingNode:
				d.mapping(field, e, map[string]*string{"endpoint": &f.Endpoint, "bucket": &f.Bucket, "path": &f.Path})
			default:
				d.fail(field, "must be a string or a mapping, got %s", describe(e))
			}
			in.Files = append(in.Files, f)
		}
		if len(in.Files) == 0 {
			d.fail("inputs", "must not be an empty list")
		}
	default:
		d.fail("inputs", "must be a dataset {endpoint, bucket, prefix} or a list of files, got %s", describe(n))
	}
	if d.err == nil {
		*dst = in
	}
}

// outputs accepts {endpoint, bucket, path, patterns}.
func (d *decoder) outputs(n *yaml.Node, dst **Outputs) {
	n = deref(n)
	if d.err != nil || absent(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail("outputs", "must be a mapping {endpoint, bucket, path, patterns}, got %s", describe(n))
		return
	}
	o := &Outputs{Path: DefaultOutputPath}
	var patterns yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if deref(n.Content[i]).Value == "patterns" {
			patterns = *n.Content[i+1]
		}
	}
	d.mapping("outputs", n, map[string]*string{"endpoint": &o.Endpoint, "bucket": &o.Bucket, "path": &o.Path, "patterns": nil})
	p := deref(&patterns)
	switch {
	case d.err != nil:
		return
	case absent(p):
		d.fail("outputs.patterns", `required: a list of file patterns such as ["*.root"]`)
	case p.Kind == yaml.ScalarNode:
		o.Patterns = []string{p.Value}
	case p.Kind == yaml.SequenceNode:
		for i, e := range p.Content {
			if e = deref(e); e.Kind != yaml.ScalarNode || absent(e) {
				d.fail(fmt.Sprintf("outputs.patterns[%d]", i), "must be a string, got %s", describe(e))
				return
			}
			o.Patterns = append(o.Patterns, e.Value)
		}
	default:
		d.fail("outputs.patterns", "must be a list of strings, got %s", describe(p))
	}
	if d.err == nil {
		*dst = o
	}
}

// mapping decodes a mapping of string fields; a nil destination is a key
// handled by the caller. Unknown and repeated keys are errors.
func (d *decoder) mapping(field string, n *yaml.Node, fields map[string]*string) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content) && d.err == nil; i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		dst, known := fields[k.Value]
		switch {
		case !known:
			names := make([]string, 0, len(fields))
			for name := range fields {
				names = append(names, name)
			}
			msg := fmt.Sprintf("unknown field %q (line %d)", k.Value, k.Line)
			if s := suggest(k.Value, names); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			d.fail(field, "%s", msg)
		case seen[k.Value]:
			d.fail(field+"."+k.Value, "set twice (line %d)", k.Line)
		case dst != nil:
			d.str(field+"."+k.Value, v, dst)
		}
		seen[k.Value] = true
	}
}

// validateData checks the data fields (Parse refuses jobs beside inputs:
// the files and files_per_job decide the number of jobs).
func (s *Spec) validateData() error {
	if s.Inputs == nil {
		switch {
		case s.FilesPerJob != 0:
			return &FieldError{"files_per_job", "needs inputs to split"}
		case s.Stream:
			return &FieldError{"stream", "needs inputs to stream"}
		}
	} else {
		if err := checkRange("files_per_job", s.FilesPerJob, 1, maxInputFiles); err != nil {
			return err
		}
		if err := s.Inputs.validate(); err != nil {
			return err
		}
	}
	if s.Outputs != nil {
		return s.Outputs.validate()
	}
	return nil
}

func (in *Inputs) validate() error {
	if in.Dataset() {
		if err := checkRef("inputs", in.Endpoint, in.Bucket); err != nil {
			return err
		}
		return checkText("inputs.prefix", in.Prefix, maxPathLen, true)
	}
	if in.Endpoint != "" || in.Bucket != "" || in.Prefix != "" {
		return &FieldError{"inputs", "give either a dataset {endpoint, bucket, prefix} or a list of files, not both"}
	}
	if len(in.Files) > maxInputFiles {
		return &FieldError{"inputs", fmt.Sprintf("at most %d files, got %d", maxInputFiles, len(in.Files))}
	}
	for i, f := range in.Files {
		field := fmt.Sprintf("inputs[%d]", i)
		if err := checkRef(field, f.Endpoint, f.Bucket); err != nil {
			return err
		}
		if err := checkObjectPath(field+".path", f.Path); err != nil {
			return err
		}
	}
	return nil
}

func (o *Outputs) validate() error {
	if err := checkRef("outputs", o.Endpoint, o.Bucket); err != nil {
		return err
	}
	if err := checkText("outputs.path", o.Path, maxPathLen, true); err != nil {
		return err
	}
	for _, ph := range placeholderRe.FindAllString(o.Path, -1) {
		if !placeholders[ph] {
			return &FieldError{"outputs.path", fmt.Sprintf("unknown placeholder %s: use {task}, {job}, {index} or {attempt}", ph)}
		}
	}
	if strings.HasPrefix(o.Path, "/") || strings.Contains("/"+o.Path, "/../") {
		return &FieldError{"outputs.path", fmt.Sprintf("must be a relative object path without '..', got %s", quote(o.Path))}
	}
	if len(o.Patterns) == 0 || len(o.Patterns) > maxPatterns {
		return &FieldError{"outputs.patterns", fmt.Sprintf("must list 1 to %d patterns", maxPatterns)}
	}
	for i, p := range o.Patterns {
		field := fmt.Sprintf("outputs.patterns[%d]", i)
		if _, err := filepath.Match(p, ""); err != nil || p == "" {
			return &FieldError{field, fmt.Sprintf("invalid pattern %s", quote(p))}
		}
		if filepath.IsAbs(p) || strings.HasPrefix(filepath.Clean(p), "..") {
			return &FieldError{field, fmt.Sprintf("must match files inside the work directory, got %s", quote(p))}
		}
	}
	return nil
}

func checkRef(field, endpoint, bucket string) error {
	if !endpointRe.MatchString(endpoint) {
		return &FieldError{field + ".endpoint", fmt.Sprintf("must name a storage endpoint of the dispatcher, got %s", quote(endpoint))}
	}
	if bucket == "" || strings.ContainsAny(bucket, "/\x00") {
		return &FieldError{field + ".bucket", fmt.Sprintf("must be a bucket name without '/', got %s", quote(bucket))}
	}
	return checkText(field+".bucket", bucket, 255, false)
}

func checkObjectPath(field, p string) error {
	if p == "" || strings.HasSuffix(p, "/") {
		return &FieldError{field, fmt.Sprintf("must name a file, got %s", quote(p))}
	}
	return checkText(field, p, maxPathLen, true)
}
