package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/skeinhq/skein/monitor"
)

// The monitor benchmarks answer the same questions of a busy dispatcher —
// one agent of size 10, its last 400 polls and 200 job runs in memory, as a
// skein dispatcher keeps them — three ways:
//
//   - BenchmarkMonitorQuery: "async status" and "async polls count:400" over
//     skein's line protocol (a new TCP connection per command, as nc does;
//     and one interactive connection) beside the same command through
//     net/http with keep-alive (skein's JSON API handler).
//   - BenchmarkMonitorScrape: a Prometheus scrape of the job metrics, by
//     skein's collector (built from the records at scrape time) beside the
//     usual client_golang way (CounterVec, GaugeVec and HistogramVec updated
//     as jobs run) holding the same series.
//
//	go test -run '^$' -bench 'BenchmarkMonitor' -benchmem -count 6 .

// busyDispatcher is a dispatcher whose memory is full.
type busyDispatcher struct {
	polls []monitor.Poll
	jobs  []monitor.JobRecord
	now   time.Time
}

var benchKinds = []string{"send_email", "send_push", "send_text_message", "resize_image"}

func newBusyDispatcher() *busyDispatcher {
	d := &busyDispatcher{now: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	for i := range 400 {
		t := d.now.Add(-time.Duration(i) * time.Second)
		p := monitor.Poll{Key: t.UnixNano(), Time: t, Agents: []monitor.AgentPoll{{Agent: "main", Reason: "poll", Size: 10, Len: 3}}}
		if i < 200 {
			id := fmt.Sprintf("wf%06d_%032x", i, i)
			p.Agents[0].New = []string{id}
			r := monitor.JobRecord{ID: id, Kind: benchKinds[i%len(benchKinds)], Queue: "default", Agent: "main", Attempt: 1,
				PollKey: p.Key, Started: t, Goroutine: int64(1000 + i)}
			if i >= 3 {
				r.Completed, r.State, r.Result = t.Add(time.Duration(i%50)*time.Millisecond), "completed", "{}"
				if i%10 == 0 {
					r.State, r.Failed, r.Error = "retryable", true, "smtp: connection refused"
				}
			}
			d.jobs = append(d.jobs, r)
		}
		d.polls = append(d.polls, p)
	}
	return d
}

func (d *busyDispatcher) Status() monitor.Status {
	return monitor.Status{UUID: "d10f43dc-ffdf-11dc-abd4-0017f2c49bdd", Started: d.now.Add(-time.Hour), LastPoll: d.now,
		PollInterval: time.Second, Agents: []monitor.AgentStatus{{Name: "main", Size: 10, Active: []string{d.jobs[0].ID, d.jobs[1].ID, d.jobs[2].ID}}}}
}

func (d *busyDispatcher) Polls(n int) []monitor.Poll {
	if n <= 0 || n > len(d.polls) {
		n = len(d.polls)
	}
	return slices.Clone(d.polls[:n])
}

func (d *busyDispatcher) Jobs(n int) []monitor.JobRecord {
	if n <= 0 || n > len(d.jobs) {
		n = len(d.jobs)
	}
	return slices.Clone(d.jobs[:n])
}

func newBenchMonitor(tb testing.TB) (*monitor.Monitor, *busyDispatcher) {
	d := newBusyDispatcher()
	m, err := monitor.New(&monitor.Config{Dispatchers: []monitor.Dispatcher{d}, Now: func() time.Time { return d.now.Add(time.Second / 2) }})
	if err != nil {
		tb.Fatal(err)
	}
	return m, d
}

// queryCommands are the commands, with their HTTP form.
var queryCommands = []struct{ name, command, path string }{
	{"status", "async status", "/api/async/status"},
	{"polls400", "async polls count:400", "/api/async/polls?count=400"},
}

func BenchmarkMonitorQuery(b *testing.B) {
	m, _ := newBenchMonitor(b)
	srv, err := monitor.NewServer(m, &monitor.ServerConfig{Addr: "127.0.0.1:0", MaxConns: 1024})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer srv.Stop(context.Background())
	addr := srv.Addr().String()
	hs := httptest.NewServer(m.Handler())
	defer hs.Close()
	client := hs.Client()
	for _, qc := range queryCommands {
		want, err := m.Exec(context.Background(), qc.command)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(qc.name+"/skein-line-oneshot", func(b *testing.B) {
			b.SetBytes(int64(len(want)))
			for b.Loop() {
				out, err := monitor.Query(context.Background(), &monitor.ClientConfig{Addr: addr}, qc.command)
				if err != nil || len(out) != len(want) {
					b.Fatalf("%q: %d bytes, %v", qc.command, len(out), err)
				}
			}
		})
		b.Run(qc.name+"/skein-line-interactive", func(b *testing.B) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			r := bufio.NewReaderSize(c, 1<<16)
			if _, err := io.WriteString(c, "interactive\n"); err != nil {
				b.Fatal(err)
			}
			if _, err := r.ReadString('\n'); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, len(want)+1)
			b.SetBytes(int64(len(want)))
			for b.Loop() {
				if _, err := io.WriteString(c, qc.command+"\n"); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(r, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(qc.name+"/net-http-keepalive", func(b *testing.B) {
			b.SetBytes(int64(len(want)))
			for b.Loop() {
				resp, err := client.Get(hs.URL + qc.path)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || n == 0 {
					b.Fatalf("%s: %d", qc.path, resp.StatusCode)
				}
			}
		})
	}
}

// vecMetrics is the usual client_golang way: metrics registered once and
// updated as each job starts and ends.
type vecMetrics struct {
	reg      *prometheus.Registry
	started  *prometheus.CounterVec
	finished *prometheus.CounterVec
	duration *prometheus.HistogramVec
	slots    *prometheus.GaugeVec
	busy     *prometheus.GaugeVec
	lastPoll *prometheus.GaugeVec
	stuck    *prometheus.GaugeVec
}

func newVecMetrics(d *busyDispatcher) *vecMetrics {
	v := &vecMetrics{
		reg:      prometheus.NewRegistry(),
		started:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skein_jobs_started_total", Help: "h"}, []string{"queue", "kind"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skein_jobs_finished_total", Help: "h"}, []string{"queue", "kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "skein_job_duration_seconds", Help: "h", Buckets: monitor.JobDurationBuckets}, []string{"queue", "kind", "outcome"}),
		slots:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "skein_agent_slots", Help: "h"}, []string{"dispatcher", "agent"}),
		busy:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "skein_agent_busy_slots", Help: "h"}, []string{"dispatcher", "agent"}),
		lastPoll: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "skein_dispatcher_last_poll_timestamp_seconds", Help: "h"}, []string{"dispatcher"}),
		stuck:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "skein_dispatcher_stuck", Help: "h"}, []string{"dispatcher"}),
	}
	v.reg.MustRegister(v.started, v.finished, v.duration, v.slots, v.busy, v.lastPoll, v.stuck)
	s := d.Status()
	v.slots.WithLabelValues(s.UUID, "main").Set(10)
	v.busy.WithLabelValues(s.UUID, "main").Set(3)
	v.lastPoll.WithLabelValues(s.UUID).Set(float64(s.LastPoll.Unix()))
	v.stuck.WithLabelValues(s.UUID).Set(0)
	for _, r := range d.jobs {
		v.started.WithLabelValues(r.Queue, r.Kind).Inc()
		if r.State != "" {
			outcome := "succeeded"
			if r.Failed {
				outcome = "failed"
			}
			v.finished.WithLabelValues(r.Queue, r.Kind, outcome).Inc()
			v.duration.WithLabelValues(r.Queue, r.Kind, outcome).Observe(r.Completed.Sub(r.Started).Seconds())
		}
	}
	return v
}

func BenchmarkMonitorScrape(b *testing.B) {
	m, d := newBenchMonitor(b)
	skeinReg := prometheus.NewRegistry()
	skeinReg.MustRegister(m.Collector())
	handlers := []struct {
		name string
		h    http.Handler
	}{
		{"skein-collector", promhttp.HandlerFor(skeinReg, promhttp.HandlerOpts{})},
		{"client_golang-vecs", promhttp.HandlerFor(newVecMetrics(d).reg, promhttp.HandlerOpts{})},
	}
	for _, h := range handlers {
		b.Run(h.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/metrics", nil)
			var size int
			for b.Loop() {
				w := httptest.NewRecorder()
				h.h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("scrape: %d", w.Code)
				}
				size = w.Body.Len()
			}
			b.SetBytes(int64(size))
		})
	}
}

// TestMonitorScrapeWorkIsTheSame checks that both scrapes expose the same
// job series with the same values.
func TestMonitorScrapeWorkIsTheSame(t *testing.T) {
	m, d := newBenchMonitor(t)
	skeinReg := prometheus.NewRegistry()
	skeinReg.MustRegister(m.Collector())
	series := func(g prometheus.Gatherer) []string {
		fams, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range fams {
			if !strings.HasPrefix(f.GetName(), "skein_jobs_") && f.GetName() != "skein_agent_slots" && f.GetName() != "skein_agent_busy_slots" {
				continue
			}
			for _, mm := range f.GetMetric() {
				out = append(out, fmt.Sprintf("%s %v %v%v", f.GetName(), mm.GetLabel(), mm.GetCounter().GetValue(), mm.GetGauge().GetValue()))
			}
		}
		slices.Sort(out)
		return out
	}
	got, want := series(skeinReg), series(newVecMetrics(d).reg)
	if !slices.Equal(got, want) || len(got) == 0 {
		t.Errorf("skein series:\n%s\nclient_golang series:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
