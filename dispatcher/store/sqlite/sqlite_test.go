package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/store/storetest"
)

func openTest(t testing.TB, dir string) *DB {
	t.Helper()
	db, err := Open(filepath.Join(dir, "pando.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dir string) store.Store { return openTest(t, dir) })
}

// The pragmas in the DSN reach every connection.
func TestPragmas(t *testing.T) {
	db := openTest(t, t.TempDir())
	for _, c := range []struct {
		pool   string
		pragma string
		want   string
	}{
		{"writer", "journal_mode", "wal"},
		{"writer", "synchronous", "1"}, // NORMAL: Sync flushes the WAL
		{"writer", "foreign_keys", "1"},
		{"reader", "query_only", "1"},
	} {
		conn := db.w
		if c.pool == "reader" {
			conn = db.r
		}
		var got string
		if err := conn.QueryRow("PRAGMA " + c.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s PRAGMA %s = %s, want %s", c.pool, c.pragma, got, c.want)
		}
	}
}

// Sync flushes the WAL through a descriptor of its own, which is only right
// while that descriptor and SQLite's name the same file: through
// checkpoints that reset and truncate the log, and more writes after them.
func TestSyncFollowsTheWAL(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openTest(t, dir)
	same := func(when string) {
		t.Helper()
		a, err := db.wal.Stat()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.Stat(filepath.Join(dir, "pando.db-wal"))
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(a, b) {
			t.Fatalf("%s: Sync's descriptor is not the WAL SQLite writes", when)
		}
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	same("after open")
	for round := range 3 {
		for range 20 {
			first, err := db.ReserveIDs(ctx, 2)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			b := &store.Batch{Tasks: []store.NewTask{{
				Task: store.Task{ID: first, Owner: "a", Jobs: 1, Created: now},
				Jobs: []store.Job{{ID: first + 1, TaskID: first, State: store.Ready, Created: now, Updated: now}}}}}
			if err := db.Write(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		same(fmt.Sprintf("round %d, written", round))
		if _, err := db.ckpt.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			t.Fatal(err)
		}
		same(fmt.Sprintf("round %d, checkpointed", round))
	}
	tasks, err := db.Tasks(ctx, store.TaskFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 60 {
		t.Fatalf("%d tasks, want 60", len(tasks))
	}
}

// Under a steady stream of commits the checkpointer never catches up with
// the writer, so the WAL grows without end unless the writer has it
// restarted (restartLog). The same commits with and without: the WAL
// without restarts holds all of them, with restarts those since the last.
func TestWALRestartsUnderLoad(t *testing.T) {
	walBytes := func(restart int64) int64 {
		dir := t.TempDir()
		db, err := open(filepath.Join(dir, "pando.db"), 20*time.Millisecond, restart)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ctx := context.Background()
		for range 300 {
			first, err := db.ReserveIDs(ctx, 9)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			nt := store.NewTask{Task: store.Task{ID: first, Owner: "a", Jobs: 8, Created: now}}
			for i := range int64(8) {
				nt.Jobs = append(nt.Jobs, store.Job{ID: first + 1 + i, TaskID: first, Index: int(i), State: store.Ready, Created: now, Updated: now})
			}
			if err := db.Write(ctx, &store.Batch{Tasks: []store.NewTask{nt}}); err != nil {
				t.Fatal(err)
			}
		}
		fi, err := os.Stat(filepath.Join(dir, "pando.db-wal"))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	grown, bounded := walBytes(0), walBytes(64)
	t.Logf("WAL after 300 commits: %d bytes without restarts, %d with", grown, bounded)
	if bounded*3 > grown {
		t.Errorf("WAL after 300 commits: %d bytes with restarts at 64 frames, %d without; want a third or less", bounded, grown)
	}
}

// SQLite keeps nanoseconds, finer than the suite asks of every store.
func TestNanoseconds(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, t.TempDir())
	created := time.Unix(1_700_000_000, 123_456_789)
	task := &store.Task{Owner: "a", Created: created}
	if err := db.CreateTask(ctx, task, nil); err != nil {
		t.Fatal(err)
	}
	got, err := db.Task(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Created.Equal(created) {
		t.Errorf("Created = %v, want %v", got.Created, created)
	}
}

// A path with URI syntax in it names a file, not URI parameters.
func TestOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?mode=ro#x%20")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	db := openTest(t, dir)
	if err := db.CreateTask(context.Background(), &store.Task{Owner: "a"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pando.db")); err != nil {
		t.Fatal(err)
	}
}

// A database from a newer binary is refused rather than misread.
func TestNewerSchema(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	if _, err := db.w.Exec("PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(filepath.Join(dir, "pando.db"))
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema: %v", err)
	}
}

// A database written before jobs kept their final attempt (schema 3) is
// migrated in place: its final attempts, stored in attempts, are still
// listed once, and its jobs read with the new columns zero.
func TestMigrateFinalAttempts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pando.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:3] {
		if _, err := old.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		"PRAGMA user_version = 3",
		"INSERT INTO tasks VALUES (1, 'alice', 't', '', 0, 1, 3, NULL, 0)",
		"INSERT INTO jobs VALUES (2, 1, 0, 'finished', 1, 3, 'a1', 'p1', 0, 0, '', 0, 5, 3, 5)",
		"INSERT INTO attempts VALUES (2, 1, 'a1', 'p1', 'finished', 0, 0, '', 2, 3, 5, 1.5, 4096)",
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	old.Close()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	as, err := db.Attempts(ctx, 2)
	if err != nil || len(as) != 1 || as[0].CPUSeconds != 1.5 || as[0].Assigned.UnixNano() != 2 {
		t.Fatalf("attempts after migration = %+v, %v", as, err)
	}
	j, err := db.Job(ctx, 2)
	if err != nil || j.State != store.Finished || !j.Assigned.IsZero() || j.CPUSeconds != 0 {
		t.Fatalf("job after migration = %+v, %v", j, err)
	}
}
