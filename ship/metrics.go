package ship

import (
	"expvar"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Publish exposes the shipper's Stats as the expvar variable name (served
// at /debug/vars by expvar's handler). It fails if the name is taken.
func (s *Shipper) Publish(name string) error {
	if expvar.Get(name) != nil {
		return fmt.Errorf("ship: publishing stats: expvar %q already exists", name)
	}
	expvar.Publish(name, expvar.Func(func() any { return s.Stats().vars() }))
	return nil
}

func (st Stats) vars() map[string]any {
	dropped := map[string]uint64{}
	for _, r := range DropReasons() {
		dropped[r.String()] = st.Dropped[r]
	}
	return map[string]any{
		"received": st.Received, "delivered": st.Delivered, "dropped": dropped,
		"queued": st.Queued, "in_flight": st.InFlight, "spooled": st.Spooled, "pending": st.Pending(),
		"requests": st.Requests, "failures": st.Failures, "retries": st.Retries,
		"bytes_sent": st.BytesSent, "dead_lettered": st.DeadLettered, "corrupt_regions": st.CorruptRegions,
	}
}

// Collector returns a Prometheus collector of the shipper's Stats, with the
// given constant labels (for example the endpoint's name), to register with
// a prometheus.Registerer. Metric names start with skein_ship_.
func (s *Shipper) Collector(constLabels prometheus.Labels) prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("skein_ship_"+name, help, labels, constLabels)
	}
	return &collector{
		s:         s,
		received:  d("received_records_total", "Records handed to the shipper (and found in its spool at start)."),
		delivered: d("delivered_records_total", "Records in batches the endpoint answered with 2xx."),
		dropped:   d("dropped_records_total", "Records lost, by reason.", "reason"),
		pending:   d("pending_records", "Records not yet delivered, by where they wait.", "where"),
		requests:  d("requests_total", "HTTP attempts."),
		failures:  d("request_failures_total", "HTTP attempts without a 2xx."),
		retries:   d("retries_total", "Waits before another attempt."),
		sent:      d("sent_bytes_total", "Request body bytes of successful requests."),
		dead:      d("dead_lettered_records_total", "Records written to the dead-letter file."),
		corrupt:   d("spool_corrupt_regions_total", "Damaged spool regions skipped."),
	}
}

type collector struct {
	s                                                                  *Shipper
	received, delivered, dropped, pending, requests, failures, retries *prometheus.Desc
	sent, dead, corrupt                                                *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.received, c.delivered, c.dropped, c.pending, c.requests, c.failures, c.retries, c.sent, c.dead, c.corrupt} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.received, st.Received)
	counter(c.delivered, st.Delivered)
	for _, r := range DropReasons() {
		counter(c.dropped, st.Dropped[r], r.String())
	}
	for _, p := range []struct {
		where string
		n     int64
	}{{"queue", st.Queued}, {"in_flight", st.InFlight}, {"spool", st.Spooled}} {
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(p.n), p.where)
	}
	counter(c.requests, st.Requests)
	counter(c.failures, st.Failures)
	counter(c.retries, st.Retries)
	counter(c.sent, st.BytesSent)
	counter(c.dead, st.DeadLettered)
	counter(c.corrupt, st.CorruptRegions)
}
