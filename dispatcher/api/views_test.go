package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/errcode"
	"github.com/pando-wms/pando/dispatcher/store"
)

// apply writes a batch to the store.
func (e *env) apply(b *store.Batch) {
	e.t.Helper()
	if err := e.st.Apply(context.Background(), b); err != nil {
		e.t.Fatal(err)
	}
}

// finish records that job ended its first attempt in state with exit code.
func (e *env) finish(j store.Job, state store.State, exit int) store.Job {
	e.t.Helper()
	now := time.Now()
	j.State, j.Attempt, j.ExitCode, j.Updated, j.Started, j.Ended = state, 1, &exit, now, now.Add(-time.Second), now
	j.AgentID, j.AgentName = "a1", "pilot-1"
	if state == store.Failed {
		j.ErrorCode, j.Error = int(errcode.PayloadExit), "exit status 3"
	}
	e.apply(&store.Batch{Jobs: []store.Job{j}, Attempts: []store.Attempt{{JobID: j.ID, Attempt: 1,
		AgentID: "a1", AgentName: "pilot-1", State: state, ExitCode: &exit, ErrorCode: j.ErrorCode, Error: j.Error,
		Assigned: j.Started, Started: j.Started, Ended: now, CPUSeconds: 1.5}}})
	return j
}

func TestGetTask(t *testing.T) {
	e := newEnv(t)
	alice := e.token(store.RoleUser, "alice")
	id := e.submit(alice)

	var v Task
	e.ok("GET", fmt.Sprint("/tasks/", id), alice, "", http.StatusOK, &v)
	if v.ID != id || v.Name != "hello" || v.Owner != "alice" || v.Priority != 100 || v.Jobs != 20 ||
		v.State != "ready" || v.Counts["ready"] != 20 || len(v.Counts) != 1 || v.Created.IsZero() {
		t.Errorf("task = %+v", v)
	}
	if s := v.Spec; s == nil || s.Name != "hello" || len(s.Command) != 3 || s.Jobs != 20 ||
		s.Resources.MemoryBytes != 256<<20 || s.Resources.Walltime != 10*time.Minute || s.MaxAttempts != 3 {
		t.Errorf("spec = %+v", v.Spec)
	}

	// The state follows the jobs.
	js := e.jobs(id)
	running := js[0]
	running.State, running.Attempt = store.Running, 1
	e.apply(&store.Batch{Jobs: []store.Job{running}})
	e.ok("GET", fmt.Sprint("/tasks/", id), alice, "", http.StatusOK, &v)
	if v.State != "running" || v.Counts["running"] != 1 || v.Counts["ready"] != 19 {
		t.Errorf("one running: state %q, counts %v", v.State, v.Counts)
	}
	batch := &store.Batch{}
	for i, j := range js {
		j.State = store.Finished
		if i == 3 {
			j.State = store.Failed
		}
		batch.Jobs = append(batch.Jobs, j)
	}
	e.apply(batch)
	e.ok("GET", fmt.Sprint("/tasks/", id), alice, "", http.StatusOK, &v)
	if v.State != "failed" || v.Counts["finished"] != 19 || v.Counts["failed"] != 1 {
		t.Errorf("one failed: state %q, counts %v", v.State, v.Counts)
	}

	// The list has the same view without the spec.
	var ts []Task
	e.ok("GET", "/tasks", alice, "", http.StatusOK, &ts)
	if len(ts) != 1 || ts[0].State != "failed" || ts[0].Spec != nil || ts[0].Counts["finished"] != 19 {
		t.Errorf("list = %+v", ts)
	}

	for _, bad := range []string{"x", "0", "-1", "1.5"} {
		e.fails("GET", "/tasks/"+bad, alice, "", http.StatusBadRequest, "id")
	}
	e.fails("GET", "/tasks/999999", alice, "", http.StatusNotFound)
	// A job's ID is not a task's.
	e.fails("GET", fmt.Sprint("/tasks/", js[0].ID), alice, "", http.StatusNotFound)
}

func TestTaskStates(t *testing.T) {
	tests := []struct {
		counts map[store.State]int
		want   string
	}{
		{map[store.State]int{store.Ready: 3}, "ready"},
		{map[store.State]int{store.Pending: 3}, "pending"},
		{map[store.State]int{store.Ready: 1, store.Pending: 2}, "ready"},
		{map[store.State]int{store.Assigned: 1, store.Finished: 2}, "running"},
		{map[store.State]int{store.Running: 1, store.Failed: 2}, "running"},
		{map[store.State]int{store.Finished: 3}, "finished"},
		{map[store.State]int{store.Finished: 2, store.Failed: 1}, "failed"},
		{map[store.State]int{store.Failed: 1, store.Cancelled: 2}, "failed"},
		{map[store.State]int{store.Finished: 2, store.Cancelled: 1}, "cancelled"},
	}
	for _, tt := range tests {
		if got := taskState(tt.counts, 3); got != tt.want {
			t.Errorf("taskState(%v) = %q, want %q", tt.counts, got, tt.want)
		}
	}
}

func TestVisibility(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.token(store.RoleUser, "alice"), e.token(store.RoleUser, "bob")
	ta, tb := e.submit(alice), e.submit(bob)
	ja, jb := e.jobs(ta)[0].ID, e.jobs(tb)[0].ID

	// alice sees her own work only; bob's is not found, not forbidden.
	e.ok("GET", fmt.Sprint("/tasks/", ta), alice, "", http.StatusOK, nil)
	e.ok("GET", fmt.Sprint("/jobs/", ja), alice, "", http.StatusOK, nil)
	e.fails("GET", fmt.Sprint("/tasks/", tb), alice, "", http.StatusNotFound)
	e.fails("GET", fmt.Sprint("/jobs/", jb), alice, "", http.StatusNotFound)
	e.fails("GET", fmt.Sprint("/jobs/", jb, "/logs"), alice, "", http.StatusNotFound)
	e.fails("GET", fmt.Sprint("/jobs?task=", tb), alice, "", http.StatusNotFound)
	// The answer for bob's task is the one for a task that does not exist.
	_, mine := e.call("GET", "/tasks/999999", alice, "")
	_, his := e.call("GET", fmt.Sprint("/tasks/", tb), alice, "")
	if len(mine) == 0 || len(his) == 0 {
		t.Errorf("empty not-found bodies")
	}

	var ts []Task
	e.ok("GET", "/tasks", alice, "", http.StatusOK, &ts)
	if len(ts) != 1 || ts[0].ID != ta {
		t.Errorf("alice lists %+v", ts)
	}
	var js []Job
	e.ok("GET", "/jobs", alice, "", http.StatusOK, &js)
	if len(js) != 20 {
		t.Errorf("alice lists %d jobs, want 20", len(js))
	}
	for _, j := range js {
		if j.Task != ta {
			t.Errorf("alice lists job %d of task %d", j.ID, j.Task)
		}
	}

	for _, role := range []store.Role{store.RoleOperator, store.RoleAdmin} {
		tok := e.token(role, "staff")
		e.ok("GET", fmt.Sprint("/tasks/", tb), tok, "", http.StatusOK, nil)
		e.ok("GET", fmt.Sprint("/jobs/", ja), tok, "", http.StatusOK, nil)
		e.ok("GET", fmt.Sprint("/jobs/", jb, "/logs"), tok, "", http.StatusOK, nil)
		e.ok("GET", "/tasks", tok, "", http.StatusOK, &ts)
		if len(ts) != 2 || ts[0].Owner != "alice" || ts[1].Owner != "bob" {
			t.Errorf("%s lists %+v", role, ts)
		}
		e.ok("GET", "/jobs", tok, "", http.StatusOK, &js)
		if len(js) != 40 {
			t.Errorf("%s lists %d jobs, want 40", role, len(js))
		}
		e.ok("GET", fmt.Sprint("/jobs?task=", tb), tok, "", http.StatusOK, &js)
		if len(js) != 20 || js[0].Task != tb {
			t.Errorf("%s lists %d jobs of bob's task", role, len(js))
		}
	}
}

func TestListTasksPaging(t *testing.T) {
	e := newEnv(t)
	alice := e.token(store.RoleUser, "alice")
	var ids []int64
	for range 3 {
		ids = append(ids, e.submit(alice))
	}
	var ts []Task
	e.ok("GET", "/tasks?limit=2", alice, "", http.StatusOK, &ts)
	if len(ts) != 2 || ts[0].ID != ids[0] || ts[1].ID != ids[1] {
		t.Fatalf("first page %+v", ts)
	}
	e.ok("GET", fmt.Sprint("/tasks?limit=2&after=", ids[1]), alice, "", http.StatusOK, &ts)
	if len(ts) != 1 || ts[0].ID != ids[2] {
		t.Errorf("second page %+v", ts)
	}
	e.ok("GET", fmt.Sprint("/tasks?after=", ids[2]), alice, "", http.StatusOK, &ts)
	if ts == nil || len(ts) != 0 {
		t.Errorf("past the end: %+v, want []", ts)
	}
	for _, q := range []string{"limit=x", "limit=-1", "after=x", "after=-5", "limit=1e3"} {
		e.fails("GET", "/tasks?"+q, alice, "", http.StatusBadRequest)
	}
}

func TestListJobs(t *testing.T) {
	e := newEnv(t)
	alice := e.token(store.RoleUser, "alice")
	ta, tb := e.submit(alice), e.submit(alice)
	js := e.jobs(ta)
	e.finish(js[2], store.Finished, 0)
	e.finish(js[5], store.Failed, 3)
	e.finish(js[7], store.Failed, 4)

	list := func(q string) []Job {
		t.Helper()
		var out []Job
		e.ok("GET", "/jobs?"+q, alice, "", http.StatusOK, &out)
		return out
	}
	ids := func(jobs []Job) []int64 {
		out := make([]int64, len(jobs))
		for i, j := range jobs {
			out[i] = j.ID
		}
		return out
	}
	if got := list(fmt.Sprint("task=", ta)); len(got) != 20 || got[0].ID != js[0].ID || got[19].ID != js[19].ID {
		t.Errorf("task=%d: %v", ta, ids(got))
	}
	if got := list(fmt.Sprint("task=", ta, "&state=failed")); fmt.Sprint(ids(got)) != fmt.Sprint([]int64{js[5].ID, js[7].ID}) {
		t.Errorf("failed: %v", ids(got))
	}
	if got := list("state=finished"); len(got) != 1 || got[0].ID != js[2].ID || got[0].State != "finished" {
		t.Errorf("finished: %+v", got)
	}
	if got := list("state=ready"); len(got) != 37 {
		t.Errorf("ready: %d jobs, want 37", len(got))
	}
	if got := list(fmt.Sprint("task=", tb, "&state=failed")); got == nil || len(got) != 0 {
		t.Errorf("none failed in task %d: %+v", tb, got)
	}

	// Paging through one task, three at a time.
	var seen []int64
	after := int64(0)
	for range 10 {
		page := list(fmt.Sprint("task=", ta, "&limit=3&after=", after))
		if len(page) == 0 {
			break
		}
		if len(page) > 3 {
			t.Fatalf("page of %d", len(page))
		}
		seen = append(seen, ids(page)...)
		after = page[len(page)-1].ID
	}
	want := make([]int64, len(js))
	for i, j := range js {
		want[i] = j.ID
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("paged %v, want %v", seen, want)
	}
	if got := list(fmt.Sprint("state=failed&limit=1&after=", js[5].ID)); len(got) != 1 || got[0].ID != js[7].ID {
		t.Errorf("failed after %d: %v", js[5].ID, ids(got))
	}

	for _, q := range []string{"task=x", "task=-1", "state=done", "state=READY", "limit=x", "limit=-2", "after=y"} {
		e.fails("GET", "/jobs?"+q, alice, "", http.StatusBadRequest)
	}
	e.fails("GET", "/jobs?state=bogus", alice, "", http.StatusBadRequest, "bogus")
	e.fails("GET", "/jobs?task=999999", alice, "", http.StatusNotFound)
}

func TestGetJob(t *testing.T) {
	e := newEnv(t)
	alice := e.token(store.RoleUser, "alice")
	id := e.submit(alice)
	js := e.jobs(id)

	status, data := e.call("GET", fmt.Sprint("/jobs/", js[0].ID), alice, "")
	if status != http.StatusOK {
		t.Fatalf("get job = %d %s", status, data)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "task", "state", "attempt", "exit_code", "error_code", "error"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("job JSON %s lacks %q", data, k)
		}
	}
	if raw["exit_code"] != nil || raw["state"] != "ready" || raw["attempt"] != float64(0) ||
		raw["task"] != float64(id) || raw["id"] != float64(js[0].ID) || raw["error_code"] != float64(0) || raw["error"] != "" {
		t.Errorf("fresh job %s", data)
	}
	if _, ok := raw["attempts"]; ok {
		t.Errorf("fresh job has attempts: %s", data)
	}

	failed := e.finish(js[1], store.Failed, 3)
	var v Job
	e.ok("GET", fmt.Sprint("/jobs/", failed.ID), alice, "", http.StatusOK, &v)
	if v.State != "failed" || v.Attempt != 1 || v.ExitCode == nil || *v.ExitCode != 3 || v.ErrorCode != int(errcode.PayloadExit) ||
		v.Error != "exit status 3" || v.Agent != "pilot-1" || v.Index != 1 || v.MaxAttempts != 3 ||
		v.Started == nil || v.Ended == nil || v.ErrorName != errcode.PayloadExit.Name() {
		t.Errorf("failed job %+v", v)
	}
	if len(v.Attempts) != 1 || v.Attempts[0].Attempt != 1 || v.Attempts[0].State != "failed" ||
		v.Attempts[0].ExitCode == nil || *v.Attempts[0].ExitCode != 3 || v.Attempts[0].CPUSeconds != 1.5 {
		t.Errorf("attempts %+v", v.Attempts)
	}

	// A live job is shown as the broker sees it.
	live := js[2]
	live.State, live.Attempt, live.AgentName = store.Running, 1, "pilot-2"
	e.be.setLive(live)
	e.ok("GET", fmt.Sprint("/jobs/", live.ID), alice, "", http.StatusOK, &v)
	if v.State != "running" || v.Attempt != 1 || v.Agent != "pilot-2" {
		t.Errorf("live job %+v", v)
	}
	var list []Job
	e.ok("GET", fmt.Sprint("/jobs?state=ready&task=", id), alice, "", http.StatusOK, &list)
	for _, j := range list {
		if j.ID == live.ID && j.State != "running" {
			t.Errorf("listed live job %+v", j)
		}
	}

	e.fails("GET", "/jobs/999999", alice, "", http.StatusNotFound)
	e.fails("GET", fmt.Sprint("/jobs/", id), alice, "", http.StatusNotFound) // a task's ID
	e.fails("GET", "/jobs/abc", alice, "", http.StatusBadRequest)
}
