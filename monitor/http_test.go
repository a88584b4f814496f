package monitor

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func TestHTTPMirrorsCommands(t *testing.T) {
	m, d := newSeedMonitor(t)
	d.put("j30", "send_message", "default")
	d.clock.Advance(4 * time.Second)
	d.poll()
	mdb := dbMonitor(t, clusterStore(t))
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	dbsrv := httptest.NewServer(mdb.Handler())
	defer dbsrv.Close()
	tests := []struct {
		base, path string
		command    string
		mon        *Monitor
	}{
		{srv.URL, "/api/async/status", "async status", m},
		{srv.URL, "/api/async/UUID", "async UUID", m},
		{srv.URL, "/api/async/jobs?queue=default&agent=main", "async jobs queue:default agent:main", m},
		{srv.URL, "/api/async/job/j30", "async job j30", m},
		{srv.URL, "/api/async/jobstats?since=1H", "async jobstats since:1H", m},
		{srv.URL, "/api/async/polls?count=1", "async polls count:1", m},
		{srv.URL, "/api/async/poll?before=2S", "async poll before:2S", m},
		{srv.URL, "/api/async/help/polls", "async help polls", m},
		{dbsrv.URL, "/api/asyncdb/jobs?state=pending&state=running&kind=send_*", "asyncdb jobs pending running kind:send_*", mdb},
		{dbsrv.URL, "/api/asyncdb/jobs?arg=final&display=details", "asyncdb jobs final display:details", mdb},
		{dbsrv.URL, "/api/asyncdb/count?state=pending&queue=default", "asyncdb count pending queue:default", mdb},
		{dbsrv.URL, "/api/asyncdb/job/wf1_a1", "asyncdb job wf1_a1", mdb},
		{dbsrv.URL, "/api/asyncdb/traceback/wf1_e1?detail=brief", "asyncdb traceback wf1_e1 detail:brief", mdb},
		{dbsrv.URL, "/api/asyncdb/UUIDs?all=", "asyncdb UUIDs all:", mdb},
		{dbsrv.URL, "/api/asyncdb/status?queue=email", "asyncdb status queue:email", mdb},
		{dbsrv.URL, "/api/asyncdb/nextpending", "asyncdb nextpending", mdb},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			code, body, h := get(t, tt.base+tt.path)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			text, err := tt.mon.Exec(t.Context(), tt.command)
			if err != nil {
				t.Fatal(err)
			}
			var got, want any
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, body)
			}
			if err := json.Unmarshal([]byte(text), &want); err != nil {
				want = text // a plain string answer is a JSON string over HTTP
			}
			// Durations of live jobs move between the two calls.
			if strings.Contains(tt.path, "details") || strings.Contains(tt.path, "job/") || strings.Contains(tt.path, "nextpending") || strings.Contains(tt.path, "asyncdb/status") {
				dropDurations(got)
				dropDurations(want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("GET %s = %v\nwant (as %q) %v", tt.path, got, tt.command, want)
			}
		})
	}
}

func dropDurations(v any) {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "wait")
		delete(x, "active")
		delete(x, "since ping")
		for _, e := range x {
			dropDurations(e)
		}
	case []any:
		for _, e := range x {
			dropDurations(e)
		}
	}
}

func TestHTTPErrors(t *testing.T) {
	m, _ := newSeedMonitor(t)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	tests := []struct {
		path string
		code int
		want string
	}{
		{"/api/async/nosuch", 404, `unknown async tool \"nosuch\"`},
		{"/api/nosuch/status", 404, `unknown command \"nosuch\"`},
		{"/api/async/job/nosuch", 404, `job \"nosuch\" is not among`},
		{"/api/async/polls?at=5M&before=1M", 400, "may not be combined"},
		{"/api/async/polls?at=5X", 400, `bad interval \"5X\"`},
		{"/api/async/polls?count=1&count=2", 400, `query parameter \"count\" given 2 times`},
		{"/api/async/jobs?color=red", 400, `unknown modifier \"color:\"`},
		{"/api/asyncdb/count?state=pending", 503, "no store is configured"},
		{"/nowhere", 404, `no such path \"/nowhere\"`},
	}
	for _, tt := range tests {
		code, body, _ := get(t, srv.URL+tt.path)
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("GET %s = %d %s; want %d containing %s", tt.path, code, body, tt.code, tt.want)
		}
		var e map[string]string
		if err := json.Unmarshal([]byte(body), &e); err != nil || e["error"] == "" {
			t.Errorf("GET %s: body %q is not {\"error\": ...}", tt.path, body)
		}
	}
	resp, err := http.Post(srv.URL+"/api/async/status", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	code, body, _ := get(t, srv.URL+"/api/")
	var index map[string][]string
	if code != 200 || json.Unmarshal([]byte(body), &index) != nil || len(index["async"]) != 9 || len(index["asyncdb"]) != 10 {
		t.Errorf("GET /api/ = %d %s", code, body)
	}
}

// scrape fetches and parses /metrics.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	code, body, _ := get(t, srv.URL+"/metrics")
	if code != 200 {
		t.Fatalf("scrape: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the scrape: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the sample of family name whose labels are
// exactly labels.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	for _, mm := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range mm.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if !reflect.DeepEqual(got, labels) {
			continue
		}
		switch {
		case mm.Gauge != nil:
			return mm.GetGauge().GetValue()
		case mm.Counter != nil:
			return mm.GetCounter().GetValue()
		case mm.Histogram != nil:
			return float64(mm.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("no sample %s%v", name, labels)
	return 0
}

func TestMetrics(t *testing.T) {
	clock := &fakeClock{now: seedStart}
	d := newFakeDispatcher(clock, seedUUID, 5*time.Second)
	d.addAgent("main", 3)
	d.start()
	d.put("j1", "send_push", "default")
	d.put("j2", "send_push", "default")
	d.put("j3", "send_email", "email")
	d.poll()
	clock.Advance(1500 * time.Millisecond)
	if err := d.finish("j1", false, "null"); err != nil {
		t.Fatal(err)
	}
	if err := d.finish("j3", true, "smtp down"); err != nil {
		t.Fatal(err)
	}
	m, err := New(&Config{Dispatchers: []Dispatcher{d}, Store: clusterStore(t), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	h := http.NewServeMux()
	h.Handle("/metrics", m.MetricsHandler())
	fams := scrape(t, h)
	dl := map[string]string{"dispatcher": seedUUID}
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"skein_dispatcher_up", dl, 1},
		{"skein_dispatcher_stuck", dl, 0},
		{"skein_dispatcher_poll_interval_seconds", dl, 5},
		{"skein_dispatcher_last_poll_timestamp_seconds", dl, float64(seedStart.UnixNano()) / 1e9},
		{"skein_agent_slots", map[string]string{"dispatcher": seedUUID, "agent": "main"}, 3},
		{"skein_agent_busy_slots", map[string]string{"dispatcher": seedUUID, "agent": "main"}, 1},
		{"skein_jobs_started_total", map[string]string{"queue": "default", "kind": "send_push"}, 2},
		{"skein_jobs_started_total", map[string]string{"queue": "email", "kind": "send_email"}, 1},
		{"skein_jobs_finished_total", map[string]string{"queue": "default", "kind": "send_push", "outcome": "succeeded"}, 1},
		{"skein_jobs_finished_total", map[string]string{"queue": "email", "kind": "send_email", "outcome": "failed"}, 1},
		{"skein_job_duration_seconds", map[string]string{"queue": "default", "kind": "send_push", "outcome": "succeeded"}, 1},
		{"skein_queue_jobs", map[string]string{"queue": "default", "state": "available"}, 1},
		{"skein_queue_jobs", map[string]string{"queue": "default", "state": "scheduled"}, 1},
		{"skein_queue_jobs", map[string]string{"queue": "email", "state": "discarded"}, 1},
		{"skein_dispatchers", map[string]string{"state": "dead"}, 1}, // B, marked dead by A
		{"skein_dispatchers", map[string]string{"state": "alive"}, 1},
		{"skein_monitor_store_up", map[string]string{}, 1},
	} {
		if got := value(t, fams, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	hist := fams["skein_job_duration_seconds"].GetMetric()[0].GetHistogram()
	if hist.GetSampleSum() != 1.5 {
		t.Errorf("duration sum = %v, want 1.5", hist.GetSampleSum())
	}
	for _, f := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := fams[f]; !ok {
			t.Errorf("no %s in the scrape", f)
		}
	}
	// No label carries a job id.
	for name, f := range fams {
		for _, mm := range f.GetMetric() {
			for _, l := range mm.GetLabel() {
				if strings.HasPrefix(l.GetValue(), "j") || strings.HasPrefix(l.GetValue(), "wf") {
					t.Errorf("%s has label %s=%q: a job id?", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
	// A second scrape counts nothing twice; a new end is counted once.
	clock.Advance(time.Second)
	if err := d.finish("j2", false, "null"); err != nil {
		t.Fatal(err)
	}
	fams = scrape(t, h)
	if got := value(t, fams, "skein_jobs_finished_total", map[string]string{"queue": "default", "kind": "send_push", "outcome": "succeeded"}); got != 2 {
		t.Errorf("after j2 ended: succeeded = %v, want 2", got)
	}
	if got := value(t, fams, "skein_jobs_started_total", map[string]string{"queue": "default", "kind": "send_push"}); got != 2 {
		t.Errorf("second scrape: started = %v, want 2", got)
	}
	// STUCK shows as soon as the poll is past due.
	clock.Advance(5 * time.Second)
	fams = scrape(t, h)
	if got := value(t, fams, "skein_dispatcher_stuck", dl); got != 1 {
		t.Errorf("past due: stuck = %v, want 1", got)
	}
}
