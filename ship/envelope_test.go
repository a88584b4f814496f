package ship

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// decodeN reads the "n" of each record in a JSON record (or a JSON string
// holding one).
func decodeN(t *testing.T, raw []byte) int {
	t.Helper()
	var rec struct{ N int }
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatalf("record %s: %v", raw, err)
	}
	return rec.N
}

func TestEnvelopes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env    Envelope
		ctype  string
		decode func(t *testing.T, body []byte) []int
	}{
		{Envelope{Format: JSONArray}, "application/json", func(t *testing.T, body []byte) []int {
			var recs []json.RawMessage
			if err := json.Unmarshal(body, &recs); err != nil {
				t.Fatal(err)
			}
			var ns []int
			for _, r := range recs {
				ns = append(ns, decodeN(t, r))
			}
			return ns
		}},
		{Envelope{Format: Template, Template: `{"n_records": {{count}}, "logs": {{records}}}`}, "application/json", func(t *testing.T, body []byte) []int {
			var b struct {
				Count int `json:"n_records"`
				Logs  []json.RawMessage
			}
			if err := json.Unmarshal(body, &b); err != nil || b.Count != len(b.Logs) {
				t.Fatalf("%s: %v", body, err)
			}
			var ns []int
			for _, r := range b.Logs {
				ns = append(ns, decodeN(t, r))
			}
			return ns
		}},
		{Envelope{Format: Template, Template: `{"lines": {{ndjson_string}}}`}, "application/json", func(t *testing.T, body []byte) []int {
			var b struct{ Lines string }
			if err := json.Unmarshal(body, &b); err != nil {
				t.Fatal(err)
			}
			var ns []int
			for _, line := range strings.Split(strings.TrimSpace(b.Lines), "\n") {
				ns = append(ns, decodeN(t, []byte(line)))
			}
			return ns
		}},
		{Envelope{Format: Template, Template: `{"bucket":"b","event":{{record_string}}}`, Framing: JSONArray}, "application/json", func(t *testing.T, body []byte) []int {
			var docs []struct{ Bucket, Event string }
			if err := json.Unmarshal(body, &docs); err != nil {
				t.Fatal(err)
			}
			var ns []int
			for _, d := range docs {
				ns = append(ns, decodeN(t, []byte(d.Event)))
			}
			return ns
		}},
		{Envelope{Format: Template, Template: `{"event":{{record}}}`}, "application/x-ndjson", func(t *testing.T, body []byte) []int {
			var ns []int
			for _, line := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
				var d struct{ Event json.RawMessage }
				if err := json.Unmarshal(line, &d); err != nil {
					t.Fatal(err)
				}
				ns = append(ns, decodeN(t, d.Event))
			}
			return ns
		}},
		{Envelope{Format: Loki, Labels: map[string]string{"app": "web", "env": "prod"}}, "application/json", func(t *testing.T, body []byte) []int {
			var push struct {
				Streams []struct {
					Stream map[string]string
					Values [][2]string
				}
			}
			if err := json.Unmarshal(body, &push); err != nil {
				t.Fatal(err)
			}
			st := push.Streams[0]
			if st.Stream["app"] != "web" || st.Stream["env"] != "prod" {
				t.Errorf("labels %v", st.Stream)
			}
			var ns []int
			for _, v := range st.Values {
				n := decodeN(t, []byte(v[1]))
				if n == 0 && v[0] != "1700000000250000000" {
					t.Errorf("timestamp %s, want the record's", v[0])
				}
				ns = append(ns, n)
			}
			return ns
		}},
		{Envelope{Format: OTLP, ServiceName: "billing"}, "application/json", func(t *testing.T, body []byte) []int {
			var req struct {
				ResourceLogs []struct {
					Resource struct {
						Attributes []struct {
							Key   string
							Value struct{ StringValue string }
						}
					}
					ScopeLogs []struct {
						LogRecords []struct {
							TimeUnixNano string
							Body         struct{ StringValue string }
						}
					}
				}
			}
			if err := json.Unmarshal(body, &req); err != nil {
				t.Fatal(err)
			}
			rl := req.ResourceLogs[0]
			if rl.Resource.Attributes[0].Value.StringValue != "billing" {
				t.Errorf("resource %+v", rl.Resource)
			}
			var ns []int
			for _, lr := range rl.ScopeLogs[0].LogRecords {
				n := decodeN(t, []byte(lr.Body.StringValue))
				if n == 0 && lr.TimeUnixNano != "1700000000250000000" {
					t.Errorf("timeUnixNano %s, want the record's", lr.TimeUnixNano)
				}
				ns = append(ns, n)
			}
			return ns
		}},
		{Envelope{Format: Elasticsearch, Index: "logs-skein"}, "application/x-ndjson", func(t *testing.T, body []byte) []int {
			lines := bytes.Split(bytes.TrimSpace(body), []byte("\n"))
			var ns []int
			for i := 0; i < len(lines); i += 2 {
				if string(lines[i]) != `{"create":{"_index":"logs-skein"}}` {
					t.Fatalf("action line %s", lines[i])
				}
				ns = append(ns, decodeN(t, lines[i+1]))
			}
			return ns
		}},
	}
	for _, tt := range tests {
		name := string(tt.env.Format) + " " + tt.env.Template
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			seen := map[int]bool{}
			sk := newSink(t, func(w http.ResponseWriter, r *http.Request, _ int, body []byte) bool {
				if ct := r.Header.Get("Content-Type"); ct != tt.ctype {
					t.Errorf("Content-Type %q, want %q", ct, tt.ctype)
				}
				ns := tt.decode(t, body)
				mu.Lock()
				for _, n := range ns {
					seen[n] = true
				}
				mu.Unlock()
				w.WriteHeader(http.StatusOK)
				return true
			})
			s := mustNew(t, Config{URL: sk.srv.URL, Envelope: tt.env, Batch: BatchConfig{MaxRecords: 7}})
			_, _ = s.Write([]byte(`{"timestamp": 1700000000.25, "n": 0, "text": "quote \" newline \n tab \t unicode é ☃ \u2028"}`))
			write(t, s, 1, 20)
			if err := closeWithin(t, s, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if len(seen) != 20 {
				t.Errorf("%d distinct records arrived, want 20", len(seen))
			}
		})
	}
}

func TestTemplateErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ tmpl, want string }{
		{``, "empty"},
		{`{"a": {{nope}}}`, "unknown placeholder {{nope}}"},
		{`{"a": {{records}}, "b": {{record}}}`, "mixes"},
		{`{"a": "{{records_string}}"}`, "valid JSON"},
		{`{"a": {{records}}`, "valid JSON"},
		{`{"a": {{records}`, "unclosed"},
		{"[{{records}}]\n0", "valid JSON"},     // a second document after a line break
		{"{\"r\":\n{{record}}}", "valid JSON"}, // a record template must make one line per record
	}
	for _, tt := range tests {
		_, err := parseTemplate(tt.tmpl)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseTemplate(%q) = %v, want %q", tt.tmpl, err, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mutate func(*Config)
		field  string
	}{
		{func(c *Config) { c.URL = "" }, "url"},
		{func(c *Config) { c.URL = "ftp://x/" }, "url"},
		{func(c *Config) { c.Method = "post" }, "method"},
		{func(c *Config) { c.Headers = map[string]string{"Bad Name": "x"} }, "headers.Bad Name"},
		{func(c *Config) { c.MaxInFlight = -1 }, "max_in_flight"},
		{func(c *Config) { c.Queue.MaxRecords = -5 }, "queue.max_records"},
		{func(c *Config) { c.Queue.Policy = "drop_some" }, "queue.policy"},
		{func(c *Config) { c.Batch.MaxBytes = -1 }, "batch.max_bytes"},
		{func(c *Config) { c.Retry.Statuses = []int{429, 204} }, "retry.statuses[1]"},
		{func(c *Config) { c.Retry.MaxWait = time.Millisecond; c.Retry.InitialWait = time.Second }, "retry.max_wait"},
		{func(c *Config) { c.Retry.MaxAttempts = -1 }, "retry.max_attempts"},
		{func(c *Config) { c.Proxy = "gopher://p" }, "proxy"},
		{func(c *Config) { c.TLS.CertFile = "a.pem" }, "tls.cert_file"},
		{func(c *Config) { c.TLS.CAFile = "/nonexistent/ca.pem" }, "tls.ca_file"},
		{func(c *Config) { c.Spool.Dir = "x"; c.Spool.MaxBytes = 4096 }, "spool.max_bytes"},
		{func(c *Config) { c.Envelope.Format = "xml" }, "envelope.format"},
		{func(c *Config) { c.Envelope.Format = Template }, "envelope.template"},
		{func(c *Config) { c.Envelope.Format = Loki; c.Envelope.Labels = map[string]string{"bad-label": "x"} }, "envelope.labels.bad-label"},
	}
	for _, tt := range tests {
		c := Config{URL: "http://127.0.0.1:1/"}
		tt.mutate(&c)
		err := c.WithDefaults().Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("Validate() = %v, want an error on field %s", err, tt.field)
		}
	}
	if err := (Config{URL: "https://logs.example.com/ingest"}).WithDefaults().Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{" 0 ", 0, true},
		{"Sun, 22 Nov 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Sun, 22 Nov 2026 11:00:00 GMT", 0, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"", 0, false},
		{"99999999999999", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBackoffIsCappedAndJittered(t *testing.T) {
	t.Parallel()
	w := newBackoffWaits(RetryConfig{InitialWait: 100 * time.Millisecond, MaxWait: 400 * time.Millisecond})
	limits := []time.Duration{100, 200, 400, 400, 400, 400, 400, 400}
	distinct := map[time.Duration]bool{}
	for i, lim := range limits {
		d := w.next()
		distinct[d] = true
		if d < 0 || d > lim*time.Millisecond {
			t.Errorf("wait %d = %v, want within [0, %vms]", i, d, lim)
		}
	}
	if len(distinct) < 4 {
		t.Errorf("waits %v are not jittered", distinct)
	}
}

// lazyHandler forwards to a handler set after the shipper exists.
type lazyHandler struct {
	mu sync.Mutex
	h  slog.Handler
}

func (l *lazyHandler) get() slog.Handler {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.h
}
func (l *lazyHandler) Enabled(context.Context, slog.Level) bool { return true }
func (l *lazyHandler) Handle(ctx context.Context, r slog.Record) error {
	return l.get().Handle(ctx, r)
}
func (l *lazyHandler) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *lazyHandler) WithGroup(string) slog.Handler      { return l }

func TestSlogHandlerAndNoSelfLoop(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies []string
	sk := newSink(t, func(w http.ResponseWriter, _ *http.Request, _ int, body []byte) bool {
		mu.Lock()
		bodies = append(bodies, string(body))
		mu.Unlock()
		if bytes.Contains(body, []byte(`"refuse"`)) {
			http.Error(w, "refused on purpose", http.StatusBadRequest)
			return true
		}
		w.WriteHeader(http.StatusOK)
		return true
	})
	lazy := &lazyHandler{}
	// The shipper's own reports go to a logger that writes into it.
	s := mustNew(t, Config{URL: sk.srv.URL, Logger: slog.New(lazy)})
	lazy.mu.Lock()
	lazy.h = s.Handler(nil)
	lazy.mu.Unlock()
	log := slog.New(s.Handler(&slog.HandlerOptions{Level: slog.LevelDebug})).With("service", "api")
	log.Info("hello", "user", 7)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	log.Info("refuse") // the endpoint refuses this batch; the report must not loop
	if err := closeWithin(t, s, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Received != 2 || st.Delivered != 1 || st.Dropped[DropRejected] != 1 {
		t.Errorf("got %s, want the 2 records only (no self-report queued)", st)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(bodies[0])), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["msg"] != "hello" || rec["service"] != "api" || rec["user"] != float64(7) {
		t.Errorf("record %v", rec)
	}
}

func TestRecoverAndFlush(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var body []byte
	sk := newSink(t, func(w http.ResponseWriter, _ *http.Request, _ int, b []byte) bool {
		mu.Lock()
		body = append(body, b...)
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
		return true
	})
	s := mustNew(t, Config{URL: sk.srv.URL, Batch: BatchConfig{Timeout: time.Hour}})
	var recovered any
	func() {
		defer func() { recovered = recover() }()
		defer s.RecoverAndFlush(5 * time.Second)
		panic(fmt.Errorf("disk on fire"))
	}()
	if err, ok := recovered.(error); !ok || err.Error() != "disk on fire" {
		t.Fatalf("re-panicked with %v, want the original value", recovered)
	}
	mu.Lock()
	defer mu.Unlock()
	var rec map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(body), &rec); err != nil {
		t.Fatalf("flushed body %q: %v", body, err)
	}
	if rec["message_type"] != "eliot:traceback" || rec["reason"] != "disk on fire" ||
		!strings.Contains(rec["traceback"].(string), "TestRecoverAndFlush") || rec["exception"] != "*errors.errorString" {
		t.Errorf("traceback record %v", rec)
	}
	if lv, ok := rec["task_level"].([]any); !ok || len(lv) != 1 {
		t.Errorf("task_level %v", rec["task_level"])
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	sk := newSink(t, nil)
	s := mustNew(t, Config{URL: sk.srv.URL})
	write(t, s, 0, 5)
	_, _ = s.Write([]byte("nope"))
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(s.Collector(prometheus.Labels{"endpoint": "test"})); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() != "endpoint" {
					key += "{" + l.GetValue() + "}"
				}
			}
			vals[key] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	for key, want := range map[string]float64{
		"skein_ship_received_records_total":          6,
		"skein_ship_delivered_records_total":         5,
		"skein_ship_dropped_records_total{invalid}":  1,
		"skein_ship_pending_records{queue}":          0,
		"skein_ship_dropped_records_total{rejected}": 0,
	} {
		if vals[key] != want {
			t.Errorf("%s = %v, want %v", key, vals[key], want)
		}
	}
	name := "skein_ship_test_" + strconv.Itoa(int(time.Now().UnixNano()))
	if err := s.Publish(name); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(name); err == nil {
		t.Error("publishing twice under one name succeeded")
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(expvar.Get(name).String()), &v); err != nil || v["delivered"] != float64(5) {
		t.Errorf("expvar %s: %v", expvar.Get(name), err)
	}
}

func TestWriteDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	sk, _ := hangingSink(t)
	s := mustNew(t, Config{URL: sk.srv.URL, RequestTimeout: time.Hour})
	rec := record(1)
	for range 10000 { // grow the ring to its working size
		_, _ = s.Write(rec)
	}
	if allocs := testing.AllocsPerRun(10000, func() { _, _ = s.Write(rec) }); allocs != 0 {
		t.Errorf("Write allocates %v times per call, want 0", allocs)
	}
	_ = closeWithin(t, s, 50*time.Millisecond)
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "x", "-3", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now)
		if d < 0 || (!ok && d != 0) {
			t.Errorf("parseRetryAfter(%q) = %v, %v", s, d, ok)
		}
	})
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\ nl\n", "\x00\x1f\x7f", "é☃😀", "\xff\xfe bad utf8", "\u2028\u2029"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		enc := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("appendJSONString(%q) = %s: not a JSON string: %v", s, enc, err)
		}
		if want := strings.ToValidUTF8(string(s), "\uFFFD"); got != want && utf8.Valid(s) {
			t.Errorf("round trip of %q gave %q", s, got)
		}
	})
}

func FuzzTopLevelField(f *testing.F) {
	for _, s := range []string{`{"timestamp": 1.5, "a": [1, {"b": "}"}]}`, `{"a":"x\"y","time":"2026-01-01T00:00:00Z"}`, `{}`, `[1]`, `{"a":`, `{"a" 1}`} {
		f.Add([]byte(s), "timestamp")
	}
	f.Fuzz(func(t *testing.T, rec []byte, key string) {
		v, ok := topLevelField(rec, key)
		if !ok {
			return
		}
		// On valid JSON objects with unique keys, the scanner agrees with
		// encoding/json.
		var m map[string]json.RawMessage
		if json.Unmarshal(rec, &m) != nil || strings.ContainsAny(key, "\\\"") {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(rec))
		if keys := countKeys(dec); keys != len(m) {
			return // duplicate keys
		}
		want, found := m[key]
		if !found {
			t.Fatalf("found %q in %s, encoding/json does not", key, rec)
		}
		if !bytes.Equal(bytes.TrimSpace(want), v) {
			t.Errorf("topLevelField(%s, %q) = %s, want %s", rec, key, v, want)
		}
	})
}

// countKeys counts the top-level keys of the object dec reads.
func countKeys(dec *json.Decoder) int {
	if _, err := dec.Token(); err != nil {
		return -1
	}
	n := 0
	for dec.More() {
		if _, err := dec.Token(); err != nil {
			return -1
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return -1
		}
		n++
	}
	return n
}

func FuzzTemplate(f *testing.F) {
	f.Add(`{"bucket":"a","payload":{{records_string}}}`, []byte(`{"n":1}`))
	f.Add(`{"e":{{record_string}},"r":{{record}}}`, []byte(`{"x":"\u2028"}`))
	f.Add(`[{{records}},{{count}},{{ndjson_string}}]`, []byte(`{}`))
	f.Fuzz(func(t *testing.T, tmpl string, rec []byte) {
		te, err := parseTemplate(tmpl)
		if err != nil || !json.Valid(rec) || !bytes.HasPrefix(rec, []byte("{")) {
			return
		}
		b := &batch{}
		b.add(rec)
		b.add(rec)
		te.framing = JSONArray
		if body := te.encode(nil, b, time.Now()); !json.Valid(body) {
			t.Errorf("template %q with record %s made invalid JSON: %s", tmpl, rec, body)
		}
	})
}
