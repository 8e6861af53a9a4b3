package share

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestSetValidates(t *testing.T) {
	tr := New(time.Minute)
	for _, c := range []struct {
		path   string
		target float64
		want   string // "" ok, else part of the error
	}{
		{"prod/mc", 50, ""},
		{"prod/reprocessing", 20, ""},
		{"analysis", 30, ""},
		{"prod/mc", 60, ""},              // replaces its own 50
		{"prod/evgen", 30, "sum to 110"}, // 60+20+30
		{"prod/evgen", 20, ""},
		{"default", 71, "over 100"},
		{"", 10, "empty path"},
		{"a//b", 10, "each part"},
		{"-x", 10, "each part"},
		{"x", 0, "above 0"},
		{"x", 101, "at most 100"},
		{"x", math.NaN(), "above 0"},
		{strings.Repeat("a/", 9) + "a", 1, "deeper"},
	} {
		err := tr.Set(c.path, c.target)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("Set(%q, %v) = %v", c.path, c.target, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrInvalid)):
			t.Errorf("Set(%q, %v) = %v, want an ErrInvalid with %q", c.path, c.target, err, c.want)
		}
	}
	prod, _ := tr.Lookup("prod")
	if prod.Explicit() || prod.Target() != 70 { // 100 - analysis 30, split with nobody
		t.Errorf("prod target = %v explicit %v, want what analysis leaves (70)", prod.Target(), prod.Explicit())
	}
	d := tr.Leaf(Default)
	if got := d.Target(); got != 35 {
		t.Errorf("default target = %v, want 35 (70 left, split with prod)", got)
	}
}

// sim hands out slots of equal-length jobs for steps ticks, asking Order
// for a share each time a slot frees; work says which shares have work at
// each tick. It returns the jobs each share ran.
func sim(tr *Tree, shares []*Node, slots int, work func(tick int) []bool, steps int) map[string]int {
	type running struct {
		n   *Node
		c   Charge
		end int
	}
	now := time.Unix(1_000_000, 0)
	var run []running
	count := map[string]int{}
	var buf []*Node
	for tick := 0; tick < steps; tick++ {
		at := now.Add(time.Duration(tick) * time.Second)
		kept := run[:0]
		for _, r := range run {
			if r.end <= tick {
				tr.End(r.n, r.c, at)
			} else {
				kept = append(kept, r)
			}
		}
		run = kept
		has := work(tick)
		for i, s := range shares {
			if has[i] && s.Ready == 0 {
				s.AddReady(1)
			} else if !has[i] && s.Ready > 0 {
				s.AddReady(-1)
			}
		}
		for len(run) < slots {
			n := tr.Root()
			for len(n.Children()) > 0 {
				buf = tr.Order(n, at, buf)
				if len(buf) == 0 {
					break
				}
				n = buf[0]
			}
			if n == tr.Root() {
				break
			}
			run = append(run, running{n, tr.Start(n, 1, at), tick + 3})
			count[n.Path]++
		}
	}
	return count
}

// Equal jobs, 8 slots, targets 50/30/20: slot granularity alone would give
// 4/2/2; the usage history must make up the difference.
func TestOrderMeetsTargets(t *testing.T) {
	tr := New(time.Hour)
	var ns []*Node
	for _, s := range []struct {
		p string
		t float64
	}{{"a", 50}, {"b", 30}, {"c", 20}} {
		if err := tr.Set(s.p, s.t); err != nil {
			t.Fatal(err)
		}
		n, _ := tr.Lookup(s.p)
		ns = append(ns, n)
	}
	all := func(int) []bool { return []bool{true, true, true} }
	got := sim(tr, ns, 8, all, 3000)
	total := float64(got["a"] + got["b"] + got["c"])
	for _, s := range []struct {
		p    string
		want float64
	}{{"a", 50}, {"b", 30}, {"c", 20}} {
		frac := 100 * float64(got[s.p]) / total
		if math.Abs(frac-s.want) > 1 {
			t.Errorf("share %s ran %.1f%% of jobs, want %v±1 (%v)", s.p, frac, s.want, got)
		}
		n, _ := tr.Lookup(s.p)
		if a := tr.Achieved(n, time.Unix(1_000_000+3000, 0)); math.Abs(a-s.want) > 2 {
			t.Errorf("share %s achieved %.1f%%, want %v±2", s.p, a, s.want)
		}
	}
}

// A share without work lends its part; when its work returns it gets
// more than its target until its usage catches up, then its target.
func TestBorrowAndGiveBack(t *testing.T) {
	tr := New(2 * time.Minute)
	_ = tr.Set("a", 50)
	_ = tr.Set("b", 50)
	a, _ := tr.Lookup("a")
	b, _ := tr.Lookup("b")
	// b idle for the first 600 ticks.
	got := sim(tr, []*Node{a, b}, 10, func(tick int) []bool { return []bool{true, tick >= 600} }, 600)
	if got["b"] != 0 || got["a"] == 0 {
		t.Fatalf("while b had no work: %v", got)
	}
	later := sim(tr, []*Node{a, b}, 10, func(int) []bool { return []bool{true, true} }, 3000)
	if later["b"] <= later["a"] {
		t.Errorf("b got %d jobs, a %d after b's work returned: b should make up for its idle time", later["b"], later["a"])
	}
}

// Nested shares: unused share flows to siblings before it flows up.
func TestNestedBorrowing(t *testing.T) {
	tr := New(time.Hour)
	_ = tr.Set("prod", 50)
	_ = tr.Set("prod/mc", 60)
	_ = tr.Set("prod/reco", 40)
	_ = tr.Set("user", 50)
	mc, _ := tr.Lookup("prod/mc")
	reco, _ := tr.Lookup("prod/reco")
	user := tr.Leaf("user")
	got := sim(tr, []*Node{mc, reco, user}, 10, func(int) []bool { return []bool{true, false, true} }, 2000)
	total := float64(got["prod/mc"] + got["user"])
	if f := 100 * float64(got["prod/mc"]) / total; math.Abs(f-50) > 1 {
		t.Errorf("prod/mc ran %.1f%%, want prod's whole 50%% while reco has no work (%v)", f, got)
	}
}

func TestUnset(t *testing.T) {
	tr := New(time.Minute)
	_ = tr.Set("a", 80)
	_ = tr.Set("b", 20)
	if err := tr.Unset("a"); err != nil {
		t.Fatal(err)
	}
	a, _ := tr.Lookup("a")
	if a.Target() != 80 {
		t.Errorf("unset a = %v, want the 80 b leaves", a.Target())
	}
	if err := tr.Unset("zz"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Unset(zz) = %v", err)
	}
}
