package harvester

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/pando-wms/pando/plugins/batch/local"
)

const example = `dispatcher: 127.0.0.1:7443
token_file: harvester.token
ca_file: ca.pem
queues:
  - name: hpc
    batch: slurm            # or local, pbs, htcondor
    max_queued: 4
    max_running: 16
    worker: {cores: 2, memory: 4GiB, walltime: 1h}
`

func load(t *testing.T, text string) (*Config, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "h.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return LoadConfig(p)
}

// The example file is accepted with the defaults filled in.
func TestConfigExample(t *testing.T) {
	c, err := load(t, example)
	if err != nil {
		t.Fatal(err)
	}
	q := c.Queues[0]
	if c.Interval != 10*time.Second || q.RampUp != 4 || q.IdleExit != 2*time.Minute ||
		q.Worker.memory != 4<<30 || q.Worker.walltime != time.Hour {
		t.Fatalf("config %+v queue %+v", c, q)
	}
}

func TestConfigRefuses(t *testing.T) {
	for _, tc := range []struct{ name, edit, want string }{
		{"unknown key", "queues:\n  - name: hpc\n    bach: slurm\n", "field bach not found"},
		{"no dispatcher", "dispatcher: ''\n", "dispatcher: required"},
		{"no batch", "batch: slurm", "batch: required"},
		{"bad memory", "memory: 4GiB", "worker.memory"},
		{"short walltime", "walltime: 1h", "worker.walltime"},
		{"no running", "max_running: 16", "max_running"},
		{"twice", "", "listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := example
			switch tc.name {
			case "unknown key":
				text = strings.Split(example, "queues:")[0] + tc.edit
			case "no dispatcher":
				text = tc.edit + strings.SplitN(example, "\n", 2)[1]
			case "no batch":
				text = strings.Replace(example, tc.edit, "batch: ''", 1)
			case "bad memory":
				text = strings.Replace(example, tc.edit, "memory: lots", 1)
			case "short walltime":
				text = strings.Replace(example, tc.edit, "walltime: 30s", 1)
			case "no running":
				text = strings.Replace(example, tc.edit, "max_running: 0", 1)
			case "twice":
				q := example[strings.Index(example, "  - name"):]
				text = example + q
			}
			_, err := load(t, text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
