package sqlite

import (
	"context"
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
