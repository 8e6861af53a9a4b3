package test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// benchJSON runs a pando bench command with -o json and decodes its output.
func benchJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin(t), append(append([]string{"bench"}, args...), "-o", "json")...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 10 * time.Second // its dispatcher holds stderr too
	if err := cmd.Run(); err != nil {
		t.Fatalf("pando bench %v: %v\nstderr: %s", args, err, errb.String())
	}
	if err := json.Unmarshal(out.Bytes(), v); err != nil {
		t.Fatalf("pando bench %v: %v\nstdout: %s", args, err, out.String())
	}
}

// The benchmarks' own plumbing: a dispatcher process of its own, pinned
// to a CPU, its CPU time read back; a heap profile of the agents bench.
// Numbers are not judged here (BENCHMARKS.md records them), only that every
// job ran and what is reported was measured.
func TestBenchPlumbing(t *testing.T) {
	var d struct {
		Jobs       int     `json:"jobs"`
		JobsPerSec float64 `json:"jobs_per_sec"`
		Errors     int     `json:"errors"`
		Mode       string  `json:"dispatcher"`
		CPUs       string  `json:"dispatcher_cpus"`
		CPUSeconds float64 `json:"dispatcher_cpu_seconds"`
		CPUPerJob  float64 `json:"dispatcher_cpu_us_per_job"`
	}
	benchJSON(t, &d, "dispatch", "--agents", "20", "--jobs", "2000", "--dispatcher-cpus", "0")
	if d.Jobs != 2000 || d.Errors != 0 || d.JobsPerSec <= 0 || d.Mode != "process" || d.CPUs != "0" {
		t.Fatalf("bench dispatch: %+v", d)
	}
	// 2,000 jobs through the durable lifecycle cannot take less than a
	// few milliseconds of the dispatcher's CPU; zero would mean it was
	// not read from the dispatcher's process.
	if d.CPUSeconds <= 0 || d.CPUPerJob <= 0 {
		t.Fatalf("bench dispatch: no CPU time read from the dispatcher process: %+v", d)
	}

	d.CPUSeconds, d.CPUs = 0, ""
	benchJSON(t, &d, "dispatch", "--agents", "20", "--jobs", "500", "--in-process")
	if d.Jobs != 500 || d.Errors != 0 || d.Mode != "in-process" || d.CPUSeconds != 0 {
		t.Fatalf("bench dispatch --in-process: %+v", d)
	}

	var l struct {
		P50        float64 `json:"p50_ms"`
		CPUPerJob  float64 `json:"dispatcher_cpu_us_per_job"`
		TaskFormat string  `json:"task_format"`
		Steps      []struct {
			Jobs int `json:"jobs"`
		} `json:"steps"`
	}
	benchJSON(t, &l, "latency", "--agents", "20", "--rate", "200", "--duration", "1s", "--warmup", "0s", "--task-format", "json")
	if len(l.Steps) != 1 || l.Steps[0].Jobs == 0 || l.P50 <= 0 || l.CPUPerJob <= 0 || l.TaskFormat != "json" {
		t.Fatalf("bench latency: %+v", l)
	}

	prof := filepath.Join(t.TempDir(), "heap.prof")
	var a struct {
		Connected int     `json:"connected"`
		Lost      int     `json:"lost"`
		PerAgent  float64 `json:"rss_per_agent_kib"`
	}
	benchJSON(t, &a, "agents", "--agents", "50", "--duration", "2s", "--heap-profile", prof)
	if a.Connected != 50 || a.Lost != 0 {
		t.Fatalf("bench agents: %+v", a)
	}
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Fatalf("bench agents --heap-profile: %v", err)
	}
}
