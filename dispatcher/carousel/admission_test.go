package carousel

import (
	"fmt"
	"testing"
)

func admitAll(a *admission) []File {
	var out []File
	for a.len() > 0 {
		out = append(out, a.take(a.pick()))
	}
	return out
}

// Files needed in dataset order over four tapes are admitted two tapes at
// a time (Streams), each read to its end before the next is opened.
func TestAdmissionReadsTapesToTheEnd(t *testing.T) {
	a := newAdmission(2)
	for i := range 12 {
		a.push(File{Path: fmt.Sprintf("/T%d/f%02d", i%4, i), Size: 1})
	}
	left := map[string]int{"T0": 3, "T1": 3, "T2": 3, "T3": 3}
	opened := map[string]int{}
	var order []string
	for _, f := range admitAll(a) {
		g := f.group()
		order = append(order, g)
		if left[g] == 3 {
			opened[g]++
		}
		left[g]--
		reading := 0 // tapes started and not read to their end
		for _, n := range left {
			if n > 0 && n < 3 {
				reading++
			}
		}
		if reading > 2 {
			t.Fatalf("more than two tapes being read at once: %v", order)
		}
	}
	for g, n := range opened {
		if n != 1 {
			t.Errorf("tape %s opened %d times: %v", g, n, order)
		}
	}
}

// A job's files are admitted one after another even when they sit on
// different tapes, so that a full window never waits on files outside it.
func TestAdmissionKeepsJobsTogether(t *testing.T) {
	a := newAdmission(2)
	for job := int64(1); job <= 4; job++ {
		for k, tape := range []string{"A", "B", "C"} {
			a.push(File{Path: fmt.Sprintf("/%s/j%d-%d", tape, job, k), Size: 1, Job: job})
		}
	}
	files := admitAll(a)
	for i := 0; i < len(files); i += 3 {
		if files[i].Job != files[i+1].Job || files[i].Job != files[i+2].Job {
			t.Fatalf("job files interleaved: %v", files)
		}
	}
}

// First-come admission (the benchmark's baseline) keeps the order given.
func TestAdmissionFirstCome(t *testing.T) {
	a := newAdmission(2)
	a.firstCome = true
	var want []string
	for i := range 12 {
		p := fmt.Sprintf("/T%d/f%02d", i%4, i)
		a.push(File{Path: p, Size: 1})
		want = append(want, p)
	}
	for i, f := range admitAll(a) {
		if f.Path != want[i] {
			t.Fatalf("admitted #%d: %s, want %s", i, f.Path, want[i])
		}
	}
}
