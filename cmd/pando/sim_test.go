package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runSim(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newSimCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestSimGenerateAndReplay(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace.csv")
	if _, err := runSim(t, "generate", "--jobs", "500", "--shares", "prod/mc=50,user=50", "--seed", "7", "--out", trace); err != nil {
		t.Fatal(err)
	}
	shares := filepath.Join(dir, "shares.yaml")
	queues := filepath.Join(dir, "queues.yaml")
	os.WriteFile(shares, []byte("- {path: prod, target: 60}\n- {path: prod/mc, target: 100}\n- {path: user, target: 40}\n"), 0o644)
	os.WriteFile(queues, []byte("- name: default\n  agents: [{count: 4, cores: 8}]\n"), 0o644)

	out, err := runSim(t, "--trace", trace, "--queues", queues, "--shares", shares, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, k := range []string{"shares", "utilisation", "makespan_s", "jobs", "jobs_per_min_wall"} {
		if _, ok := res[k]; !ok {
			t.Errorf("no %q in %s", k, out)
		}
	}
	if res["jobs"] != 500.0 || res["ran"] != 500.0 {
		t.Errorf("jobs %v, ran %v; want 500", res["jobs"], res["ran"])
	}
	list, _ := res["shares"].([]any)
	if len(list) == 0 {
		t.Fatalf("shares: %v", res["shares"])
	}
	for _, s := range list {
		m := s.(map[string]any)
		for _, k := range []string{"path", "target", "achieved", "wait_p50_s", "wait_p95_s", "jobs"} {
			if _, ok := m[k]; !ok {
				t.Errorf("share %v has no %q", m["path"], k)
			}
		}
	}

	csv, _ := os.ReadFile(trace)
	cmd := newSimCmd()
	var buf bytes.Buffer
	cmd.SetIn(bytes.NewReader(csv))
	cmd.SetOut(&buf)
	cmd.SetArgs([]string{"--trace", "-"})
	err = cmd.Execute()
	table := buf.String()
	if err != nil || !strings.Contains(table, "SHARE") || !strings.Contains(table, "prod/mc") {
		t.Errorf("table (%v):\n%s", err, table)
	}
}

func TestSimErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("submit_s,runtime_s\n0,ten\n"), 0o644)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, `required flag(s) "trace" not set`},
		{[]string{"--trace", bad}, "bad.csv:2:3 (runtime_s)"},
		{[]string{"--trace", bad, "-o", "yaml"}, "want table or json"},
		{[]string{"generate", "--shares", "a=x"}, "positive number"},
		{[]string{"generate", "--arrival", "soon"}, "arrival"},
	}
	for _, tt := range tests {
		if _, err := runSim(t, tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want %q", tt.args, err, tt.want)
		}
	}
}
