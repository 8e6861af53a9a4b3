package broker_test

import (
	"fmt"
	"testing"

	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/edge/cache"
)

// dataTask submits a task of n jobs, job i reading "lake:data/fI" (size I+1).
func (h *harness) dataTask(n int) (store.Task, []store.Job) {
	t, spec, jobs := h.newTask(taskOpts{jobs: n})
	spec.Inputs, spec.FilesPerJob = &task.Inputs{Endpoint: "lake", Bucket: "data"}, 1
	spec.Outputs = &task.Outputs{Endpoint: "lake", Bucket: "out", Path: "{task}/{job}/", Patterns: []string{"*.txt"}}
	files := make([]store.File, n)
	for i, j := range jobs {
		files[i] = store.File{JobID: j.ID, TaskID: t.ID, Dir: store.Input, Name: fmt.Sprintf("f%d", i),
			Endpoint: "lake", Bucket: "data", Path: fmt.Sprintf("f%d", i), Size: int64(i + 1)}
	}
	h.b.Submit(store.NewTask{Task: t, Jobs: jobs, Files: files}, spec, func(error) {})
	return t, jobs
}

// Assigns carry each job's inputs and output patterns; the outputs of a
// successful report are recorded under the task's path template.
func TestDataAssignAndOutputs(t *testing.T) {
	h := newHarness(t, defaultConfig())
	tk, jobs := h.dataTask(3)
	a := h.connect("a1", "")
	a.want(1)
	h.commit()
	as := a.assigns()
	if len(as) != 1 || len(as[0].Inputs) != 1 || as[0].Inputs[0].Source != "lake:data/f0" || as[0].Outputs[0] != "*.txt" {
		t.Fatalf("assigns %+v", as)
	}
	as[0].Inputs[0].URL = "http://presigned" // the dispatcher fills URLs in its copy
	if d, err := h.b.Data("a1", jobs[0].ID, 1); err != nil || d.Inputs[0].URL != "" || d.TaskID != tk.ID {
		t.Fatalf("Data = %+v, %v", d, err)
	}
	if _, err := h.b.Data("a2", jobs[0].ID, 1); err == nil {
		t.Fatal("Data for another agent's attempt succeeded")
	}
	rep := &wire.Report{Outputs: []wire.OutputFile{{Name: "out.txt", Size: 3, Adler32: "024d0127"}}}
	if err := h.b.Report("a1", jobs[0].ID, 1, rep, func(error) {}); err != nil {
		t.Fatal(err)
	}
	b := h.commit()
	want := fmt.Sprintf("%d/%d/out.txt", tk.ID, jobs[0].ID)
	if len(b.Files) != 1 || b.Files[0].Path != want || b.Files[0].Bucket != "out" || b.Files[0].Adler32 != "024d0127" || b.Files[0].Dir != store.Output {
		t.Fatalf("batch files %+v; want one output at out/%s", b.Files, want)
	}
}

// An agent whose node cache holds a job's input gets that job before older
// ones; an agent without a summary gets jobs in order.
func TestDataAwareMatching(t *testing.T) {
	h := newHarness(t, defaultConfig())
	_, jobs := h.dataTask(10)
	bits, k := cache.Summarize([]string{cache.InputKey("lake:data/f7", "", 8).ID()})
	sum, err := cache.ParseSummary(bits, k)
	if err != nil {
		t.Fatal(err)
	}
	warm := h.connect("warm", "")
	h.b.SetCache("warm", sum)
	cold := h.connect("cold", "")
	cold.want(1)
	warm.want(1)
	h.commit()
	if as := cold.assigns(); len(as) != 1 || as[0].JobID != jobs[0].ID {
		t.Fatalf("cold agent got %+v, want the oldest job %d", as, jobs[0].ID)
	}
	if as := warm.assigns(); len(as) != 1 || as[0].JobID != jobs[7].ID {
		t.Fatalf("warm agent got %+v, want job %d whose input it holds", as, jobs[7].ID)
	}
	// The job taken out of order is not handed out again.
	cold.want(9)
	h.commit()
	seen := map[int64]bool{jobs[0].ID: true, jobs[7].ID: true}
	for _, a := range cold.assigns() {
		if seen[a.JobID] {
			t.Fatalf("job %d assigned twice", a.JobID)
		}
		seen[a.JobID] = true
	}
	if len(seen) != 10 {
		t.Fatalf("%d jobs assigned, want 10", len(seen))
	}
}
