package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/pando-wms/pando/dispatcher/store"
)

const (
	taskSelect = `SELECT t.id, t.owner, t.name, t.queue, t.priority, t.jobs,
		t.max_attempts, t.spec, t.created FROM tasks t`
	jobSelect = `SELECT j.id, j.task_id, j.idx, j.state, j.attempt,
		j.max_attempts, j.agent_id, j.agent_name, j.exit_code, j.error_code,
		j.error, j.created, j.updated, j.started, j.ended, j.assigned,
		j.cpu_seconds, j.max_rss_bytes FROM jobs j`
	attemptSelect = `SELECT job_id, attempt, agent_id, agent_name, state,
		exit_code, error_code, error, assigned, started, ended, cpu_seconds,
		max_rss_bytes FROM attempts`
)

// liveStates is the SQL list of non-final states; queries that name it
// exactly so can use the partial index jobs_live (see schema.go).
var liveStates = stateList(false)

// finalStates is the SQL list of final states.
var finalStates = stateList(true)

func stateList(final bool) string {
	var q []string
	for _, s := range store.States {
		if s.Final() == final {
			q = append(q, "'"+string(s)+"'")
		}
	}
	return "(" + strings.Join(q, ",") + ")"
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanTask(s scanner) (store.Task, error) {
	var t store.Task
	var created int64
	err := s.Scan(&t.ID, &t.Owner, &t.Name, &t.Queue, &t.Priority, &t.Jobs,
		&t.MaxAttempts, &t.Spec, &created)
	t.Created = fromUnixNano(created)
	return t, err
}

func scanJob(s scanner) (store.Job, error) {
	var j store.Job
	var state string
	var exit sql.NullInt64
	var created, updated, started, ended, assigned int64
	err := s.Scan(&j.ID, &j.TaskID, &j.Index, &state, &j.Attempt,
		&j.MaxAttempts, &j.AgentID, &j.AgentName, &exit, &j.ErrorCode,
		&j.Error, &created, &updated, &started, &ended, &assigned,
		&j.CPUSeconds, &j.MaxRSSBytes)
	j.State, j.ExitCode = store.State(state), intPtr(exit)
	j.Created, j.Updated = fromUnixNano(created), fromUnixNano(updated)
	j.Started, j.Ended = fromUnixNano(started), fromUnixNano(ended)
	j.Assigned = fromUnixNano(assigned)
	return j, err
}

func scanAttempt(s scanner) (store.Attempt, error) {
	var a store.Attempt
	var state string
	var exit sql.NullInt64
	var assigned, started, ended int64
	err := s.Scan(&a.JobID, &a.Attempt, &a.AgentID, &a.AgentName, &state,
		&exit, &a.ErrorCode, &a.Error, &assigned, &started, &ended,
		&a.CPUSeconds, &a.MaxRSSBytes)
	a.State, a.ExitCode = store.State(state), intPtr(exit)
	a.Assigned, a.Started, a.Ended = fromUnixNano(assigned), fromUnixNano(started), fromUnixNano(ended)
	return a, err
}

// query runs q on the read pool and scans every row with scan.
func query[T any](ctx context.Context, db *DB, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Task returns the task with the given ID.
func (db *DB) Task(ctx context.Context, id int64) (*store.Task, error) {
	t, err := scanTask(db.r.QueryRowContext(ctx, taskSelect+" WHERE t.id = ?", id))
	if err != nil {
		return nil, notFound(err, "task %d", id)
	}
	return &t, nil
}

// Tasks returns the tasks f selects, by ascending ID.
func (db *DB) Tasks(ctx context.Context, f store.TaskFilter) ([]store.Task, error) {
	var w where
	w.add(f.Owner != "", "t.owner = ?", f.Owner)
	w.add(f.AfterID != 0, "t.id > ?", f.AfterID)
	ts, err := query(ctx, db, scanTask, taskSelect+w.sql("t.id", f.Limit), w.args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: tasks: %w", err)
	}
	return ts, nil
}

// TaskCounts returns how many jobs of the task are in each state.
func (db *DB) TaskCounts(ctx context.Context, taskID int64) (map[store.State]int, error) {
	type count struct {
		state store.State
		n     int
	}
	scan := func(s scanner) (c count, err error) { return c, s.Scan(&c.state, &c.n) }
	cs, err := query(ctx, db, scan, "SELECT state, count(*) FROM jobs WHERE task_id = ? GROUP BY state", taskID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: task %d counts: %w", taskID, err)
	}
	if len(cs) == 0 {
		// No jobs: tell an empty task from a missing one.
		if _, err := db.Task(ctx, taskID); err != nil {
			return nil, err
		}
	}
	m := make(map[store.State]int, len(cs))
	for _, c := range cs {
		m[c.state] = c.n
	}
	return m, nil
}

// Job returns the job with the given ID.
func (db *DB) Job(ctx context.Context, id int64) (*store.Job, error) {
	j, err := scanJob(db.r.QueryRowContext(ctx, jobSelect+" WHERE j.id = ?", id))
	if err != nil {
		return nil, notFound(err, "job %d", id)
	}
	return &j, nil
}

// Jobs returns the jobs f selects, by ascending ID.
func (db *DB) Jobs(ctx context.Context, f store.JobFilter) ([]store.Job, error) {
	q := jobSelect
	if f.Owner != "" {
		q += " JOIN tasks t ON t.id = j.task_id"
	}
	var w where
	w.add(f.TaskID != 0, "j.task_id = ?", f.TaskID)
	w.add(f.Owner != "", "t.owner = ?", f.Owner)
	w.add(f.State != "", "j.state = ?", string(f.State))
	w.add(f.AfterID != 0, "j.id > ?", f.AfterID)
	js, err := query(ctx, db, scanJob, q+w.sql("j.id", f.Limit), w.args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: jobs: %w", err)
	}
	return js, nil
}

// attemptsOfJob lists a job's stored attempts and, for a final job, the
// attempt its row holds when none of them has its number.
var attemptsOfJob = attemptSelect + ` WHERE job_id = ?1
	UNION ALL
	SELECT id, attempt, agent_id, agent_name, state, exit_code, error_code,
		error, assigned, started, ended, cpu_seconds, max_rss_bytes FROM jobs
	WHERE id = ?1 AND attempt > 0 AND state IN ` + finalStates + `
		AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.job_id = jobs.id AND a.attempt = jobs.attempt)
	ORDER BY 2`

// Attempts returns the job's ended attempts by ascending attempt number.
func (db *DB) Attempts(ctx context.Context, jobID int64) ([]store.Attempt, error) {
	as, err := query(ctx, db, scanAttempt, attemptsOfJob, jobID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: job %d attempts: %w", jobID, err)
	}
	if len(as) == 0 {
		if _, err := db.Job(ctx, jobID); err != nil {
			return nil, err
		}
	}
	return as, nil
}

const fileSelect = `SELECT job_id, task_id, dir, idx, name, endpoint, bucket, path,
	size, adler32, attempt FROM files`

func scanFile(s scanner) (store.File, error) {
	var f store.File
	var dir string
	err := s.Scan(&f.JobID, &f.TaskID, &dir, &f.Index, &f.Name, &f.Endpoint, &f.Bucket,
		&f.Path, &f.Size, &f.Adler32, &f.Attempt)
	f.Dir = store.FileDir(dir)
	return f, err
}

// Files returns the files f selects by job, direction ("in" first) and index.
func (db *DB) Files(ctx context.Context, f store.FileFilter) ([]store.File, error) {
	var w where
	w.add(f.JobID != 0, "job_id = ?", f.JobID)
	w.add(f.TaskID != 0, "task_id = ?", f.TaskID)
	w.add(f.Dir != "", "dir = ?", string(f.Dir))
	fs, err := query(ctx, db, scanFile, fileSelect+w.sql("job_id, dir, idx", 0), w.args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: files: %w", err)
	}
	return fs, nil
}

// LiveJobs returns every job not in a final state, by ascending ID.
func (db *DB) LiveJobs(ctx context.Context) ([]store.Job, error) {
	js, err := query(ctx, db, scanJob, jobSelect+" WHERE j.state IN "+liveStates+" ORDER BY j.id")
	if err != nil {
		return nil, fmt.Errorf("sqlite: live jobs: %w", err)
	}
	return js, nil
}

// LiveTasks returns every task with a job not in a final state, by
// ascending ID.
func (db *DB) LiveTasks(ctx context.Context) ([]store.Task, error) {
	ts, err := query(ctx, db, scanTask, taskSelect+
		" WHERE t.id IN (SELECT task_id FROM jobs WHERE state IN "+liveStates+") ORDER BY t.id")
	if err != nil {
		return nil, fmt.Errorf("sqlite: live tasks: %w", err)
	}
	return ts, nil
}

// TokenByHash returns the token with the given hash.
func (db *DB) TokenByHash(ctx context.Context, hash string) (*store.Token, error) {
	var t store.Token
	var role string
	var created int64
	err := db.r.QueryRowContext(ctx, "SELECT hash, name, role, created FROM tokens WHERE hash = ?", hash).
		Scan(&t.Hash, &t.Name, &role, &created)
	if err != nil {
		// The hash authenticates; keep it out of error messages and logs.
		return nil, notFound(err, "token")
	}
	t.Role, t.Created = store.Role(role), fromUnixNano(created)
	return &t, nil
}

// notFound maps sql.ErrNoRows to store.ErrNotFound and wraps err with what
// was looked up.
func notFound(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

// where builds a WHERE clause from the filters that are set.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(set bool, cond string, arg any) {
	if set {
		w.conds = append(w.conds, cond)
		w.args = append(w.args, arg)
	}
}

// sql returns the WHERE, ORDER BY and LIMIT clauses. The limit is an
// integer we format, not user text.
func (w *where) sql(orderBy string, limit int) string {
	var b strings.Builder
	if len(w.conds) > 0 {
		b.WriteString(" WHERE " + strings.Join(w.conds, " AND "))
	}
	b.WriteString(" ORDER BY " + orderBy)
	if limit > 0 {
		fmt.Fprintf(&b, " LIMIT %d", limit)
	}
	return b.String()
}
