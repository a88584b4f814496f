package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skeinhq/skein/store"
)

// Defaults of StatsdConfig.
const (
	DefaultStatsdAddr       = "127.0.0.1:8125"
	DefaultStatsdPrefix     = "skein"
	DefaultStatsdInterval   = 10 * time.Second
	DefaultStatsdPacketSize = 1432
)

// StatsdConfig configures a [StatsdReporter].
type StatsdConfig struct {
	// Addr is the statsd server's UDP address. Defaults to
	// "127.0.0.1:8125".
	Addr string
	// Prefix starts every metric name; make it name the process when
	// several report to one server, e.g. "skein.web-1". Defaults to
	// "skein".
	Prefix string
	// Interval is the time between reports. Defaults to 10 s.
	Interval time.Duration
	// MaxPacketBytes is the largest UDP payload sent; a report is split
	// into as many packets as needed. Defaults to 1432 (an Ethernet MTU
	// minus headers).
	MaxPacketBytes int
	// Logger receives send failures (once per distinct error). Defaults to
	// discarding them.
	Logger *slog.Logger
}

func (c *StatsdConfig) withDefaults() (StatsdConfig, error) {
	var o StatsdConfig
	if c != nil {
		o = *c
	}
	if o.Addr == "" {
		o.Addr = DefaultStatsdAddr
	}
	if o.Prefix == "" {
		o.Prefix = DefaultStatsdPrefix
	}
	if o.Interval == 0 {
		o.Interval = DefaultStatsdInterval
	}
	if o.MaxPacketBytes == 0 {
		o.MaxPacketBytes = DefaultStatsdPacketSize
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.Interval < 0:
		return o, fmt.Errorf("field Interval is negative (%s)", o.Interval)
	case o.MaxPacketBytes < 64:
		return o, fmt.Errorf("field MaxPacketBytes is %d, want at least 64", o.MaxPacketBytes)
	case strings.ContainsAny(o.Prefix, ":|@# \n"):
		return o, fmt.Errorf("field Prefix %q contains one of ':|@#', a space or a line break", o.Prefix)
	}
	return o, nil
}

// StatsdReporter sends gauges to a statsd server at a fixed interval, as
// looppool's ResourceReporter does:
//
//	<prefix>.agent.<agent>.active      jobs the agent runs now
//	<prefix>.agent.<agent>.size        jobs it may run at once
//	<prefix>.queue.<queue>.depth       jobs waiting (scheduled, available, retryable), with a store
//	<prefix>.queue.<queue>.running     jobs running, with a store
//	<prefix>.process.cpu               CPU used since the last report, percent of one core
//	<prefix>.process.rss               resident memory, bytes (Linux)
//	<prefix>.process.goroutines        goroutines
//
// Names are sanitized: characters other than letters, digits, '-' and
// '_' become '_'. With several dispatchers in the process, the agents of
// the second and later are under <prefix>.dispatcher<N>.agent.
//
// # Goroutines
//
// Start starts one reporting goroutine; Stop ends it.
type StatsdReporter struct {
	m   *Monitor
	cfg StatsdConfig

	mu      sync.Mutex
	conn    net.Conn
	lastCPU time.Duration
	lastAt  time.Time
	lastErr string
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool
}

// NewStatsdReporter returns a reporter of m's state configured by cfg (nil
// means the defaults). It sends nothing until started or asked to Report.
func NewStatsdReporter(m *Monitor, cfg *StatsdConfig) (*StatsdReporter, error) {
	if m == nil {
		return nil, errors.New("creating statsd reporter: monitor is nil")
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("creating statsd reporter: %w", err)
	}
	return &StatsdReporter{m: m, cfg: c}, nil
}

// Start dials the statsd address and reports every Interval until Stop.
func (r *StatsdReporter) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done != nil || r.stopped {
		return errors.New("starting statsd reporter: already started")
	}
	if err := r.dialLocked(ctx); err != nil {
		return fmt.Errorf("starting statsd reporter: %w", err)
	}
	if cpu, ok := processCPU(); ok && r.lastAt.IsZero() {
		r.lastCPU, r.lastAt = cpu, time.Now() // so that the first report has a CPU figure
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan struct{})
	go r.loop(loopCtx)
	return nil
}

func (r *StatsdReporter) dialLocked(ctx context.Context) error {
	if r.conn != nil {
		return nil
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", r.cfg.Addr)
	if err != nil {
		return fmt.Errorf("dialing statsd at %s: %w", r.cfg.Addr, err)
	}
	r.conn = c
	return nil
}

func (r *StatsdReporter) loop(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, r.cfg.Interval)
			if err := r.Report(rctx); err != nil {
				r.logOnce(err)
			}
			cancel()
		}
	}
}

func (r *StatsdReporter) logOnce(err error) {
	r.mu.Lock()
	same := err.Error() == r.lastErr
	r.lastErr = err.Error()
	r.mu.Unlock()
	if !same {
		r.cfg.Logger.LogAttrs(context.Background(), slog.LevelWarn, "skein:monitor:statsd_failed", slog.String("error", err.Error()))
	}
}

// Stop ends the reporting goroutine and closes the socket. It is safe
// before Start and more than once.
func (r *StatsdReporter) Stop(ctx context.Context) error {
	r.mu.Lock()
	r.stopped = true
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("stopping statsd reporter: %w", ctx.Err())
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil {
		err := r.conn.Close()
		r.conn = nil
		if err != nil {
			return fmt.Errorf("stopping statsd reporter: %w", err)
		}
	}
	return nil
}

// Report sends one report now.
func (r *StatsdReporter) Report(ctx context.Context) error {
	lines, err := r.lines(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped && r.conn == nil {
		return errors.New("statsd reporter is stopped")
	}
	if derr := r.dialLocked(ctx); derr != nil {
		return derr
	}
	var packet []byte
	send := func() error {
		if len(packet) == 0 {
			return nil
		}
		_, werr := r.conn.Write(packet)
		packet = packet[:0]
		if werr != nil {
			return fmt.Errorf("sending to statsd at %s: %w", r.cfg.Addr, werr)
		}
		return nil
	}
	for _, l := range lines {
		if len(packet) > 0 && len(packet)+1+len(l) > r.cfg.MaxPacketBytes {
			if serr := send(); serr != nil {
				return serr
			}
		}
		if len(packet) > 0 {
			packet = append(packet, '\n')
		}
		packet = append(packet, l...)
	}
	if serr := send(); serr != nil {
		return serr
	}
	return err
}

// lines builds the report. A store failure still yields the other lines,
// and is returned.
func (r *StatsdReporter) lines(ctx context.Context) ([]string, error) {
	p := r.cfg.Prefix
	var out []string
	gauge := func(name string, v float64) {
		out = append(out, name+":"+strconv.FormatFloat(v, 'f', -1, 64)+"|g")
	}
	for i, d := range r.m.cfg.Dispatchers {
		base := p
		if i > 0 {
			base = fmt.Sprintf("%s.dispatcher%d", p, i+1)
		}
		for _, a := range d.Status().Agents {
			name := base + ".agent." + statsdName(a.Name)
			gauge(name+".active", float64(len(a.Active)))
			gauge(name+".size", float64(a.Size))
		}
	}
	var storeErr error
	if st := r.m.cfg.Store; st != nil {
		stats, err := st.Stats(ctx)
		if err != nil {
			storeErr = &StoreError{Op: "reading queue stats for statsd", Err: err}
		}
		for _, s := range stats {
			var depth int64
			for _, state := range stateAliases["pending"] {
				depth += s.Counts[state]
			}
			name := p + ".queue." + statsdName(s.Queue)
			gauge(name+".depth", float64(depth))
			gauge(name+".running", float64(s.Counts[store.StateRunning]))
		}
	}
	now := time.Now()
	if cpu, ok := processCPU(); ok {
		r.mu.Lock()
		if !r.lastAt.IsZero() && now.After(r.lastAt) {
			gauge(p+".process.cpu", 100*float64(cpu-r.lastCPU)/float64(now.Sub(r.lastAt)))
		}
		r.lastCPU, r.lastAt = cpu, now
		r.mu.Unlock()
	}
	if rss, ok := processRSS(); ok {
		gauge(p+".process.rss", float64(rss))
	}
	gauge(p+".process.goroutines", float64(runtime.NumGoroutine()))
	return out, storeErr
}

// statsdName makes s safe as one segment of a statsd name.
func statsdName(s string) string {
	if s == "" {
		return "_"
	}
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}
