package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/pando-wms/pando/dispatcher/store"
)

// chunks are the row counts of the multi-row statements prepared for each
// write, largest first: a batch is written with as few statements as
// these sizes allow, spreading the per-statement cost of database/sql and
// the driver (a group commit typically carries a few dozen rows, so a
// single large size would leave most rows to one-row statements). Larger
// chunks measured no faster (UPDATE ... FROM got slower); 64 rows of at
// most 15 columns stay far below SQLite's limit of bound parameters (32766).
var chunks = [...]int{64, 16, 4, 1}

const (
	insertTaskSQL = `INSERT INTO tasks (id, owner, name, queue, priority, jobs,
		max_attempts, spec, created) VALUES (?,?,?,?,?,?,?,?,?)`
	insertJobSQL = `INSERT INTO jobs (id, task_id, idx, state, attempt,
		max_attempts, agent_id, agent_name, exit_code, error_code, error,
		created, updated, started, ended, assigned, cpu_seconds, max_rss_bytes) VALUES %s`
	jobRow = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
	// Only the mutable fields: ID, TaskID, Index and Created never change.
	updateJobSQL = `UPDATE jobs SET state = v.column2, attempt = v.column3,
		max_attempts = v.column4, agent_id = v.column5, agent_name = v.column6,
		exit_code = v.column7, error_code = v.column8, error = v.column9,
		updated = v.column10, started = v.column11, ended = v.column12,
		assigned = v.column13, cpu_seconds = v.column14, max_rss_bytes = v.column15
		FROM (VALUES %s) AS v WHERE jobs.id = v.column1`
	updateRow = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
	// A later row for the same attempt, in the same statement or not,
	// replaces the earlier one.
	upsertAttemptSQL = `INSERT INTO attempts (job_id, attempt, agent_id,
		agent_name, state, exit_code, error_code, error, assigned, started,
		ended, cpu_seconds, max_rss_bytes) VALUES %s
		ON CONFLICT (job_id, attempt) DO UPDATE SET
		agent_id = excluded.agent_id, agent_name = excluded.agent_name,
		state = excluded.state, exit_code = excluded.exit_code,
		error_code = excluded.error_code, error = excluded.error,
		assigned = excluded.assigned, started = excluded.started,
		ended = excluded.ended, cpu_seconds = excluded.cpu_seconds,
		max_rss_bytes = excluded.max_rss_bytes`
	attemptRow = "(?,?,?,?,?,?,?,?,?,?,?,?,?)"
	// A later row for the same file replaces the earlier one: an output
	// written again by a later attempt.
	upsertFileSQL = `INSERT INTO files (job_id, dir, idx, task_id, name, endpoint,
		bucket, path, size, adler32, attempt) VALUES %s
		ON CONFLICT (job_id, dir, idx) DO UPDATE SET
		task_id = excluded.task_id, name = excluded.name, endpoint = excluded.endpoint,
		bucket = excluded.bucket, path = excluded.path, size = excluded.size,
		adler32 = excluded.adler32, attempt = excluded.attempt`
	fileRow = "(?,?,?,?,?,?,?,?,?,?,?)"
)

// archiveAttemptSQL stores the attempt that ended a final job, from its
// row, unless an attempt with its number is stored.
var archiveAttemptSQL = `INSERT OR IGNORE INTO attempts (job_id, attempt, agent_id,
	agent_name, state, exit_code, error_code, error, assigned, started,
	ended, cpu_seconds, max_rss_bytes)
	SELECT id, attempt, agent_id, agent_name, state, exit_code, error_code,
	error, assigned, started, ended, cpu_seconds, max_rss_bytes FROM jobs
	WHERE id = ? AND attempt > 0 AND state IN ` + finalStates

// multi is a statement prepared once per size in chunks. args is reused
// by every exec: the writer has one connection, so they never overlap.
type multi struct {
	st   [len(chunks)]*sql.Stmt
	args []any
}

// writeStmts are prepared once on the writer's single connection and
// reused by every transaction.
type writeStmts struct {
	nextID, insertTask, insertToken  *sql.Stmt
	archiveAttempt                   *sql.Stmt
	insertJobs, updateJobs, attempts multi
	files                            multi
}

// rows returns n copies of row, comma-separated.
func rows(row string, n int) string {
	return strings.TrimSuffix(strings.Repeat(row+",", n), ",")
}

// prep is a statement to prepare into dst.
type prep struct {
	dst   **sql.Stmt
	query string
}

func (s *writeStmts) prepare(ctx context.Context, w *sql.DB) error {
	qs := []prep{
		{&s.nextID, "UPDATE seq SET last = last + ? WHERE id = 1 RETURNING last"},
		{&s.insertTask, insertTaskSQL},
		{&s.insertToken, "INSERT INTO tokens (hash, name, role, created) VALUES (?,?,?,?)"},
		{&s.archiveAttempt, archiveAttemptSQL},
	}
	for _, m := range []struct {
		dst      *multi
		sql, row string
	}{
		{&s.insertJobs, insertJobSQL, jobRow},
		{&s.updateJobs, updateJobSQL, updateRow},
		{&s.attempts, upsertAttemptSQL, attemptRow},
		{&s.files, upsertFileSQL, fileRow},
	} {
		for i, n := range chunks {
			qs = append(qs, prep{&m.dst.st[i], fmt.Sprintf(m.sql, rows(m.row, n))})
		}
	}
	for _, q := range qs {
		st, err := w.PrepareContext(ctx, q.query)
		if err != nil {
			s.close()
			return fmt.Errorf("prepare: %w", err)
		}
		*q.dst = st
	}
	return nil
}

func (s *writeStmts) close() error {
	var errs []error
	all := []*sql.Stmt{s.nextID, s.insertTask, s.insertToken, s.archiveAttempt}
	for _, m := range []*multi{&s.insertJobs, &s.updateJobs, &s.attempts, &s.files} {
		all = append(all, m.st[:]...)
	}
	for _, st := range all {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// exec runs m in tx over n rows, in statements of the sizes in chunks.
// add appends the arguments of row i. It returns the number of rows the
// statements affected.
func (m *multi) exec(ctx context.Context, tx *sql.Tx, n int, add func(args []any, i int) []any) (int64, error) {
	var affected int64
	var txs [len(chunks)]*sql.Stmt
	for i, c := 0, 0; i < n; {
		for chunks[c] > n-i {
			c++
		}
		args := m.args[:0]
		for end := i + chunks[c]; i < end; i++ {
			args = add(args, i)
		}
		m.args = args
		if txs[c] == nil {
			txs[c] = tx.StmtContext(ctx, m.st[c])
		}
		res, err := txs[c].ExecContext(ctx, args...)
		clear(args) // do not pin the rows' strings until the next batch
		if err != nil {
			return affected, err
		}
		got, err := res.RowsAffected()
		if err != nil {
			return affected, err
		}
		affected += got
	}
	return affected, nil
}

// CreateTask stores t and its jobs in one transaction. The task takes the
// next ID of the shared sequence and its jobs the len(jobs) IDs after it.
func (db *DB) CreateTask(ctx context.Context, t *store.Task, jobs []store.Job) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: create task: %w", err)
	}
	defer tx.Rollback()
	var last int64
	if err := tx.StmtContext(ctx, db.stmts.nextID).QueryRowContext(ctx, 1+len(jobs)).Scan(&last); err != nil {
		return fmt.Errorf("sqlite: create task: next id: %w", err)
	}
	id := last - int64(len(jobs))
	if _, err := tx.StmtContext(ctx, db.stmts.insertTask).ExecContext(ctx, id, t.Owner, t.Name,
		t.Queue, t.Priority, t.Jobs, t.MaxAttempts, t.Spec, unixNano(t.Created)); err != nil {
		return fmt.Errorf("sqlite: create task: %w", err)
	}
	_, err = db.stmts.insertJobs.exec(ctx, tx, len(jobs), func(args []any, i int) []any {
		j := &jobs[i]
		return appendJob(args, id+1+int64(i), id, j)
	})
	if err != nil {
		return fmt.Errorf("sqlite: create task: insert jobs: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: create task: commit: %w", err)
	}
	if err := db.Sync(ctx); err != nil {
		return fmt.Errorf("sqlite: create task: %w", err)
	}
	// Fill in IDs only once they are durable, so a failed call leaves the
	// caller's values untouched.
	t.ID = id
	for i := range jobs {
		jobs[i].ID, jobs[i].TaskID = id+1+int64(i), id
	}
	return nil
}

// ReserveIDs takes n IDs from the shared sequence and returns the first.
func (db *DB) ReserveIDs(ctx context.Context, n int64) (int64, error) {
	if n <= 0 {
		return 0, fmt.Errorf("sqlite: reserve ids: n = %d", n)
	}
	var last int64
	if err := db.stmts.nextID.QueryRowContext(ctx, n).Scan(&last); err != nil {
		return 0, fmt.Errorf("sqlite: reserve ids: %w", err)
	}
	if err := db.Sync(ctx); err != nil {
		return 0, fmt.Errorf("sqlite: reserve ids: %w", err)
	}
	return last - n + 1, nil
}

// insertTasks inserts new tasks and their jobs, IDs given by the caller.
func (db *DB) insertTasks(ctx context.Context, tx *sql.Tx, tasks []store.NewTask) error {
	ins := tx.StmtContext(ctx, db.stmts.insertTask)
	for i := range tasks {
		t, jobs := &tasks[i].Task, tasks[i].Jobs
		if _, err := ins.ExecContext(ctx, t.ID, t.Owner, t.Name, t.Queue, t.Priority, t.Jobs,
			t.MaxAttempts, t.Spec, unixNano(t.Created)); err != nil {
			return fmt.Errorf("insert task %d: %w", t.ID, err)
		}
		if err := db.insertJobs(ctx, tx, jobs); err != nil {
			return fmt.Errorf("insert jobs of task %d: %w", t.ID, err)
		}
		if err := db.upsertFiles(ctx, tx, tasks[i].Files); err != nil {
			return fmt.Errorf("insert files of task %d: %w", t.ID, err)
		}
	}
	return nil
}

func (db *DB) insertJobs(ctx context.Context, tx *sql.Tx, jobs []store.Job) error {
	_, err := db.stmts.insertJobs.exec(ctx, tx, len(jobs), func(args []any, i int) []any {
		j := &jobs[i]
		return appendJob(args, j.ID, j.TaskID, j)
	})
	return err
}

// appendJob appends the columns of jobRow.
func appendJob(args []any, id, taskID int64, j *store.Job) []any {
	return append(args, id, taskID, j.Index, string(j.State), j.Attempt,
		j.MaxAttempts, j.AgentID, j.AgentName, nullInt(j.ExitCode), j.ErrorCode,
		j.Error, unixNano(j.Created), unixNano(j.Updated), unixNano(j.Started), unixNano(j.Ended),
		unixNano(j.Assigned), j.CPUSeconds, j.MaxRSSBytes)
}

// archive stores the final attempt of each job named, from its row.
func (db *DB) archive(ctx context.Context, tx *sql.Tx, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	st := tx.StmtContext(ctx, db.stmts.archiveAttempt)
	for _, id := range ids {
		if _, err := st.ExecContext(ctx, id); err != nil {
			return fmt.Errorf("archive the last attempt of job %d: %w", id, err)
		}
	}
	return nil
}

// CreateToken stores t. A token whose hash is already stored is an error.
func (db *DB) CreateToken(ctx context.Context, t store.Token) error {
	if _, err := db.stmts.insertToken.ExecContext(ctx, t.Hash, t.Name, string(t.Role), unixNano(t.Created)); err != nil {
		return fmt.Errorf("sqlite: create token %q: %w", t.Name, err)
	}
	return db.Sync(ctx)
}

func (db *DB) upsertFiles(ctx context.Context, tx *sql.Tx, fs []store.File) error {
	_, err := db.stmts.files.exec(ctx, tx, len(fs), func(args []any, i int) []any {
		f := &fs[i]
		return append(args, f.JobID, string(f.Dir), f.Index, f.TaskID, f.Name, f.Endpoint,
			f.Bucket, f.Path, f.Size, f.Adler32, f.Attempt)
	})
	return err
}
