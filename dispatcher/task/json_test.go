package task

import (
	"go.yaml.in/yaml/v3"
	"reflect"
	"testing"
)

// jsonCases are JSON task files, good and bad, laid out over several lines
// so that the line numbers in errors are compared too.
var jsonCases = []string{
	`{"command": ["a"]}`,
	"{\n  \"name\": \"j\",\n  \"command\": [\"/bin/sh\", \"-c\", \"echo\"],\n  \"jobs\": 3,\n  \"env\": {\"A\": \"b\", \"N\": 3, \"E\": \"\"},\n  \"resources\": {\"cores\": 2, \"memory\": \"1GiB\", \"walltime\": \"1h\", \"gpus\": 1, \"gpu_model\": \"A100\"},\n  \"priority\": -5, \"max_attempts\": 4, \"queue\": \"q\", \"network\": true, \"stream\": false\n}",
	`{"command": ["a"], "inputs": {"endpoint": "lake", "bucket": "data", "prefix": "run1/"}, "files_per_job": 4, "outputs": {"endpoint": "lake", "bucket": "results", "path": "{task}/{job}/", "patterns": ["*.txt"]}}`,
	`{"command": ["a"], "inputs": ["lake:data/a", {"endpoint": "t", "bucket": "b", "path": "c"}]}`,
	`{"command": ["a"], "resources": {"memory": 1000, "walltime": "1-00:00:00", "gpu_memory": "1.5GB"}}`,
	`{"command": "echo hi"}`,
	`{"command": ["a"], "jobs": null, "name": null}`,
	`{"command": ["a"], "name": "Z\u00e4hlung \u03bb"}`,
	// Refused, with the same message on both paths.
	`{}`,
	`{"name": "x"}`,
	"{\"name\": \"x\",\n \"comand\": [\"a\"]}",
	"{\"command\": [\"a\"],\n \"resources\": {\n  \"cpus\": 4}}",
	"{\"command\": [\"a\"],\n \"jobs\": 1,\n \"jobs\": 2}",
	`{"command": ["a"], "env": {"A": "b", "A": "c"}}`,
	`{"command": ["a"], "env": {"A": null}}`,
	`{"command": ["a"], "env": {"A": ["b"]}}`,
	`{"command": ["a"], "env": ["A=b"]}`,
	`{"command": ["a"], "resources": 4}`,
	`{"command": ["a"], "resources": [4]}`,
	`{"command": ["a", ["b"]]}`,
	`{"command": ["a", null]}`,
	`{"command": ["a", "b\u0000c"]}`,
	`{"command": {"a": "b"}}`,
	`{"command": []}`,
	`{"command": ["a"], "jobs": 1.5}`,
	`{"command": ["a"], "jobs": 1e3}`,
	`{"command": ["a"], "jobs": "3"}`,
	`{"command": ["a"], "jobs": 99999999999999999999}`,
	`{"command": ["a"], "jobs": true}`,
	`{"command": ["a"], "network": "yes"}`,
	`{"command": ["a"], "network": 1}`,
	`{"command": ["a"], "max_attempts": 0}`,
	`{"command": ["a"], "resources": {"memory": "12XB"}}`,
	`{"command": ["a"], "resources": {"memory": -1}}`,
	`{"command": ["a"], "resources": {"walltime": 0}}`,
	`{"command": ["a"], "inputs": {"endpoint": "lake"}, "jobs": 2}`,
	`{"command": ["a"], "outputs": {"endpoint": "lake", "bucket": "b", "path": "x", "patterns": []}}`,
	`{"command": ["a"], "queue": "a/b"}`,
}

// A JSON object parses to the same spec, or the same error, as it does
// through the YAML parser.
func TestJSONMatchesYAML(t *testing.T) {
	for _, in := range jsonCases {
		root, ok := jsonDocument([]byte(in))
		if !ok {
			t.Errorf("%s: not taken as JSON", in)
			continue
		}
		compareWithYAML(t, in, root)
	}
}

func compareWithYAML(t *testing.T, in string, root *yaml.Node) {
	t.Helper()
	got, gotErr := parseNode(root)
	yroot, err := document([]byte(in))
	var want *Spec
	var wantErr error
	if err != nil {
		wantErr = err
	} else {
		want, wantErr = parseNode(yroot)
	}
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Errorf("%s:\nJSON: %+v, %v\nYAML: %+v, %v", in, got, gotErr, want, wantErr)
	case gotErr != nil && gotErr.Error() != wantErr.Error():
		t.Errorf("%s:\nJSON error: %v\nYAML error: %v", in, gotErr, wantErr)
	case gotErr == nil && !reflect.DeepEqual(got, want):
		t.Errorf("%s:\nJSON: %+v\nYAML: %+v", in, got, want)
	}
}

// What is not one JSON object goes through the YAML parser.
func TestJSONFallsBack(t *testing.T) {
	for _, in := range []string{
		"command: [a]",
		"{command: [a]}", // a YAML flow mapping
		`["a"]`,
		`{"command": ["a"]} {"command": ["b"]}`,
		`{"command": ["a"]}` + "\n---\n",
		`{"command": ["a"],}`,
		`{"command": ["a"]`,
		"",
	} {
		if _, ok := jsonDocument([]byte(in)); ok {
			t.Errorf("%q taken as JSON", in)
		}
	}
	if _, err := Parse([]byte(`{"command": ["a"]} {"command": ["b"]}`)); err == nil {
		t.Error("two JSON objects accepted")
	}
}

// BenchmarkParseJSON parses the small task file of BenchmarkParse as JSON.
func BenchmarkParseJSON(b *testing.B) {
	data := []byte(`{"name": "latency", "command": ["/bin/true"], "resources": {"cores": 1, "memory": "64MiB", "walltime": "1m"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
