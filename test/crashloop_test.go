package test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// The dispatcher is killed with SIGKILL five times during a run and
// restarted each time: every job ends finished exactly once, none is lost,
// and no attempt is recorded finished twice. PANDO_SOAK=1 runs the long
// variant (20,000 jobs), as `make soak` does.
func TestDispatcherCrashLoop(t *testing.T) {
	jobs, pause := 1500, 1500*time.Millisecond
	if os.Getenv("PANDO_SOAK") != "" {
		jobs, pause = 20000, 5*time.Second
	}
	c := newCluster(t, fastTimers...)
	c.startPilot("--cores", "8")
	c.startPilot("--cores", "8")
	id := c.submit(fmt.Sprintf("name: crashloop\ncommand: [\"/bin/sh\", \"-c\", \"sleep 0.05\"]\njobs: %d\nresources: {walltime: 5m}\n", jobs))
	for i := range 5 {
		time.Sleep(pause)
		c.disp.kill9()
		t.Logf("kill %d: dispatcher killed", i+1)
		c.startDispatcher()
	}
	if code := c.waitTask(id, 10*time.Minute); code != 0 {
		t.Fatalf("pando wait: exit %d, want 0", code)
	}
	c.disp.stop()

	db, err := sql.Open("sqlite", "file:"+filepath.Join(c.dir, "data", "pando.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var total, finished int
	if err := db.QueryRow("SELECT count(*), count(*) FILTER (WHERE state = 'finished') FROM jobs WHERE task_id = ?", id).Scan(&total, &finished); err != nil {
		t.Fatal(err)
	}
	if total != jobs || finished != jobs {
		t.Fatalf("%d jobs stored, %d finished; want %d and %d", total, finished, jobs, jobs)
	}
	// Every ended attempt: those stored in attempts, and the one that ended
	// each job, kept in its row unless stored (store.Store.Attempts).
	const every = `WITH every AS (SELECT job_id, state FROM attempts UNION ALL
		SELECT id, state FROM jobs j WHERE attempt > 0 AND state IN ('finished', 'failed', 'cancelled')
		AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.job_id = j.id AND a.attempt = j.attempt)) `
	var twice int
	if err := db.QueryRow(every + `SELECT count(*) FROM (SELECT job_id FROM every WHERE state = 'finished'
		GROUP BY job_id HAVING count(*) > 1)`).Scan(&twice); err != nil {
		t.Fatal(err)
	}
	if twice != 0 {
		t.Fatalf("%d jobs have more than one finished attempt", twice)
	}
	var records int
	if err := db.QueryRow(every + "SELECT count(*) FROM every WHERE state = 'finished'").Scan(&records); err != nil {
		t.Fatal(err)
	}
	if records != jobs {
		t.Fatalf("%d finished attempt records, want %d", records, jobs)
	}
	var retried int
	db.QueryRow("SELECT count(*) FROM jobs WHERE task_id = ? AND attempt > 1", id).Scan(&retried)
	t.Logf("%d jobs finished through 5 dispatcher crashes; %d needed more than one attempt", jobs, retried)
}
