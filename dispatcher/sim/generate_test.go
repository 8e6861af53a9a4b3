package sim

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestGenerateDeterministic(t *testing.T) {
	cfg := DefaultGen()
	cfg.Jobs = 2000
	cfg.TaskSize = 5
	cfg.Shares = []Weighted[string]{{"prod/mc", 50}, {"user", 50}}
	cfg.Cores = []Weighted[int]{{1, 3}, {8, 1}}
	cfg.GPUFraction = 0.1
	a, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same config gave two traces")
	}
	var ca, cb bytes.Buffer
	_ = WriteCSV(&ca, a)
	_ = WriteCSV(&cb, b)
	if !bytes.Equal(ca.Bytes(), cb.Bytes()) {
		t.Fatal("the same trace wrote two CSV files")
	}
	cfg.Seed = 2
	c, _ := Generate(cfg)
	if reflect.DeepEqual(a, c) {
		t.Fatal("another seed gave the same trace")
	}
}

func TestGenerateShape(t *testing.T) {
	tests := []struct {
		name    string
		arrival string
		rate    float64
	}{{"poisson", Poisson, 2}, {"uniform", Uniform, 2}, {"burst", Burst, 0}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultGen()
			cfg.Jobs, cfg.Arrival, cfg.Rate, cfg.TaskSize = 20_000, tt.arrival, tt.rate, 3
			cfg.Shares = []Weighted[string]{{"a", 3}, {"b", 1}}
			cfg.Cores = []Weighted[int]{{1, 1}, {4, 1}}
			cfg.Runtime = 100 * time.Second
			rows, err := Generate(cfg)
			if err != nil {
				t.Fatal(err)
			}
			jobs, aJobs, runtime := 0, 0, 0.0
			for i, r := range rows {
				jobs += int(r.Jobs)
				if r.Share == "a" {
					aJobs += int(r.Jobs)
				}
				runtime += r.Runtime.Seconds()
				if r.Jobs < 1 || r.Jobs > 3 || (r.Cores != 1 && r.Cores != 4) || r.Memory != int64(r.Cores)*cfg.MemoryPerCore ||
					r.Walltime < r.Runtime || r.Walltime%time.Minute != 0 || (i > 0 && r.Submit < rows[i-1].Submit) {
					t.Fatalf("row %d: %+v", i, r)
				}
			}
			if jobs != cfg.Jobs {
				t.Errorf("%d jobs, want %d", jobs, cfg.Jobs)
			}
			if f := float64(aJobs) / float64(jobs); math.Abs(f-0.75) > 0.02 {
				t.Errorf("share a has %.3f of the jobs, want 0.75", f)
			}
			if m := runtime / float64(len(rows)); math.Abs(m-100) > 5 {
				t.Errorf("mean runtime %.1fs, want about 100s", m)
			}
			span := rows[len(rows)-1].Submit.Seconds()
			switch {
			case tt.arrival == Burst && span != 0:
				t.Errorf("burst over %vs", span)
			case tt.arrival != Burst && math.Abs(float64(jobs)/span-tt.rate) > 0.1*tt.rate:
				t.Errorf("%.2f jobs/s, want about %v", float64(jobs)/span, tt.rate)
			}
		})
	}
}

func TestGenerateBad(t *testing.T) {
	tests := []struct {
		name string
		edit func(*GenConfig)
	}{
		{"no jobs", func(c *GenConfig) { c.Jobs = 0 }},
		{"arrival", func(c *GenConfig) { c.Arrival = "sometimes" }},
		{"rate", func(c *GenConfig) { c.Rate = 0 }},
		{"task size", func(c *GenConfig) { c.TaskSize = 0 }},
		{"runtime", func(c *GenConfig) { c.Runtime = 0 }},
		{"spread", func(c *GenConfig) { c.RuntimeSpread = -1 }},
		{"gpu fraction", func(c *GenConfig) { c.GPUFraction = 2 }},
		{"share path", func(c *GenConfig) { c.Shares = []Weighted[string]{{"a//b", 1}} }},
		{"cores", func(c *GenConfig) { c.Cores = []Weighted[int]{{0, 1}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultGen()
			tt.edit(&cfg)
			if _, err := Generate(cfg); !errors.Is(err, ErrGenerate) {
				t.Errorf("error %v, want ErrGenerate", err)
			}
		})
	}
}

func TestParseWeights(t *testing.T) {
	str := func(s string) (string, error) { return s, nil }
	got, err := ParseWeights(" prod/mc=50, user ,x=0.5", str)
	want := []Weighted[string]{{"prod/mc", 50}, {"user", 1}, {"x", 0.5}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"", "a=0", "a=-1", "a=x", "a=Inf", ","} {
		if _, err := ParseWeights(bad, str); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := ParseWeights("1=1,two=1", strconv.Atoi); err == nil || !strings.Contains(err.Error(), "two") {
		t.Errorf("bad value: error %v", err)
	}
}
