package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pando-wms/pando/dispatcher/store"
)

// Apply writes b in one transaction and makes it durable.
func (db *DB) Apply(ctx context.Context, b *store.Batch) error {
	if err := db.Write(ctx, b); err != nil {
		return err
	}
	return db.Sync(ctx)
}

// Write writes b in one transaction, durable once Sync returns (see
// store.Pipelined). A job that does not exist fails the whole batch with
// store.ErrNotFound: the caller's memory and the store disagree, and
// writing part of a group commit would hide that.
func (db *DB) Write(ctx context.Context, b *store.Batch) error {
	if len(b.Tasks) == 0 && len(b.Archive) == 0 && len(b.Jobs) == 0 && len(b.Attempts) == 0 && len(b.Files) == 0 {
		return nil
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: apply batch: %w", err)
	}
	defer tx.Rollback()
	if err := db.insertTasks(ctx, tx, b.Tasks); err != nil {
		return fmt.Errorf("sqlite: apply batch: %w", err)
	}
	if err := db.archive(ctx, tx, b.Archive); err != nil {
		return fmt.Errorf("sqlite: apply batch: %w", err)
	}
	if err := db.updateJobs(ctx, tx, lastPerID(b.Jobs)); err != nil {
		return fmt.Errorf("sqlite: apply batch: %w", err)
	}
	if err := db.upsertAttempts(ctx, tx, b.Attempts); err != nil {
		return fmt.Errorf("sqlite: apply batch: upsert attempts: %w", err)
	}
	if err := db.upsertFiles(ctx, tx, b.Files); err != nil {
		return fmt.Errorf("sqlite: apply batch: upsert files: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: apply batch: commit: %w", err)
	}
	db.restartLog(ctx)
	return nil
}

// updateJobs writes the mutable fields of jobs, whose IDs must be distinct.
func (db *DB) updateJobs(ctx context.Context, tx *sql.Tx, jobs []store.Job) error {
	n, err := db.stmts.updateJobs.exec(ctx, tx, len(jobs), func(args []any, i int) []any {
		j := &jobs[i]
		return append(args, j.ID, string(j.State), j.Attempt, j.MaxAttempts,
			j.AgentID, j.AgentName, nullInt(j.ExitCode), j.ErrorCode, j.Error,
			unixNano(j.Updated), unixNano(j.Started), unixNano(j.Ended),
			unixNano(j.Assigned), j.CPUSeconds, j.MaxRSSBytes)
	})
	if err != nil {
		return fmt.Errorf("update jobs: %w", err)
	}
	if n < int64(len(jobs)) {
		return missingJob(ctx, tx, jobs)
	}
	return nil
}

// missingJob names a job of jobs that does not exist. It runs only when an
// update found fewer rows than it was given.
func missingJob(ctx context.Context, tx *sql.Tx, jobs []store.Job) error {
	for _, j := range jobs {
		var id int64
		err := tx.QueryRowContext(ctx, "SELECT id FROM jobs WHERE id = ?", j.ID).Scan(&id)
		if err != nil {
			return notFound(err, "update job %d", j.ID)
		}
	}
	return fmt.Errorf("update jobs: fewer rows updated than given")
}

func (db *DB) upsertAttempts(ctx context.Context, tx *sql.Tx, as []store.Attempt) error {
	_, err := db.stmts.attempts.exec(ctx, tx, len(as), func(args []any, i int) []any {
		a := &as[i]
		return append(args, a.JobID, a.Attempt, a.AgentID, a.AgentName,
			string(a.State), nullInt(a.ExitCode), a.ErrorCode, a.Error,
			unixNano(a.Assigned), unixNano(a.Started), unixNano(a.Ended),
			a.CPUSeconds, a.MaxRSSBytes)
	})
	return err
}

// lastPerID keeps only the last update of each job, in order. One UPDATE
// ... FROM VALUES row per job would apply an arbitrary one of several;
// the caller means the last.
func lastPerID(jobs []store.Job) []store.Job {
	last := make(map[int64]int, len(jobs))
	for i, j := range jobs {
		last[j.ID] = i
	}
	if len(last) == len(jobs) {
		return jobs
	}
	out := make([]store.Job, 0, len(last))
	for i, j := range jobs {
		if last[j.ID] == i {
			out = append(out, j)
		}
	}
	return out
}
