package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startEdge runs `pando edge` on listen, relaying to the cluster's
// dispatcher at upstream; it returns the CA file pilots verify it with.
func startEdge(t *testing.T, c *cluster, listen, upstream string, extra ...string) (*proc, string) {
	t.Helper()
	data := filepath.Join(c.dir, "edge")
	host, _, _ := strings.Cut(listen, ":")
	p := start(t, "edge", append([]string{"edge", "--listen", listen, "--data", data, "--host", host, "--dispatcher", upstream,
		"--token-file", c.tokenFile, "--ca-file", c.caFile, "--log-level", "debug"}, extra...)...)
	c.waitFor("the edge's upstream", 20*time.Second, func() bool { return strings.Contains(p.out.String(), "upstream connected") })
	return p, filepath.Join(data, "ca.pem")
}

// A pilot pointed at an edge runs its jobs as if it talked to the
// dispatcher; the dispatcher lists it beside the edge.
func TestEdgeRelays(t *testing.T) {
	c := newCluster(t, fastTimers...)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	_, ca := startEdge(t, c, listen, c.agents)
	start(t, "pilot-behind-edge", "pilot", "--dispatcher", listen, "--token-file", c.tokenFile, "--ca-file", ca,
		"--name", "node-1", "--workdir", filepath.Join(c.dir, "node-1"), "--containers", "none", "--cores", "4")
	id := c.submit("command: 'echo hello from $PANDO_JOB_INDEX'\njobs: 8\n")
	if code := c.waitTask(id, time.Minute); code != 0 {
		t.Fatalf("task through the edge: %+v", c.jobs(id))
	}
	if out := c.pando("logs", fmt.Sprint(c.jobs(id)[3].ID)); out != "hello from 3\n" {
		t.Errorf("logs through the edge: %q", out)
	}
	out := c.pando("agents")
	if !strings.Contains(out, "node-1") || !strings.Contains(out, "edge") {
		t.Errorf("pando agents lists neither the pilot nor the edge:\n%s", out)
	}
}

// A compute node (a network namespace) has no route to the dispatcher,
// which runs on a node of its own (another namespace): its pilot reaches
// only the edge on the login node (this host), and its jobs finish. The
// edge's upstream is then cut for 30 s while jobs run: they carry on, the
// pilot holds their reports, and after the cut every job finishes in its
// first attempt: nothing lost, nothing run twice.
func TestEdgeComputeNodeAndUpstreamCut(t *testing.T) {
	dnode, compute := newNetns(t), newNetns(t)
	c := prepareCluster(t, dnode.nsIP, "--host", dnode.nsIP, "--heartbeat", "1s", "--agent-timeout", "5s", "--grace", "90s", "--retry-backoff", "-1s")
	c.http = fmt.Sprintf("%s:%d", dnode.nsIP, freePort(t))
	for i, a := range c.dispArgs {
		if a == "--http" {
			c.dispArgs[i+1] = c.http
		}
	}
	c.disp = startCmd(t, "dispatcher", "ip", append([]string{"netns", "exec", dnode.name, bin(t)}, c.dispArgs...)...)
	c.waitFor("dispatcher API", 20*time.Second, func() bool { _, _, code := c.pandoRaw("whoami"); return code == 0 })

	listen := fmt.Sprintf("%s:%d", compute.hostIP, freePort(t))
	edge, ca := startEdge(t, c, listen, c.agents)
	// The compute node cannot reach the dispatcher itself.
	if _, _, code := c.pandoRaw("--server", "http://"+c.http, "whoami"); code != 0 {
		t.Fatal("the test host cannot reach the dispatcher")
	}
	if out, err := exec.Command("ip", "netns", "exec", compute.name, bin(t), "--server", "http://"+c.http,
		"--token-file", c.tokenFile, "whoami").CombinedOutput(); err == nil {
		t.Fatalf("the compute node reached the dispatcher directly: %s", out)
	}
	marker := filepath.Join(c.dir, "runs")
	startCmd(t, "pilot-on-compute-node", "ip", "netns", "exec", compute.name, bin(t), "pilot", "--dispatcher", listen,
		"--token-file", c.tokenFile, "--ca-file", ca, "--name", "cn-1", "--workdir", filepath.Join(c.dir, "cn-1"),
		"--containers", "none", "--cores", "4")
	first := c.submit("command: 'echo ok'\njobs: 4\n")
	if code := c.waitTask(first, time.Minute); code != 0 {
		t.Fatalf("jobs of a node with no route out: %+v", c.jobs(first))
	}

	id := c.submit(fmt.Sprintf("command: 'sleep 10; echo $PANDO_JOB_ID >> %s'\njobs: 4\nresources: {cores: 1, walltime: 5m}\n", marker))
	c.waitFor("the jobs to run", 30*time.Second, func() bool {
		for _, j := range c.jobs(id) {
			if j.State != "running" {
				return false
			}
		}
		return true
	})
	ipCmd(t, "link", "set", dnode.hostIf, "down") // the login node loses the dispatcher
	time.Sleep(30 * time.Second)
	ipCmd(t, "link", "set", dnode.hostIf, "up")
	if code := c.waitTask(id, 2*time.Minute); code != 0 {
		t.Fatalf("task after the cut: %+v", c.jobs(id))
	}
	for _, j := range c.jobs(id) {
		if j.State != "finished" || j.Attempt != 1 {
			t.Errorf("job %d %s in attempt %d; want finished in its first attempt", j.ID, j.State, j.Attempt)
		}
	}
	if !strings.Contains(edge.out.String(), "upstream lost") {
		t.Errorf("the edge never lost its upstream: the test proves nothing")
	}
	runs, _ := os.ReadFile(marker)
	if n := len(strings.Fields(string(runs))); n != 4 {
		t.Errorf("payloads ran %d times, want 4:\n%s", n, runs)
	}
}

// A compute node reaches neither the dispatcher nor the S3 server (both on
// this host's loopback): its pilot gets work through the edge and its
// inputs (and sends its outputs) through the edge's input server, which
// fetches each object once, verified, and refuses storage hosts it was not
// told about.
func TestEdgeServesInputs(t *testing.T) {
	compute := newNetns(t)
	srv, ep, storageFile := lake(t, "data", "results")
	files := putFiles(t, ep, "data", "run/", 8)
	c := newCluster(t, append(fastTimers, "--storage", storageFile)...)
	listen := fmt.Sprintf("%s:%d", compute.hostIP, freePort(t))
	data := fmt.Sprintf("%s:%d", compute.hostIP, freePort(t))
	s3host := strings.TrimPrefix(srv.URL, "http://")
	_, ca := startEdge(t, c, listen, c.agents, "--data-listen", data, "--data-allow", s3host)
	startCmd(t, "pilot-on-compute-node", "ip", "netns", "exec", compute.name, bin(t), "pilot", "--dispatcher", listen,
		"--token-file", c.tokenFile, "--ca-file", ca, "--name", "cn-1", "--workdir", filepath.Join(c.dir, "cn-1"),
		"--containers", "none", "--cores", "4", "--input-proxy", "http://"+data)
	id := c.submit(`command: 'IFS=,; for f in $PANDO_INPUTS; do wc -c < "$PANDO_INPUT_DIR/$f"; done > sizes.txt; cp sizes.txt "$PANDO_WORKDIR/../sizes-$PANDO_JOB_INDEX"'
inputs: {endpoint: lake, bucket: data, prefix: run/}
files_per_job: 2
outputs: {endpoint: lake, bucket: results, patterns: ["sizes.txt"]}
`)
	if code := c.waitTask(id, 2*time.Minute); code != 0 {
		t.Fatalf("data task on a node with no route out: %+v", c.jobs(id))
	}
	total := 0
	for i := range 4 {
		b, err := os.ReadFile(filepath.Join(c.dir, "cn-1", fmt.Sprintf("sizes-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.Fields(string(b)) {
			n := 0
			fmt.Sscan(f, &n)
			total += n
		}
	}
	want := 0
	for _, d := range files {
		want += len(d)
	}
	if total != want {
		t.Errorf("payloads saw %d bytes of input, want %d", total, want)
	}
	// Outputs went back through the edge too.
	for _, j := range c.jobs(id) {
		var d dataJob
		c.pandoJSON(&d, "job", fmt.Sprint(j.ID))
		if len(d.Outputs) != 1 || string(readObject(t, ep, "results", d.Outputs[0].Path)) == "" {
			t.Errorf("job %d outputs %+v", j.ID, d.Outputs)
		}
	}
	// Not an open proxy: a host it was not given is refused.
	out, _ := exec.Command("ip", "netns", "exec", compute.name, "busybox", "wget", "-q", "-O", "-",
		"http://"+data+"/fetch?url=http%3A%2F%2F127.0.0.1%3A1%2Fx&src=a%3Ab%2Fc&size=1&adler32=").CombinedOutput()
	if !strings.Contains(string(out), "403") {
		t.Errorf("a storage host not allowed: %s", out)
	}
}
