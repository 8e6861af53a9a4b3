package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pando-wms/pando/plugins/batch/slurm/slurmtest"
)

// apiWorker is the part of `pando workers -o json` the tests read.
type apiWorker struct {
	Name    string `json:"name"`
	Queue   string `json:"queue"`
	Batch   string `json:"batch"`
	BatchID string `json:"batch_id"`
	State   string `json:"state"`
}

// harvest runs a harvester for queue hpc on the given batch system and a
// task of 6 jobs for that queue: the jobs finish on the pilots it submits,
// at most max_running of them at once, and once the work is done its
// workers end (idle pilots exit), as `pando workers` shows.
func harvest(t *testing.T, c *cluster, kind string, env []string, extra string) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755) // batch jobs may run as another user's daemon
	conf := filepath.Join(dir, "harvester.yaml")
	writeFile(t, conf, fmt.Sprintf(`dispatcher: %s
token_file: %s
ca_file: %s
work_dir: %s
interval: 500ms
pilot_command: %s
queues:
  - name: hpc
    batch: %s
    max_queued: 2
    max_running: 3
    worker: {cores: 1, memory: 1GiB, walltime: 10m}
    idle_exit: 3s
    pilot_args: [--containers, none]
%s`, c.agents, c.tokenFile, c.caFile, filepath.Join(dir, "work"), bin(t), kind, extra))
	c.pando("queue", "create", "hpc", "--kind", "hpc")
	startEnv(t, "harvester", env, "harvester", "--config", conf, "--log-level", "debug")
	id := c.submit("command: 'sleep 1'\njobs: 6\nqueue: hpc\nresources: {cores: 1, memory: 64MiB, walltime: 5m}\n")
	peak := 0
	c.waitFor("the task to finish through harvested pilots", 3*time.Minute, func() bool {
		var ws []apiWorker
		c.pandoJSON(&ws, "workers", "--queue", "hpc")
		live := 0
		for _, w := range ws {
			if w.State == "queued" || w.State == "running" {
				live++
			}
		}
		peak = max(peak, live)
		_, _, code := c.pandoRaw("wait", fmt.Sprint(id), "--timeout", "1ms")
		return code == 0
	})
	if peak > 3 {
		t.Errorf("%d workers queued or running at once; max_running is 3", peak)
	}
	var ws []apiWorker
	c.waitFor("every worker to end once the work is done", 2*time.Minute, func() bool {
		c.pandoJSON(&ws, "workers", "--queue", "hpc")
		for _, w := range ws {
			if w.State == "queued" || w.State == "running" {
				return false
			}
		}
		return len(ws) > 0
	})
	for _, w := range ws {
		if w.Batch != kind || w.Queue != "hpc" || (w.State != "finished" && w.State != "cancelled") {
			t.Errorf("worker %+v", w)
		}
	}
	out := c.pando("workers")
	if !strings.Contains(out, "BATCH ID") || !strings.Contains(out, ws[0].Name) {
		t.Errorf("pando workers:\n%s", out)
	}
}

func TestHarvesterLocal(t *testing.T) {
	c := newCluster(t)
	harvest(t, c, "local", nil, "")
}

// Pilots submitted through sbatch to a real single-node Slurm, connected
// through the edge the harvester runs (as on a login node).
func TestHarvesterSlurm(t *testing.T) {
	s := slurmtest.Start(t)
	c := newCluster(t)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	harvest(t, c, "slurm", s.Env, fmt.Sprintf("edge: {listen: %q}\n", listen))
	var agents []struct {
		Name, Kind string
	}
	c.pandoJSON(&agents, "agents")
	edges := 0
	for _, a := range agents {
		if a.Kind == "edge" {
			edges++
		}
	}
	if edges != 1 {
		t.Errorf("agents %+v: want the harvester's edge among them", agents)
	}
}
