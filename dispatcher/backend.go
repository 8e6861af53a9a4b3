package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/pando-wms/pando/dispatcher/api"
	"github.com/pando-wms/pando/dispatcher/broker"
	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/task"
)

// unavailable reports, as an api.ErrUnavailable, that commits are failing.
func (s *Server) unavailable() error {
	if e := s.storeErr.Load(); e != nil {
		return fmt.Errorf("%w: cannot write its state (%v); it retries, try again later", api.ErrUnavailable, *e)
	}
	return nil
}

// Submit stores a task and its jobs durably, then hands them to the broker.
func (s *Server) Submit(ctx context.Context, owner string, spec *task.Spec) (int64, error) {
	if err := s.unavailable(); err != nil {
		return 0, err // take no new work that could not be stored
	}
	if err := s.checkPlacement(spec); err != nil {
		return 0, err
	}
	files, err := s.resolveData(ctx, spec) // sets spec.Jobs for inputs
	if err != nil {
		return 0, err
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return 0, fmt.Errorf("encode spec: %w", err)
	}
	id, err := s.ids.take(ctx, int64(spec.Jobs)+1)
	if err != nil {
		return 0, fmt.Errorf("%w: reserve ids: %v", api.ErrUnavailable, err)
	}
	now := time.Now()
	t := store.Task{ID: id, Owner: owner, Name: spec.Name, Queue: spec.Queue, Priority: spec.Priority,
		Jobs: spec.Jobs, MaxAttempts: spec.MaxAttempts, Spec: raw, Created: now}
	jobs := make([]store.Job, spec.Jobs)
	for i := range jobs {
		jobs[i] = store.Job{ID: id + 1 + int64(i), TaskID: id, Index: i, State: store.Ready,
			MaxAttempts: spec.MaxAttempts, Created: now, Updated: now}
	}
	for i := range files {
		files[i].TaskID, files[i].JobID = id, id+1+int64(i/spec.FilesPerJob)
		if s.isTape(files[i].Endpoint) {
			jobs[i/spec.FilesPerJob].State = store.Pending // until the carousel brings its inputs to disk
		}
	}
	// The task is inserted by the next group commit, together with the
	// first assignments of its jobs; the caller hears back once durable.
	done := make(chan error, 1)
	s.broker.Submit(store.NewTask{Task: t, Jobs: jobs, Files: files}, spec, func(err error) { done <- err })
	s.stageTape(files) // after Submit: the broker must know the jobs it will make ready
	select {
	case err = <-done:
	case <-ctx.Done():
		return 0, fmt.Errorf("task %d accepted but not yet durable: %w", id, ctx.Err())
	case <-time.After(s.cfg.CommitTimeout):
		return 0, fmt.Errorf("%w: task %d accepted but not yet durable (%v); it will be stored when writes succeed", api.ErrUnavailable, id, s.unavailable())
	}
	if err != nil {
		return 0, fmt.Errorf("store task: %w", err)
	}
	s.log.Debug("task submitted", "task", id, "owner", owner, "jobs", len(jobs))
	return id, nil
}

// idBlock is how many IDs the dispatcher reserves from the store at once:
// one durable write per block instead of one per task.
const idBlock = 1 << 12

// idAllocator hands out IDs from blocks reserved in the store. IDs left in
// a block when the dispatcher stops are never used.
type idAllocator struct {
	mu        sync.Mutex
	st        store.Store
	next, end int64
}

// take returns the first of n consecutive IDs.
func (a *idAllocator) take(ctx context.Context, n int64) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.end-a.next < n {
		size := max(n, idBlock)
		first, err := a.st.ReserveIDs(ctx, size)
		if err != nil {
			return 0, err
		}
		a.next, a.end = first, first+size
	}
	id := a.next
	a.next += n
	return id, nil
}

// sync waits until the changes made so far are durable, so that a caller
// reading right after an action sees it.
func (s *Server) sync(ctx context.Context) error {
	if err := s.unavailable(); err != nil {
		return err
	}
	done := make(chan error, 1)
	s.broker.Sync(func(err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(s.cfg.CommitTimeout):
		return fmt.Errorf("%w: change not yet durable (%v)", api.ErrUnavailable, s.unavailable())
	}
}

// Kill cancels a task's live jobs or one job. It reports whether id named
// a task or a job and how many jobs it cancelled.
func (s *Server) Kill(ctx context.Context, id int64, by string) (string, int, error) {
	reason := "killed by " + by
	if _, err := s.store.Task(ctx, id); err == nil {
		n := s.broker.KillTask(id, reason)
		return "task", n, s.sync(ctx)
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", 0, err
	}
	if _, err := s.store.Job(ctx, id); err != nil {
		return "", 0, err
	}
	n := 0
	if s.broker.KillJob(id, reason) {
		n = 1
	}
	return "job", n, s.sync(ctx)
}

// Retry makes failed and cancelled jobs of a task (or one job) ready again.
func (s *Server) Retry(ctx context.Context, id int64) (string, int, error) {
	// The store lags memory by at most the commits in flight: wait for them,
	// so that a job that just ended is read in its final state.
	if err := s.sync(ctx); err != nil {
		return "", 0, err
	}
	kind := "task"
	var jobs []store.Job
	t, err := s.store.Task(ctx, id)
	switch {
	case err == nil:
		for _, st := range []store.State{store.Failed, store.Cancelled} {
			js, err := s.store.Jobs(ctx, store.JobFilter{TaskID: id, State: st})
			if err != nil {
				return "", 0, err
			}
			jobs = append(jobs, js...)
		}
	case errors.Is(err, store.ErrNotFound):
		kind = "job"
		j, err := s.store.Job(ctx, id)
		if err != nil {
			return "", 0, err
		}
		if t, err = s.store.Task(ctx, j.TaskID); err != nil {
			return "", 0, err
		}
		jobs = []store.Job{*j}
	default:
		return "", 0, err
	}
	spec, err := decodeSpec(t)
	if err != nil {
		return "", 0, err
	}
	var files []store.File
	if spec.Inputs != nil {
		f := store.FileFilter{TaskID: t.ID, Dir: store.Input}
		if kind == "job" {
			f = store.FileFilter{JobID: id, Dir: store.Input}
		}
		if files, err = s.store.Files(ctx, f); err != nil {
			return "", 0, err
		}
	}
	tape := slices.ContainsFunc(files, func(f store.File) bool { return s.isTape(f.Endpoint) })
	n := s.broker.Revive(*t, spec, jobs, files, tape)
	if tape {
		revived := map[int64]bool{}
		for _, j := range jobs {
			revived[j.ID] = true
		}
		s.stageTape(slices.DeleteFunc(files, func(f store.File) bool { return !revived[f.JobID] }))
	}
	return kind, n, s.sync(ctx)
}

// LiveJob is the broker's fresh view of a live job.
func (s *Server) LiveJob(id int64) (store.Job, bool) { return s.broker.Live(id) }

// Agents lists connected and recently lost agents.
func (s *Server) Agents() []broker.AgentInfo { return s.broker.Agents() }

func decodeSpec(t *store.Task) (*task.Spec, error) {
	var spec task.Spec
	if err := json.Unmarshal(t.Spec, &spec); err != nil {
		return nil, fmt.Errorf("task %d: stored spec: %w", t.ID, err)
	}
	return &spec, nil
}

// recover loads live jobs after a restart.
func (s *Server) recover(ctx context.Context) error {
	tasks, err := s.store.LiveTasks(ctx)
	if err != nil {
		return fmt.Errorf("dispatcher: recover tasks: %w", err)
	}
	jobs, err := s.store.LiveJobs(ctx)
	if err != nil {
		return fmt.Errorf("dispatcher: recover jobs: %w", err)
	}
	byID := make(map[int64]store.Task, len(tasks))
	specs := make(map[int64]*task.Spec, len(tasks))
	files := make(map[int64][]store.File)
	for _, t := range tasks {
		spec, err := decodeSpec(&t)
		if err != nil {
			return fmt.Errorf("dispatcher: recover: %w", err)
		}
		byID[t.ID], specs[t.ID] = t, spec
		if spec.Inputs != nil {
			fs, err := s.store.Files(ctx, store.FileFilter{TaskID: t.ID, Dir: store.Input})
			if err != nil {
				return fmt.Errorf("dispatcher: recover: %w", err)
			}
			files[t.ID] = fs
		}
	}
	s.broker.Recover(byID, specs, jobs, files)
	// Live jobs keep, or wait for, their tape inputs: stage them again (a
	// file still on the buffer completes at once) so that pending jobs
	// become ready and every file is released when its jobs end.
	live := make(map[int64]bool, len(jobs))
	for _, j := range jobs {
		live[j.ID] = true
	}
	for _, fs := range files {
		s.stageTape(slices.DeleteFunc(slices.Clone(fs), func(f store.File) bool { return !live[f.JobID] }))
	}
	if len(jobs) > 0 {
		s.log.Info("recovered live jobs", "tasks", len(tasks), "jobs", len(jobs))
	}
	return nil
}

// ensureAdminToken creates DIR/admin.token (mode 0600) on first start.
func (s *Server) ensureAdminToken(ctx context.Context) error {
	path := s.AdminTokenFile()
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	secret, err := s.auth.Create(ctx, store.RoleAdmin, "admin")
	if err != nil {
		return fmt.Errorf("dispatcher: admin token: %w", err)
	}
	tmp := filepath.Join(filepath.Dir(path), ".admin.token.tmp")
	if err := os.WriteFile(tmp, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("dispatcher: admin token: %w", err)
	}
	return os.Rename(tmp, path)
}
