package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations[i] brings the schema from version i to i+1; the version is
// kept in PRAGMA user_version. Append new steps, never edit old ones.
var migrations = []string{
	// 1: initial schema.
	`
	-- One sequence for task and job IDs, so an ID names exactly one thing
	-- and a task's jobs follow it: task n, jobs n+1..n+len(jobs).
	CREATE TABLE seq (
		id   INTEGER PRIMARY KEY CHECK (id = 1),
		last INTEGER NOT NULL
	);
	INSERT INTO seq (id, last) VALUES (1, 0);

	-- Times are Unix nanoseconds; 0 is the zero time.
	CREATE TABLE tasks (
		id           INTEGER PRIMARY KEY,
		owner        TEXT    NOT NULL,
		name         TEXT    NOT NULL,
		queue        TEXT    NOT NULL,
		priority     INTEGER NOT NULL,
		jobs         INTEGER NOT NULL,
		max_attempts INTEGER NOT NULL,
		spec         BLOB,
		created      INTEGER NOT NULL
	);
	CREATE INDEX tasks_owner ON tasks (owner);

	CREATE TABLE jobs (
		id           INTEGER PRIMARY KEY,
		task_id      INTEGER NOT NULL REFERENCES tasks (id),
		idx          INTEGER NOT NULL,
		state        TEXT    NOT NULL,
		attempt      INTEGER NOT NULL,
		max_attempts INTEGER NOT NULL,
		agent_id     TEXT    NOT NULL,
		agent_name   TEXT    NOT NULL,
		exit_code    INTEGER,
		error_code   INTEGER NOT NULL,
		error        TEXT    NOT NULL,
		created      INTEGER NOT NULL,
		updated      INTEGER NOT NULL,
		started      INTEGER NOT NULL,
		ended        INTEGER NOT NULL
	);
	-- Indexes whose keys a state change does not touch: a job's moves
	-- between live states rewrite no index entry, which halves the cost of
	-- a group commit. The partial index finds live jobs after a restart;
	-- its WHERE must stay the same text as liveStates in read.go.
	CREATE INDEX jobs_task ON jobs (task_id);
	CREATE INDEX jobs_live ON jobs (id) WHERE state IN ('pending','ready','assigned','running');

	-- WITHOUT ROWID: the primary key is the only lookup, and this saves
	-- a second b-tree per row.
	CREATE TABLE attempts (
		job_id        INTEGER NOT NULL REFERENCES jobs (id),
		attempt       INTEGER NOT NULL,
		agent_id      TEXT    NOT NULL,
		agent_name    TEXT    NOT NULL,
		state         TEXT    NOT NULL,
		exit_code     INTEGER,
		error_code    INTEGER NOT NULL,
		error         TEXT    NOT NULL,
		assigned      INTEGER NOT NULL,
		started       INTEGER NOT NULL,
		ended         INTEGER NOT NULL,
		cpu_seconds   REAL    NOT NULL,
		max_rss_bytes INTEGER NOT NULL,
		PRIMARY KEY (job_id, attempt)
	) WITHOUT ROWID;

	CREATE TABLE tokens (
		hash    TEXT PRIMARY KEY,
		name    TEXT    NOT NULL,
		role    TEXT    NOT NULL,
		created INTEGER NOT NULL
	) WITHOUT ROWID;
	`,
	`
	-- Input and output files of jobs. Inputs are written with their task,
	-- outputs with the report of the attempt that wrote them.
	CREATE TABLE files (
		job_id   INTEGER NOT NULL REFERENCES jobs (id),
		dir      TEXT    NOT NULL,
		idx      INTEGER NOT NULL,
		task_id  INTEGER NOT NULL,
		name     TEXT    NOT NULL,
		endpoint TEXT    NOT NULL,
		bucket   TEXT    NOT NULL,
		path     TEXT    NOT NULL,
		size     INTEGER NOT NULL,
		adler32  TEXT    NOT NULL,
		attempt  INTEGER NOT NULL,
		PRIMARY KEY (job_id, dir, idx)
	) WITHOUT ROWID;
	CREATE INDEX files_task ON files (task_id);
	`,
	`
	-- Operator configuration (queues, share targets) as JSON documents.
	CREATE TABLE objects (
		kind    TEXT    NOT NULL,
		name    TEXT    NOT NULL,
		value   BLOB    NOT NULL,
		updated INTEGER NOT NULL,
		PRIMARY KEY (kind, name)
	) WITHOUT ROWID;
	`,
	`
	-- The current attempt's assignment time and usage, so that the attempt
	-- that ends a job is kept in the job's row instead of a row of its own
	-- in attempts: one row write per job fewer. Rows written before this
	-- migration have their final attempts in attempts.
	ALTER TABLE jobs ADD COLUMN assigned INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE jobs ADD COLUMN cpu_seconds REAL NOT NULL DEFAULT 0;
	ALTER TABLE jobs ADD COLUMN max_rss_bytes INTEGER NOT NULL DEFAULT 0;
	`,
}

// migrate applies the missing migrations in one transaction, so a crash
// leaves the schema at either the old or the new version.
func migrate(ctx context.Context, w *sql.DB) error {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("migrate: schema version %d is newer than this binary's %d", v, len(migrations))
	}
	if v == len(migrations) {
		return nil
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate to version %d: %w", i+1, err)
		}
	}
	// PRAGMA takes no bound parameters; the value is our own integer.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return fmt.Errorf("migrate: set version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
