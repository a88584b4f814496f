package ship

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDeliversEverything(t *testing.T) {
	t.Parallel()
	sk := newSink(t, nil)
	const n = 5000
	s := mustNew(t, Config{URL: sk.srv.URL, Batch: BatchConfig{MaxRecords: 100}, Queue: QueueConfig{MaxRecords: n}})
	write(t, s, 0, n)
	if err := closeWithin(t, s, 10*time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
	st := s.Stats()
	if st.Received != n || st.Delivered != n || st.DroppedTotal() != 0 {
		t.Errorf("got %s, want %d received and delivered", st, n)
	}
	checkBalanced(t, st)
	if distinct, missing := sk.unique(n); distinct != n || len(missing) > 0 {
		t.Errorf("sink got %d distinct records, missing %v", distinct, missing)
	}
	for _, h := range sk.headers {
		if got := h.Get("Content-Type"); got != "application/x-ndjson" {
			t.Fatalf("Content-Type = %q, want application/x-ndjson", got)
		}
	}
}

// TestMisbehavingEndpoints runs the shipper against servers that fail on
// purpose and checks every record arrives and the accounting balances.
func TestMisbehavingEndpoints(t *testing.T) {
	t.Parallel()
	hijack := func(w http.ResponseWriter, then func(*bufio.ReadWriter)) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		then(rw)
		rw.Flush()
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, not a clean close
		}
		conn.Close()
	}
	tests := []struct {
		name      string
		misbehave func(w http.ResponseWriter, r *http.Request, i int, body []byte) bool
	}{
		{"500 three times", func(w http.ResponseWriter, _ *http.Request, i int, _ []byte) bool {
			if i < 3 {
				http.Error(w, "boom", http.StatusInternalServerError)
				return true
			}
			return false
		}},
		{"every transient status", func(w http.ResponseWriter, _ *http.Request, i int, _ []byte) bool {
			codes := []int{408, 429, 500, 502, 503, 504}
			if i < len(codes) {
				w.WriteHeader(codes[i])
				return true
			}
			return false
		}},
		{"429 with Retry-After", func(w http.ResponseWriter, _ *http.Request, i int, _ []byte) bool {
			if i%2 == 0 {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusTooManyRequests)
				return true
			}
			return false
		}},
		{"slow past the request timeout", func(w http.ResponseWriter, r *http.Request, i int, _ []byte) bool {
			if i < 2 {
				<-r.Context().Done() // hang until the client gives up
				return true
			}
			return false
		}},
		{"reset before the response", func(w http.ResponseWriter, _ *http.Request, i int, _ []byte) bool {
			if i < 3 {
				hijack(w, func(*bufio.ReadWriter) {})
				return true
			}
			return false
		}},
		{"reset mid-request-body", func(w http.ResponseWriter, r *http.Request, i int, _ []byte) bool {
			if i < 3 {
				// Read part of the body, then reset the connection.
				_, _ = r.Body.Read(make([]byte, 100))
				hijack(w, func(*bufio.ReadWriter) {})
				return true
			}
			return false
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sk := newSink(t, tt.misbehave)
			sk.early = strings.HasPrefix(tt.name, "reset mid-request")
			s := mustNew(t, Config{
				URL: sk.srv.URL, RequestTimeout: 200 * time.Millisecond, Retry: fastRetry,
				Batch: BatchConfig{MaxRecords: 50},
			})
			const n = 500
			write(t, s, 0, n)
			if err := closeWithin(t, s, 20*time.Second); err != nil {
				t.Fatalf("Close: %v", err)
			}
			st := s.Stats()
			checkBalanced(t, st)
			if st.Delivered != n || st.DroppedTotal() != 0 {
				t.Errorf("got %s, want all %d delivered", st, n)
			}
			if _, missing := sk.unique(n); len(missing) > 0 {
				t.Errorf("missing records %v", missing)
			}
			if st.Retries == 0 {
				t.Errorf("no retries counted: %s", st)
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	for _, form := range []string{"seconds", "http-date"} {
		t.Run(form, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var times []time.Time
			sk := newSink(t, func(w http.ResponseWriter, _ *http.Request, i int, _ []byte) bool {
				mu.Lock()
				times = append(times, time.Now())
				mu.Unlock()
				if i == 0 {
					if form == "seconds" {
						w.Header().Set("Retry-After", "1")
					} else {
						w.Header().Set("Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
					}
					w.WriteHeader(http.StatusTooManyRequests)
					return true
				}
				return false
			})
			s := mustNew(t, Config{URL: sk.srv.URL, Retry: RetryConfig{InitialWait: time.Millisecond, MaxWait: 10 * time.Second}})
			write(t, s, 0, 1)
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(times) != 2 {
				t.Fatalf("%d requests, want 2", len(times))
			}
			// The backoff alone would wait at most 1ms.
			if gap := times[1].Sub(times[0]); gap < 900*time.Millisecond {
				t.Errorf("retried after %v, want Retry-After honoured (about 1s or more)", gap)
			}
		})
	}
}

func TestPermanentRefusalReportsBody(t *testing.T) {
	t.Parallel()
	sk := newSink(t, func(w http.ResponseWriter, _ *http.Request, _ int, _ []byte) bool {
		http.Error(w, `{"error":"unexpected key \"message_type\""}`, http.StatusBadRequest)
		return true
	})
	logger, logs := testLogger()
	s := mustNew(t, Config{URL: sk.srv.URL, Logger: logger, Retry: fastRetry, Batch: BatchConfig{MaxRecords: 10}})
	write(t, s, 0, 25)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Dropped[DropRejected] != 25 || st.Retries != 0 {
		t.Errorf("got %s, want 25 rejected without retries", st)
	}
	checkBalanced(t, st)
	le := s.LastError()
	if le == nil || le.Status != 400 || !strings.Contains(le.Body, "unexpected key") {
		t.Fatalf("LastError = %v, want the 400 and its body", le)
	}
	if !strings.Contains(logs.String(), "unexpected key") {
		t.Errorf("the refusal's body is not in the report:\n%s", logs)
	}
}

func TestRetriesExhausted(t *testing.T) {
	t.Parallel()
	sk := newSink(t, func(w http.ResponseWriter, _ *http.Request, _ int, _ []byte) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	s := mustNew(t, Config{URL: sk.srv.URL, Retry: RetryConfig{InitialWait: time.Millisecond, MaxWait: 2 * time.Millisecond, MaxAttempts: 4}})
	write(t, s, 0, 3)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Dropped[DropRetriesExhausted] != 3 || st.Requests != 4 || st.Retries != 3 {
		t.Errorf("got %s, want 3 records dropped after 4 attempts", st)
	}
	checkBalanced(t, st)
}

// hangingSink holds every request until release is closed (or the client
// gives up).
func hangingSink(t *testing.T) (*sink, func()) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	sk := newSink(t, func(w http.ResponseWriter, r *http.Request, _ int, _ []byte) bool {
		select {
		case <-release:
			return false
		case <-r.Context().Done():
			return true
		}
	})
	return sk, free
}

func TestCloseReturnsWithinDeadlineWhenSinkHangs(t *testing.T) {
	t.Parallel()
	sk, _ := hangingSink(t)
	s := mustNew(t, Config{URL: sk.srv.URL, RequestTimeout: time.Hour})
	write(t, s, 0, 3000)
	start := time.Now()
	err := closeWithin(t, s, 300*time.Millisecond)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want deadline exceeded", err)
	}
	// Generous: Close must not wait for the hour-long request timeout.
	if took > 5*time.Second {
		t.Errorf("Close took %v past a 300ms deadline", took)
	}
	st := s.Stats()
	checkBalanced(t, st)
	if st.Pending() != 0 || st.Dropped[DropShutdown] == 0 {
		t.Errorf("got %s, want undelivered records dropped as shutdown", st)
	}
	// Writes after Close are refused and counted.
	if _, err := s.Write(record(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	checkBalanced(t, s.Stats())
}

func TestQueuePolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		policy  Policy
		block   time.Duration
		reason  DropReason
		wantErr error
	}{
		{DropOldest, 0, DropQueueFull, nil},
		{DropNewest, 0, DropQueueFull, ErrQueueFull},
		{Block, 20 * time.Millisecond, DropBlockTimeout, ErrBlockTimeout},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			t.Parallel()
			sk, release := hangingSink(t)
			s := mustNew(t, Config{
				URL: sk.srv.URL, MaxInFlight: 1,
				Queue: QueueConfig{MaxRecords: 100, Policy: tt.policy, BlockTimeout: tt.block},
				Batch: BatchConfig{MaxRecords: 10},
			})
			const n = 300
			var sawErr error
			for i := range n {
				if _, err := s.Write(record(i)); err != nil {
					sawErr = err
				}
			}
			if !errors.Is(sawErr, tt.wantErr) {
				t.Errorf("Write error = %v, want %v", sawErr, tt.wantErr)
			}
			st := s.Stats()
			if st.Queued > 100 {
				t.Errorf("queued %d, over the bound of 100", st.Queued)
			}
			if st.Dropped[tt.reason] == 0 {
				t.Errorf("got %s, want drops counted as %s", st, tt.reason)
			}
			release()
			if err := closeWithin(t, s, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			st = s.Stats()
			checkBalanced(t, st)
			if st.Received != n || st.Delivered+st.DroppedTotal() != n {
				t.Errorf("got %s, want %d received, each delivered or dropped", st, n)
			}
			// drop_oldest keeps the newest records; drop_newest the oldest.
			sk.mu.Lock()
			newest, oldest := sk.got[n-1], sk.got[0]
			sk.mu.Unlock()
			if tt.policy == DropOldest && newest == 0 {
				t.Error("drop_oldest lost the newest record")
			}
			if tt.policy == DropNewest && oldest == 0 {
				t.Error("drop_newest lost the oldest record")
			}
		})
	}
}

func TestBlockWaitsForRoom(t *testing.T) {
	t.Parallel()
	sk := newSink(t, nil)
	s := mustNew(t, Config{URL: sk.srv.URL, Queue: QueueConfig{MaxRecords: 8, Policy: Block}, Batch: BatchConfig{MaxRecords: 4}})
	const n = 2000
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() { write(t, s, g*n/4, (g+1)*n/4) })
	}
	wg.Wait()
	if err := closeWithin(t, s, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Delivered != n {
		t.Errorf("got %s, want every record delivered under block", st)
	}
	checkBalanced(t, st)
}

// TestMemoryBoundedWhileSinkDown logs at full speed into a shipper whose
// endpoint hangs and checks the queue never holds more than its byte bound.
func TestMemoryBoundedWhileSinkDown(t *testing.T) {
	t.Parallel()
	sk, _ := hangingSink(t)
	const maxBytes = 256 << 10
	s := mustNew(t, Config{URL: sk.srv.URL, RequestTimeout: time.Hour,
		Queue: QueueConfig{MaxRecords: 1 << 20, MaxBytes: maxBytes}})
	rec := []byte(`{"n":0,"pad":"` + strings.Repeat("x", 1000) + `"}`)
	const n = 20000 // 20 MB through a 256 KiB queue
	for range n {
		if _, err := s.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	s.q.mu.Lock()
	held, capacity := s.q.bytes, len(s.q.buf)
	s.q.mu.Unlock()
	if held > maxBytes || capacity > maxBytes {
		t.Errorf("queue holds %d bytes in a %d-byte ring, bound is %d", held, capacity, maxBytes)
	}
	inFlightBytes := st.InFlight * int64(len(rec))
	if inFlightBytes > 2*DefaultBatchBytes*int64(DefaultMaxInFlight+1) {
		t.Errorf("%d bytes in flight", inFlightBytes)
	}
	if st.Dropped[DropQueueFull] < n/2 {
		t.Errorf("got %s, want most records dropped as queue_full", st)
	}
	_ = closeWithin(t, s, 100*time.Millisecond)
	checkBalanced(t, s.Stats())
}

func TestFlushSendsPartialBatch(t *testing.T) {
	t.Parallel()
	sk := newSink(t, nil)
	s := mustNew(t, Config{URL: sk.srv.URL, Batch: BatchConfig{Timeout: time.Hour}})
	write(t, s, 0, 7)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Delivered != 7 {
		t.Errorf("after Flush: %s, want 7 delivered", st)
	}
}

func TestBatchTimerSendsWithoutFlush(t *testing.T) {
	t.Parallel()
	sk := newSink(t, nil)
	s := mustNew(t, Config{URL: sk.srv.URL, Batch: BatchConfig{Timeout: 10 * time.Millisecond}})
	write(t, s, 0, 3)
	select {
	case <-sk.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the batch timer never sent the partial batch")
	}
}

func TestWriteSplitsLinesAndRefusesNonObjects(t *testing.T) {
	t.Parallel()
	sk := newSink(t, nil)
	s := mustNew(t, Config{URL: sk.srv.URL})
	p := append(record(0), record(1)...)
	if n, err := s.Write(p); err != nil || n != len(p) {
		t.Fatalf("Write(two lines) = %d, %v", n, err)
	}
	if _, err := s.Write([]byte("not json\n")); !errors.Is(err, ErrInvalid) {
		t.Errorf("Write(not json) = %v, want ErrInvalid", err)
	}
	if _, err := s.Write([]byte("\n")); err != nil {
		t.Errorf("Write(empty line) = %v", err)
	}
	if err := closeWithin(t, s, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Delivered != 2 || st.Dropped[DropInvalid] != 1 {
		t.Errorf("got %s, want 2 delivered and 1 invalid", st)
	}
	checkBalanced(t, st)
}

func TestCallerBufferReuse(t *testing.T) {
	t.Parallel()
	sk := newSink(t, nil)
	s := mustNew(t, Config{URL: sk.srv.URL})
	buf := make([]byte, 0, 256)
	for i := range 100 {
		buf = append(buf[:0], record(i)...)
		_, _ = s.Write(buf)
		for j := range buf {
			buf[j] = 'X' // the shipper must have copied
		}
	}
	if err := closeWithin(t, s, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, missing := sk.unique(100); len(missing) > 0 {
		t.Errorf("records corrupted by buffer reuse: missing %v", missing)
	}
}

func TestGzip(t *testing.T) {
	t.Parallel()
	var gz atomic.Int32
	sk := newSink(t, func(_ http.ResponseWriter, r *http.Request, _ int, _ []byte) bool {
		if r.Header.Get("Content-Encoding") == "gzip" {
			gz.Add(1)
		}
		return false
	})
	s := mustNew(t, Config{URL: sk.srv.URL, Gzip: true})
	write(t, s, 0, 100)
	if err := closeWithin(t, s, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, missing := sk.unique(100); len(missing) > 0 || gz.Load() == 0 {
		t.Errorf("gzip requests %d, missing %v", gz.Load(), missing)
	}
}

func TestSinkDownThenBack(t *testing.T) {
	t.Parallel()
	// Reserve a port, then leave nothing listening on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	failed := make(chan error, 100)
	client := &http.Client{Transport: observer{http.DefaultTransport, failed}}
	s := mustNew(t, Config{URL: "http://" + addr + "/", HTTPClient: client,
		Retry: RetryConfig{InitialWait: 5 * time.Millisecond, MaxWait: 20 * time.Millisecond, MaxAttempts: 1000, MaxElapsed: time.Minute}})
	write(t, s, 0, 200)
	// Wait until the shipper has failed to connect a few times.
	for range 3 {
		if err := <-failed; err == nil {
			t.Fatal("a request to nothing succeeded")
		}
	}
	if le := s.LastError(); le == nil || le.Err == nil || le.Status != 0 {
		t.Errorf("LastError = %v, want a connection error", le)
	}
	// The endpoint comes back on the same address.
	sk := newSinkOn(t, addr)
	if err := closeWithin(t, s, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	checkBalanced(t, st)
	if _, missing := sk.unique(200); len(missing) > 0 || st.Delivered != 200 {
		t.Errorf("got %s, missing %v", st, missing)
	}
}

// observer passes requests to a real transport and reports each failure.
type observer struct {
	base   http.RoundTripper
	failed chan error
}

func (o observer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := o.base.RoundTrip(r)
	if err != nil {
		select {
		case o.failed <- err:
		default:
		}
	}
	return resp, err
}

// newSinkOn starts a sink on a given address.
func newSinkOn(t *testing.T, addr string) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	sk := &sink{t: t, got: map[int]int{}, arrived: make(chan struct{}, 1024)}
	sk.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(sk.serve)}}
	sk.srv.Start()
	t.Cleanup(sk.srv.Close)
	return sk
}

// TestRetryAfterBeyondBudgetGivesUp: a Retry-After that would end past
// Retry.MaxElapsed ends the retries at once (without a spool).
func TestRetryAfterBeyondBudgetGivesUp(t *testing.T) {
	t.Parallel()
	sk := newSink(t, func(w http.ResponseWriter, _ *http.Request, _ int, _ []byte) bool {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	s := mustNew(t, Config{URL: sk.srv.URL, Retry: RetryConfig{MaxWait: time.Hour, MaxElapsed: 5 * time.Second}})
	write(t, s, 0, 4)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Requests != 1 || st.Dropped[DropRetriesExhausted] != 4 {
		t.Errorf("got %s, want one attempt and 4 records given up", st)
	}
	checkBalanced(t, st)
}
