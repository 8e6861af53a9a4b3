package sim

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestReadGood(t *testing.T) {
	want := []Row{
		{Submit: 0, Runtime: 10 * time.Second, Walltime: time.Hour, Memory: 512 << 20, Share: "default",
			Jobs: 1, Cores: 1},
		{Submit: 1500 * time.Millisecond, Runtime: 2 * time.Hour, Walltime: 3 * time.Hour, Memory: 4 << 30,
			Share: "prod/mc", Queue: "cern", GPUModel: "A100|H100", Jobs: 100, Cores: 8, GPUs: 2, Priority: -5},
		// No walltime and a runtime over an hour: the walltime is the runtime.
		{Submit: 7 * time.Second, Runtime: 5400 * time.Second, Walltime: 5400 * time.Second, Memory: 512 << 20,
			Share: "default", Jobs: 1, Cores: 1},
	}
	tests := []struct {
		name, file, text string
		lines            []int32
	}{{
		name: "csv, all columns in another order, spaces, a comment", file: "t.csv", lines: []int32{2, 3, 5},
		text: "runtime_s, submit_s ,jobs,cores,memory,gpus,gpu_model,walltime,share,priority,queue\n" +
			"10,0,,,,,,,,,\n" +
			"7200, 1.5, 100, 8, 4GiB, 2, A100|H100, 3h, prod/mc, -5, cern\n" +
			"# a comment\n" +
			"5400,7,,,,,,,,,\n",
	}, {
		name: "csv sniffed, byte order mark", file: "-", lines: []int32{2, 3, 4},
		text: "\ufeffsubmit_s,runtime_s,jobs,cores,memory,gpus,gpu_model,walltime,share,priority,queue\n" +
			"0,10,,,,,,,,,\n1.5,7200,100,8,4294967296,2,\"A100|H100\",10800,prod/mc,-5,cern\n7,5400,,,,,,,,,\n",
	}, {
		name: "json array", file: "t.json", lines: []int32{2, 3, 5},
		text: "[\n{\"submit_s\": 0, \"runtime_s\": 10},\n" +
			"{\"submit_s\": 1.5, \"runtime_s\": \"7200\", \"jobs\": 100, \"cores\": 8, \"memory\": \"4GiB\", \"gpus\": 2,\n" +
			" \"gpu_model\": \"A100|H100\", \"walltime\": \"3h\", \"share\": \"prod/mc\", \"priority\": -5, \"queue\": \"cern\"},\n" +
			"{\"submit_s\": 7, \"runtime_s\": 5400, \"queue\": null}\n]\n",
	}, {
		name: "json lines, sniffed", file: "trace", lines: []int32{2, 3, 4},
		text: "\n{\"submit_s\": 0, \"runtime_s\": 10}\n" +
			"{\"submit_s\": 1.5, \"runtime_s\": 7200, \"jobs\": 100, \"cores\": 8, \"memory\": 4294967296, \"gpus\": 2, \"gpu_model\": \"A100|H100\", \"walltime\": 10800, \"share\": \"prod/mc\", \"priority\": -5, \"queue\": \"cern\"}\n" +
			"{\"submit_s\": 7, \"runtime_s\": 5400}\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Read(strings.NewReader(tt.text), tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d rows, want %d", len(got), len(want))
			}
			for i := range got {
				w := want[i]
				w.Line = tt.lines[i]
				if !reflect.DeepEqual(got[i], w) {
					t.Errorf("row %d:\n got %+v\nwant %+v", i, got[i], w)
				}
			}
		})
	}
}

func TestReadBad(t *testing.T) {
	const head = "submit_s,runtime_s,cores\n"
	tests := []struct {
		name, file, text, want string
	}{
		{"empty", "t.csv", "", "t.csv: empty"},
		{"unknown column", "t.csv", "submit_s,runtime_s,colour\n", "t.csv:1: column 3: unknown column \"colour\""},
		{"column twice", "t.csv", "submit_s,runtime_s,submit_s\n", "\"submit_s\" appears twice"},
		{"no runtime column", "t.csv", "submit_s,cores\n", "no runtime_s column"},
		{"bad cores", "t.csv", head + "0,10,1\n0,10,x\n", "t.csv:3:6 (cores): \"x\" is not a whole number"},
		{"zero cores", "t.csv", head + "0,10,0\n", "t.csv:2:6 (cores)"},
		{"negative submit", "t.csv", head + "-1,10,1\n", "t.csv:2:1 (submit_s)"},
		{"empty runtime", "t.csv", head + "0,,1\n", "t.csv:2:3 (runtime_s): empty"},
		{"too few cells", "t.csv", head + "0,10\n", "t.csv:2:"},
		{"bad memory", "t.csv", "submit_s,runtime_s,memory\n0,1,lots\n", "t.csv:2:5 (memory): invalid size"},
		{"bad walltime", "t.csv", "submit_s,runtime_s,walltime\n0,1,soon\n", "(walltime): invalid duration"},
		{"bad share", "t.csv", "submit_s,runtime_s,share\n0,1,/prod\n", "t.csv:2:5 (share)"},
		{"bad queue", "t.csv", "submit_s,runtime_s,queue\n0,1,a b\n", "t.csv:2:5 (queue)"},
		{"bad gpu model", "t.csv", "submit_s,runtime_s,gpu_model\n0,1,A100(\n", "(gpu_model): gpu_model \"A100(\" is not a regular expression"},
		{"bad quote", "t.csv", head + "0,10,\"1\n", "t.csv:2:"},
		{"json unknown key", "t.json", "[\n  {\"submit_s\": 0, \"runtime_s\": 1},\n  {\"submit_s\": 0, \"runtime_s\": 1, \"colour\": 1}\n]", "t.json:3:35 (colour): unknown key"},
		{"json bad value", "t.json", "[{\"submit_s\": 0,\n \"runtime_s\": 1, \"cores\": \"many\"}]", "t.json:2:18 (cores): \"many\" is not a whole number"},
		{"json bool", "t.jsonl", "{\"submit_s\": 0, \"runtime_s\": true}", "t.jsonl:1:17 (runtime_s): true: want a number or a string"},
		{"json missing required", "t.jsonl", "{\"submit_s\": 0}\n{\"runtime_s\": 3}\n", "t.jsonl:1:1 (runtime_s): missing"},
		{"json not an object", "t.json", "[1]", "t.json:1:2: want an object"},
		{"json syntax", "t.jsonl", "{\"submit_s\": 0, \"runtime_s\": 1}\n{\"submit_s\": 0,, }\n", "t.jsonl:2:"},
		{"json truncated", "t.json", "[{\"submit_s\": 0, \"runtime_s\": 1}", "t.json: unexpected end"},
		{"json after array", "t.json", "[]\n[]", "data after the array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tt.text), tt.file)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !errors.Is(err, ErrTrace) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want one containing %q (and ErrTrace)", err, tt.want)
			}
		})
	}
}

func TestWriteCSVRoundTrip(t *testing.T) {
	rows := []Row{
		{Submit: 1234567 * time.Microsecond, Runtime: 61 * time.Second, Walltime: 2 * time.Minute, Memory: 3 << 30,
			Share: "prod/mc", Queue: "cern", GPUModel: `A100,"x"`, Jobs: 3, Cores: 4, GPUs: 1, Priority: 7, Line: 2},
		{Submit: 2 * time.Second, Runtime: 1500 * time.Millisecond, Walltime: time.Hour, Memory: 1, Share: "default",
			Jobs: 1, Cores: 1, Line: 3},
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, rows); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCSV(&buf, "t.csv")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rows) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, rows)
	}
}
