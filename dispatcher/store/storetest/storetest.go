// Package storetest is the conformance suite for store.Store: every
// implementation runs it from its own tests with Run.
package storetest

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/store"
)

// Opener opens a store over the data in dir, creating it if dir is empty.
// Run closes every store it opens; Close must be idempotent, so open may
// also register its own cleanup.
type Opener func(t *testing.T, dir string) store.Store

// Run runs the conformance suite against the stores open returns.
func Run(t *testing.T, open Opener) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"IDSequence", testIDSequence},
		{"RoundTrip", testRoundTrip},
		{"NotFound", testNotFound},
		{"ApplyNewTasks", testApplyNewTasks},
		{"ApplyMutableOnly", testApplyMutableOnly},
		{"ApplyLastWins", testApplyLastWins},
		{"ApplyAtomic", testApplyAtomic},
		{"Pipelined", testPipelined},
		{"Attempts", testAttempts},
		{"FinalAttempt", testFinalAttempt},
		{"TaskFilters", testTaskFilters},
		{"JobFilters", testJobFilters},
		{"TaskCounts", testTaskCounts},
		{"Live", testLive},
		{"Files", testFiles},
		{"Tokens", testTokens},
		{"Objects", testObjects},
		{"Persistence", testPersistence},
		{"ConcurrentReaders", testConcurrentReaders},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open) })
	}
}

// fresh opens a store over a new directory, closed when the test ends.
func fresh(t *testing.T, open Opener) store.Store {
	t.Helper()
	s := open(t, t.TempDir())
	t.Cleanup(func() { s.Close() })
	return s
}

// at returns a fixed time plus d. Times are whole microseconds, the finest
// resolution every SQL database keeps (PostgreSQL's timestamptz).
func at(d time.Duration) time.Time {
	return time.Unix(1_700_000_000, 123_456_000).Add(d)
}

func intp(v int) *int { return &v }

// newTask returns a task of owner with n ready jobs, not yet stored.
func newTask(owner string, n int) (*store.Task, []store.Job) {
	t := &store.Task{Owner: owner, Name: "task of " + owner, Queue: "grid",
		Priority: 10, Jobs: n, MaxAttempts: 3, Spec: []byte(`{"image":"busybox"}`), Created: at(0)}
	jobs := make([]store.Job, n)
	for i := range jobs {
		jobs[i] = store.Job{Index: i, State: store.Ready, MaxAttempts: 3, Created: at(0), Updated: at(0)}
	}
	return t, jobs
}

// create stores a task of owner with n ready jobs.
func create(t *testing.T, s store.Store, owner string, n int) (*store.Task, []store.Job) {
	t.Helper()
	task, jobs := newTask(owner, n)
	if err := s.CreateTask(context.Background(), task, jobs); err != nil {
		t.Fatalf("CreateTask(%s, %d jobs): %v", owner, n, err)
	}
	return task, jobs
}

// apply writes b and fails the test on error.
func apply(t *testing.T, s store.Store, b *store.Batch) {
	t.Helper()
	if err := s.Apply(context.Background(), b); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// setState returns a copy of j moved to state at time d.
func setState(j store.Job, state store.State, d time.Duration) store.Job {
	j.State, j.Updated = state, at(d)
	if state.Final() {
		j.Ended = at(d)
	}
	return j
}

// diff reports the first field where got and want differ, or "". Times
// compare with Equal (time zones and monotonic readings do not matter),
// pointers by what they point to, nil and empty byte slices alike.
func diff(got, want any) string {
	return diffValue("", reflect.ValueOf(got), reflect.ValueOf(want))
}

var timeType = reflect.TypeOf(time.Time{})

func diffValue(path string, g, w reflect.Value) string {
	switch {
	case g.Type() == timeType:
		gt, wt := g.Interface().(time.Time), w.Interface().(time.Time)
		if !gt.Equal(wt) {
			return fmt.Sprintf("%s: got %v, want %v", path, gt, wt)
		}
	case g.Kind() == reflect.Pointer:
		if g.IsNil() || w.IsNil() {
			if g.IsNil() != w.IsNil() {
				return fmt.Sprintf("%s: got %v, want %v", path, show(g), show(w))
			}
			return ""
		}
		return diffValue(path, g.Elem(), w.Elem())
	case g.Kind() == reflect.Struct:
		for i := range g.NumField() {
			if d := diffValue(path+"."+g.Type().Field(i).Name, g.Field(i), w.Field(i)); d != "" {
				return d
			}
		}
	case g.Kind() == reflect.Slice && g.Type().Elem().Kind() == reflect.Uint8:
		if !bytes.Equal(g.Bytes(), w.Bytes()) {
			return fmt.Sprintf("%s: got %q, want %q", path, g.Bytes(), w.Bytes())
		}
	case g.Kind() == reflect.Slice:
		if g.Len() != w.Len() {
			return fmt.Sprintf("%s: got %d elements, want %d", path, g.Len(), w.Len())
		}
		for i := range g.Len() {
			if d := diffValue(fmt.Sprintf("%s[%d]", path, i), g.Index(i), w.Index(i)); d != "" {
				return d
			}
		}
	default:
		if !reflect.DeepEqual(g.Interface(), w.Interface()) {
			return fmt.Sprintf("%s: got %v, want %v", path, g.Interface(), w.Interface())
		}
	}
	return ""
}

func show(p reflect.Value) any {
	if p.IsNil() {
		return "nil"
	}
	return p.Elem().Interface()
}

// ids returns the IDs of tasks or jobs, in order.
func ids[T store.Job | store.Task](xs []T) []int64 {
	out := make([]int64, len(xs))
	for i, x := range xs {
		switch v := any(x).(type) {
		case store.Job:
			out[i] = v.ID
		case store.Task:
			out[i] = v.ID
		}
	}
	return out
}
