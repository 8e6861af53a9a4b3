package storetest

import (
	"context"
	"testing"

	"github.com/pando-wms/pando/dispatcher/store"
)

// Input files are written with their task, outputs by later batches; an
// output written again (a later attempt) replaces the earlier record.
func testFiles(t *testing.T, open Opener) {
	ctx := context.Background()
	s := fresh(t, open)
	first, err := s.ReserveIDs(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	task, jobs := newTask("alice", 2)
	task.ID = first
	for i := range jobs {
		jobs[i].ID, jobs[i].TaskID = first+1+int64(i), first
	}
	in := func(job int64, idx int, name string) store.File {
		return store.File{JobID: job, TaskID: first, Dir: store.Input, Index: idx, Name: name,
			Endpoint: "lake", Bucket: "data", Path: "run1/" + name, Size: int64(100 + idx), Adler32: "0a0b0c0d"}
	}
	ins := []store.File{in(jobs[0].ID, 0, "a"), in(jobs[0].ID, 1, "b"), in(jobs[1].ID, 0, "c")}
	apply(t, s, &store.Batch{Tasks: []store.NewTask{{Task: *task, Jobs: jobs, Files: ins}}})
	got, err := s.Files(ctx, store.FileFilter{JobID: jobs[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(got, ins[:2]); d != "" {
		t.Fatalf("job files: %s", d)
	}
	out := store.File{JobID: jobs[0].ID, TaskID: first, Dir: store.Output, Index: 0, Name: "out.txt",
		Endpoint: "lake", Bucket: "results", Path: "1/2/out.txt", Size: 5, Adler32: "05c801f0", Attempt: 1}
	apply(t, s, &store.Batch{Files: []store.File{out}})
	out.Size, out.Attempt, out.Adler32 = 6, 2, "07e80253"
	apply(t, s, &store.Batch{Files: []store.File{out}})
	got, err = s.Files(ctx, store.FileFilter{JobID: jobs[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(got, append(ins[:2:2], out)); d != "" {
		t.Fatalf("job files after outputs: %s", d)
	}
	got, err = s.Files(ctx, store.FileFilter{TaskID: first, Dir: store.Input})
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(got, ins); d != "" {
		t.Fatalf("task inputs: %s", d)
	}
	if got, err := s.Files(ctx, store.FileFilter{JobID: jobs[1].ID, Dir: store.Output}); err != nil || len(got) != 0 {
		t.Fatalf("outputs of a job without any: %v, %v", got, err)
	}
}
