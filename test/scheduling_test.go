package test

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// shareStatus is the part of `pando shares -o json` the tests read.
type shareStatus struct {
	Path       string  `json:"path"`
	Target     float64 `json:"target"`
	Achieved   float64 `json:"achieved"`
	Usage      float64 `json:"usage_core_seconds"`
	Running    float64 `json:"running_cores"`
	ReadyTasks int     `json:"ready_tasks"`
}

func (c *cluster) shares() map[string]shareStatus {
	c.t.Helper()
	var ss []shareStatus
	c.pandoJSON(&ss, "shares")
	out := map[string]shareStatus{}
	for _, s := range ss {
		out[s.Path] = s
	}
	return out
}

// Three shares, 50/30/20, compete for two pilots over 3,000 short jobs:
// while all three have work, each one's achieved fraction of the used
// core-seconds stays within 2 points of its target.
func TestShareAccuracy(t *testing.T) {
	c := newCluster(t, fastTimers...)
	targets := map[string]float64{"prod/mc": 50, "prod/reco": 30, "analysis": 20}
	c.pando("share", "set", "prod", "--target", "100")
	c.pando("share", "set", "prod/mc", "--target", "62.5") // 50% of the whole
	c.pando("share", "set", "prod/reco", "--target", "37.5")
	c.pando("share", "set", "prod", "--target", "80")
	c.pando("share", "set", "analysis", "--target", "20")
	var tasks []int64
	for _, s := range []string{"prod/mc", "prod/reco", "analysis"} {
		tasks = append(tasks, c.submit(fmt.Sprintf("command: [sleep, '0.05']\njobs: 1000\nshare: %s\nresources: {cores: 1, memory: 16MiB, walltime: 1m}\n", s)))
	}
	c.startPilot("--cores", "8", "--memory", "4GiB")
	c.startPilot("--cores", "8", "--memory", "4GiB")

	// Keep the last reading taken while every share still had ready work
	// and a fair amount had run.
	var last map[string]shareStatus
	c.waitFor("one share to run dry", 3*time.Minute, func() bool {
		ss := c.shares()
		for _, s := range []string{"prod/mc", "prod/reco", "analysis"} {
			if ss[s].ReadyTasks == 0 {
				return true
			}
		}
		if ss["prod"].Usage+ss["analysis"].Usage > 30 {
			last = ss
		}
		return false
	})
	if last == nil {
		t.Fatal("no reading with every share busy and 30 core-seconds used")
	}
	whole := last["prod"].Usage + last["analysis"].Usage
	for s, want := range targets {
		got := 100 * last[s].Usage / whole
		t.Logf("share %s: %.1f%% of the used core-seconds (target %v%%), achieved %.1f%% of its parent", s, got, want, last[s].Achieved)
		if math.Abs(got-want) > 2 {
			t.Errorf("share %s had %.1f%% of the usage, want %v±2", s, got, want)
		}
	}
	if a := last["prod"].Achieved; math.Abs(a-80) > 2 {
		t.Errorf("prod achieved %.1f%% of the whole, want 80±2", a)
	}
	for _, id := range tasks {
		if code := c.waitTask(id, 3*time.Minute); code != 0 {
			t.Fatalf("task %d: pando wait exit %d", id, code)
		}
	}
}

// A share with no work lends its part; when its work returns it is served
// before the lender's backlog, without a restart or operator action.
func TestShareBorrowAndGiveBack(t *testing.T) {
	c := newCluster(t, fastTimers...)
	c.pando("share", "set", "a", "--target", "50")
	c.pando("share", "set", "b", "--target", "50")
	big := c.submit("command: [sleep, '0.1']\njobs: 600\nshare: a\nresources: {cores: 1, memory: 16MiB, walltime: 1m}\n")
	c.startPilot("--cores", "4", "--memory", "4GiB")
	c.startPilot("--cores", "4", "--memory", "4GiB")
	// b has no work: a takes every slot.
	c.waitFor("a to hold all 8 slots", time.Minute, func() bool { return c.shares()["a"].Running == 8 })
	back := c.submit("command: [sleep, '0.1']\njobs: 40\nshare: b\nresources: {cores: 1, memory: 16MiB, walltime: 1m}\n")
	if code := c.waitTask(back, 2*time.Minute); code != 0 {
		t.Fatalf("b's task: pando wait exit %d", code)
	}
	var ready []job
	c.pandoJSON(&ready, "jobs", "--task", fmt.Sprint(big), "--state", "ready")
	if len(ready) < 100 {
		t.Errorf("b's 40 jobs finished when only %d of a's 600 were still waiting: b was not served first", len(ready))
	}

	// Prometheus sees the same.
	m := c.metrics()
	for _, want := range []string{
		`pando_jobs_running{queue="default",share="a"} 8`,
		`pando_jobs_finished_total{queue="default",share="b"} 40`,
		`pando_share_target_percent{share="b"} 50`,
		`pando_agents_connected{kind="pilot",queue="default"} 2`,
		`pando_dispatch_latency_seconds_count`,
		`pando_jobs_ready{queue="any",share="a"}`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Every job above went through group commits and flushes.
	for _, name := range []string{"pando_commit_duration_seconds_count", "pando_commit_jobs_sum", "pando_store_sync_seconds_count"} {
		var n float64
		for _, line := range strings.Split(m, "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				fmt.Sscan(v, &n)
			}
		}
		if n < 1 {
			t.Errorf("/metrics: %s = %v, want at least 1", name, n)
		}
	}
}

// metrics reads the dispatcher's /metrics with the admin token.
func (c *cluster) metrics() string {
	c.t.Helper()
	tok, err := os.ReadFile(c.tokenFile)
	if err != nil {
		c.t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+c.http+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		c.t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	return string(body)
}

// Operators change queues and shares while the dispatcher runs: a drained
// queue gets no new work, a limit holds, and both survive a restart. Bad
// input gets a clear error.
func TestQueueLiveChanges(t *testing.T) {
	c := newCluster(t, fastTimers...)
	c.pando("queue", "create", "grid", "--max-running", "2", "--label", "site=test")
	c.startPilot("--queue", "grid", "--cores", "8", "--memory", "4GiB")
	id := c.submit("command: [sleep, '0.3']\njobs: 12\nqueue: grid\nresources: {cores: 1, memory: 16MiB, walltime: 1m}\n")
	type queueInfo struct {
		Status  string `json:"status"`
		Running int    `json:"running"`
		Agents  int    `json:"agents"`
	}
	peak := 0
	c.waitFor("6 jobs to finish under the limit of 2", time.Minute, func() bool {
		var q queueInfo
		c.pandoJSON(&q, "queue", "show", "grid")
		peak = max(peak, q.Running)
		done := 0
		for _, j := range c.jobs(id) {
			if j.State == "finished" {
				done++
			}
		}
		return done >= 6
	})
	if peak > 2 {
		t.Errorf("queue ran %d jobs at once; its limit is 2", peak)
	}
	c.pando("queue", "drain", "grid")
	time.Sleep(time.Second) // what was running finishes
	var waiting []job
	c.pandoJSON(&waiting, "jobs", "--task", fmt.Sprint(id), "--state", "ready")
	if len(waiting) == 0 {
		t.Fatal("no job left waiting to show the drain")
	}
	time.Sleep(time.Second)
	var still []job
	c.pandoJSON(&still, "jobs", "--task", fmt.Sprint(id), "--state", "ready")
	if len(still) != len(waiting) {
		t.Errorf("a draining queue took %d new jobs", len(waiting)-len(still))
	}
	why := c.pando("job", "why", fmt.Sprint(waiting[0].ID))
	if !strings.Contains(why, "draining") {
		t.Errorf("job why on a drained queue does not say so:\n%s", why)
	}
	c.pando("queue", "set", "grid", "--max-running", "0")
	c.pando("share", "set", "prod", "--target", "70")

	// Queues and shares survive a restart.
	c.disp.stop()
	c.startDispatcher()
	var q struct {
		Status     string            `json:"status"`
		MaxRunning int               `json:"max_running"`
		Labels     map[string]string `json:"labels"`
	}
	c.pandoJSON(&q, "queue", "show", "grid")
	if q.Status != "draining" || q.MaxRunning != 0 || q.Labels["site"] != "test" {
		t.Errorf("after a restart queue grid = %+v", q)
	}
	if s := c.shares()["prod"]; s.Target != 70 {
		t.Errorf("after a restart share prod = %+v", s)
	}
	c.pando("queue", "online", "grid")
	if code := c.waitTask(id, time.Minute); code != 0 {
		t.Fatalf("task after the queue came back online: pando wait exit %d", code)
	}

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"queue", "create", "grid"}, "exists"},
		{[]string{"queue", "set", "nope", "--max-running", "3"}, "not found"},
		{[]string{"queue", "create", "x", "--status", "sleepy"}, "status"},
		{[]string{"queue", "create", "bad name"}, "name"},
		{[]string{"queue", "create", "y", "--max-cores", "-1"}, "negative"},
		{[]string{"share", "set", "analysis", "--target", "40"}, "over 100"},
		{[]string{"share", "set", "a//b", "--target", "10"}, "each part"},
		{[]string{"share", "set", "z", "--target", "150"}, "at most 100"},
	} {
		_, errOut, code := c.pandoRaw(bad.args...)
		if code == 0 || !strings.Contains(errOut, bad.want) {
			t.Errorf("pando %s: exit %d, stderr %q, want an error with %q", strings.Join(bad.args, " "), code, errOut, bad.want)
		}
	}
	for _, bad := range []struct{ spec, want string }{
		{"command: [x]\nqueue: nope\n", `unknown queue "nope"`},
		{"command: [x]\nshare: nope\n", `unknown share "nope"`},
		{"command: [x]\nresources: {gpus: 1, gpu_model: 'A(100'}\n", "gpu_model"},
		{"command: [x]\nresources: {gpus: 1, gpu_compute: 'eight'}\n", "gpu_compute"},
		{"command: [x]\nresources: {arch: sparc}\n", "arch"},
	} {
		f := fmt.Sprintf("%s/bad-%d.yaml", c.dir, time.Now().UnixNano())
		writeFile(t, f, bad.spec)
		_, errOut, code := c.pandoRaw("submit", f)
		if code == 0 || !strings.Contains(errOut, bad.want) {
			t.Errorf("submit %q: exit %d, stderr %q, want an error with %q", bad.spec, code, errOut, bad.want)
		}
	}
	// An agent of an unknown queue is turned away and exits.
	p := c.startPilot("--queue", "nowhere")
	if !p.exited(20 * time.Second) {
		t.Error("a pilot of an unknown queue did not exit")
	}
}
