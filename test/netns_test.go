package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// netns is a network namespace joined to the host by a veth pair: a
// compute node whose only link the test can take down and up.
type netns struct {
	name, hostIf, hostIP, nsIP string
}

var netnsCount atomic.Int32

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("iproute2 is missing: CI must install it")
		}
		t.Skip("no ip command (iproute2)")
	}
	k := netnsCount.Add(1) // several namespaces in one test process
	id := os.Getpid() % 250
	n := &netns{name: fmt.Sprintf("pando-t%d-%d", os.Getpid(), k), hostIf: fmt.Sprintf("pth%d-%d", os.Getpid()%100000, k),
		hostIP: fmt.Sprintf("10.%d.%d.1", 212+k%40, id), nsIP: fmt.Sprintf("10.%d.%d.2", 212+k%40, id)}
	ipCmd(t, "netns", "add", n.name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.name).Run() })
	nsIf := fmt.Sprintf("ptn%d-%d", os.Getpid()%100000, k)
	ipCmd(t, "link", "add", n.hostIf, "type", "veth", "peer", "name", nsIf)
	t.Cleanup(func() { exec.Command("ip", "link", "del", n.hostIf).Run() })
	ipCmd(t, "link", "set", nsIf, "netns", n.name)
	ipCmd(t, "addr", "add", n.hostIP+"/30", "dev", n.hostIf)
	ipCmd(t, "link", "set", n.hostIf, "up")
	ipCmd(t, "netns", "exec", n.name, "ip", "addr", "add", n.nsIP+"/30", "dev", nsIf)
	ipCmd(t, "netns", "exec", n.name, "ip", "link", "set", nsIf, "up")
	ipCmd(t, "netns", "exec", n.name, "ip", "link", "set", "lo", "up")
	return n
}

// A pilot whose network is cut for longer than the agent timeout but
// shorter than the grace period notices, reconnects when the link returns,
// re-attaches its running job, and the payload is never killed.
func TestNetworkCutReattaches(t *testing.T) {
	n := newNetns(t)
	c := newClusterOn(t, n.hostIP, "--host", n.hostIP, "--heartbeat", "300ms", "--agent-timeout", "1500ms",
		"--grace", "10s", "--retry-backoff", "-1s")
	marker := filepath.Join(c.dir, "ran")
	p := startCmd(t, "pilot-in-netns", "ip", "netns", "exec", n.name, bin(t), "pilot", "--dispatcher", c.agents,
		"--token-file", c.tokenFile, "--ca-file", c.caFile, "--name", "node-1", "--workdir", filepath.Join(c.dir, "node-1"), "--containers", "none")
	id := c.submit(fmt.Sprintf("name: cut\ncommand: [\"/bin/sh\", \"-c\", \"sleep 6; echo x >> %s\"]\n", marker))
	j := c.waitState(c.jobs(id)[0].ID, "running", 30*time.Second)
	ipCmd(t, "link", "set", n.hostIf, "down")
	time.Sleep(3 * time.Second)
	ipCmd(t, "link", "set", n.hostIf, "up")
	if code := c.waitTask(id, time.Minute); code != 0 {
		t.Fatalf("pando wait: exit %d, want 0", code)
	}
	got := c.job(j.ID)
	if got.State != "finished" || got.Attempt != 1 {
		t.Fatalf("job %s in attempt %d, want finished in attempt 1 (re-attached)", got.State, got.Attempt)
	}
	if data, _ := os.ReadFile(marker); string(data) != "x\n" {
		t.Errorf("payload ran %q, want once", data)
	}
	if !strings.Contains(c.disp.out.String(), "no heartbeat") {
		t.Errorf("the dispatcher never dropped the cut pilot; the test proves nothing")
	}
	if !strings.Contains(p.out.String(), "reconnecting") {
		t.Errorf("the pilot never noticed the cut:\n%s", p.out.String())
	}
}
