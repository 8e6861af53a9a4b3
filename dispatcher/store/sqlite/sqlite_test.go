package sqlite

import (
	"context"
	"database/sql"
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
		{"writer", "synchronous", "2"}, // FULL
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
