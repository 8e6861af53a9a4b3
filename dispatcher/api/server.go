package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/pando-wms/pando/dispatcher/auth"
	"github.com/pando-wms/pando/dispatcher/broker"
	"github.com/pando-wms/pando/dispatcher/queue"
	"github.com/pando-wms/pando/dispatcher/share"
	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/task"
)

// maxTaskFile bounds a submitted task file.
const maxTaskFile = 1 << 20

// Backend is what the API needs from the dispatcher besides reading the store.
type Backend interface {
	Submit(ctx context.Context, owner string, spec *task.Spec) (int64, error)
	Kill(ctx context.Context, id int64, by string) (kind string, n int, err error)
	Retry(ctx context.Context, id int64) (kind string, n int, err error)
	LiveJob(id int64) (store.Job, bool)
	Agents() []broker.AgentInfo
	Workers(queue string) []Worker
	LogPath(job int64, attempt int) string

	PutQueue(ctx context.Context, q queue.Queue, create bool) (broker.QueueInfo, error)
	Queues() []broker.QueueInfo
	Queue(name string) (broker.QueueInfo, bool)
	SetShare(ctx context.Context, path string, target float64) error
	Shares() []share.Status
	Why(jobID int64) (broker.Why, bool)
	Metrics() http.Handler
}

// Authenticator resolves bearer tokens and creates new ones.
type Authenticator interface {
	Authenticate(ctx context.Context, secret string) (auth.Principal, error)
	Create(ctx context.Context, role store.Role, name string) (string, error)
}

// Server serves /api/v1.
type Server struct {
	store   store.Store
	backend Backend
	auth    Authenticator
	log     *slog.Logger
	mux     *http.ServeMux
}

// NewServer returns the API handler.
func NewServer(st store.Store, b Backend, a Authenticator, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{store: st, backend: b, auth: a, log: log, mux: http.NewServeMux()}
	s.handle("POST /tasks", s.submit)
	s.handle("GET /tasks", s.listTasks)
	s.handle("GET /tasks/{id}", s.getTask)
	s.handle("GET /jobs", s.listJobs)
	s.handle("GET /jobs/{id}", s.getJob)
	s.handle("GET /jobs/{id}/logs", s.jobLogs)
	s.handle("POST /kill/{id}", s.kill)
	s.handle("POST /retry/{id}", s.retry)
	s.handle("POST /tokens", s.createToken)
	s.handle("GET /whoami", s.whoami)
	s.handle("GET /agents", s.agents)
	s.handle("GET /workers", s.listWorkers)
	s.handle("GET /queues", s.listQueues)
	s.handle("GET /queues/{name}", s.getQueue)
	s.handle("POST /queues", s.createQueue)
	s.handle("PUT /queues/{name}", s.putQueue)
	s.handle("GET /shares", s.listShares)
	s.handle("PUT /shares/{path...}", s.setShare)
	s.handle("DELETE /shares/{path...}", s.unsetShare)
	s.handle("GET /jobs/{id}/why", s.why)
	s.handleAt("GET /metrics", s.metrics)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

type handlerFunc func(w http.ResponseWriter, r *http.Request, p auth.Principal) error

// handle registers h under Prefix behind authentication and turns its
// error into a status.
func (s *Server) handle(pattern string, h handlerFunc) {
	method, path, _ := strings.Cut(pattern, " ")
	s.handleAt(method+" "+Prefix+path, h)
}

// handleAt registers h at pattern as it is, behind authentication.
func (s *Server) handleAt(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			writeError(w, http.StatusUnauthorized, "missing bearer token")
			return
		}
		p, err := s.auth.Authenticate(r.Context(), strings.TrimSpace(secret))
		switch {
		case errors.Is(err, auth.ErrBadToken) || errors.Is(err, auth.ErrNoToken):
			writeError(w, http.StatusUnauthorized, "invalid token")
			return
		case err != nil: // the store failed: not the caller's fault
			s.log.Error("check token", "err", err)
			writeError(w, http.StatusServiceUnavailable, "cannot check the token now; retry later")
			return
		}
		if err := h(w, r, p); err != nil {
			s.fail(w, r, err)
		}
	})
}

// ErrUnavailable marks a failure the caller should retry later (the
// dispatcher cannot write its state now, e.g. a full disk): answered 503.
var ErrUnavailable = errors.New("dispatcher unavailable")

// ErrConflict marks a request that clashes with what exists (creating a
// queue that exists): answered 409.
var ErrConflict = errors.New("conflict")

// ErrInvalid marks a request the dispatcher cannot act on as given (a task
// naming an unknown storage endpoint, an empty dataset): answered 400.
var ErrInvalid = errors.New("invalid request")

// httpError is an error with its status (and, for errors.Is, its kind).
type httpError struct {
	status int
	msg    string
	kind   error
}

func (e *httpError) Error() string { return e.msg }
func (e *httpError) Unwrap() error { return e.kind }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		writeError(w, he.status, he.msg)
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, context.Canceled):
	default:
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	_ = writeJSON(w, status, ErrorResponse{Error: msg})
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errorf(http.StatusBadRequest, "bad id %q", r.PathValue("id"))
	}
	return id, nil
}

// queryInts parses several optional non-negative integer parameters.
func queryInts(r *http.Request, keys ...string) ([]int64, error) {
	out := make([]int64, len(keys))
	for i, k := range keys {
		v, err := queryInt(r, k)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func queryInt(r *http.Request, key string) (int64, error) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errorf(http.StatusBadRequest, "bad %s %q", key, v)
	}
	return n, nil
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if !p.Can(auth.SubmitTask) {
		return errorf(http.StatusForbidden, "role %s may not submit tasks", p.Role)
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxTaskFile+1))
	if err != nil {
		return errorf(http.StatusBadRequest, "read task file: %v", err)
	}
	if len(data) > maxTaskFile {
		return errorf(http.StatusRequestEntityTooLarge, "task file larger than %d bytes", maxTaskFile)
	}
	spec, err := task.Parse(data)
	if err != nil {
		return errorf(http.StatusBadRequest, "invalid task: %v", err)
	}
	id, err := s.backend.Submit(r.Context(), p.Name, spec)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, SubmitResponse{ID: id, Jobs: spec.Jobs})
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	return writeJSON(w, http.StatusOK, Whoami{Name: p.Name, Role: string(p.Role)})
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if !p.Can(auth.CreateToken) {
		return errorf(http.StatusForbidden, "role %s may not create tokens", p.Role)
	}
	var req TokenRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		return errorf(http.StatusBadRequest, "bad token request: %v", err)
	}
	role, err := auth.ParseRole(req.Role)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if req.Name == "" {
		return errorf(http.StatusBadRequest, "token name is required")
	}
	secret, err := s.auth.Create(r.Context(), role, req.Name)
	if errors.Is(err, auth.ErrBadRequest) {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, TokenResponse{Token: secret, Name: req.Name, Role: string(role)})
}

func (s *Server) listWorkers(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if !p.Can(auth.ViewAgents) {
		return errorf(http.StatusForbidden, "role %s may not list workers", p.Role)
	}
	out := s.backend.Workers(r.URL.Query().Get("queue"))
	if out == nil {
		out = []Worker{}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) agents(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if !p.Can(auth.ViewAgents) {
		return errorf(http.StatusForbidden, "role %s may not list agents", p.Role)
	}
	out := []Agent{}
	for _, a := range s.backend.Agents() {
		out = append(out, Agent{ID: a.ID, Name: a.Name, Kind: a.Kind, Queue: a.Queue,
			Connected: a.Connected, Since: a.Since, Running: a.Running, Resources: a.Resources})
	}
	return writeJSON(w, http.StatusOK, out)
}
