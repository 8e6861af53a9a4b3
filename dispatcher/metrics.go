package dispatcher

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pando-wms/pando/dispatcher/broker"
)

// metrics exports the broker's counts in Prometheus's format. Gauges are
// read from one broker snapshot per scrape; only the dispatch latency is
// observed as it happens.
type metrics struct {
	reg      *prometheus.Registry
	dispatch prometheus.Histogram
	// commit and commitJobs describe group commits: how long each took
	// (the wait every submission and report shares) and how many job rows
	// it carried (how well the fsync is amortised).
	commit, commitJobs prometheus.Histogram
	sync               prometheus.Histogram // store flushes (fsync)
	stats              func() broker.Stats

	ready, running, ended, failed, agents, target, achieved *prometheus.Desc
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		dispatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pando_dispatch_latency_seconds",
			Help: "Time from a job becoming ready to its Assign being pushed to an agent.",
			// 100 µs to ~100 s.
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 16),
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pando_commit_duration_seconds",
			Help: "Time from the start of each group commit until it was durable, retries included.",
			// 50 µs to ~30 s.
			Buckets: prometheus.ExponentialBuckets(0.00005, 2.5, 15),
		}),
		commitJobs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pando_commit_jobs",
			Help:    "Job rows each group commit inserted or updated.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		sync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pando_store_sync_seconds",
			Help:    "Time each flush of the store to disk took (fsync of its write-ahead log).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2.5, 15),
		}),
		ready:    prometheus.NewDesc("pando_jobs_ready", "Ready jobs by the queue their task names (\"any\": none) and share.", []string{"queue", "share"}, nil),
		running:  prometheus.NewDesc("pando_jobs_running", "Jobs assigned to or running on agents, by the agents' queue and share.", []string{"queue", "share"}, nil),
		ended:    prometheus.NewDesc("pando_jobs_finished_total", "Attempts that finished successfully, by queue and share.", []string{"queue", "share"}, nil),
		failed:   prometheus.NewDesc("pando_jobs_failed_total", "Attempts that failed, by queue and share.", []string{"queue", "share"}, nil),
		agents:   prometheus.NewDesc("pando_agents_connected", "Connected agents by queue and kind.", []string{"queue", "kind"}, nil),
		target:   prometheus.NewDesc("pando_share_target_percent", "Each share's target in percent of its parent.", []string{"share"}, nil),
		achieved: prometheus.NewDesc("pando_share_achieved_percent", "Each share's achieved fraction of its parent's usage (decayed core-seconds).", []string{"share"}, nil),
	}
	m.reg.MustRegister(m.dispatch, m.commit, m.commitJobs, m.sync, m, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observeDispatch(d time.Duration) { m.dispatch.Observe(d.Seconds()) }

func (m *metrics) observeCommit(d time.Duration, jobs int) {
	m.commit.Observe(d.Seconds())
	m.commitJobs.Observe(float64(jobs))
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.ready, m.running, m.ended, m.failed, m.agents, m.target, m.achieved} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	if m.stats == nil {
		return
	}
	st := m.stats()
	for _, c := range st.Ready {
		q := c.Queue
		if q == "" {
			q = "any"
		}
		ch <- prometheus.MustNewConstMetric(m.ready, prometheus.GaugeValue, float64(c.N), q, c.Share)
	}
	for _, c := range st.Running {
		ch <- prometheus.MustNewConstMetric(m.running, prometheus.GaugeValue, float64(c.N), c.Queue, c.Share)
	}
	for _, c := range st.Ended {
		ch <- prometheus.MustNewConstMetric(m.ended, prometheus.CounterValue, float64(c.N), c.Queue, c.Share)
		ch <- prometheus.MustNewConstMetric(m.failed, prometheus.CounterValue, float64(c.Failed), c.Queue, c.Share)
	}
	for _, c := range st.Agents {
		ch <- prometheus.MustNewConstMetric(m.agents, prometheus.GaugeValue, float64(c.N), c.Queue, c.Share)
	}
	for _, s := range st.Shares {
		ch <- prometheus.MustNewConstMetric(m.target, prometheus.GaugeValue, s.Target, s.Path)
		ch <- prometheus.MustNewConstMetric(m.achieved, prometheus.GaugeValue, s.Achieved, s.Path)
	}
}

// handler serves /metrics.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
