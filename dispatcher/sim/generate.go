package sim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/pando-wms/pando/dispatcher/share"
	"github.com/pando-wms/pando/dispatcher/task"
)

// ErrGenerate marks a bad generator setting.
var ErrGenerate = errors.New("invalid generator setting")

// Arrival processes of generated traces.
const (
	Poisson = "poisson" // exponential gaps between rows, Rate jobs/s on average
	Uniform = "uniform" // evenly spaced rows at Rate jobs/s
	Burst   = "burst"   // every row at time 0
)

// Weighted is a value drawn with probability proportional to Weight.
type Weighted[T any] struct {
	Value  T
	Weight float64
}

// GenConfig describes a synthetic trace. The same config (seed included)
// always gives the same trace.
type GenConfig struct {
	Jobs int
	Seed uint64
	// Shares is the mix of jobs by share.
	Shares   []Weighted[string]
	Arrival  string
	Rate     float64 // jobs per second
	TaskSize int     // jobs per row: uniform from 1 to TaskSize
	// Runtime is the mean runtime; each row's is lognormal around it with
	// RuntimeSpread as sigma (0: all equal), in whole seconds.
	Runtime       time.Duration
	RuntimeSpread float64
	// WalltimeFactor: the walltime asked is the runtime times this,
	// rounded up to a minute (below 1: jobs overrun and are killed).
	WalltimeFactor float64
	Cores          []Weighted[int]
	MemoryPerCore  int64
	GPUFraction    float64 // rows whose jobs need one GPU
	Priorities     []Weighted[int]
}

// DefaultGen is the generator's default: one share, 1-core jobs of ten
// minutes on average at 1.5 jobs/s (a little more than the default
// cluster's 800 cores run).
func DefaultGen() GenConfig {
	return GenConfig{Jobs: 10_000, Seed: 1, Shares: []Weighted[string]{{share.Default, 1}}, Arrival: Poisson,
		Rate: 1.5, TaskSize: 1, Runtime: 10 * time.Minute, RuntimeSpread: 1, WalltimeFactor: 2,
		Cores: []Weighted[int]{{1, 1}}, MemoryPerCore: 2 << 30, Priorities: []Weighted[int]{{0, 1}}}
}

func (c *GenConfig) check() error {
	switch {
	case c.Jobs < 1:
		return fmt.Errorf("%w: jobs %d: want at least 1", ErrGenerate, c.Jobs)
	case c.Arrival != Poisson && c.Arrival != Uniform && c.Arrival != Burst:
		return fmt.Errorf("%w: arrival %q: want %s, %s or %s", ErrGenerate, c.Arrival, Poisson, Uniform, Burst)
	case c.Arrival != Burst && !(c.Rate > 0):
		return fmt.Errorf("%w: rate %v: want a positive number of jobs per second", ErrGenerate, c.Rate)
	case c.TaskSize < 1 || c.TaskSize > task.MaxJobs:
		return fmt.Errorf("%w: task size %d: want 1 to %d", ErrGenerate, c.TaskSize, task.MaxJobs)
	case c.Runtime <= 0 || c.RuntimeSpread < 0 || !(c.WalltimeFactor > 0):
		return fmt.Errorf("%w: the runtime and the walltime factor must be positive, the runtime spread not negative", ErrGenerate)
	case c.MemoryPerCore < 0 || c.GPUFraction < 0 || c.GPUFraction > 1:
		return fmt.Errorf("%w: memory per core must not be negative, the GPU fraction must be from 0 to 1", ErrGenerate)
	case len(c.Shares) == 0 || len(c.Cores) == 0 || len(c.Priorities) == 0:
		return fmt.Errorf("%w: shares, cores and priorities need at least one value", ErrGenerate)
	}
	for _, s := range c.Shares {
		if err := share.CheckPath(s.Value); err != nil {
			return fmt.Errorf("%w: %w", ErrGenerate, err)
		}
	}
	for _, n := range c.Cores {
		if n.Value < 1 {
			return fmt.Errorf("%w: cores %d: want at least 1", ErrGenerate, n.Value)
		}
	}
	return nil
}

// Generate makes a synthetic trace.
func Generate(c GenConfig) ([]Row, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))
	shares, cores, prios := newPicker(c.Shares), newPicker(c.Cores), newPicker(c.Priorities)
	sigma := c.RuntimeSpread
	mu := math.Log(c.Runtime.Seconds()) - sigma*sigma/2
	var rows []Row
	t := 0.0 // seconds
	for left := c.Jobs; left > 0; {
		n := min(1+rng.IntN(c.TaskSize), left)
		left -= n
		r := Row{Submit: time.Duration(math.Round(t*1e3)) * time.Millisecond, Jobs: int32(n),
			Share: shares.pick(rng), Line: int32(len(rows) + 2)}
		r.Cores = int32(cores.pick(rng))
		r.Priority = int32(prios.pick(rng))
		r.Memory = int64(r.Cores) * c.MemoryPerCore
		if c.GPUFraction > 0 && rng.Float64() < c.GPUFraction {
			r.GPUs = 1
		}
		run := c.Runtime.Seconds()
		if sigma > 0 {
			run = math.Exp(mu + sigma*rng.NormFloat64())
		}
		r.Runtime = time.Duration(max(1, math.Round(run))) * time.Second
		r.Walltime = time.Duration(math.Ceil(r.Runtime.Minutes()*c.WalltimeFactor)) * time.Minute
		rows = append(rows, r)
		switch c.Arrival {
		case Poisson:
			t += rng.ExpFloat64() * float64(n) / c.Rate
		case Uniform:
			t += float64(n) / c.Rate
		}
	}
	return rows, nil
}

// picker draws weighted values.
type picker[T any] struct {
	values []T
	cum    []float64
}

func newPicker[T any](ws []Weighted[T]) *picker[T] {
	p := &picker[T]{}
	sum := 0.0
	for _, w := range ws {
		sum += w.Weight
		p.values = append(p.values, w.Value)
		p.cum = append(p.cum, sum)
	}
	return p
}

func (p *picker[T]) pick(rng *rand.Rand) T {
	if len(p.values) == 1 {
		return p.values[0]
	}
	x := rng.Float64() * p.cum[len(p.cum)-1]
	for i, c := range p.cum {
		if x < c {
			return p.values[i]
		}
	}
	return p.values[len(p.values)-1]
}

// ParseWeights reads "value=weight,value=weight,..." (a value without a
// weight weighs 1), parsing each value with parse.
func ParseWeights[T any](s string, parse func(string) (T, error)) ([]Weighted[T], error) {
	var out []Weighted[T]
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		v, w, hasW := strings.Cut(item, "=")
		weight := 1.0
		if hasW {
			f, err := strconv.ParseFloat(strings.TrimSpace(w), 64)
			if err != nil || !(f > 0) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("%w: %q: the weight after '=' must be a positive number", ErrGenerate, item)
			}
			weight = f
		}
		val, err := parse(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrGenerate, item, err)
		}
		out = append(out, Weighted[T]{val, weight})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %q: want value=weight,...", ErrGenerate, s)
	}
	return out, nil
}
