package queue

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, c := range []struct {
		name string
		q    Queue
		want string // "" ok, else part of the error
	}{
		{"defaults", Queue{Name: "grid"}, ""},
		{"full", Queue{Name: "cern-T0.gpu", Kind: HPC, Status: Test, MaxRunning: 10, MaxCores: 80, MaxGPUJobs: 2,
			Shares: []string{"prod/mc"}, Labels: map[string]string{"site": "CERN"}}, ""},
		{"empty name", Queue{}, "name"},
		{"bad name", Queue{Name: "a b"}, "name"},
		{"long name", Queue{Name: strings.Repeat("q", 65)}, "name"},
		{"kind", Queue{Name: "q", Kind: "cloud"}, "kind"},
		{"status", Queue{Name: "q", Status: "paused"}, "status"},
		{"negative", Queue{Name: "q", MaxCores: -1}, "max_cores"},
		{"share", Queue{Name: "q", Shares: []string{"prod//mc"}}, "shares"},
		{"label", Queue{Name: "q", Labels: map[string]string{"a=b": "c"}}, "label key"},
	} {
		err := c.q.Normalize()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an ErrInvalid with %q", c.name, err, c.want)
		}
	}
	q := Queue{Name: "g"}
	_ = q.Normalize()
	if q.Kind != Grid || q.Status != Online || !q.Open() {
		t.Errorf("defaults: %+v", q)
	}
}

func TestServes(t *testing.T) {
	q := Queue{Name: "q", Shares: []string{"prod", "analysis/higgs"}}
	for path, want := range map[string]bool{
		"prod": true, "prod/mc": true, "production": false, "analysis": false,
		"analysis/higgs": true, "analysis/higgs/x": true, "default": false,
	} {
		if got := q.Serves(path); got != want {
			t.Errorf("Serves(%q) = %v, want %v", path, got, want)
		}
	}
	if !(&Queue{Name: "all"}).Serves("anything") {
		t.Error("a queue with no shares listed serves all")
	}
}
