package api

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, for editing the token table behind the store's back

	"github.com/pando-wms/pando/dispatcher/auth"
	"github.com/pando-wms/pando/dispatcher/broker"
	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/store/sqlite"
)

// caller is a column of the authorization matrix: who sends the request.
type caller int

const (
	asAdmin     caller = iota
	asOperator         // operator token
	asOwner            // user who owns the task and job under test
	asOther            // another user
	asAgent            // agent token
	asNone             // no Authorization header
	asMalformed        // the admin's secret under the wrong scheme
	asForged           // a well-formed pando_ secret that was never issued
	asExpired          // an admin token deleted from the store, its cache entry expired
	numCallers
)

var callerNames = [numCallers]string{"admin", "operator", "owner", "other-user", "agent",
	"no-token", "malformed-header", "forged-token", "expired-token"}

func (c caller) String() string { return callerNames[c] }

// principal names of the callers that hold a valid token.
var callerPrincipal = map[caller]Whoami{
	asAdmin:    {Name: "root", Role: "admin"},
	asOperator: {Name: "op", Role: "operator"},
	asOwner:    {Name: "alice", Role: "user"},
	asOther:    {Name: "bob", Role: "user"},
	asAgent:    {Name: "pilot-1", Role: "agent"},
}

// statuses is one matrix row: the status each caller must get.
type statuses map[caller]int

// authzRoute is one route (or one use of a route) with its expected
// statuses. Paths name the fixture's resources as {task}, {job},
// {otherTask} and {otherJob}.
type authzRoute struct {
	pattern string // as listed in the package comment of types.go
	name    string // subtest name
	method  string
	path    string
	body    string
	want    statuses
	mutates bool // a 2xx answer may change the store or call the backend
	// check inspects a 2xx answer.
	check func(t *testing.T, f *authzFixture, c caller, body []byte)
}

// authzMatrix is the authorization contract of the API: every route × every
// caller. The work under test (task {task}, its job {job}) belongs to the
// owner; {otherTask} and {otherJob} belong to the other user. Another user's
// work is not found, not forbidden, so that IDs leak nothing.
var authzMatrix = []authzRoute{
	{pattern: "POST /tasks", name: "submit", method: "POST", path: "/tasks", body: sampleTask, mutates: true,
		want:  statuses{asAdmin: 201, asOperator: 201, asOwner: 201, asOther: 201, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401},
		check: checkSubmitted},
	{pattern: "GET /tasks", name: "list-tasks", method: "GET", path: "/tasks",
		want:  statuses{asAdmin: 200, asOperator: 200, asOwner: 200, asOther: 200, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401},
		check: checkTaskList},
	{pattern: "GET /tasks/{id}", name: "get-task", method: "GET", path: "/tasks/{task}",
		want:  statuses{asAdmin: 200, asOperator: 200, asOwner: 200, asOther: 404, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401},
		check: checkTask},
	{pattern: "GET /jobs", name: "list-jobs", method: "GET", path: "/jobs",
		want:  statuses{asAdmin: 200, asOperator: 200, asOwner: 200, asOther: 200, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401},
		check: checkJobList},
	{pattern: "GET /jobs", name: "list-jobs-of-task", method: "GET", path: "/jobs?task={task}",
		want:  statuses{asAdmin: 200, asOperator: 200, asOwner: 200, asOther: 404, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401},
		check: checkJobsOfTask},
	{pattern: "GET /jobs/{id}", name: "get-job", method: "GET", path: "/jobs/{job}",
		want:  statuses{asAdmin: 200, asOperator: 200, asOwner: 200, asOther: 404, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401},
		check: checkJob},
	{pattern: "GET /jobs/{id}/logs", name: "job-logs", method: "GET", path: "/jobs/{job}/logs",
		want:  statuses{asAdmin: 200, asOperator: 200, asOwner: 200, asOther: 404, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401},
		check: checkLogs},
	{pattern: "GET /jobs/{id}/logs", name: "job-logs-attempt", method: "GET", path: "/jobs/{job}/logs?attempt=1&offset=0",
		want:  statuses{asAdmin: 200, asOperator: 200, asOwner: 200, asOther: 404, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401},
		check: checkLogs},
	{pattern: "POST /kill/{id}", name: "kill-task", method: "POST", path: "/kill/{task}", mutates: true,
		want:  statuses{asAdmin: 200, asOperator: 200, asOwner: 200, asOther: 404, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401},
		check: checkAction("{task}", (*fakeBackend).killed)},
	{pattern: "POST /kill/{id}", name: "kill-job", method: "POST", path: "/kill/{job}", mutates: true,
		want:  statuses{asAdmin: 200, asOperator: 200, asOwner: 200, asOther: 404, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401},
		check: checkAction("{job}", (*fakeBackend).killed)},
	{pattern: "POST /retry/{id}", name: "retry-task", method: "POST", path: "/retry/{task}", mutates: true,
		want:  statuses{asAdmin: 200, asOperator: 200, asOwner: 200, asOther: 404, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401},
		check: checkAction("{task}", (*fakeBackend).retried)},
	{pattern: "POST /retry/{id}", name: "retry-job", method: "POST", path: "/retry/{job}", mutates: true,
		want:  statuses{asAdmin: 200, asOperator: 200, asOwner: 200, asOther: 404, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401},
		check: checkAction("{job}", (*fakeBackend).retried)},
	{pattern: "POST /tokens", name: "create-token", method: "POST", path: "/tokens", body: `{"role":"admin","name":"minted"}`, mutates: true,
		want:  statuses{asAdmin: 201, asOperator: 403, asOwner: 403, asOther: 403, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401},
		check: checkMinted},
	{pattern: "GET /whoami", name: "whoami", method: "GET", path: "/whoami",
		want:  statuses{asAdmin: 200, asOperator: 200, asOwner: 200, asOther: 200, asAgent: 200, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401},
		check: checkWhoami},
	{pattern: "GET /agents", name: "agents", method: "GET", path: "/agents",
		want:  statuses{asAdmin: 200, asOperator: 200, asOwner: 403, asOther: 403, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401},
		check: checkAgents},
	{pattern: "GET /workers", name: "workers", method: "GET", path: "/workers?queue=hpc",
		want:  statuses{asAdmin: 200, asOperator: 200, asOwner: 403, asOther: 403, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401},
		check: checkWorkers},
	{pattern: "GET /queues", name: "list-queues", method: "GET", path: "/queues",
		want: statuses{asAdmin: 200, asOperator: 200, asOwner: 200, asOther: 200, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401}},
	{pattern: "GET /queues/{name}", name: "get-queue", method: "GET", path: "/queues/default",
		want: statuses{asAdmin: 200, asOperator: 200, asOwner: 200, asOther: 200, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401}},
	// The admin creates the queue; the operator's try, after it, conflicts.
	{pattern: "POST /queues", name: "create-queue", method: "POST", path: "/queues", body: `{"name":"hpc","kind":"hpc"}`, mutates: true,
		want: statuses{asAdmin: 201, asOperator: 409, asOwner: 403, asOther: 403, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401}},
	{pattern: "PUT /queues/{name}", name: "set-queue", method: "PUT", path: "/queues/default", body: `{"status":"online","max_running":100}`, mutates: true,
		want: statuses{asAdmin: 200, asOperator: 200, asOwner: 403, asOther: 403, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401}},
	{pattern: "GET /shares", name: "list-shares", method: "GET", path: "/shares",
		want: statuses{asAdmin: 200, asOperator: 200, asOwner: 200, asOther: 200, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401}},
	{pattern: "PUT /shares/{path}", name: "set-share", method: "PUT", path: "/shares/prod/mc", body: `{"target":50}`, mutates: true,
		want: statuses{asAdmin: 200, asOperator: 200, asOwner: 403, asOther: 403, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401}},
	// The admin removes the target; after it, the operator finds none.
	{pattern: "DELETE /shares/{path}", name: "unset-share", method: "DELETE", path: "/shares/prod/mc", mutates: true,
		want: statuses{asAdmin: 200, asOperator: 404, asOwner: 403, asOther: 403, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401}},
	{pattern: "GET /jobs/{id}/why", name: "job-why", method: "GET", path: "/jobs/{job}/why",
		want: statuses{asAdmin: 200, asOperator: 200, asOwner: 200, asOther: 404, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401}},
	{pattern: "GET /jobs/{id}/why", name: "job-why-other", method: "GET", path: "/jobs/{otherJob}/why",
		want: statuses{asAdmin: 200, asOperator: 200, asOwner: 404, asOther: 200, asAgent: 403, asNone: 401, asMalformed: 401, asForged: 401, asExpired: 401}},
}

// ownerLog is the owner's job output, which no one else may read.
const ownerLog = "alice's private output\n"

// authzFixture is a server over a real SQLite store and authenticator with
// the matrix's resources and one Authorization header per caller.
type authzFixture struct {
	*env
	db                  *sql.DB // a second handle on the store's file
	task, job           int64   // the owner's
	otherTask, otherJob int64   // the other user's
	header              [numCallers]string
}

// authzTTL is the authenticator's cache TTL: tiny, so that a deleted token
// stops working within the test.
const authzTTL = 20 * time.Millisecond

func newAuthzFixture(t *testing.T) *authzFixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db")
	st, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	be := &fakeBackend{st: st, logDir: t.TempDir(), live: map[int64]store.Job{},
		agents: []broker.AgentInfo{{ID: "a1", Name: "pilot-1", Kind: "pilot", Connected: true, Since: time.Now()}},
		workers: []Worker{{Harvester: "h1", Queue: "hpc", Batch: "slurm", Name: "hpc-1", BatchID: "7", State: "running"},
			{Harvester: "h1", Queue: "grid", Batch: "local", Name: "grid-1", BatchID: "1", State: "queued"}}}
	a := auth.NewAuthenticator(st, authzTTL)
	srv := httptest.NewServer(NewServer(st, be, a, nil))
	t.Cleanup(srv.Close)
	f := &authzFixture{env: &env{t: t, st: st, be: be, auth: a, url: srv.URL + Prefix}, db: db}

	for c, w := range callerPrincipal {
		f.header[c] = "Bearer " + f.token(store.Role(w.Role), w.Name)
	}
	f.header[asNone] = ""
	f.header[asMalformed] = "Basic " + strings.TrimPrefix(f.header[asAdmin], "Bearer ")
	forged, err := auth.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	f.header[asForged] = "Bearer " + forged
	f.header[asExpired] = "Bearer " + f.expiredToken()

	f.task = f.submit(strings.TrimPrefix(f.header[asOwner], "Bearer "))
	f.otherTask = f.submit(strings.TrimPrefix(f.header[asOther], "Bearer "))
	f.job, f.otherJob = f.jobs(f.task)[3].ID, f.jobs(f.otherTask)[3].ID
	// The owner's job ran once and wrote output.
	f.finish(f.jobs(f.task)[3], store.Finished, 0)
	f.writeLog(f.job, 1, ownerLog)
	return f
}

// expiredToken returns the secret of an admin token that worked, was
// cached, was then deleted from the store, and whose cache entry expired.
func (f *authzFixture) expiredToken() string {
	t := f.t
	t.Helper()
	secret := f.token(store.RoleAdmin, "retired")
	if status, body := f.do(t, "GET", "/whoami", "Bearer "+secret, ""); status != http.StatusOK {
		t.Fatalf("new token: whoami = %d %s", status, body)
	}
	res, err := f.db.Exec("DELETE FROM tokens WHERE hash = ?", auth.Hash(secret))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("deleted %d token rows (%v), want 1", n, err)
	}
	time.Sleep(3 * authzTTL)
	return secret
}

// expand fills the fixture's IDs into a matrix path.
func (f *authzFixture) expand(path string) string {
	return strings.NewReplacer("{task}", fmt.Sprint(f.task), "{job}", fmt.Sprint(f.job),
		"{otherTask}", fmt.Sprint(f.otherTask), "{otherJob}", fmt.Sprint(f.otherJob)).Replace(path)
}

// do sends a request with a raw Authorization header (none if empty).
func (f *authzFixture) do(t *testing.T, method, path, header, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if header != "" {
		req.Header.Set("Authorization", header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, data
}

// effects counts what a request may change.
type effects struct{ tasks, tokens, kills, retries int }

func (f *authzFixture) effects(t *testing.T) effects {
	t.Helper()
	tasks, err := f.st.Tasks(context.Background(), store.TaskFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var tokens int
	if err := f.db.QueryRow("SELECT COUNT(*) FROM tokens").Scan(&tokens); err != nil {
		t.Fatal(err)
	}
	kills, retries := f.be.calls()
	return effects{len(tasks), tokens, len(kills), len(retries)}
}

func TestAuthorizationMatrix(t *testing.T) {
	f := newAuthzFixture(t)
	for _, r := range authzMatrix {
		if len(r.want) != int(numCallers) {
			t.Errorf("%s: %d of %d callers have an expected status", r.name, len(r.want), numCallers)
		}
		t.Run(r.name, func(t *testing.T) {
			for c := range numCallers {
				want, ok := r.want[c]
				if !ok {
					continue
				}
				t.Run(c.String(), func(t *testing.T) { f.cell(t, r, c, want) })
			}
		})
	}
}

// cell runs one request of the matrix and checks its status, its body and
// that a refused request changed nothing.
func (f *authzFixture) cell(t *testing.T, r authzRoute, c caller, want int) {
	path := f.expand(r.path)
	before := f.effects(t)
	status, body := f.do(t, r.method, path, f.header[c], r.body)
	if status != want {
		t.Fatalf("%s %s as %s = %d %s, want %d", r.method, path, c, status, body, want)
	}
	success := status/100 == 2
	if !success {
		var er ErrorResponse
		if err := json.Unmarshal(body, &er); err != nil || er.Error == "" {
			t.Errorf("refusal body %q is not an ErrorResponse (%v)", body, err)
		}
	}
	if !success && strings.Contains(string(body), ownerLog) {
		t.Errorf("refusal leaks the owner's log: %s", body)
	}
	if after := f.effects(t); (!success || !r.mutates) && after != before {
		t.Errorf("%s %s as %s changed state: %+v -> %+v", r.method, path, c, before, after)
	}
	if success && r.check != nil {
		r.check(t, f, c, body)
	}
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

func staff(c caller) bool { return c == asAdmin || c == asOperator }

func checkSubmitted(t *testing.T, f *authzFixture, c caller, body []byte) {
	r := decode[SubmitResponse](t, body)
	st, err := f.st.Task(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Jobs != 20 || st.Owner != callerPrincipal[c].Name {
		t.Errorf("submitted %+v, stored owner %q, want 20 jobs of %q", r, st.Owner, callerPrincipal[c].Name)
	}
}

func checkTaskList(t *testing.T, f *authzFixture, c caller, body []byte) {
	ts := decode[[]Task](t, body)
	var ids []int64
	for _, v := range ts {
		ids = append(ids, v.ID)
		if !staff(c) && v.Owner != callerPrincipal[c].Name {
			t.Errorf("%s sees task %d of %q", c, v.ID, v.Owner)
		}
	}
	seesOwn, seesOther := slices.Contains(ids, f.task), slices.Contains(ids, f.otherTask)
	if seesOwn != (staff(c) || c == asOwner) || seesOther != (staff(c) || c == asOther) {
		t.Errorf("%s lists tasks %v: owner's %d listed %v, other's %d listed %v", c, ids, f.task, seesOwn, f.otherTask, seesOther)
	}
}

func checkTask(t *testing.T, f *authzFixture, c caller, body []byte) {
	v := decode[Task](t, body)
	if v.ID != f.task || v.Owner != "alice" || v.Spec == nil {
		t.Errorf("task = %+v", v)
	}
}

func checkJobList(t *testing.T, f *authzFixture, c caller, body []byte) {
	js := decode[[]Job](t, body)
	var ids []int64
	for _, j := range js {
		ids = append(ids, j.ID)
		st, err := f.st.Task(context.Background(), j.Task)
		if err != nil {
			t.Fatal(err)
		}
		if !staff(c) && st.Owner != callerPrincipal[c].Name {
			t.Errorf("%s sees job %d of %q", c, j.ID, st.Owner)
		}
	}
	seesOwn, seesOther := slices.Contains(ids, f.job), slices.Contains(ids, f.otherJob)
	if seesOwn != (staff(c) || c == asOwner) || seesOther != (staff(c) || c == asOther) {
		t.Errorf("%s lists %d jobs: owner's %d listed %v, other's %d listed %v", c, len(ids), f.job, seesOwn, f.otherJob, seesOther)
	}
}

func checkJobsOfTask(t *testing.T, f *authzFixture, c caller, body []byte) {
	js := decode[[]Job](t, body)
	if len(js) != 20 {
		t.Errorf("%d jobs, want 20", len(js))
	}
	for _, j := range js {
		if j.Task != f.task {
			t.Errorf("job %d of task %d listed for task %d", j.ID, j.Task, f.task)
		}
	}
}

func checkJob(t *testing.T, f *authzFixture, c caller, body []byte) {
	if j := decode[Job](t, body); j.ID != f.job || j.Task != f.task || len(j.Attempts) != 1 {
		t.Errorf("job = %+v", j)
	}
}

func checkLogs(t *testing.T, f *authzFixture, c caller, body []byte) {
	if string(body) != ownerLog {
		t.Errorf("log = %q, want %q", body, ownerLog)
	}
}

func (b *fakeBackend) killed() []int64  { k, _ := b.calls(); return k }
func (b *fakeBackend) retried() []int64 { _, r := b.calls(); return r }

// checkAction checks that the backend was asked to act on the ID at placeholder.
func checkAction(placeholder string, calls func(*fakeBackend) []int64) func(*testing.T, *authzFixture, caller, []byte) {
	return func(t *testing.T, f *authzFixture, c caller, body []byte) {
		var id int64
		fmt.Sscan(f.expand(placeholder), &id)
		if r := decode[ActionResponse](t, body); r.ID != id {
			t.Errorf("action answered %+v, want ID %d", r, id)
		}
		if got := calls(f.be); len(got) == 0 || got[len(got)-1] != id {
			t.Errorf("backend calls %v, want the last on %d", got, id)
		}
	}
}

func checkMinted(t *testing.T, f *authzFixture, c caller, body []byte) {
	tr := decode[TokenResponse](t, body)
	if tr.Name != "minted" || tr.Role != "admin" {
		t.Errorf("token = %+v", tr)
	}
	if status, _ := f.do(t, "GET", "/whoami", "Bearer "+tr.Token, ""); status != http.StatusOK {
		t.Errorf("minted token: whoami = %d", status)
	}
}

func checkWhoami(t *testing.T, f *authzFixture, c caller, body []byte) {
	if w := decode[Whoami](t, body); w != callerPrincipal[c] {
		t.Errorf("whoami = %+v, want %+v", w, callerPrincipal[c])
	}
}

func checkWorkers(t *testing.T, f *authzFixture, c caller, body []byte) {
	if ws := decode[[]Worker](t, body); len(ws) != 1 || ws[0].Name != "hpc-1" || ws[0].Queue != "hpc" {
		t.Errorf("workers = %+v", ws)
	}
}

func checkAgents(t *testing.T, f *authzFixture, c caller, body []byte) {
	if as := decode[[]Agent](t, body); len(as) != 1 || as[0].ID != "a1" {
		t.Errorf("agents = %+v", as)
	}
}

// TestAuthorizationMatrixCoversEveryRoute keeps the matrix in step with the
// endpoints listed in the package comment.
func TestAuthorizationMatrixCoversEveryRoute(t *testing.T) {
	src, err := os.ReadFile("types.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^//\s+(GET|POST|PUT|PATCH|DELETE)\s+` + regexp.QuoteMeta(Prefix) + `(\S+)`)
	var documented []string
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		documented = append(documented, m[1]+" "+m[2])
	}
	if len(documented) < 11 {
		t.Fatalf("found only %d routes in types.go: %v", len(documented), documented)
	}
	var tested []string
	for _, r := range authzMatrix {
		tested = append(tested, r.pattern)
	}
	slices.Sort(documented)
	slices.Sort(tested)
	if tested = slices.Compact(tested); !slices.Equal(documented, tested) {
		t.Errorf("routes in types.go %v, in the matrix %v", documented, tested)
	}
}

// /metrics sits outside /api/v1 and takes the same tokens: staff only.
func TestMetricsAuthorization(t *testing.T) {
	f := newAuthzFixture(t)
	base := strings.TrimSuffix(f.url, Prefix)
	for c, want := range (statuses{asAdmin: 200, asOperator: 200, asOwner: 403, asOther: 403, asAgent: 403, asNone: 401, asForged: 401}) {
		req, _ := http.NewRequest("GET", base+"/metrics", nil)
		if f.header[c] != "" {
			req.Header.Set("Authorization", f.header[c])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET /metrics as %s = %d %s, want %d", c, resp.StatusCode, body, want)
		}
		if want == 200 && !strings.Contains(string(body), "pando_agents_connected") {
			t.Errorf("metrics body %q", body)
		}
	}
}
