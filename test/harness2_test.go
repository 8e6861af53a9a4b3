package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startEnv is start with extra environment variables (NAME=VALUE) added
// to the test's own.
func startEnv(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin(t), args...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", name, p.out.String())
		}
	})
	return p
}

// startCLI starts a long-running CLI command (logs -f, wait) against the
// cluster with the given token file.
func (c *cluster) startCLI(tokenFile string, args ...string) *proc {
	c.t.Helper()
	env := []string{"PANDO_SERVER=http://" + c.http, "PANDO_TOKEN_FILE=" + tokenFile, "PANDO_TOKEN="}
	return startEnv(c.t, "pando "+strings.Join(args, " "), env, args...)
}

// newToken creates a token with `pando token create` as admin and writes
// it to a file, whose path it returns.
func (c *cluster) newToken(role, name string) string {
	c.t.Helper()
	out := c.pando("token", "create", "--role", role, "--name", name)
	tok := strings.TrimSpace(out)
	if tok == "" || strings.ContainsAny(tok, " \n\t") {
		c.t.Fatalf("token create printed %q, want one token", out)
	}
	f := filepath.Join(c.dir, name+".token")
	writeFile(c.t, f, tok+"\n")
	return f
}

// pandoJSONAs runs a CLI command with -o json as the holder of tokenFile;
// the command must succeed.
func (c *cluster) pandoJSONAs(tokenFile string, v any, args ...string) {
	c.t.Helper()
	args = append(args, "-o", "json")
	out, errOut, code := c.pandoAs(tokenFile, args...)
	if code != 0 {
		c.t.Fatalf("pando %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("pando %s: bad JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// taskFile writes spec to a new file in the cluster's directory.
func (c *cluster) taskFile(spec string) string {
	c.t.Helper()
	f := filepath.Join(c.dir, fmt.Sprintf("task-%d.yaml", time.Now().UnixNano()))
	writeFile(c.t, f, spec)
	return f
}

// submitAs submits spec as the holder of tokenFile and returns the task ID.
func (c *cluster) submitAs(tokenFile, spec string) int64 {
	c.t.Helper()
	var r struct {
		ID int64 `json:"id"`
	}
	c.pandoJSONAs(tokenFile, &r, "submit", c.taskFile(spec))
	if r.ID <= 0 {
		c.t.Fatalf("submit: no id")
	}
	return r.ID
}

// waitState waits until the job is in state.
func (c *cluster) waitState(jobID int64, state string, d time.Duration) job {
	c.t.Helper()
	var j job
	c.waitFor(fmt.Sprintf("job %d %s", jobID, state), d, func() bool {
		j = c.job(jobID)
		return j.State == state
	})
	return j
}

// pilotAs starts a pilot with tokenFile and extra arguments.
func (c *cluster) pilotAs(tokenFile string, env []string, args ...string) *proc {
	c.t.Helper()
	c.pilots++
	name := fmt.Sprintf("pilot-%d", c.pilots)
	a := append([]string{"pilot", "--dispatcher", c.agents, "--token-file", tokenFile, "--ca-file", c.caFile,
		"--name", name, "--workdir", filepath.Join(c.dir, name), "--containers", "none"}, args...)
	return startEnv(c.t, name, env, a...)
}
