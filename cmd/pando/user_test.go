package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pando-wms/pando/dispatcher/api"
)

func TestSubmitPrintsID(t *testing.T) {
	f := newFake(t)
	file := filepath.Join(t.TempDir(), "task.yaml")
	os.WriteFile(file, []byte("name: demo\n"), 0o644)
	out, _, err := withToken(t, f).run("submit", file)
	if err != nil || out != "42\n" {
		t.Fatalf("submit = %q, %v; want \"42\\n\"", out, err)
	}
	if f.body != "name: demo\n" || f.ctype != "application/yaml" {
		t.Errorf("server got %q as %q", f.body, f.ctype)
	}
}

func TestSubmitStdinJSON(t *testing.T) {
	f := newFake(t)
	c := withToken(t, f)
	c.stdin = "name: piped\n"
	out, _, err := c.run("submit", "-", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var r api.SubmitResponse
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.ID != 42 || r.Jobs != 3 {
		t.Fatalf("submit -o json = %q (%v)", out, err)
	}
	if f.body != "name: piped\n" {
		t.Errorf("server got %q", f.body)
	}
}

func TestListingsJSON(t *testing.T) {
	f := newFake(t)
	f.addTask(1, "finished", "failed", "running")
	f.addTask(10, "ready")
	f.addTask(20, "ready")
	c := withToken(t, f)

	var tasks []api.Task
	decode(t, c, &tasks, "tasks", "-o", "json")
	if len(tasks) != 3 || tasks[0].Counts["failed"] != 1 { // 3 tasks over two pages of 2
		t.Errorf("tasks = %+v", tasks)
	}
	var jobs []api.Job
	decode(t, c, &jobs, "jobs", "--task", "1", "-o", "json")
	if len(jobs) != 3 || jobs[2].ID != 4 {
		t.Errorf("jobs --task 1 = %+v", jobs)
	}
	decode(t, c, &jobs, "jobs", "--state", "ready", "--limit", "1", "-o", "json")
	if len(jobs) != 1 || jobs[0].ID != 11 {
		t.Errorf("jobs --state ready --limit 1 = %+v", jobs)
	}
	var job api.Job
	decode(t, c, &job, "job", "3", "-o", "json")
	if job.ID != 3 || job.State != "failed" {
		t.Errorf("job 3 = %+v", job)
	}
	out, _, _ := c.run("jobs", "--state", "cancelled", "-o", "json")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("empty listing = %q, want []", out)
	}
}

func decode(t *testing.T, c cli, v any, args ...string) {
	t.Helper()
	out, _, err := c.run(args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%v: %v in %q", args, err, out)
	}
}

func TestTables(t *testing.T) {
	f := newFake(t)
	f.addTask(1, "finished", "failed", "running")
	f.jobs[3].Error = "payload\texited\nbadly"
	c := withToken(t, f)
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"tasks"}, []string{"ID  NAME  OWNER  STATE  JOBS  DONE/FAILED/RUNNING", "1/1/1"}},
		{[]string{"jobs"}, []string{"ID  TASK  INDEX  STATE     ATTEMPT  EXIT  ERROR", "payload exited badly"}},
		{[]string{"job", "3"}, []string{"State:      failed", "Attempt:    1 of 3"}},
		{[]string{"kill", "1"}, []string{"task 1: 2 jobs killed"}},
		{[]string{"token", "create", "--name", "alice"}, []string{"pando_secret\n"}},
	}
	for _, tt := range tests {
		out, _, err := c.run(tt.args...)
		if err != nil {
			t.Errorf("%v: %v", tt.args, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tt.args, w, out)
			}
		}
	}
}

func TestTokenCreateJSON(t *testing.T) {
	var r api.TokenResponse
	decode(t, withToken(t, newFake(t)), &r, "token", "create", "--role", "operator", "--name", "op", "-o", "json")
	if r.Token != "pando_secret" || r.Role != "operator" || r.Name != "op" {
		t.Errorf("token create = %+v", r)
	}
}

func TestTokenPrecedence(t *testing.T) {
	dir := t.TempDir()
	fileA, fileB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(fileA, []byte("  from-flag-file\n"), 0o600)
	os.WriteFile(fileB, []byte("from-env-file\n\n"), 0o600)
	allEnv := map[string]string{"PANDO_TOKEN": "from-env", "PANDO_TOKEN_FILE": fileB}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"--token first", allEnv, []string{"--token", "from-flag", "--token-file", fileA}, "from-flag"},
		{"--token-file second", allEnv, []string{"--token-file", fileA}, "from-flag-file"},
		{"PANDO_TOKEN third", allEnv, nil, "from-env"},
		{"PANDO_TOKEN_FILE last", map[string]string{"PANDO_TOKEN_FILE": fileB}, nil, "from-env-file"},
	}
	f := newFake(t)
	for _, tt := range tests {
		var me api.Whoami
		decode(t, cli{t: t, f: f, env: tt.env}, &me, append(tt.args, "whoami", "-o", "json")...)
		if me.Name != tt.want {
			t.Errorf("%s: token %q, want %q", tt.name, me.Name, tt.want)
		}
	}
	_, _, err := cli{t: t, f: f}.run("whoami")
	if err == nil || err.Error() != "no token: set PANDO_TOKEN or PANDO_TOKEN_FILE, or pass --token-file" {
		t.Errorf("no token: %v", err)
	}
}

func TestServerFromEnv(t *testing.T) {
	f := newFake(t)
	c := cli{t: t, env: map[string]string{"PANDO_SERVER": f.url, "PANDO_TOKEN": "env"}}
	if out, _, err := c.run("whoami"); err != nil || !strings.Contains(out, "env") {
		t.Errorf("whoami via PANDO_SERVER = %q, %v", out, err)
	}
}

func TestBadCommandLines(t *testing.T) {
	c := withToken(t, newFake(t))
	for _, args := range [][]string{
		{"tasks", "-o", "yaml"},
		{"job", "x"},
		{"job"},
		{"token", "create"},
		{"--server", "localhost:7480", "whoami"},
	} {
		if _, _, err := c.run(args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func TestNotFoundText(t *testing.T) {
	_, _, err := withToken(t, newFake(t)).run("job", "99")
	if err == nil || !strings.Contains(err.Error(), "job 99: dispatcher: job not found (404)") {
		t.Errorf("err = %v", err)
	}
}

func TestLogsFollowResumes(t *testing.T) {
	f := newFake(t)
	f.addTask(1, "running")
	var queries []string
	f.logs = func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.RawQuery)
		if len(queries) == 1 { // break the stream after 3 bytes
			w.Header().Set("Content-Length", "100")
			w.Write([]byte("abc"))
			return
		}
		w.Write([]byte("def"))
	}
	out, stderr, err := withToken(t, f).run("logs", "-f", "2")
	if err != nil || out != "abcdef" {
		t.Fatalf("logs -f = %q, %v", out, err)
	}
	want := []string{"attempt=1&follow=true", "attempt=1&follow=true&offset=3"}
	if strings.Join(queries, " ") != strings.Join(want, " ") {
		t.Errorf("queries = %q, want %q", queries, want)
	}
	if !strings.Contains(stderr, "reconnecting") {
		t.Errorf("stderr = %q", stderr)
	}
}

func TestExitErrorCode(t *testing.T) {
	var err error = &exitError{code: 2, msg: "x"}
	var ec interface{ ExitCode() int }
	if !errors.As(err, &ec) || ec.ExitCode() != 2 || err.Error() != "x" {
		t.Errorf("exitError = %v", err)
	}
}
