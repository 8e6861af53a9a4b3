package task

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseData(t *testing.T) {
	s, err := Parse([]byte(`command: [a]
inputs: {endpoint: lake, bucket: data, prefix: run1/}
files_per_job: 4
outputs: {endpoint: lake, bucket: results, path: "{task}/{job}/", patterns: ["*.txt"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Inputs{Endpoint: "lake", Bucket: "data", Prefix: "run1/"}
	if !reflect.DeepEqual(s.Inputs, want) || s.FilesPerJob != 4 || !s.Inputs.Dataset() {
		t.Errorf("inputs %+v files_per_job %d", s.Inputs, s.FilesPerJob)
	}
	wantOut := &Outputs{Endpoint: "lake", Bucket: "results", Path: "{task}/{job}/", Patterns: []string{"*.txt"}}
	if !reflect.DeepEqual(s.Outputs, wantOut) {
		t.Errorf("outputs %+v", s.Outputs)
	}
	if got := s.Outputs.OutputKey(7, 9, 1, 2, "sub/a.txt"); got != "7/9/sub/a.txt" {
		t.Errorf("output key %q", got)
	}
	if s.JobsFor(40) != 10 || s.JobsFor(41) != 11 {
		t.Errorf("JobsFor: %d %d", s.JobsFor(40), s.JobsFor(41))
	}

	s, err = Parse([]byte(`command: [a]
inputs: ["lake:data/a/x.root", {endpoint: tape1, bucket: raw, path: y.root}, "lake:data/z"]
files_per_job: 2
stream: true
outputs: {endpoint: lake, bucket: out, patterns: "*.log"}
`))
	if err != nil {
		t.Fatal(err)
	}
	files := []FileRef{{"lake", "data", "a/x.root"}, {"tape1", "raw", "y.root"}, {"lake", "data", "z"}}
	if !reflect.DeepEqual(s.Inputs.Files, files) || s.Jobs != 2 || !s.Stream {
		t.Errorf("files %+v jobs %d stream %v", s.Inputs.Files, s.Jobs, s.Stream)
	}
	if s.Outputs.Path != DefaultOutputPath || !reflect.DeepEqual(s.Outputs.Patterns, []string{"*.log"}) {
		t.Errorf("outputs %+v", s.Outputs)
	}
	s, err = Parse([]byte("command: [a]\ninputs: {endpoint: lake, bucket: data}\n"))
	if err != nil || s.FilesPerJob != 1 {
		t.Errorf("default files_per_job: %v %v", s, err)
	}
}

func TestParseDataRefuses(t *testing.T) {
	tests := []struct{ name, in, field, want string }{
		{"jobs with inputs", "jobs: 3\ninputs: {endpoint: e, bucket: b}", "jobs", "leave it out"},
		{"files_per_job alone", "files_per_job: 2", "files_per_job", "needs inputs"},
		{"stream alone", "stream: true", "stream", "needs inputs"},
		{"files_per_job zero", "inputs: {endpoint: e, bucket: b}\nfiles_per_job: 0", "files_per_job", "at least 1"},
		{"inputs scalar", "inputs: lake", "inputs", "must be a dataset"},
		{"inputs empty list", "inputs: []", "inputs", "empty list"},
		{"inputs bad string", "inputs: [lake-data]", "inputs[0]", "ENDPOINT:BUCKET/PATH"},
		{"inputs unknown key", "inputs: {endpoint: e, bucket: b, prefx: p}", "inputs", `did you mean "prefix"`},
		{"inputs no endpoint", "inputs: {bucket: b}", "inputs.endpoint", "storage endpoint"},
		{"inputs no bucket", "inputs: {endpoint: e}", "inputs.bucket", "bucket name"},
		{"input dir", `inputs: ["e:b/dir/"]`, "inputs[0].path", "must name a file"},
		{"input twice", "inputs: [{endpoint: e, endpoint: f, bucket: b, path: p}]", "inputs[0].endpoint", "set twice"},
		{"outputs list", "outputs: [a]", "outputs", "must be a mapping"},
		{"outputs no patterns", "outputs: {endpoint: e, bucket: b}", "outputs.patterns", "required"},
		{"outputs placeholder", "outputs: {endpoint: e, bucket: b, path: '{user}/', patterns: [x]}", "outputs.path", "unknown placeholder {user}"},
		{"outputs escape", "outputs: {endpoint: e, bucket: b, path: '../x/', patterns: [x]}", "outputs.path", "without '..'"},
		{"outputs bad pattern", "outputs: {endpoint: e, bucket: b, patterns: ['[']}", "outputs.patterns[0]", "invalid pattern"},
		{"outputs outside", "outputs: {endpoint: e, bucket: b, patterns: ['../*']}", "outputs.patterns[0]", "inside the work directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte("command: [a]\n" + tt.in + "\n"))
			if err == nil {
				t.Fatal("accepted")
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q (field %q), want field %q containing %q", err, fieldOf(fe), tt.field, tt.want)
			}
		})
	}
}

func fieldOf(fe *FieldError) string {
	if fe == nil {
		return "-"
	}
	return fe.Field
}
