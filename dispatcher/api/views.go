package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/pando-wms/pando/dispatcher/auth"
	"github.com/pando-wms/pando/dispatcher/errcode"
	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/task"
)

// ownedTask loads a task the principal may see; another user's task is
// reported as not found, so that IDs leak nothing.
func (s *Server) ownedTask(ctx context.Context, p auth.Principal, id int64) (*store.Task, error) {
	if err := canRead(p); err != nil {
		return nil, err
	}
	t, err := s.store.Task(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.Owner != p.Name && !p.Can(auth.ReadAll)) {
		return nil, &httpError{http.StatusNotFound, fmt.Sprintf("task %d not found", id), store.ErrNotFound}
	}
	return t, err
}

// ownedJob loads a job (fresh from the broker when live) the principal may see.
// jobAt returns the job the request's path names, if p may see it.
func (s *Server) jobAt(r *http.Request, p auth.Principal) (store.Job, error) {
	id, err := pathID(r)
	if err != nil {
		return store.Job{}, err
	}
	return s.ownedJob(r.Context(), p, id)
}

func (s *Server) ownedJob(ctx context.Context, p auth.Principal, id int64) (store.Job, error) {
	notFound := &httpError{http.StatusNotFound, fmt.Sprintf("job %d not found", id), store.ErrNotFound}
	j, err := s.store.Job(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Job{}, notFound
	} else if err != nil {
		return store.Job{}, err
	}
	if _, err := s.ownedTask(ctx, p, j.TaskID); errors.Is(err, store.ErrNotFound) {
		return store.Job{}, notFound
	} else if err != nil {
		return store.Job{}, err
	}
	if live, ok := s.backend.LiveJob(id); ok {
		return live, nil
	}
	return *j, nil
}

// canRead refuses roles that see no work at all (agents).
func canRead(p auth.Principal) error {
	if !p.Can(auth.ReadOwn) && !p.Can(auth.ReadAll) {
		return errorf(http.StatusForbidden, "role %s may not read tasks or jobs", p.Role)
	}
	return nil
}

// taskState summarises a task from its job counts.
func taskState(c map[store.State]int, total int) string {
	switch {
	case c[store.Running]+c[store.Assigned] > 0:
		return "running"
	case c[store.Ready] > 0:
		return "ready"
	case c[store.Pending] > 0:
		return "pending"
	case c[store.Finished] == total:
		return "finished"
	case c[store.Failed] > 0:
		return "failed"
	}
	return "cancelled"
}

func (s *Server) taskView(ctx context.Context, t *store.Task) (Task, error) {
	counts, err := s.store.TaskCounts(ctx, t.ID)
	if err != nil {
		return Task{}, err
	}
	c := make(map[string]int, len(counts))
	for st, n := range counts {
		c[string(st)] = n
	}
	return Task{ID: t.ID, Name: t.Name, Owner: t.Owner, Queue: t.Queue, Priority: t.Priority,
		State: taskState(counts, t.Jobs), Jobs: t.Jobs, Counts: c, Created: t.Created}, nil
}

func (s *Server) listTasks(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	q, err := queryInts(r, "limit", "after")
	if err != nil {
		return err
	}
	if err := canRead(p); err != nil {
		return err
	}
	f := store.TaskFilter{AfterID: q[1], Limit: int(q[0])}
	if !p.Can(auth.ReadAll) {
		f.Owner = p.Name
	}
	tasks, err := s.store.Tasks(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]Task, 0, len(tasks))
	for i := range tasks {
		v, err := s.taskView(r.Context(), &tasks[i])
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) getTask(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	t, err := s.ownedTask(r.Context(), p, id)
	if err != nil {
		return err
	}
	v, err := s.taskView(r.Context(), t)
	if err != nil {
		return err
	}
	var spec task.Spec
	if err := json.Unmarshal(t.Spec, &spec); err == nil {
		v.Spec = &spec
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	q, err := queryInts(r, "task", "limit", "after")
	if err != nil {
		return err
	}
	taskID, limit, after := q[0], q[1], q[2]
	if err := canRead(p); err != nil {
		return err
	}
	f := store.JobFilter{TaskID: taskID, State: store.State(r.URL.Query().Get("state")), AfterID: after, Limit: int(limit)}
	if f.State != "" && !validState(f.State) {
		return errorf(http.StatusBadRequest, "unknown state %q", f.State)
	}
	if taskID != 0 {
		if _, err := s.ownedTask(r.Context(), p, taskID); err != nil {
			return err
		}
	} else if !p.Can(auth.ReadAll) {
		f.Owner = p.Name
	}
	jobs, err := s.store.Jobs(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]Job, 0, len(jobs))
	for _, j := range jobs {
		if live, ok := s.backend.LiveJob(j.ID); ok {
			j = live
		}
		out = append(out, jobView(j))
	}
	return writeJSON(w, http.StatusOK, out)
}

func validState(st store.State) bool {
	for _, s := range store.States {
		if s == st {
			return true
		}
	}
	return false
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	j, err := s.jobAt(r, p)
	if err != nil {
		return err
	}
	id := j.ID
	v := jobView(j)
	attempts, err := s.store.Attempts(r.Context(), id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	for _, a := range attempts {
		v.Attempts = append(v.Attempts, attemptView(a))
	}
	// A live job's current attempt is in the job's row (store.Store.Attempts).
	if n := len(attempts); j.Attempt > 0 && (n == 0 || attempts[n-1].Attempt < j.Attempt) {
		assigned := j.Assigned
		if assigned.IsZero() { // a row written before jobs kept it
			assigned = j.Updated
		}
		v.Attempts = append(v.Attempts, attemptView(store.Attempt{Attempt: j.Attempt, State: j.State,
			AgentName: j.AgentName, ExitCode: j.ExitCode, ErrorCode: j.ErrorCode, Error: j.Error,
			Assigned: assigned, Started: j.Started, Ended: j.Ended, CPUSeconds: j.CPUSeconds, MaxRSSBytes: j.MaxRSSBytes}))
	}
	files, err := s.store.Files(r.Context(), store.FileFilter{JobID: id})
	if err != nil {
		return err
	}
	for _, f := range files {
		fv := File{Name: f.Name, Endpoint: f.Endpoint, Bucket: f.Bucket, Path: f.Path, Size: f.Size, Adler32: f.Adler32, Attempt: f.Attempt}
		if f.Dir == store.Output {
			v.Outputs = append(v.Outputs, fv)
		} else {
			v.Inputs = append(v.Inputs, fv)
		}
	}
	return writeJSON(w, http.StatusOK, v)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func errName(code int) string {
	if code == 0 {
		return ""
	}
	return errcode.Code(code).Name()
}

func jobView(j store.Job) Job {
	return Job{ID: j.ID, Task: j.TaskID, Index: j.Index, State: string(j.State), Attempt: j.Attempt,
		MaxAttempts: j.MaxAttempts, ExitCode: j.ExitCode, ErrorCode: j.ErrorCode,
		ErrorName: errName(j.ErrorCode), Error: j.Error, Agent: j.AgentName,
		Created: j.Created, Updated: j.Updated, Started: timePtr(j.Started), Ended: timePtr(j.Ended)}
}

func attemptView(a store.Attempt) Attempt {
	return Attempt{Attempt: a.Attempt, State: string(a.State), Agent: a.AgentName, ExitCode: a.ExitCode,
		ErrorCode: a.ErrorCode, ErrorName: errName(a.ErrorCode), Error: a.Error, Assigned: a.Assigned,
		Started: timePtr(a.Started), Ended: timePtr(a.Ended), CPUSeconds: a.CPUSeconds, MaxRSSBytes: a.MaxRSSBytes}
}
