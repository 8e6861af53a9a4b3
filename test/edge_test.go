package test

import (
	"fmt"
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
