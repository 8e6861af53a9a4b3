package sqlite

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pando-wms/pando/dispatcher/store"
)

// crashEnv names the database a child process writes to before it is
// killed; see TestSurvivesSIGKILL.
const crashEnv = "PANDO_SQLITE_CRASH_DB"

// A batch that Apply returned for survives SIGKILL of the process right
// after. The test runs itself as the child that is killed.
func TestSurvivesSIGKILL(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "pando.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSurvivesSIGKILL$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	cmd.Process.Kill() // SIGKILL: no deferred Close, no final checkpoint
	cmd.Wait()
	if line != "applied\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	js, err := db.Jobs(context.Background(), store.JobFilter{State: store.Finished})
	if err != nil || len(js) != 1000 {
		t.Fatalf("after SIGKILL: %d finished jobs, %v; want 1000", len(js), err)
	}
}

// crashChild writes a task and finishes its jobs, says so, and waits to be
// killed.
func crashChild(path string) {
	ctx := context.Background()
	db, err := Open(path)
	if err != nil {
		panic(err)
	}
	jobs := benchJobs(1000)
	if err := db.CreateTask(ctx, &store.Task{Owner: "crash"}, jobs); err != nil {
		panic(err)
	}
	for i := range jobs {
		jobs[i].State = store.Finished
	}
	if err := db.Apply(ctx, &store.Batch{Jobs: jobs}); err != nil {
		panic(err)
	}
	os.Stdout.WriteString("applied\n")
	select {}
}
