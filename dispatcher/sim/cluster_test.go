package sim

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/queue"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadQueues(t *testing.T) {
	path := writeFile(t, `
- name: cern
  kind: hpc
  max_cores: 4000
  shares: [prod]
  labels: {site: CERN}
  agents:
    - count: 500
      cores: 8
      memory: 16GiB
      lifetime: 48h
    - count: 2
      cores: 32
      gpus: 4
      gpu_model: NVIDIA A100-SXM4-40GB
      gpu_memory: 40GiB
      walltime: "2-00:00:00"
- name: t2
  status: draining
`)
	got, err := ReadQueues(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Queue{{
		Queue: queue.Queue{Name: "cern", Kind: queue.HPC, Status: queue.Online, MaxCores: 4000,
			Shares: []string{"prod"}, Labels: map[string]string{"site": "CERN"}},
		Agents: []Agents{
			{Count: 500, Cores: 8, Memory: 16 << 30, Lifetime: Duration(48 * time.Hour)},
			{Count: 2, Cores: 32, Memory: 64 << 30, GPUs: 4, GPUModel: "NVIDIA A100-SXM4-40GB", GPUMemory: 40 << 30,
				Lifetime: Duration(48 * time.Hour), Walltime: Duration(48 * time.Hour)},
		},
	}, {
		Queue: queue.Queue{Name: "t2", Kind: queue.Grid, Status: queue.Draining},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestReadQueuesBad(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"unknown key", "- name: a\n  colour: red\n", "field colour not found"},
		{"unknown agent key", "- name: a\n  agents: [{count: 1, cores: 1, speed: 3}]\n", "field speed not found"},
		{"bad name", "- name: a b\n", "name \"a b\""},
		{"twice", "- name: a\n- name: a\n", "queue a appears twice"},
		{"no queues", "", "no queues"},
		{"no cores", "- name: a\n  agents: [{count: 1}]\n", "cores 0"},
		{"negative count", "- name: a\n  agents: [{count: -1, cores: 1}]\n", "count -1"},
		{"bad memory", "- name: a\n  agents: [{count: 1, cores: 1, memory: lots}]\n", "line 2: invalid size"},
		{"bad lifetime", "- name: a\n  agents: [{count: 1, cores: 1, lifetime: soon}]\n", "invalid duration"},
		{"bad status", "- name: a\n  status: sleeping\n", "status \"sleeping\""},
		{"not a list", "name: a\n", "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadQueues(writeFile(t, tt.text))
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want ErrConfig containing %q", err, tt.want)
			}
		})
	}
}

func TestReadShares(t *testing.T) {
	got, err := ReadShares(writeFile(t, "- {path: prod, target: 70}\n- path: prod/mc\n  target: 60\n- {path: user, target: 30}\n"))
	want := []ShareTarget{{"prod", 70}, {"prod/mc", 60}, {"user", 30}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	for text, msg := range map[string]string{
		"- {path: a, target: 70}\n- {path: b, target: 40}\n": "over 100%",
		"- {path: a, target: 0}\n":                           "must be above 0",
		"- {path: /a, target: 10}\n":                         "invalid share",
		"- {path: a, target: 10, colour: red}\n":             "field colour not found",
	} {
		if _, err := ReadShares(writeFile(t, text)); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: error %v, want ErrConfig containing %q", text, err, msg)
		}
	}
}
