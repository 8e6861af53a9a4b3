package test

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountSmall puts a small tmpfs at dir: a disk that can fill up.
func mountSmall(t *testing.T, dir string, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount tmpfs: %v\n%s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// fill writes a file taking all free space of the filesystem at dir.
func fill(t *testing.T, dir string) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			return path // ENOSPC: full
		}
	}
}

// A full disk gives clear API errors (503, saying why), loses nothing and
// corrupts nothing; when space returns the dispatcher carries on, and the
// task it had accepted but not yet stored is stored and runs.
func TestDiskFull(t *testing.T) {
	c := prepareCluster(t, "127.0.0.1", append(fastTimers, "--commit-timeout", "2s")...)
	mountSmall(t, filepath.Join(c.dir, "data"), "16m")
	c.startDispatcher()
	c.startPilot("--cores", "4")
	first := c.submit("name: before\ncommand: [\"/bin/true\"]\njobs: 10\n")
	if code := c.waitTask(first, time.Minute); code != 0 {
		t.Fatalf("task before the disk filled: exit %d", code)
	}

	filler := fill(t, filepath.Join(c.dir, "data"))
	// A task whose row is larger than the WAL's room already on disk.
	var env strings.Builder
	for i := range 8 {
		fmt.Fprintf(&env, "  BIG%d: %s\n", i, strings.Repeat("x", 60<<10))
	}
	spec := c.taskFile("name: during\ncommand: [\"/bin/true\"]\njobs: 2\nenv:\n" + env.String())
	_, stderr, code := c.pandoRaw("submit", spec)
	if code == 0 {
		t.Fatal("submit on a full disk succeeded")
	}
	if !strings.Contains(stderr, "503") || !strings.Contains(stderr, "durable") {
		t.Errorf("first submit on a full disk: %q, want a 503 saying the task is not yet durable", stderr)
	}
	_, stderr, code = c.pandoRaw("submit", spec)
	if code == 0 || !strings.Contains(stderr, "cannot write its state") {
		t.Errorf("second submit on a full disk: exit %d, %q; want a clear 503", code, stderr)
	}
	if _, _, code := c.pandoRaw("tasks"); code != 0 {
		t.Error("reads fail while the disk is full")
	}

	os.Remove(filler)
	var id int64
	c.waitFor("submissions to work again", 30*time.Second, func() bool {
		out, _, code := c.pandoRaw("submit", spec)
		if code == 0 {
			fmt.Sscan(out, &id)
		}
		return code == 0
	})
	var tasks []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	}
	c.pandoJSON(&tasks, "tasks")
	if len(tasks) != 3 { // before, the one accepted while full, the one after
		t.Fatalf("tasks after the disk came back: %+v, want 3", tasks)
	}
	for _, tk := range tasks {
		if code := c.waitTask(tk.ID, 3*time.Minute); code != 0 {
			t.Errorf("task %d (%s) did not finish: exit %d", tk.ID, tk.Name, code)
		}
	}
	c.disp.stop()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(c.dir, "data", "pando.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q, %v", check, err)
	}
}
