package task

import (
	"encoding/json"
	"reflect"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte("command: echo hi\n"))
	f.Add([]byte(`{"command": ["a"], "jobs": 3, "env": {"A": "b"}}`))
	f.Add([]byte("command: &c [a]\nresources: {gpus: 1, gpu_model: 'A.*', gpu_memory: 1.5GB, walltime: 1-00:00:00}\n"))
	f.Add([]byte("command: [a]\n---\n"))
	f.Add([]byte("command: [a]\ninputs: {endpoint: lake, bucket: data, prefix: run1/}\nfiles_per_job: 4\noutputs: {endpoint: lake, bucket: results, path: \"{task}/{job}/\", patterns: [\"*.txt\"]}\n"))
	f.Add([]byte("command: [a]\ninputs: [\"lake:data/a\", {endpoint: t, bucket: b, path: c}]\nstream: true\n"))
	for _, in := range jsonCases {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A JSON object means what it means to the YAML parser.
		if root, ok := jsonDocument(data); ok {
			compareWithYAML(t, string(data), root)
		}
		s, err := Parse(data)
		if err != nil {
			if s != nil {
				t.Fatalf("spec %+v with error %v", s, err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted spec does not validate: %v\n%+v", err, s)
		}
		// The store keeps the JSON form; it must come back the same.
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back Spec
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*s, back) {
			t.Fatalf("JSON round trip changed the spec:\n%+v\n%+v", *s, back)
		}
		FormatSize(s.Resources.MemoryBytes)
	})
}
