package sim

import (
	"context"
	"testing"
)

// BenchmarkReplay replays generated traces on the default cluster (800
// cores) with three shares and reports the rate in jobs per minute of wall
// time:
//
//   - default: the generator's defaults (one-core jobs of ten minutes on
//     average, one job per task, a little more work than the cores run);
//   - mcore: one job in ten needs 8 cores (a whole node), and half again
//     as much work as the cores run, so that 8-core work piles up.
func BenchmarkReplay(b *testing.B) {
	shares := []ShareTarget{{"prod", 70}, {"prod/mc", 60}, {"prod/reco", 40}, {"user", 30}}
	cases := []struct {
		name  string
		edit  func(*GenConfig)
		jobs  int
		cores float64 // mean cores per job
		load  float64 // work over what the cores run
	}{
		{"default", func(*GenConfig) {}, 200_000, 1, 0},
		{"mcore", func(g *GenConfig) { g.Cores = []Weighted[int]{{1, 90}, {8, 10}} }, 100_000, 1.7, 1.5},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			g := DefaultGen()
			g.Jobs = c.jobs
			g.Shares = []Weighted[string]{{"prod/mc", 50}, {"prod/reco", 30}, {"user", 20}}
			c.edit(&g)
			if c.load > 0 {
				g.Rate = c.load * 800 / g.Runtime.Seconds() / c.cores
			}
			rows, err := Generate(g)
			if err != nil {
				b.Fatal(err)
			}
			jobs := 0
			b.ResetTimer()
			for b.Loop() {
				res, err := Run(context.Background(), rows, Config{Shares: shares})
				if err != nil {
					b.Fatal(err)
				}
				if res.Ran != res.Jobs {
					b.Fatalf("ran %d of %d jobs", res.Ran, res.Jobs)
				}
				jobs += int(res.Jobs)
			}
			b.ReportMetric(float64(jobs)/b.Elapsed().Minutes(), "jobs/min")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(jobs), "ns/job")
		})
	}
}
