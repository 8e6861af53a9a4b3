package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// `pando submit` prints the bare task ID; with -o json an object with "id".
func TestSubmitPrintsID(t *testing.T) {
	c := newCluster(t)
	spec := "name: ids\ncommand: [\"/bin/true\"]\njobs: 2\n"
	out := c.pando("submit", c.taskFile(spec))
	if !regexp.MustCompile(`^[1-9][0-9]*\n$`).MatchString(out) {
		t.Errorf("submit printed %q, want a bare ID and a newline", out)
	}
	var r map[string]any
	c.pandoJSON(&r, "submit", c.taskFile(spec))
	if id, ok := r["id"].(float64); !ok || id <= 0 {
		t.Errorf("submit -o json: %v, want a positive \"id\"", r)
	}
	var tasks []map[string]any
	c.pandoJSON(&tasks, "tasks")
	if len(tasks) != 2 {
		t.Errorf("tasks after two submits: %d, want 2", len(tasks))
	}
}

// A bad task file is refused with an error naming the field, and nothing
// is stored.
func TestBadTaskFiles(t *testing.T) {
	c := newCluster(t)
	cases := []struct{ name, spec, field string }{
		{"unknown field", "name: x\ncommand: [\"/bin/true\"]\ncolour: red\n", "colour"},
		{"unknown resource", "name: x\ncommand: [\"/bin/true\"]\nresources: {cores: 1, flavour: big}\n", "flavour"},
		{"bad memory", "name: x\ncommand: [\"/bin/true\"]\nresources: {memory: 12 parsecs}\n", "memory"},
		{"zero jobs", "name: x\ncommand: [\"/bin/true\"]\njobs: 0\n", "jobs"},
		{"negative jobs", "name: x\ncommand: [\"/bin/true\"]\njobs: -3\n", "jobs"},
		{"zero cores", "name: x\ncommand: [\"/bin/true\"]\nresources: {cores: 0}\n", "cores"},
		{"bad walltime", "name: x\ncommand: [\"/bin/true\"]\nresources: {walltime: soon}\n", "walltime"},
		{"negative walltime", "name: x\ncommand: [\"/bin/true\"]\nresources: {walltime: -5m}\n", "walltime"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := c.pandoRaw("submit", c.taskFile(tc.spec))
			if code == 0 {
				t.Fatalf("exit 0, want an error; stdout %q", out)
			}
			if !strings.Contains(errOut, tc.field) {
				t.Errorf("stderr %q does not name %q", errOut, tc.field)
			}
		})
	}
	var tasks []json.RawMessage
	c.pandoJSON(&tasks, "tasks")
	if len(tasks) != 0 {
		t.Errorf("%d tasks stored after bad submissions, want 0", len(tasks))
	}
}

// The dispatcher writes its CA and the admin token on first start; the
// token is readable by its owner only.
func TestDataDirFiles(t *testing.T) {
	c := newCluster(t)
	ca, err := os.ReadFile(c.caFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ca), "BEGIN CERTIFICATE") {
		t.Errorf("ca.pem holds no certificate:\n%s", ca)
	}
	fi, err := os.Stat(c.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("admin.token mode %v, want 0600", m)
	}
	if fi.Size() == 0 {
		t.Error("admin.token is empty")
	}
}

// Users see and act on their own work only: to another user it does not
// exist.
func TestUserIsolation(t *testing.T) {
	c := newCluster(t)
	alice := c.newToken("user", "alice")
	bob := c.newToken("user", "bob")
	tid := c.submitAs(alice, "name: alices\ncommand: [\"/bin/true\"]\njobs: 1\n")
	var js []job
	c.pandoJSONAs(alice, &js, "jobs", "--task", fmt.Sprint(tid))
	if len(js) != 1 {
		t.Fatalf("alice sees %d jobs of her task, want 1", len(js))
	}
	jid := fmt.Sprint(js[0].ID)

	for _, args := range [][]string{
		{"job", jid}, {"logs", jid}, {"kill", fmt.Sprint(tid)}, {"kill", jid}, {"retry", fmt.Sprint(tid)},
	} {
		out, errOut, code := c.pandoAs(bob, args...)
		if code == 0 {
			t.Errorf("bob: pando %s: exit 0, want an error; stdout %q", strings.Join(args, " "), out)
		}
		if !strings.Contains(strings.ToLower(errOut), "not found") {
			t.Errorf("bob: pando %s: stderr %q, want a not-found error", strings.Join(args, " "), errOut)
		}
	}
	var tasks []struct {
		ID int64 `json:"id"`
	}
	c.pandoJSONAs(bob, &tasks, "tasks")
	if len(tasks) != 0 {
		t.Errorf("bob lists tasks %v, want none", tasks)
	}
	out, _, _ := c.pandoAs(bob, "tasks")
	if strings.Contains(out, "alices") {
		t.Errorf("bob's `pando tasks` shows alice's task:\n%s", out)
	}
	var bobJobs []job
	if o, _, code := c.pandoAs(bob, "jobs", "--task", fmt.Sprint(tid), "-o", "json"); code == 0 {
		if err := json.Unmarshal([]byte(o), &bobJobs); err != nil || len(bobJobs) != 0 {
			t.Errorf("bob: jobs --task %d: %s", tid, o)
		}
	}
	c.pandoJSONAs(alice, &tasks, "tasks")
	if len(tasks) != 1 || tasks[0].ID != tid {
		t.Errorf("alice lists %v, want her task %d", tasks, tid)
	}
	var j job
	c.pandoJSONAs(alice, &j, "job", jid)
	if j.State == "cancelled" {
		t.Errorf("bob cancelled alice's job")
	}
}

// An agent token runs a pilot but cannot submit work.
func TestAgentTokenRole(t *testing.T) {
	c := newCluster(t, fastTimers...)
	agent := c.newToken("agent", "site-a")
	out, errOut, code := c.pandoAs(agent, "submit", c.taskFile("name: x\ncommand: [\"/bin/true\"]\n"))
	if code == 0 {
		t.Errorf("agent token submitted a task: %q", out)
	} else if !regexp.MustCompile(`(?i)forbidden|not allowed|permission|denied|role`).MatchString(errOut) {
		t.Errorf("agent submit: stderr %q does not explain the refusal", errOut)
	}
	var tasks []json.RawMessage
	c.pandoJSON(&tasks, "tasks")
	if len(tasks) != 0 {
		t.Fatalf("%d tasks stored after the agent's submit, want 0", len(tasks))
	}
	c.pilotAs(agent, nil)
	id := c.submit("name: viaagent\ncommand: [\"/bin/true\"]\njobs: 2\nresources: {walltime: 1m}\n")
	if code := c.waitTask(id, 30*time.Second); code != 0 {
		t.Fatalf("pando wait: exit %d, want 0 (pilot with an agent token ran nothing)", code)
	}
}

// `pando probe -o json` reports this node's resources.
func TestProbeJSON(t *testing.T) {
	out, err := exec.Command(bin(t), "probe", "-o", "json").Output()
	if err != nil {
		t.Fatalf("pando probe: %v", err)
	}
	var r map[string]any
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, out)
	}
	if cores, _ := r["cores"].(float64); cores <= 0 {
		t.Errorf("cores %v, want > 0\n%s", r["cores"], out)
	}
	if mem, _ := r["memory_bytes"].(float64); mem <= 0 {
		t.Errorf("memory_bytes %v, want > 0\n%s", r["memory_bytes"], out)
	}
	if _, ok := r["gpus"]; !ok {
		t.Errorf("no gpus key\n%s", out)
	}
}

// `pando demo` runs a dispatcher and a pilot end to end and exits 0.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin(t), "demo")
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pando demo: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "summary") {
		t.Errorf("demo printed no summary:\n%s", out)
	}
}

// A job's JSON, alone or in a listing, has the fields scripts rely on.
func TestJobJSONFields(t *testing.T) {
	c := newCluster(t)
	id := c.submit("name: fields\ncommand: [\"/bin/true\"]\njobs: 2\n")
	var list []map[string]any
	c.pandoJSON(&list, "jobs", "--task", fmt.Sprint(id))
	if len(list) != 2 {
		t.Fatalf("%d jobs, want 2", len(list))
	}
	var one map[string]any
	c.pandoJSON(&one, "job", fmt.Sprint(int64(list[0]["id"].(float64))))
	for i, j := range append(list, one) {
		for _, k := range []string{"id", "task", "state", "attempt", "exit_code", "error_code", "error"} {
			if _, ok := j[k]; !ok {
				t.Errorf("job JSON %d lacks %q: %v", i, k, j)
			}
		}
		if j["task"] != float64(id) || j["state"] != "ready" {
			t.Errorf("job JSON %d: task %v state %v, want %d ready", i, j["task"], j["state"], id)
		}
	}
}

// PANDO_TOKEN works as well as PANDO_TOKEN_FILE.
func TestTokenFromEnv(t *testing.T) {
	c := newCluster(t)
	tok, err := os.ReadFile(c.newToken("user", "carol"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin(t), "whoami", "-o", "json")
	cmd.Env = append(os.Environ(), "PANDO_SERVER=http://"+c.http, "PANDO_TOKEN="+strings.TrimSpace(string(tok)), "PANDO_TOKEN_FILE=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("whoami with PANDO_TOKEN: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "carol") {
		t.Errorf("whoami with carol's PANDO_TOKEN: %s", out)
	}
}
