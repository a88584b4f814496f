package monitor

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/skeinhq/skein/store"
)

// MetricsNamespace prefixes every metric the monitor exports.
const MetricsNamespace = "skein"

// JobDurationBuckets are the upper bounds, in seconds, of the
// skein_job_duration_seconds histogram: 5 ms to 1 hour.
var JobDurationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// storeReadTimeout bounds the store reads of one scrape.
const storeReadTimeout = 10 * time.Second

var (
	descDispatcherUp = prometheus.NewDesc("skein_dispatcher_up",
		"1 when the dispatcher is started and not stopped.", []string{"dispatcher"}, nil)
	descLastPoll = prometheus.NewDesc("skein_dispatcher_last_poll_timestamp_seconds",
		"Unix time of the dispatcher's last timed poll.", []string{"dispatcher"}, nil)
	descStuck = prometheus.NewDesc("skein_dispatcher_stuck",
		"1 when the dispatcher's poll is past due (async status STUCK).", []string{"dispatcher"}, nil)
	descPollInterval = prometheus.NewDesc("skein_dispatcher_poll_interval_seconds",
		"Time between the dispatcher's timed polls.", []string{"dispatcher"}, nil)
	descAgentSlots = prometheus.NewDesc("skein_agent_slots",
		"How many jobs the agent runs at once (its size).", []string{"dispatcher", "agent"}, nil)
	descAgentBusy = prometheus.NewDesc("skein_agent_busy_slots",
		"How many jobs the agent runs now.", []string{"dispatcher", "agent"}, nil)
	descQueueJobs = prometheus.NewDesc("skein_queue_jobs",
		"Jobs in the store by queue and state.", []string{"queue", "state"}, nil)
	descOldestPending = prometheus.NewDesc("skein_queue_oldest_pending_age_seconds",
		"Age of the queue's oldest job waiting to run (0 when none).", []string{"queue"}, nil)
	descOldestRunning = prometheus.NewDesc("skein_queue_oldest_running_age_seconds",
		"Age of the queue's oldest running attempt (0 when none).", []string{"queue"}, nil)
	descDispatchers = prometheus.NewDesc("skein_dispatchers",
		"Dispatchers registered in the store, by state: alive or dead.", []string{"state"}, nil)
	descStoreUp = prometheus.NewDesc("skein_monitor_store_up",
		"1 when the monitor's last read of the store succeeded.", nil, nil)
)

// collector exports a Monitor's dispatchers and store as Prometheus
// metrics, read at each scrape.
type collector struct {
	m *Monitor

	mu       sync.Mutex
	seen     map[runKey]runSeen
	gen      uint64
	started  *prometheus.CounterVec
	finished *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

type runKey struct {
	dispatcher string
	id         string
	poll       int64
}

// runSeen is what the collector counted of one run.
type runSeen struct {
	gen      uint64 // the last scrape that saw its record
	finished bool   // its end is counted
}

// Collector returns a Prometheus collector of the monitor's state, read
// at each scrape: per dispatcher (up, last poll, stuck, poll interval), per
// agent (slots, busy slots), job runs started and finished with their
// durations (from the dispatchers' job records), and, when the monitor has
// a store, jobs per queue and state, the oldest pending and running ages,
// and the dispatchers alive and dead. Labels are low-cardinality: never a
// job id.
//
// Runs are counted by the dispatchers themselves when they can
// ([RunCounter], as a skein dispatcher can); otherwise they are counted from
// the records each dispatcher keeps (its last 200 by default), and the
// counters miss runs when more than that many end between two scrapes.
func (m *Monitor) Collector() prometheus.Collector {
	return &collector{
		m:    m,
		seen: map[runKey]runSeen{},
		started: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skein_jobs_started_total",
			Help: "Job runs started by this process's dispatchers."}, []string{"queue", "kind"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skein_jobs_finished_total",
			Help: "Job runs ended in this process's dispatchers, by outcome: succeeded, failed, cancelled, interrupted, reassigned or snoozed."},
			[]string{"queue", "kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "skein_job_duration_seconds",
			Help: "How long job runs took, by outcome.", Buckets: JobDurationBuckets}, []string{"queue", "kind", "outcome"}),
	}
}

// MetricsHandler returns a handler serving the Prometheus text format
// for a registry of the monitor's [Monitor.Collector] and the Go runtime
// and process collectors.
func (m *Monitor) MetricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collector(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDispatcherUp, descLastPoll, descStuck, descPollInterval, descAgentSlots, descAgentBusy,
		descQueueJobs, descOldestPending, descOldestRunning, descDispatchers, descStoreUp, descRunWait, descEnqueued} {
		ch <- d
	}
	c.started.Describe(ch)
	c.finished.Describe(ch)
	c.duration.Describe(ch)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// outcome names how a run ended, for skein_jobs_finished_total.
func outcome(r JobRecord) string {
	switch {
	case r.Reassigned:
		return "reassigned"
	case r.State == "completed":
		return "succeeded"
	case r.State == "cancelled":
		return "cancelled"
	case r.State == "available":
		return "interrupted"
	case r.State == "scheduled":
		return "snoozed"
	}
	return "failed"
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	now := c.m.now()
	c.mu.Lock()
	c.gen++
	counted := len(c.m.cfg.Dispatchers) > 0
	for _, d := range c.m.cfg.Dispatchers {
		if _, ok := d.(RunCounter); !ok {
			counted = false
		}
	}
	for _, d := range c.m.cfg.Dispatchers {
		s := d.Status()
		id := s.UUID
		ch <- prometheus.MustNewConstMetric(descDispatcherUp, prometheus.GaugeValue, boolFloat(s.Running()), id)
		if !s.LastPoll.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastPoll, prometheus.GaugeValue, float64(s.LastPoll.UnixNano())/1e9, id)
		}
		ch <- prometheus.MustNewConstMetric(descStuck, prometheus.GaugeValue, boolFloat(DispatcherState(s, now, c.m.cfg.StuckGrace) == StateStuck), id)
		ch <- prometheus.MustNewConstMetric(descPollInterval, prometheus.GaugeValue, s.PollInterval.Seconds(), id)
		for _, a := range s.Agents {
			ch <- prometheus.MustNewConstMetric(descAgentSlots, prometheus.GaugeValue, float64(a.Size), id, a.Name)
			ch <- prometheus.MustNewConstMetric(descAgentBusy, prometheus.GaugeValue, float64(len(a.Active)), id, a.Name)
		}
		if counted {
			continue
		}
		for _, r := range d.Jobs(0) {
			k := runKey{id, r.ID, r.PollKey}
			done := !r.Completed.IsZero() && (r.State != "" || r.Reassigned)
			seen, known := c.seen[k]
			if !known {
				c.started.WithLabelValues(r.Queue, r.Kind).Inc()
			}
			if done && !seen.finished {
				o := outcome(r)
				c.finished.WithLabelValues(r.Queue, r.Kind, o).Inc()
				c.duration.WithLabelValues(r.Queue, r.Kind, o).Observe(max(r.Completed.Sub(r.Started).Seconds(), 0))
				seen.finished = true
			}
			seen.gen = c.gen
			c.seen[k] = seen
		}
	}
	// Forget the runs no dispatcher remembers any more.
	for k, v := range c.seen {
		if v.gen != c.gen {
			delete(c.seen, k)
		}
	}
	c.collectEnqueueCounts(ch)
	if counted {
		c.collectRunCounts(ch)
	} else {
		c.started.Collect(ch)
		c.finished.Collect(ch)
		c.duration.Collect(ch)
	}
	c.mu.Unlock()
	if c.m.cfg.Store != nil {
		c.collectStore(ch, now)
	}
}

func (c *collector) collectStore(ch chan<- prometheus.Metric, now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), storeReadTimeout)
	defer cancel()
	st := c.m.cfg.Store
	stats, err := st.Stats(ctx)
	var ds []*store.Dispatcher
	if err == nil {
		ds, err = st.ListDispatchers(ctx)
	}
	ch <- prometheus.MustNewConstMetric(descStoreUp, prometheus.GaugeValue, boolFloat(err == nil))
	if err != nil {
		return
	}
	for _, s := range stats {
		for _, state := range store.States {
			ch <- prometheus.MustNewConstMetric(descQueueJobs, prometheus.GaugeValue, float64(s.Counts[state]), s.Queue, string(state))
		}
		ch <- prometheus.MustNewConstMetric(descOldestPending, prometheus.GaugeValue, ageSeconds(now, s.OldestWaiting), s.Queue)
		ch <- prometheus.MustNewConstMetric(descOldestRunning, prometheus.GaugeValue, ageSeconds(now, s.OldestRunning), s.Queue)
	}
	var alive, dead float64
	for _, d := range ds {
		if !d.DeadAt.IsZero() || now.Sub(d.HeartbeatAt) > c.m.cfg.DeadAfter {
			dead++
		} else {
			alive++
		}
	}
	ch <- prometheus.MustNewConstMetric(descDispatchers, prometheus.GaugeValue, alive, "alive")
	ch <- prometheus.MustNewConstMetric(descDispatchers, prometheus.GaugeValue, dead, "dead")
}

func ageSeconds(now, t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return max(now.Sub(t).Seconds(), 0)
}

// collectRunCounts sends the run metrics from the dispatchers' own counts,
// summed over dispatchers with the same labels.
func (c *collector) collectRunCounts(ch chan<- prometheus.Metric) {
	type qk struct{ queue, kind string }
	type qko struct{ queue, kind, outcome string }
	started := map[qk]uint64{}
	waited := map[string]OutcomeCount{}
	ended := map[qko]OutcomeCount{}
	add := func(sum, oc OutcomeCount) OutcomeCount {
		if sum.Buckets == nil {
			sum.Bounds = oc.Bounds
			sum.Buckets = make([]uint64, len(oc.Buckets))
		}
		sum.Runs += oc.Runs
		sum.Seconds += oc.Seconds
		for i := range min(len(sum.Buckets), len(oc.Buckets)) {
			sum.Buckets[i] += oc.Buckets[i]
		}
		return sum
	}
	for _, d := range c.m.cfg.Dispatchers {
		for _, rc := range d.(RunCounter).RunCounts() {
			started[qk{rc.Queue, rc.Kind}] += rc.Started
			if rc.Waited.Runs > 0 {
				waited[rc.Queue] = add(waited[rc.Queue], rc.Waited)
			}
			for o, oc := range rc.Ended {
				k := qko{rc.Queue, rc.Kind, o}
				ended[k] = add(ended[k], oc)
			}
		}
	}
	for k, n := range started {
		ch <- prometheus.MustNewConstMetric(descRunsStarted, prometheus.CounterValue, float64(n), k.queue, k.kind)
	}
	for q, oc := range waited {
		ch <- prometheus.MustNewConstHistogram(descRunWait, oc.Runs, oc.Seconds, oc.bucketMap(), q)
	}
	for k, oc := range ended {
		ch <- prometheus.MustNewConstMetric(descRunsFinished, prometheus.CounterValue, float64(oc.Runs), k.queue, k.kind, k.outcome)
		ch <- prometheus.MustNewConstHistogram(descRunDuration, oc.Runs, oc.Seconds, oc.bucketMap(), k.queue, k.kind, k.outcome)
	}
}

// collectEnqueueCounts sends skein_jobs_enqueued_total, summed over the
// enqueuers.
func (c *collector) collectEnqueueCounts(ch chan<- prometheus.Metric) {
	type key struct{ queue, kind string }
	sums := map[key]uint64{}
	for _, e := range c.m.cfg.Enqueuers {
		for _, ec := range e.EnqueueCounts() {
			sums[key{ec.Queue, ec.Kind}] += ec.Jobs
		}
	}
	for k, n := range sums {
		ch <- prometheus.MustNewConstMetric(descEnqueued, prometheus.CounterValue, float64(n), k.queue, k.kind)
	}
}

// bucketMap is the histogram's buckets as client_golang takes them.
func (oc OutcomeCount) bucketMap() map[float64]uint64 {
	buckets := make(map[float64]uint64, len(oc.Bounds))
	for i, le := range oc.Bounds {
		if i < len(oc.Buckets) {
			buckets[le] = oc.Buckets[i]
		}
	}
	return buckets
}

// The run metrics when they come from the dispatchers' counts; the same
// names and labels as the collector's vectors.
var (
	descRunsStarted = prometheus.NewDesc("skein_jobs_started_total",
		"Job runs started by this process's dispatchers.", []string{"queue", "kind"}, nil)
	descRunsFinished = prometheus.NewDesc("skein_jobs_finished_total",
		"Job runs ended in this process's dispatchers, by outcome: succeeded, failed, cancelled, interrupted, reassigned or snoozed.",
		[]string{"queue", "kind", "outcome"}, nil)
	descRunDuration = prometheus.NewDesc("skein_job_duration_seconds",
		"How long job runs took, by outcome.", []string{"queue", "kind", "outcome"}, nil)
	descEnqueued = prometheus.NewDesc("skein_jobs_enqueued_total",
		"Jobs enqueued by this process's clients (Config.Enqueuers); duplicates refused for their unique key are not counted.",
		[]string{"queue", "kind"}, nil)
	descRunWait = prometheus.NewDesc("skein_job_wait_seconds",
		"How long job runs waited for a worker after their job was due (dispatchers that count their runs only).", []string{"queue"}, nil)
)
