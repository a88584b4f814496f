package ship

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		childMain()
		return
	}
	goleak.VerifyTestMain(m)
}

// sink is a real HTTP endpoint on loopback that records the records it
// accepts (by their "n" field) and can misbehave on purpose.
type sink struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	got      map[int]int // n → times received
	requests int
	bodies   [][]byte
	headers  []http.Header
	// misbehave, when set, is called for every request (after its body was
	// read) with the request's index; it returns true when it wrote the
	// response itself.
	misbehave func(w http.ResponseWriter, r *http.Request, i int, body []byte) bool
	arrived   chan struct{} // gets a value per accepted request, if not full
	early     bool          // call misbehave before reading the body (body nil)
}

func newSink(t *testing.T, misbehave func(w http.ResponseWriter, r *http.Request, i int, body []byte) bool) *sink {
	t.Helper()
	s := &sink{t: t, got: map[int]int{}, misbehave: misbehave, arrived: make(chan struct{}, 1024)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	if s.early {
		s.mu.Lock()
		i := s.requests
		s.requests++
		s.mu.Unlock()
		if s.misbehave(w, r, i, nil) {
			return
		}
	}
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, "bad gzip: "+err.Error(), http.StatusBadRequest)
			return
		}
		rd = zr
	}
	body, err := io.ReadAll(rd)
	if err != nil {
		return // the client went away mid-body
	}
	s.mu.Lock()
	i := s.requests
	s.requests++
	s.mu.Unlock()
	if !s.early && s.misbehave != nil && s.misbehave(w, r, i, body) {
		return
	}
	ns, err := parseNDJSON(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.accept(ns, body, r.Header)
	w.WriteHeader(http.StatusNoContent)
}

func (s *sink) accept(ns []int, body []byte, h http.Header) {
	s.mu.Lock()
	for _, n := range ns {
		s.got[n]++
	}
	s.bodies = append(s.bodies, body)
	s.headers = append(s.headers, h.Clone())
	s.mu.Unlock()
	select {
	case s.arrived <- struct{}{}:
	default:
	}
}

func parseNDJSON(body []byte) ([]int, error) {
	var ns []int
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var rec struct {
			N *int `json:"n"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.N == nil {
			return nil, fmt.Errorf("line %q: not a test record (%v)", sc.Bytes(), err)
		}
		ns = append(ns, *rec.N)
	}
	return ns, sc.Err()
}

// unique returns how many distinct records arrived, and whether record
// 0..n-1 all did.
func (s *sink) unique(n int) (distinct int, missing []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range n {
		if s.got[i] == 0 {
			missing = append(missing, i)
		}
	}
	return len(s.got), missing
}

func record(n int) []byte {
	return fmt.Appendf(nil, `{"task_uuid":"8c668cde-d2e5-4b7e-8f0e-5c3e2a1b0d9f","task_level":[%d],"message_type":"test","n":%d}`+"\n", n+1, n)
}

// quietLogger collects the shipper's reports for assertions.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func testLogger() (*slog.Logger, *logBuf) {
	lb := &logBuf{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// fastRetry makes retries quick so tests run in milliseconds.
var fastRetry = RetryConfig{InitialWait: time.Millisecond, MaxWait: 20 * time.Millisecond, MaxAttempts: 50, MaxElapsed: 30 * time.Second}

func mustNew(t *testing.T, cfg Config) *Shipper {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger, _ = testLogger()
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

func closeWithin(t *testing.T, s *Shipper, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return s.Close(ctx)
}

func checkBalanced(t *testing.T, st Stats) {
	t.Helper()
	if !st.Balanced() {
		t.Errorf("accounting does not balance: %s (queued=%d in_flight=%d spooled=%d)", st, st.Queued, st.InFlight, st.Spooled)
	}
}

func write(t *testing.T, s *Shipper, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := s.Write(record(i)); err != nil {
			t.Fatalf("Write(%d): %v", i, err)
		}
	}
}
