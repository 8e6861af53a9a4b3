package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pando-wms/pando/dispatcher/auth"
	"github.com/pando-wms/pando/dispatcher/broker"
	"github.com/pando-wms/pando/dispatcher/queue"
	"github.com/pando-wms/pando/dispatcher/share"
	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/store/sqlite"
	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/dispatcher/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sampleTask is the task file of the issue that introduced the API.
const sampleTask = `name: hello
command: ["/bin/sh", "-c", "echo hello from job $PANDO_JOB_INDEX"]
jobs: 20
resources: {cores: 1, memory: 256MiB, walltime: 10m}
priority: 100
max_attempts: 3
`

// fakeBackend stores submitted tasks in the real store like the dispatcher
// does, and records kills and retries; the broker is what it fakes.
type fakeBackend struct {
	st      store.Store
	logDir  string
	agents  []broker.AgentInfo
	workers []Worker

	polOnce sync.Once
	pol     *broker.Broker // queues and shares, with the broker's rules

	mu      sync.Mutex
	live    map[int64]store.Job
	kills   []int64
	retries []int64
}

var _ Backend = (*fakeBackend)(nil)

func (b *fakeBackend) policy() *broker.Broker {
	b.polOnce.Do(func() { b.pol = broker.New(broker.Config{}, nil) })
	return b.pol
}

func (b *fakeBackend) PutQueue(ctx context.Context, q queue.Queue, create bool) (broker.QueueInfo, error) {
	if err := q.Normalize(); err != nil {
		return broker.QueueInfo{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	switch exists := b.policy().HasQueue(q.Name); {
	case create && exists:
		return broker.QueueInfo{}, fmt.Errorf("%w: queue %q exists", ErrConflict, q.Name)
	case !create && !exists:
		return broker.QueueInfo{}, fmt.Errorf("queue %q: %w", q.Name, store.ErrNotFound)
	}
	b.policy().PutQueue(q)
	info, _ := b.policy().Queue(q.Name)
	return info, nil
}

func (b *fakeBackend) Queues() []broker.QueueInfo { return b.policy().Queues() }

func (b *fakeBackend) Queue(name string) (broker.QueueInfo, bool) { return b.policy().Queue(name) }

func (b *fakeBackend) SetShare(ctx context.Context, path string, target float64) error {
	if target == 0 {
		if _, ok := b.policy().ShareTarget(path); !ok {
			return fmt.Errorf("share %q: %w", path, store.ErrNotFound)
		}
		return b.policy().UnsetShare(path)
	}
	if err := b.policy().SetShare(path, target); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

func (b *fakeBackend) Shares() []share.Status { return b.policy().Shares() }

func (b *fakeBackend) Why(id int64) (broker.Why, bool) { return broker.Why{}, false }

func (b *fakeBackend) Metrics() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "pando_agents_connected 1")
	})
}

func (b *fakeBackend) Submit(ctx context.Context, owner string, spec *task.Spec) (int64, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	t := &store.Task{Owner: owner, Name: spec.Name, Queue: spec.Queue, Priority: spec.Priority,
		Jobs: spec.Jobs, MaxAttempts: spec.MaxAttempts, Spec: raw, Created: now}
	jobs := make([]store.Job, spec.Jobs)
	for i := range jobs {
		jobs[i] = store.Job{Index: i, State: store.Ready, MaxAttempts: spec.MaxAttempts, Created: now, Updated: now}
	}
	if err := b.st.CreateTask(ctx, t, jobs); err != nil {
		return 0, err
	}
	return t.ID, nil
}

func (b *fakeBackend) Kill(ctx context.Context, id int64, by string) (string, int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.kills = append(b.kills, id)
	return "task", 7, nil
}

func (b *fakeBackend) Retry(ctx context.Context, id int64) (string, int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.retries = append(b.retries, id)
	return "job", 1, nil
}

func (b *fakeBackend) LiveJob(id int64) (store.Job, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	j, ok := b.live[id]
	return j, ok
}

func (b *fakeBackend) setLive(j store.Job) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.live[j.ID] = j
}

func (b *fakeBackend) endLive(id int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.live, id)
}

func (b *fakeBackend) calls() (kills, retries []int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int64(nil), b.kills...), append([]int64(nil), b.retries...)
}

func (b *fakeBackend) Agents() []broker.AgentInfo { return b.agents }

func (b *fakeBackend) Workers(queue string) []Worker {
	var out []Worker
	for _, w := range b.workers {
		if queue == "" || w.Queue == queue {
			out = append(out, w)
		}
	}
	return out
}

func (b *fakeBackend) LogPath(job int64, attempt int) string {
	return filepath.Join(b.logDir, fmt.Sprintf("%d.%d.log", job, attempt))
}

// env is an API server over a real SQLite store and authenticator.
type env struct {
	t    *testing.T
	st   store.Store
	be   *fakeBackend
	auth *auth.Authenticator
	url  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	be := &fakeBackend{st: st, logDir: t.TempDir(), live: map[int64]store.Job{}}
	a := auth.NewAuthenticator(st, time.Minute)
	srv := httptest.NewServer(NewServer(st, be, a, nil))
	t.Cleanup(srv.Close)
	return &env{t: t, st: st, be: be, auth: a, url: srv.URL + Prefix}
}

// on returns e reporting to t, for subtests.
func (e *env) on(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// token mints a token for name with role.
func (e *env) token(role store.Role, name string) string {
	e.t.Helper()
	secret, err := e.auth.Create(context.Background(), role, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// call sends a request with token (none if empty) and returns the status
// and body.
func (e *env) call(method, path, token, body string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, data
}

// ok calls and decodes a response of status want into out (if not nil).
func (e *env) ok(method, path, token, body string, want int, out any) {
	e.t.Helper()
	status, data := e.call(method, path, token, body)
	if status != want {
		e.t.Fatalf("%s %s = %d %s, want %d", method, path, status, data, want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
}

// fails checks that a call fails with status and a JSON error naming
// each of words.
func (e *env) fails(method, path, token, body string, status int, words ...string) {
	e.t.Helper()
	got, data := e.call(method, path, token, body)
	var er ErrorResponse
	if err := json.Unmarshal(data, &er); err != nil || er.Error == "" {
		e.t.Errorf("%s %s: body %q is not an ErrorResponse (%v)", method, path, data, err)
	}
	if got != status {
		e.t.Errorf("%s %s = %d %s, want %d", method, path, got, data, status)
	}
	for _, w := range words {
		if !strings.Contains(er.Error, w) {
			e.t.Errorf("%s %s: error %q does not name %q", method, path, er.Error, w)
		}
	}
}

// submit submits sampleTask as token's holder and returns its ID.
func (e *env) submit(token string) int64 {
	e.t.Helper()
	var r SubmitResponse
	e.ok("POST", "/tasks", token, sampleTask, http.StatusCreated, &r)
	return r.ID
}

// jobs returns the stored jobs of a task.
func (e *env) jobs(taskID int64) []store.Job {
	e.t.Helper()
	js, err := e.st.Jobs(context.Background(), store.JobFilter{TaskID: taskID})
	if err != nil {
		e.t.Fatal(err)
	}
	return js
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	good := e.token(store.RoleAdmin, "root")
	for _, h := range []string{"", "Bearer", "Bearer ", "Basic " + good, "bearer " + good, "Bearer pando_nope", "Bearer " + good + "x"} {
		req, _ := http.NewRequest("GET", e.url+"/whoami", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var er ErrorResponse
		err = json.NewDecoder(resp.Body).Decode(&er)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || err != nil || er.Error == "" {
			t.Errorf("Authorization %q: %d %+v (%v), want 401 with an error", h, resp.StatusCode, er, err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Authorization %q: Content-Type %q", h, ct)
		}
	}
	// Every endpoint is behind the token, even for a request that is bad
	// in other ways.
	for _, c := range []struct{ method, path string }{
		{"POST", "/tasks"}, {"GET", "/tasks"}, {"GET", "/tasks/1"}, {"GET", "/jobs"}, {"GET", "/jobs/1"},
		{"GET", "/jobs/1/logs"}, {"POST", "/kill/1"}, {"POST", "/retry/x"}, {"POST", "/tokens"},
		{"GET", "/whoami"}, {"GET", "/agents"},
	} {
		e.fails(c.method, c.path, "", "", http.StatusUnauthorized)
	}
	var w Whoami
	e.ok("GET", "/whoami", good, "", http.StatusOK, &w)
	if w != (Whoami{Name: "root", Role: "admin"}) {
		t.Errorf("whoami = %+v", w)
	}
}

func TestWhoami(t *testing.T) {
	e := newEnv(t)
	for _, role := range []store.Role{store.RoleAdmin, store.RoleOperator, store.RoleUser, store.RoleAgent} {
		name := "someone-" + string(role)
		var w Whoami
		e.ok("GET", "/whoami", e.token(role, name), "", http.StatusOK, &w)
		if w != (Whoami{Name: name, Role: string(role)}) {
			t.Errorf("whoami as %s = %+v", role, w)
		}
	}
}

func TestSubmitSample(t *testing.T) {
	e := newEnv(t)
	alice := e.token(store.RoleUser, "alice")
	status, data := e.call("POST", "/tasks", alice, sampleTask)
	if status != http.StatusCreated {
		t.Fatalf("submit = %d %s", status, data)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	id, _ := raw["id"].(float64)
	if len(raw) != 2 || id <= 0 || raw["jobs"] != float64(20) {
		t.Fatalf("submit answered %s, want {\"id\":N,\"jobs\":20}", data)
	}
	st, err := e.st.Task(context.Background(), int64(id))
	if err != nil {
		t.Fatal(err)
	}
	if st.Owner != "alice" || st.Name != "hello" || st.Jobs != 20 || st.Priority != 100 || st.MaxAttempts != 3 {
		t.Errorf("stored task %+v", st)
	}
	if js := e.jobs(int64(id)); len(js) != 20 || js[0].State != store.Ready {
		t.Errorf("stored %d jobs, first %+v", len(js), js)
	}

	// The same task as JSON.
	js := `{"name": "hello", "command": ["true"], "jobs": 2, "resources": {"memory": "1GiB"}}`
	var r SubmitResponse
	e.ok("POST", "/tasks", alice, js, http.StatusCreated, &r)
	if r.Jobs != 2 || r.ID <= int64(id) {
		t.Errorf("JSON submit = %+v", r)
	}
}

func TestSubmitInvalid(t *testing.T) {
	e := newEnv(t)
	alice := e.token(store.RoleUser, "alice")
	tests := []struct {
		name, file, field string
	}{
		{"unknown field", sampleTask + "colour: red\n", "colour"},
		{"unknown resource", strings.Replace(sampleTask, "cores: 1", "cpus: 1", 1), "cpus"},
		{"bad size", strings.Replace(sampleTask, "256MiB", "256 lots", 1), "resources.memory"},
		{"zero jobs", strings.Replace(sampleTask, "jobs: 20", "jobs: 0", 1), "jobs"},
		{"no command", "name: x\n", "command"},
		{"empty", "", "empty"},
		{"not yaml", "{{{", "task file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.on(t).fails("POST", "/tasks", alice, tt.file, http.StatusBadRequest, tt.field)
		})
	}
	var ts []Task
	e.ok("GET", "/tasks", alice, "", http.StatusOK, &ts)
	if len(ts) != 0 {
		t.Errorf("invalid submissions stored tasks: %+v", ts)
	}
}

func TestSubmitTooLarge(t *testing.T) {
	e := newEnv(t)
	alice := e.token(store.RoleUser, "alice")
	// A valid task padded with a comment past the limit.
	big := sampleTask + "# " + strings.Repeat("x", maxTaskFile) + "\n"
	e.fails("POST", "/tasks", alice, big, http.StatusRequestEntityTooLarge)
	// Just under the limit is accepted.
	fits := sampleTask + "#" + strings.Repeat("x", maxTaskFile-len(sampleTask)-2) + "\n"
	e.ok("POST", "/tasks", alice, fits, http.StatusCreated, nil)
	var ts []Task
	e.ok("GET", "/tasks", alice, "", http.StatusOK, &ts)
	if len(ts) != 1 {
		t.Errorf("%d tasks stored, want the one that fits", len(ts))
	}
}

func TestAgentRole(t *testing.T) {
	e := newEnv(t)
	id := e.submit(e.token(store.RoleUser, "alice"))
	job := e.jobs(id)[0].ID
	agent := e.token(store.RoleAgent, "pilot-1")
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/tasks", sampleTask},
		{"GET", "/tasks", ""},
		{"GET", fmt.Sprint("/tasks/", id), ""},
		{"GET", "/jobs", ""},
		{"GET", fmt.Sprint("/jobs?task=", id), ""},
		{"GET", fmt.Sprint("/jobs/", job), ""},
		{"GET", fmt.Sprint("/jobs/", job, "/logs"), ""},
		{"POST", fmt.Sprint("/kill/", id), ""},
		{"POST", fmt.Sprint("/retry/", job), ""},
		{"POST", "/tokens", `{"role":"admin","name":"evil"}`},
		{"GET", "/agents", ""},
	} {
		e.fails(c.method, c.path, agent, c.body, http.StatusForbidden)
	}
	if kills, retries := e.be.calls(); len(kills)+len(retries) != 0 {
		t.Errorf("backend called: kills %v, retries %v", kills, retries)
	}
	if js := e.jobs(id); len(js) != 20 {
		t.Errorf("%d jobs", len(js))
	}
}

func TestCreateToken(t *testing.T) {
	e := newEnv(t)
	admin := e.token(store.RoleAdmin, "root")
	for _, role := range []string{"admin", "operator", "user", "agent"} {
		name := "new-" + role
		var tr TokenResponse
		e.ok("POST", "/tokens", admin, fmt.Sprintf(`{"role":%q,"name":%q}`, strings.ToUpper(role), name), http.StatusCreated, &tr)
		if tr.Name != name || tr.Role != role || !strings.HasPrefix(tr.Token, "pando_") {
			t.Errorf("token for %s = %+v", role, tr)
		}
		var w Whoami
		e.ok("GET", "/whoami", tr.Token, "", http.StatusOK, &w)
		if w != (Whoami{Name: name, Role: role}) {
			t.Errorf("new %s token authenticates as %+v", role, w)
		}
	}

	e.fails("POST", "/tokens", admin, `{"role":"root","name":"x"}`, http.StatusBadRequest, "root")
	e.fails("POST", "/tokens", admin, `{"role":"user"}`, http.StatusBadRequest, "name")
	e.fails("POST", "/tokens", admin, `{"role":"user","name":"a\nb"}`, http.StatusBadRequest, "name")
	e.fails("POST", "/tokens", admin, fmt.Sprintf(`{"role":"user","name":%q}`, strings.Repeat("n", 129)), http.StatusBadRequest, "name")
	e.fails("POST", "/tokens", admin, `not json`, http.StatusBadRequest)
	for _, role := range []store.Role{store.RoleOperator, store.RoleUser} {
		e.fails("POST", "/tokens", e.token(role, "x"), `{"role":"admin","name":"x"}`, http.StatusForbidden)
	}
}

func TestAgents(t *testing.T) {
	e := newEnv(t)
	since := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	e.be.agents = []broker.AgentInfo{{ID: "a1", Name: "pilot-1", Kind: "pilot", Queue: "short", Connected: true,
		Since: since, Running: 2, Resources: wire.Resources{Cores: 8}}}
	for _, role := range []store.Role{store.RoleAdmin, store.RoleOperator} {
		var as []Agent
		e.ok("GET", "/agents", e.token(role, "op"), "", http.StatusOK, &as)
		if len(as) != 1 || as[0].ID != "a1" || as[0].Name != "pilot-1" || as[0].Queue != "short" ||
			!as[0].Connected || !as[0].Since.Equal(since) || as[0].Running != 2 || as[0].Resources.Cores != 8 {
			t.Errorf("agents as %s = %+v", role, as)
		}
	}
	e.fails("GET", "/agents", e.token(store.RoleUser, "alice"), "", http.StatusForbidden)

	e.be.agents = nil
	status, data := e.call("GET", "/agents", e.token(store.RoleOperator, "op2"), "")
	if status != http.StatusOK || strings.TrimSpace(string(data)) != "[]" {
		t.Errorf("no agents = %d %s, want []", status, data)
	}
}

func TestUnknownPath(t *testing.T) {
	e := newEnv(t)
	admin := e.token(store.RoleAdmin, "root")
	if status, _ := e.call("GET", "/nope", admin, ""); status != http.StatusNotFound {
		t.Errorf("unknown path = %d", status)
	}
	if status, _ := e.call("DELETE", "/tasks", admin, ""); status != http.StatusMethodNotAllowed {
		t.Errorf("wrong method = %d", status)
	}
}

// writeLog writes (or appends to) a job's log of an attempt.
func (e *env) writeLog(job int64, attempt int, text string) {
	e.t.Helper()
	f, err := os.OpenFile(e.be.LogPath(job, attempt), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		e.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		e.t.Fatal(err)
	}
}
