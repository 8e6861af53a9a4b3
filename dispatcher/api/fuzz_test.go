package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/auth"
	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/store/sqlite"
	"github.com/pando-wms/pando/dispatcher/task"
)

// The seed corpora are in testdata/fuzz/. Run a target with, e.g.,
//
//	go test ./dispatcher/api/ -run '^$' -fuzz '^FuzzSubmitBody$' -fuzztime 30s

// taskRowBackend stores a submitted task's row in the real store but none
// of its jobs: a fuzzed task may ask for a million of them.
type taskRowBackend struct{ *fakeBackend }

func (b taskRowBackend) Submit(ctx context.Context, owner string, spec *task.Spec) (int64, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return 0, err
	}
	t := &store.Task{Owner: owner, Name: spec.Name, Queue: spec.Queue, Priority: spec.Priority,
		Jobs: spec.Jobs, MaxAttempts: spec.MaxAttempts, Spec: raw, Created: time.Now()}
	if err := b.st.CreateTask(ctx, t, nil); err != nil {
		return 0, err
	}
	return t.ID, nil
}

// fuzzServer is the API handler over a real SQLite store and authenticator,
// called in process so that a panic fails the fuzz target.
type fuzzServer struct {
	h     http.Handler
	st    store.Store
	auth  *auth.Authenticator
	admin string
}

func newFuzzServer(f *testing.F) *fuzzServer {
	f.Helper()
	st, err := sqlite.Open(filepath.Join(f.TempDir(), "db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	be := taskRowBackend{&fakeBackend{st: st, logDir: f.TempDir(), live: map[int64]store.Job{}}}
	a := auth.NewAuthenticator(st, time.Minute)
	admin, err := a.Create(context.Background(), store.RoleAdmin, "root")
	if err != nil {
		f.Fatal(err)
	}
	return &fuzzServer{h: NewServer(st, be, a, nil), st: st, auth: a, admin: admin}
}

// serve sends body to method path as the admin.
func (s *fuzzServer) serve(method, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, Prefix+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.admin)
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, req)
	return w
}

// isError checks that w is a 4xx with an ErrorResponse body.
func isError(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	var er ErrorResponse
	if err := json.Unmarshal(w.Body.Bytes(), &er); err != nil || er.Error == "" {
		t.Fatalf("status %d with body %q, not an ErrorResponse (%v)", w.Code, w.Body, err)
	}
	if w.Code < 400 || w.Code >= 500 {
		t.Fatalf("status %d %s, want 4xx", w.Code, w.Body)
	}
}

// FuzzSubmitBody posts arbitrary bytes as a task file: the answer is a 201
// exactly when task.Parse accepts them, a 4xx otherwise, and an accepted
// task reads back as parsed.
func FuzzSubmitBody(f *testing.F) {
	s := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		w := s.serve("POST", "/tasks", data)
		spec, perr := task.Parse(data)
		switch {
		case len(data) > maxTaskFile:
			isError(t, w)
			if w.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("%d bytes: status %d, want 413", len(data), w.Code)
			}
			return
		case perr != nil:
			isError(t, w)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("task.Parse refuses (%v), API answered %d %s, want 400", perr, w.Code, w.Body)
			}
			return
		case w.Code != http.StatusCreated:
			t.Fatalf("task.Parse accepts, API answered %d %s", w.Code, w.Body)
		}
		var r SubmitResponse
		if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil || r.ID <= 0 || r.Jobs != spec.Jobs {
			t.Fatalf("201 with %s (%v), want an ID and %d jobs", w.Body, err, spec.Jobs)
		}
		got := s.serve("GET", fmt.Sprint("/tasks/", r.ID), nil)
		var v Task
		if err := json.Unmarshal(got.Body.Bytes(), &v); got.Code != http.StatusOK || err != nil {
			t.Fatalf("GET submitted task = %d %s (%v)", got.Code, got.Body, err)
		}
		if v.Owner != "root" || v.Name != spec.Name || v.Jobs != spec.Jobs || v.Spec == nil {
			t.Fatalf("submitted task reads back as %+v, spec %+v", v, spec)
		}
		if want := roundTrip(t, spec); !reflect.DeepEqual(*v.Spec, want) {
			t.Fatalf("spec reads back as %+v, want %+v", *v.Spec, want)
		}
	})
}

// roundTrip is spec as the store's JSON gives it back (empty maps and
// slices become nil).
func roundTrip(t *testing.T, spec *task.Spec) task.Spec {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var back task.Spec
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return back
}

// FuzzTokenRequest posts arbitrary bytes as a token request: 201 or 4xx,
// and a 201 only for a request with a known role and the name it answers
// with, whose token then authenticates as that name and role.
func FuzzTokenRequest(f *testing.F) {
	s := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		w := s.serve("POST", "/tokens", data)
		if w.Code != http.StatusCreated {
			isError(t, w)
			return
		}
		var tr TokenResponse
		if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil {
			t.Fatalf("201 with %s: %v", w.Body, err)
		}
		var req TokenRequest
		if err := json.NewDecoder(bytes.NewReader(data)).Decode(&req); err != nil {
			t.Fatalf("201 for a body that does not decode (%v): %s", err, w.Body)
		}
		role, err := auth.ParseRole(req.Role)
		if err != nil || string(role) != tr.Role || req.Name == "" || req.Name != tr.Name {
			t.Fatalf("request %+v answered %+v (role: %v)", req, tr, err)
		}
		p, err := s.auth.Authenticate(context.Background(), tr.Token)
		if err != nil || p != (auth.Principal{Name: tr.Name, Role: role}) {
			t.Fatalf("new token authenticates as %+v (%v), want %s %s", p, err, tr.Name, role)
		}
	})
}
