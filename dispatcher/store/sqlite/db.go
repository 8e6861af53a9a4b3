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
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pando-wms/pando/dispatcher/store"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

var (
	_ store.Store     = (*DB)(nil)
	_ store.Pipelined = (*DB)(nil)
)

// DB is a SQLite store. It is safe for concurrent use.
type DB struct {
	w *sql.DB // one connection: SQLite has one writer at a time anyway
	r *sql.DB // readers, query_only

	stmts writeStmts

	// wal is the write-ahead log, opened for Sync: fsync flushes a file,
	// whichever descriptor it is called on. The file stays the same while
	// any connection is open (SQLite deletes it when the last one closes).
	wal *os.File

	ckpt     *sql.DB // checkpoints the WAL beside the writer
	stopCkpt chan struct{}
	ckptDone chan struct{}
	// walFrames is the WAL's length in frames at the checkpointer's last
	// pass; past restartFrames, Write has the log restarted (restartLog).
	walFrames atomic.Int64

	ckptEvery     time.Duration // checkpointEvery but in tests
	restartFrames int64         // restartFrames but in tests; 0: never

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the database at path and brings its
// schema up to date.
func Open(path string) (*DB, error) { return open(path, checkpointEvery, restartFrames) }

func open(path string, ckptEvery time.Duration, restartFrames int64) (*DB, error) {
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
	db := &DB{w: w, ckptEvery: ckptEvery, restartFrames: restartFrames}
	if err := db.init(context.Background(), uri, abs); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return db, nil
}

// Pragmas are set per connection through the DSN, so that a connection the
// pool opens later gets them too.
const (
	// synchronous(NORMAL): a commit writes the WAL without flushing it,
	// and Sync flushes it instead (every write method but Write calls it
	// before it returns). A committed transaction survives SIGKILL at
	// once and power loss once synced; Write and Sync apart let the
	// dispatcher write its next group commit while the last is flushed,
	// and one flush cover several. SQLite still syncs where ordering
	// needs it (the WAL header after a restart, before each checkpoint).
	// BEGIN IMMEDIATE takes the write lock up front instead of upgrading
	// mid-transaction, where another process's writer could make it fail
	// with SQLITE_BUSY.
	writerParams = "?_pragma=busy_timeout(5000)" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)" +
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
func (db *DB) init(ctx context.Context, uri, path string) (err error) {
	if err := migrate(ctx, db.w); err != nil {
		return err
	}
	if err := db.stmts.prepare(ctx, db.w); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			db.stmts.close()
			if db.wal != nil {
				db.wal.Close()
			}
			if db.r != nil {
				db.r.Close()
			}
		}
	}()
	// The writer's connection created the WAL when it connected
	// (journal_mode(WAL)); the migration's writes are in it.
	if db.wal, err = os.Open(path + "-wal"); err != nil {
		return fmt.Errorf("open the write-ahead log: %w", err)
	}
	if err := db.Sync(ctx); err != nil {
		return err
	}
	if db.r, err = sql.Open("sqlite", uri+readerParams); err != nil {
		return err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	db.r.SetMaxOpenConns(n)
	db.r.SetMaxIdleConns(n)
	// Open one reader now so a bad DSN fails here, not on the first query.
	if err := db.r.PingContext(ctx); err != nil {
		return err
	}
	return db.startCheckpointer(ctx, uri)
}

// Sync makes every transaction committed so far durable (store.Pipelined).
func (db *DB) Sync(ctx context.Context) error {
	if err := flushFile(db.wal); err != nil {
		return fmt.Errorf("sqlite: sync the write-ahead log: %w", err)
	}
	return nil
}

// checkpointEvery is how often the WAL is copied back into the database.
const checkpointEvery = 500 * time.Millisecond

// restartFrames is how long the WAL may grow (in 4 KiB frames: 16 MiB)
// before the writer has it restarted; see restartLog.
const restartFrames = 4096

// startCheckpointer runs WAL checkpoints on a connection of their own. The
// writer's automatic checkpoint would run inside a commit, every few MB of
// WAL, and stall every commit behind it for milliseconds; a PASSIVE
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
		t := time.NewTicker(db.ckptEvery)
		defer t.Stop()
		for {
			select {
			case <-db.stopCkpt:
				return
			case <-t.C:
				// Errors (SQLITE_BUSY) only mean: again next tick.
				var busy, frames, done int64
				if c.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &done) == nil {
					db.walFrames.Store(frames)
				}
			}
		}
	}()
	return nil
}

// restartLog runs on the writer, between transactions, once the WAL has
// grown past restartFrames. SQLite starts the log over (writing from its
// beginning again) only when a write finds every frame copied back, which
// the checkpointer alone never sees under a steady stream of commits: each
// commit lands while it copies. The log then grew without end (over 100 MB
// in 20 s at a thousand submissions a second), every commit extended the
// file, and every flush had to write the file's new size too. This pass
// copies only what the checkpointer has not, so the next commit restarts
// the log and later ones overwrite it in place.
func (db *DB) restartLog(ctx context.Context) {
	if db.restartFrames == 0 || db.walFrames.Load() < db.restartFrames {
		return
	}
	db.walFrames.Store(0)
	// Errors (SQLITE_BUSY from a reader) only mean: at the next pass.
	_, _ = db.w.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
}

// Close closes both pools. It is safe to call more than once; later calls
// return the first call's result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.stopCkpt)
		<-db.ckptDone
		errs := []error{db.ckpt.Close(), db.stmts.close(), db.r.Close(), db.w.Close(), db.wal.Close()}
		if err := errors.Join(errs...); err != nil {
			db.closeErr = fmt.Errorf("sqlite: close: %w", err)
		}
	})
	return db.closeErr
}
