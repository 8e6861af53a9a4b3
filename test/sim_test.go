package test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// simTrace is a small workload: two shares, tasks arriving over 12 s,
// jobs of 1.5 to 6 s, for 2 pilots of 4 cores. Jobs last seconds so that
// what a real run adds per job (a process start, a report, the next
// assignment: milliseconds) stays small beside them. No two rows arrive
// together: submitting one takes a real run tens of milliseconds, and the
// first would take every free slot before the second arrived.
const simTrace = `submit_s,jobs,runtime_s,cores,memory,share,priority
0,8,3,1,64MiB,a,0
0.5,6,6,1,64MiB,b,0
3,4,4.5,1,64MiB,a,5
6,8,1.5,1,64MiB,b,0
9,6,3,1,64MiB,a,0
12,4,6,1,64MiB,b,0
`

// `pando sim` predicts the makespan of a trace; replayed on a real
// dispatcher with real pilots, the same trace ends within 10% of it.
func TestSimMatchesReality(t *testing.T) {
	dir := t.TempDir()
	trace, queues, shares := filepath.Join(dir, "trace.csv"), filepath.Join(dir, "queues.yaml"), filepath.Join(dir, "shares.yaml")
	writeFile(t, trace, simTrace)
	writeFile(t, queues, "- name: default\n  agents:\n    - {count: 2, cores: 4, memory: 4GiB}\n")
	writeFile(t, shares, "- {path: a, target: 50}\n- {path: b, target: 50}\n")

	c := newCluster(t, fastTimers...)
	var predicted struct {
		MakespanS float64 `json:"makespan_s"`
		Ran       int64   `json:"ran"`
	}
	c.pandoJSON(&predicted, "sim", "--trace", trace, "--queues", queues, "--shares", shares)
	if predicted.Ran != 36 || predicted.MakespanS <= 0 {
		t.Fatalf("sim: %+v, want 36 jobs run", predicted)
	}

	c.pando("share", "set", "a", "--target", "50")
	c.pando("share", "set", "b", "--target", "50")
	c.startPilot("--cores", "4", "--memory", "4GiB")
	c.startPilot("--cores", "4", "--memory", "4GiB")
	c.waitFor("both pilots", 20*time.Second, func() bool {
		var q struct {
			Agents int `json:"agents"`
		}
		c.pandoJSON(&q, "queue", "show", "default")
		return q.Agents == 2
	})
	rows, err := csv.NewReader(strings.NewReader(simTrace)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	var tasks []int64
	for _, r := range rows[1:] {
		at, _ := strconv.ParseFloat(r[0], 64)
		time.Sleep(time.Until(t0.Add(time.Duration(at * float64(time.Second)))))
		tasks = append(tasks, c.submit(fmt.Sprintf("command: [sleep, '%s']\njobs: %s\nshare: %s\npriority: %s\nresources: {cores: %s, memory: %s, walltime: 1m}\n",
			r[2], r[1], r[5], r[6], r[3], r[4])))
	}
	var last time.Time
	for _, id := range tasks {
		if code := c.waitTask(id, 2*time.Minute); code != 0 {
			t.Fatalf("task %d: pando wait exit %d", id, code)
		}
		out := c.pando("jobs", "--task", fmt.Sprint(id), "-o", "json")
		var js []struct {
			Ended *time.Time `json:"ended"`
		}
		if err := json.Unmarshal([]byte(out), &js); err != nil {
			t.Fatal(err)
		}
		for _, j := range js {
			if j.Ended != nil && j.Ended.After(last) {
				last = *j.Ended
			}
		}
	}
	real := last.Sub(t0).Seconds()
	t.Logf("makespan: sim %.2f s, real %.2f s", predicted.MakespanS, real)
	if math.Abs(real-predicted.MakespanS) > 0.1*predicted.MakespanS {
		t.Errorf("real makespan %.2f s is not within 10%% of the simulated %.2f s", real, predicted.MakespanS)
	}
}
