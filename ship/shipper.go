package ship

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skeinhq/skein/ship/spool"
)

// Errors returned by [Shipper.Write] for a record that was not accepted.
// The record is counted in Stats.Dropped under the matching reason.
var (
	ErrQueueFull    = errors.New("ship: queue full, record dropped")
	ErrBlockTimeout = errors.New("ship: queue full for the whole block timeout, record dropped")
	ErrTooLarge     = errors.New("ship: record larger than the queue or batch allows, record dropped")
	ErrInvalid      = errors.New("ship: record is not a JSON object, record dropped")
	ErrClosed       = errors.New("ship: shipper closed, record dropped")
)

var dropErrors = [numDropReasons]error{
	DropQueueFull: ErrQueueFull, DropBlockTimeout: ErrBlockTimeout, DropTooLarge: ErrTooLarge,
	DropInvalid: ErrInvalid, DropShutdown: ErrClosed,
}

// errStopped is the cause of the hard stop at Close's deadline.
var errStopped = errors.New("ship: stopped at close deadline")

// DeliveryError describes a batch the endpoint did not take.
type DeliveryError struct {
	Method, URL string // URL without any password
	Status      int    // HTTP status; 0 when no response came
	Body        string // the start of the response body (at most 4 KiB)
	Err         error  // the transport error, when no response came
	Records     int    // records in the batch
	Attempts    int
}

func (e *DeliveryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ship: %s %s: ", e.Method, e.URL)
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		fmt.Fprintf(&b, "%d %s", e.Status, http.StatusText(e.Status))
		if body := strings.TrimSpace(e.Body); body != "" {
			fmt.Fprintf(&b, ": %s", body)
		}
	}
	fmt.Fprintf(&b, " (%d records, %d attempts)", e.Records, e.Attempts)
	return b.String()
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// Shipper sends JSON records to an HTTP endpoint in batches, from a bounded
// queue, with retries. It is an io.Writer that takes one record per Write.
// All methods are safe for concurrent use.
type Shipper struct {
	cfg      Config
	url      string // redacted, for reports
	header   http.Header
	client   *http.Client
	log      *slog.Logger
	maxRec   int
	q        *queue
	c        counters
	spool    *spool.Spool
	deadMu   sync.Mutex
	dead     *os.File
	deadSize int64

	sendCh     chan *batch
	doneCh     chan *batch
	reqCh      chan *flushReq
	closeCh    chan struct{}
	closeOnce  sync.Once
	finishOnce sync.Once
	workerDone chan struct{}
	senders    sync.WaitGroup
	hardCtx    context.Context
	hardStop   context.CancelCauseFunc
	leftover   *batch // batch the worker held when stopped hard
	batches    sync.Pool

	lastErrMu sync.Mutex
	lastErr   *DeliveryError
	reportMu  sync.Mutex
	reported  map[string]time.Time
}

// batch is records on their way: copied out of the queue (or read from the
// spool) back to back, with their end offsets.
type batch struct {
	id     uint64
	raw    []byte
	ends   []int
	body   []byte
	zbody  bytes.Buffer
	ticket spool.Ticket
}

func (b *batch) len() int      { return len(b.ends) }
func (b *batch) rawBytes() int { return len(b.raw) }
func (b *batch) record(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.raw[start:b.ends[i]]
}
func (b *batch) add(p []byte) {
	b.raw = append(b.raw, p...)
	b.ends = append(b.ends, len(b.raw))
}
func (b *batch) add2(p, q []byte) {
	b.raw = append(b.raw, p...)
	b.raw = append(b.raw, q...)
	b.ends = append(b.ends, len(b.raw))
}
func (b *batch) reset() {
	b.raw, b.ends, b.body = b.raw[:0], b.ends[:0], b.body[:0]
	b.zbody.Reset()
	b.ticket.Reset()
}

type flushReq struct {
	persist     bool
	target      uint64 // queue pushes to cover
	spoolTarget uint64 // spool appends to cover
	phase       int    // 0 queue, 1 spool, 2 dispatch, 3 completion
	lastID      uint64
	done        chan struct{}
}

// New validates cfg (after applying defaults), opens the spool if one is
// configured and starts the shipper's goroutines: it accepts records at once.
// Call Close to stop it.
func New(cfg Config) (*Shipper, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ship: config: %w", err)
	}
	header, err := expandHeaders(cfg.Headers)
	if err != nil {
		return nil, fmt.Errorf("ship: config: %w", err)
	}
	if _, err := newEncoder(cfg.Envelope); err != nil {
		return nil, fmt.Errorf("ship: config: envelope: %w", err)
	}
	s := &Shipper{
		cfg:        cfg,
		url:        redactURL(cfg.URL),
		header:     header,
		log:        cfg.Logger,
		sendCh:     make(chan *batch),
		doneCh:     make(chan *batch, cfg.MaxInFlight),
		reqCh:      make(chan *flushReq),
		closeCh:    make(chan struct{}),
		workerDone: make(chan struct{}),
		reported:   map[string]time.Time{},
	}
	s.batches.New = func() any { return new(batch) }
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if cfg.HTTPClient != nil {
		s.client = cfg.HTTPClient
	} else if s.client, err = newHTTPClient(cfg); err != nil {
		return nil, err
	}
	s.maxRec = min(cfg.Queue.MaxBytes, cfg.Batch.MaxBytes)
	s.q = newQueue(cfg.Queue.MaxRecords, cfg.Queue.MaxBytes, cfg.Queue.Policy, cfg.Queue.BlockTimeout,
		cfg.Batch.MaxRecords, cfg.Batch.MaxBytes, &s.c)
	if cfg.Spool.Dir != "" {
		sp, err := spool.Open(cfg.Spool.Dir, spool.Options{MaxBytes: cfg.Spool.MaxBytes, SegmentBytes: cfg.Spool.SegmentBytes},
			func(ce *spool.CorruptError) {
				s.c.corrupt.Add(1)
				s.report(slog.LevelError, "corrupt:"+ce.File, "skipping a damaged spool region", "error", ce.Error())
			})
		if err != nil {
			return nil, fmt.Errorf("ship: opening spool: %w", err)
		}
		s.spool = sp
		unread, _, _, _ := sp.Stats()
		s.c.received.Add(uint64(unread))
		s.c.spooled.Add(int64(unread))
	}
	s.hardCtx, s.hardStop = context.WithCancelCause(context.Background())
	s.senders.Add(cfg.MaxInFlight)
	for range cfg.MaxInFlight {
		enc, _ := newEncoder(cfg.Envelope)
		go s.sender(enc)
	}
	go s.run()
	return s, nil
}

// Write enqueues the JSON record in p (one line; a trailing newline is
// ignored, and several lines are taken as several records). The bytes are
// copied: the caller may reuse p. Write never waits for the network; it
// waits for room only under the Block policy. It returns len(p) and, for a
// record not accepted, one of the Err* errors of this package.
func (s *Shipper) Write(p []byte) (int, error) {
	n := len(p)
	line := trimSpace(p)
	if len(line) == 0 {
		return n, nil
	}
	if bytes.IndexByte(line, '\n') < 0 {
		return n, s.enqueue(line)
	}
	var first error
	for len(line) > 0 {
		i := bytes.IndexByte(line, '\n')
		if i < 0 {
			i = len(line)
		}
		if rec := trimSpace(line[:i]); len(rec) > 0 {
			if err := s.enqueue(rec); err != nil && first == nil {
				first = err
			}
		}
		line = line[min(i+1, len(line)):]
	}
	return n, first
}

// Enqueue is Write for one record, without the newline handling.
func (s *Shipper) Enqueue(rec []byte) error {
	return s.enqueue(trimSpace(rec))
}

func (s *Shipper) enqueue(rec []byte) error {
	s.c.received.Add(1)
	r := dropNone
	switch {
	case len(rec) > s.maxRec:
		r = DropTooLarge
	case len(rec) < 2 || rec[0] != '{' || rec[len(rec)-1] != '}':
		r = DropInvalid
	default:
		r = s.q.push(rec)
		if r == dropNone {
			return nil
		}
	}
	s.c.dropped[r].Add(1)
	return dropErrors[r]
}

func trimSpace(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r' || p[len(p)-1] == ' ' || p[len(p)-1] == '\t') {
		p = p[:len(p)-1]
	}
	for len(p) > 0 && (p[0] == ' ' || p[0] == '\t' || p[0] == '\n' || p[0] == '\r') {
		p = p[1:]
	}
	return p
}

// Stats returns the shipper's accounting.
func (s *Shipper) Stats() Stats { return s.c.snapshot() }

// LastError returns the last batch the endpoint did not take (retried or
// not), with the start of its response body, or nil.
func (s *Shipper) LastError() *DeliveryError {
	s.lastErrMu.Lock()
	defer s.lastErrMu.Unlock()
	return s.lastErr
}

// Flush sends every record received before the call, without waiting for
// the batch timer, and returns once each is delivered or dropped (or, with
// a spool, once ctx ends while the endpoint is down: the records stay on
// disk). It returns ctx's error if ctx ends first.
func (s *Shipper) Flush(ctx context.Context) error {
	return s.request(ctx, false)
}

// Persist returns once every record received before the call is on disk
// (written and fsynced) when a spool is configured; without one it is
// Flush.
func (s *Shipper) Persist(ctx context.Context) error {
	return s.request(ctx, s.spool != nil)
}

func (s *Shipper) request(ctx context.Context, persist bool) error {
	r := &flushReq{persist: persist, done: make(chan struct{})}
	select {
	case s.reqCh <- r:
	case <-s.workerDone:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("ship: flushing: %w", context.Cause(ctx))
	}
	select {
	case <-r.done:
		return nil
	case <-s.workerDone:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("ship: flushing: %w", context.Cause(ctx))
	}
}

// Close stops intake, then sends what is queued (and spooled) until
// everything is delivered or ctx ends. At ctx's end it stops every request
// and wait at once: with a spool, undelivered records stay on disk for the
// next start; without, they are dropped as shutdown. Close returns ctx's
// error if ctx ended first, and never later than shortly after that.
// Close is idempotent.
func (s *Shipper) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.q.close()
		close(s.closeCh)
	})
	var err error
	select {
	case <-s.workerDone:
	case <-ctx.Done():
		err = fmt.Errorf("ship: closing: %w", context.Cause(ctx))
	}
	s.hardStop(errStopped)
	<-s.workerDone
	s.senders.Wait()
	s.finishOnce.Do(func() {
		if b := s.leftover; b != nil {
			s.abandon(b)
		}
		if s.spool != nil {
			s.drainToSpool()
			if e := s.spool.Close(); e != nil {
				err = errors.Join(err, fmt.Errorf("ship: closing spool: %w", e))
			}
		} else {
			s.q.discard(DropShutdown)
		}
		s.deadMu.Lock()
		if s.dead != nil {
			s.dead.Close()
		}
		s.deadMu.Unlock()
		s.client.CloseIdleConnections()
	})
	return err
}

// run is the worker: it moves records from the queue into batches (through
// the spool when there is one), hands batches to the senders, and keeps
// track of flushes. It is the only goroutine that takes from the queue or
// reads the spool.
func (s *Shipper) run() {
	defer close(s.workerDone)
	defer close(s.sendCh)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	armed, fired, closing := false, false, false
	var syncC <-chan time.Time
	if s.spool != nil && s.cfg.Spool.SyncInterval > 0 {
		t := time.NewTicker(s.cfg.Spool.SyncInterval)
		defer t.Stop()
		syncC = t.C
	}
	var (
		cur      *batch
		waiters  []*flushReq
		inflight []uint64
		nextID   uint64
		closeC   = s.closeCh
	)
	for {
		if s.spool != nil {
			s.drainToSpool()
		}
		urgent := closing || fired
		for _, w := range waiters {
			if w.phase < 2 {
				urgent = true
			}
		}
		if cur == nil {
			if cur = s.cut(urgent); cur != nil {
				nextID++
				cur.id = nextID
				fired = false
				if armed {
					timer.Stop()
					armed = false
				}
			}
		}
		// Move flushes along.
		_, popped := s.q.marks()
		var unread int
		var appended, consumed uint64
		if s.spool != nil {
			unread, _, appended, consumed = s.spool.Stats()
		}
		waiters = slices.DeleteFunc(waiters, func(w *flushReq) bool {
			if w.phase == 0 && popped >= w.target {
				w.phase, w.spoolTarget = 2, appended
				if s.spool != nil {
					w.phase = 1
					if w.persist {
						if err := s.spool.Sync(); err != nil {
							s.report(slog.LevelError, "spool-sync", "syncing the spool", "error", err)
						}
						close(w.done)
						return true
					}
				}
			}
			if w.phase == 1 && consumed >= w.spoolTarget {
				w.phase = 2
			}
			if w.phase == 2 && cur == nil {
				w.phase, w.lastID = 3, nextID
			}
			if w.phase == 3 && (len(inflight) == 0 || slices.Min(inflight) > w.lastID) {
				close(w.done)
				return true
			}
			return false
		})
		if closing && cur == nil && len(inflight) == 0 && unread == 0 {
			if n, _ := s.q.state(); n == 0 {
				return
			}
			continue
		}
		// Decide how to sleep.
		if cur == nil && !urgent {
			avail := unread
			if s.spool == nil {
				avail, _ = s.q.state()
			}
			if avail > 0 && !armed && s.cfg.Batch.Timeout > 0 {
				timer.Reset(s.cfg.Batch.Timeout)
				armed = true
			}
			if avail > 0 && s.cfg.Batch.Timeout == 0 {
				fired = true
				continue
			}
			if !s.q.sleepIfIdle(armed && s.spool == nil) {
				continue
			}
		} else if cur == nil && len(waiters) == 0 && !closing {
			// Nothing to cut although urgent (the timer fired on an empty
			// queue): go back to sleeping.
			fired = false
			continue
		}
		var sendC chan *batch
		if cur != nil {
			sendC = s.sendCh
		}
		select {
		case sendC <- cur:
			inflight = append(inflight, cur.id)
			cur = nil
		case b := <-s.doneCh:
			inflight = slices.DeleteFunc(inflight, func(id uint64) bool { return id == b.id })
			b.reset()
			s.batches.Put(b)
		case <-s.q.kick:
		case <-timer.C:
			armed, fired = false, true
		case r := <-s.reqCh:
			r.target, _ = s.q.marks()
			waiters = append(waiters, r)
		case <-closeC:
			closing, closeC = true, nil
		case <-syncC:
			if err := s.spool.Sync(); err != nil {
				s.report(slog.LevelError, "spool-sync", "syncing the spool", "error", err)
			}
		case <-s.hardCtx.Done():
			s.leftover = cur
			return
		}
		s.q.wake()
	}
}

// cut takes the next batch, or nil when there is none to send yet (force:
// send a partial batch).
func (s *Shipper) cut(force bool) *batch {
	bc := s.cfg.Batch
	if s.spool == nil {
		n, nbytes := s.q.state()
		if n == 0 || (!force && n < bc.MaxRecords && nbytes < bc.MaxBytes) {
			return nil
		}
		b := s.batches.Get().(*batch)
		k := s.q.take(b, bc.MaxRecords, bc.MaxBytes)
		s.c.inFlight.Add(int64(k))
		if k == 0 {
			s.batches.Put(b)
			return nil
		}
		return b
	}
	unread, _, _, _ := s.spool.Stats()
	if unread == 0 || (!force && unread < bc.MaxRecords) {
		return nil
	}
	b := s.batches.Get().(*batch)
	k, err := s.spool.Read(&b.ticket, bc.MaxRecords, bc.MaxBytes, b.add)
	s.c.spooled.Add(int64(-k))
	s.c.inFlight.Add(int64(k))
	var ce *spool.CorruptError
	if errors.As(err, &ce) {
		s.c.corrupt.Add(1)
		s.c.spooled.Add(int64(-ce.Lost))
		s.c.dropped[DropSpoolError].Add(uint64(ce.Lost))
		s.report(slog.LevelError, "corrupt:"+ce.File, "skipping a damaged spool region", "error", ce.Error())
	} else if err != nil {
		s.report(slog.LevelError, "spool-read", "reading the spool", "error", err)
	}
	if k == 0 {
		b.reset()
		s.batches.Put(b)
		return nil
	}
	return b
}

// drainToSpool moves everything queued into the spool and hands it to the
// operating system.
func (s *Shipper) drainToSpool() {
	b := s.batches.Get().(*batch)
	defer func() { b.reset(); s.batches.Put(b) }()
	wrote := false
	for {
		k := s.q.take(b, 4096, 4<<20)
		if k == 0 {
			break
		}
		wrote = true
		for i := range b.len() {
			lost, err := s.spool.Append(b.record(i))
			if lost > 0 {
				s.c.spooled.Add(int64(-lost))
				s.c.dropped[DropSpoolFull].Add(uint64(lost))
				s.report(slog.LevelWarn, "spool-full", "spool full: dropped its oldest segment", "records", lost)
			}
			switch {
			case err == nil:
				s.c.spooled.Add(1)
			case errors.Is(err, spool.ErrTooLarge):
				s.c.dropped[DropTooLarge].Add(1)
			default:
				s.c.dropped[DropSpoolError].Add(1)
				s.report(slog.LevelError, "spool-write", "writing the spool", "error", err)
			}
		}
		b.reset()
	}
	if wrote {
		if err := s.spool.Flush(); err != nil {
			s.report(slog.LevelError, "spool-write", "writing the spool", "error", err)
		}
	}
}

// sender delivers the batches the worker hands it, one at a time.
func (s *Shipper) sender(enc encoder) {
	defer s.senders.Done()
	var zw *gzip.Writer
	for b := range s.sendCh {
		b.body = enc.encode(b.body[:0], b, time.Now())
		body := b.body
		if s.cfg.Gzip {
			if zw == nil {
				zw = gzip.NewWriter(&b.zbody)
			} else {
				zw.Reset(&b.zbody)
			}
			_, _ = zw.Write(b.body)
			_ = zw.Close()
			body = b.zbody.Bytes()
		}
		s.deliver(b, body, enc.contentType())
		s.doneCh <- b
	}
}

// outcome of one attempt.
type attempt struct {
	status     int
	retryAfter time.Duration
	hasAfter   bool
	body       []byte
	err        error
}

func (s *Shipper) deliver(b *batch, body []byte, ctype string) {
	n := b.len()
	start := time.Now()
	waits := newBackoffWaits(s.cfg.Retry)
	for tries := 1; ; tries++ {
		a := s.post(body, ctype)
		s.c.requests.Add(1)
		if a.err == nil && a.status >= 200 && a.status < 300 {
			s.c.bytesSent.Add(uint64(len(body)))
			s.settle(b, n, dropNone)
			return
		}
		s.c.failures.Add(1)
		if s.hardCtx.Err() != nil {
			s.abandon(b)
			return
		}
		de := &DeliveryError{Method: s.cfg.Method, URL: s.url, Status: a.status, Body: string(a.body), Err: a.err, Records: n, Attempts: tries}
		s.setLastErr(de)
		transient := a.err != nil && !permanentTransport(a.err) || slices.Contains(s.cfg.Retry.Statuses, a.status)
		if !transient {
			s.report(slog.LevelError, fmt.Sprintf("refused:%d:%.64s", a.status, a.body), "endpoint refused a batch for good", "error", de.Error())
			if s.spool != nil {
				s.deadLetter(b, de)
			}
			s.settle(b, n, DropRejected)
			return
		}
		wait := waits.next()
		if a.hasAfter {
			wait = a.retryAfter
		}
		wait = min(wait, s.cfg.Retry.MaxWait)
		if s.spool == nil && (tries >= s.cfg.Retry.MaxAttempts || time.Since(start)+wait > s.cfg.Retry.MaxElapsed) {
			s.report(slog.LevelError, "exhausted", "giving up on a batch after transient failures", "error", de.Error())
			s.settle(b, n, DropRetriesExhausted)
			return
		}
		s.c.retries.Add(1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.hardCtx.Done():
			t.Stop()
			s.abandon(b)
			return
		}
	}
}

// settle ends a batch: delivered (reason dropNone) or dropped.
func (s *Shipper) settle(b *batch, n int, reason DropReason) {
	if s.spool != nil {
		s.spool.Ack(&b.ticket)
	}
	s.c.inFlight.Add(int64(-n))
	if reason == dropNone {
		s.c.delivered.Add(uint64(n))
	} else {
		s.c.dropped[reason].Add(uint64(n))
	}
}

// abandon ends a batch that was stopped by Close's deadline.
func (s *Shipper) abandon(b *batch) {
	n := b.len()
	s.c.inFlight.Add(int64(-n))
	if s.spool == nil {
		s.c.dropped[DropShutdown].Add(uint64(n))
		return
	}
	kept := s.spool.Release(&b.ticket)
	s.c.spooled.Add(int64(kept))
	s.c.dropped[DropSpoolFull].Add(uint64(n - kept))
}

func (s *Shipper) post(body []byte, ctype string) attempt {
	ctx, cancel := context.WithTimeout(s.hardCtx, s.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, s.cfg.Method, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return attempt{err: err}
	}
	for k, v := range s.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", ctype)
	if s.cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return attempt{err: err}
	}
	defer resp.Body.Close()
	a := attempt{status: resp.StatusCode}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return a
	}
	a.body, _ = io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	a.retryAfter, a.hasAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return a
}

func (s *Shipper) setLastErr(e *DeliveryError) {
	s.lastErrMu.Lock()
	s.lastErr = e
	s.lastErrMu.Unlock()
}

// deadLetter appends a refused batch to dead-letter.ndjson in the spool
// directory: one line describing the refusal, then the records.
func (s *Shipper) deadLetter(b *batch, de *DeliveryError) {
	s.deadMu.Lock()
	defer s.deadMu.Unlock()
	if s.dead == nil {
		path := filepath.Join(s.cfg.Spool.Dir, "dead-letter.ndjson")
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			s.report(slog.LevelError, "dead-letter", "opening the dead-letter file", "error", err)
			return
		}
		if fi, err := f.Stat(); err == nil {
			s.deadSize = fi.Size()
		}
		s.dead = f
	}
	var buf []byte
	buf = append(buf, `{"skein_dead_letter":`...)
	buf = appendJSONString(buf, []byte(de.Error()))
	buf = append(buf, `,"time":`...)
	buf = appendJSONString(buf, []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	buf = append(buf, "}\n"...)
	for i := range b.len() {
		buf = append(buf, b.record(i)...)
		buf = append(buf, '\n')
	}
	if s.deadSize+int64(len(buf)) > s.cfg.Spool.DeadLetterMaxBytes {
		s.report(slog.LevelError, "dead-letter-full", "dead-letter file full: refused batch only counted", "records", b.len())
		return
	}
	if _, err := s.dead.Write(buf); err != nil {
		s.report(slog.LevelError, "dead-letter", "writing the dead-letter file", "error", err)
		return
	}
	s.deadSize += int64(len(buf))
	s.c.deadLettered.Add(uint64(b.len()))
}

// selfKey marks the context of the shipper's own reports, so that a Handler
// of the same shipper refuses them instead of queueing them.
type selfKey struct{}

// report logs a diagnostic, at most once every 10 seconds per key.
func (s *Shipper) report(level slog.Level, key, msg string, args ...any) {
	now := time.Now()
	s.reportMu.Lock()
	last, seen := s.reported[key]
	if seen && now.Sub(last) < 10*time.Second {
		s.reportMu.Unlock()
		return
	}
	if len(s.reported) > 1000 {
		clear(s.reported)
	}
	s.reported[key] = now
	s.reportMu.Unlock()
	ctx := context.WithValue(context.Background(), selfKey{}, s)
	s.log.Log(ctx, level, "ship: "+msg, args...)
}
