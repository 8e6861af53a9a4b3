package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/pando-wms/pando/dispatcher/api"
)

// fake is a small in-memory dispatcher API, enough for the CLI's tests; the
// real server has its own end-to-end tests.
type fake struct {
	mu       sync.Mutex
	tasks    map[int64]*api.Task
	jobs     map[int64]*api.Job
	pageSize int // the dispatcher's page size, small to test paging
	body     string
	ctype    string
	polls    int                      // GET /tasks/{id} and /jobs/{id} so far
	onPoll   func(f *fake, polls int) // advances states, under mu
	logs     http.HandlerFunc
	url      string
}

func newFake(t *testing.T) *fake {
	f := &fake{tasks: map[int64]*api.Task{}, jobs: map[int64]*api.Job{}, pageSize: 2}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/tasks", f.submit)
	mux.HandleFunc("GET /api/v1/tasks", f.listTasks)
	mux.HandleFunc("GET /api/v1/tasks/{id}", f.getTask)
	mux.HandleFunc("GET /api/v1/jobs", f.listJobs)
	mux.HandleFunc("GET /api/v1/jobs/{id}", f.getJob)
	mux.HandleFunc("GET /api/v1/jobs/{id}/logs", func(w http.ResponseWriter, r *http.Request) { f.logs(w, r) })
	mux.HandleFunc("POST /api/v1/kill/{id}", f.action("kill"))
	mux.HandleFunc("POST /api/v1/tokens", f.token)
	mux.HandleFunc("GET /api/v1/whoami", f.whoami)
	srv := httptest.NewServer(f.auth(mux))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *fake) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			answer(w, 401, api.ErrorResponse{Error: "no token"})
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// addTask adds task id with one job per given state, IDs id+1, id+2, ...
func (f *fake) addTask(id int64, states ...string) {
	t := &api.Task{ID: id, Name: "t" + strconv.FormatInt(id, 10), Owner: "bob", Jobs: len(states)}
	f.tasks[id] = t
	for i, s := range states {
		f.jobs[id+1+int64(i)] = &api.Job{ID: id + 1 + int64(i), Task: id, Index: i, State: s, Attempt: 1, MaxAttempts: 3}
	}
	f.recount(id)
}

func (f *fake) recount(id int64) {
	t := f.tasks[id]
	t.Counts = map[string]int{}
	for _, j := range f.jobs {
		if j.Task == id {
			t.Counts[j.State]++
		}
	}
}

func (f *fake) submit(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.body, f.ctype = string(b), r.Header.Get("Content-Type")
	answer(w, 201, api.SubmitResponse{ID: 42, Jobs: 3})
}

func (f *fake) listTasks(w http.ResponseWriter, r *http.Request) {
	var all []api.Task
	for _, t := range f.tasks {
		all = append(all, *t)
	}
	answer(w, 200, pageOf(f, r, all, func(t api.Task) int64 { return t.ID }))
}

func (f *fake) listJobs(w http.ResponseWriter, r *http.Request) {
	var all []api.Job
	task, _ := strconv.ParseInt(r.URL.Query().Get("task"), 10, 64)
	state := r.URL.Query().Get("state")
	for _, j := range f.jobs {
		if (task == 0 || j.Task == task) && (state == "" || j.State == state) {
			all = append(all, *j)
		}
	}
	answer(w, 200, pageOf(f, r, all, func(j api.Job) int64 { return j.ID }))
}

// pageOf applies ?after and ?limit, and the fake's page size.
func pageOf[T any](f *fake, r *http.Request, all []T, id func(T) int64) []T {
	sort.Slice(all, func(i, j int) bool { return id(all[i]) < id(all[j]) })
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > f.pageSize {
		limit = f.pageSize
	}
	out := []T{}
	for _, v := range all {
		if id(v) > after && len(out) < limit {
			out = append(out, v)
		}
	}
	return out
}

func (f *fake) poll() {
	f.polls++
	if f.onPoll != nil {
		f.onPoll(f, f.polls)
	}
}

func (f *fake) getTask(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	f.poll()
	if t, ok := f.tasks[id]; ok {
		answer(w, 200, t)
		return
	}
	answer(w, 404, api.ErrorResponse{Error: "task not found"})
}

func (f *fake) getJob(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	f.poll()
	if j, ok := f.jobs[id]; ok {
		answer(w, 200, j)
		return
	}
	answer(w, 404, api.ErrorResponse{Error: "job not found"})
}

func (f *fake) action(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		answer(w, 200, api.ActionResponse{ID: id, Kind: "task", Affected: 2})
	}
}

func (f *fake) token(w http.ResponseWriter, r *http.Request) {
	var req api.TokenRequest
	json.NewDecoder(r.Body).Decode(&req)
	answer(w, 200, api.TokenResponse{Token: "pando_secret", Name: req.Name, Role: req.Role})
}

// whoami names the caller after its token, so tests can see which token
// the CLI chose.
func (f *fake) whoami(w http.ResponseWriter, r *http.Request) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	answer(w, 200, api.Whoami{Name: tok, Role: "user"})
}

// cli runs the user CLI against f with env as the whole environment.
type cli struct {
	t        *testing.T
	f        *fake
	env      map[string]string
	stdin    string
	terminal bool
}

func (c cli) run(args ...string) (stdout, stderr string, err error) {
	root := &cobra.Command{Use: "pando"}
	u := &userCLI{
		getenv:   func(k string) string { return c.env[k] },
		poll:     5 * time.Millisecond,
		terminal: func(io.Writer) bool { return c.terminal },
		retryFor: time.Second,
	}
	u.add(root)
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(c.stdin))
	if c.f != nil {
		args = append([]string{"--server", c.f.url}, args...)
	}
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errb.String(), err
}

func withToken(t *testing.T, f *fake) cli {
	return cli{t: t, f: f, env: map[string]string{"PANDO_TOKEN": "tok"}}
}
