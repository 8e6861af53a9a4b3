// Package sqlite implements store.Store on embedded SQLite (modernc.org/sqlite,
// no cgo). One connection writes, a pool of connections reads: in WAL mode
// readers see the last committed snapshot and never block the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/pando-wms/pando/dispatcher/store"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

var _ store.Store = (*DB)(nil)

// DB is a SQLite store. It is safe for concurrent use.
type DB struct {
	w *sql.DB // one connection: SQLite has one writer at a time anyway
	r *sql.DB // readers, query_only

	stmts writeStmts

	ckpt     *sql.DB // checkpoints the WAL beside the writer
	stopCkpt chan struct{}
	ckptDone chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the database at path and brings its
// schema up to date.
func Open(path string) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// A file: URI with an escaped path, so that '?', '#' or '%' in a
	// directory name cannot be taken for URI syntax.
	uri := "file:" + (&url.URL{Path: abs}).EscapedPath()

	w, err := sql.Open("sqlite", uri+writerParams)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// The writer's prepared statements live on its one connection, so it
	// must never be closed for idleness.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	db := &DB{w: w}
	if err := db.init(context.Background(), uri); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return db, nil
}

// Pragmas are set per connection through the DSN, so that a connection the
// pool opens later gets them too.
const (
	// synchronous(FULL) fsyncs the WAL on every commit: a committed group
	// survives SIGKILL and power loss. Callers group commits, so the fsync
	// is paid once per batch, not per row. BEGIN IMMEDIATE takes the write
	// lock up front instead of upgrading mid-transaction, where another
	// process's writer could make it fail with SQLITE_BUSY.
	writerParams = "?_pragma=busy_timeout(5000)" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)" +
		"&_pragma=wal_autocheckpoint(0)" +
		"&_pragma=foreign_keys(1)" +
		"&_pragma=cache_size(-65536)" +
		"&_pragma=temp_store(MEMORY)" +
		"&_txlock=immediate"
	// Readers never write; query_only turns a bug into an error.
	readerParams = "?_pragma=busy_timeout(5000)" +
		"&_pragma=query_only(1)" +
		"&_pragma=cache_size(-16384)"
)

// init migrates the schema, prepares the write statements and opens the
// read pool, in that order: readers must not see a half-made schema.
func (db *DB) init(ctx context.Context, uri string) error {
	if err := migrate(ctx, db.w); err != nil {
		return err
	}
	if err := db.stmts.prepare(ctx, db.w); err != nil {
		return err
	}
	r, err := sql.Open("sqlite", uri+readerParams)
	if err != nil {
		db.stmts.close()
		return err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	// Open one reader now so a bad DSN fails here, not on the first query.
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		db.stmts.close()
		return err
	}
	db.r = r
	return db.startCheckpointer(ctx, uri)
}

// checkpointEvery is how often the WAL is copied back into the database.
const checkpointEvery = 500 * time.Millisecond

// startCheckpointer runs WAL checkpoints on a connection of their own. The
// writer's automatic checkpoint would run inside a commit, every few MB of
// WAL, and stall every commit behind it for tens of milliseconds; a PASSIVE
// checkpoint here never blocks the writer.
func (db *DB) startCheckpointer(ctx context.Context, uri string) error {
	c, err := sql.Open("sqlite", uri+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	c.SetMaxOpenConns(1)
	if err := c.PingContext(ctx); err != nil {
		c.Close()
		return err
	}
	db.ckpt, db.stopCkpt, db.ckptDone = c, make(chan struct{}), make(chan struct{})
	go func() {
		defer close(db.ckptDone)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-db.stopCkpt:
				return
			case <-t.C:
				// Errors (SQLITE_BUSY) only mean: again next tick.
				_, _ = c.Exec("PRAGMA wal_checkpoint(PASSIVE)")
			}
		}
	}()
	return nil
}

// Close closes both pools. It is safe to call more than once; later calls
// return the first call's result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.stopCkpt)
		<-db.ckptDone
		errs := []error{db.ckpt.Close(), db.stmts.close(), db.r.Close(), db.w.Close()}
		if err := errors.Join(errs...); err != nil {
			db.closeErr = fmt.Errorf("sqlite: close: %w", err)
		}
	})
	return db.closeErr
}
