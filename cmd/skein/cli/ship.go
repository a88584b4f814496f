package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/skeinhq/skein/ship"
)

func init() { register("ship", newShipCmd) }

// Sidecar defaults that differ from, or add to, package ship's.
const (
	shipDefaultPolicy          = ship.Block
	shipDefaultShutdownTimeout = 10 * time.Second
	shipDefaultPollInterval    = 250 * time.Millisecond
	shipDefaultCheckpoint      = time.Second
)

type shipOptions struct {
	config    string
	url       string
	spool     string
	headers   []string
	follow    bool
	check     bool
	positions string
}

func newShipCmd(ctx context.Context, stdio IO) *cobra.Command {
	o := &shipOptions{}
	cmd := &cobra.Command{
		Use:   "ship [--config ship.yaml] [--url URL] [--spool DIR] [--header 'K: V'] [--follow] [FILE ... | -]",
		Short: "Send JSON-lines logs to an HTTP endpoint, reliably",
		Long: `ship reads JSON lines from files (or standard input, "-") and sends them to an
HTTP endpoint in batches, with retries, backoff and an optional disk spool.

Without --follow it ships the files to their end, drains, prints its accounting
on standard error and exits: 0 when every record was delivered, 1 when any was
dropped or a line was not JSON. With --follow it tails the files across
rotation and truncation, remembering its position per file, until SIGINT or
SIGTERM, then drains for shutdown_timeout.

Every setting can come from a YAML file (--config); flags override it.
--check validates the configuration, naming the bad field and its line.
See docs/ship.md for every key and default.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runShip(cmd.Context(), stdio, o, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "YAML configuration file")
	f.StringVar(&o.url, "url", "", "endpoint URL (overrides url: in the config)")
	f.StringVar(&o.spool, "spool", "", "spool directory: keep records on disk until delivered (overrides spool.dir)")
	f.StringArrayVar(&o.headers, "header", nil, "extra request header 'Name: value' (repeatable; ${ENV} is expanded)")
	f.BoolVar(&o.follow, "follow", false, "keep reading the files as they grow, across rotation and truncation")
	f.BoolVar(&o.check, "check", false, "validate the configuration and exit")
	f.StringVar(&o.positions, "positions", "", "with --follow: file remembering the position in each input (overrides follow.positions)")
	return cmd
}

// shipFile is the YAML configuration of skein ship. Every field is
// optional; see docs/ship.md for the defaults.
type shipFile struct {
	URL             string            `yaml:"url"`
	Method          string            `yaml:"method"`
	Headers         map[string]string `yaml:"headers"`
	Gzip            bool              `yaml:"gzip"`
	MaxInFlight     int               `yaml:"max_in_flight"`
	RequestTimeout  time.Duration     `yaml:"request_timeout"`
	Proxy           string            `yaml:"proxy"`
	ShutdownTimeout time.Duration     `yaml:"shutdown_timeout"`
	Envelope        struct {
		Format      string            `yaml:"format"`
		Template    string            `yaml:"template"`
		Framing     string            `yaml:"framing"`
		ContentType string            `yaml:"content_type"`
		Labels      map[string]string `yaml:"labels"`
		Index       string            `yaml:"index"`
		ServiceName string            `yaml:"service_name"`
	} `yaml:"envelope"`
	Queue struct {
		MaxRecords   int           `yaml:"max_records"`
		MaxBytes     shipSize      `yaml:"max_bytes"`
		Policy       string        `yaml:"policy"`
		BlockTimeout time.Duration `yaml:"block_timeout"`
	} `yaml:"queue"`
	Batch struct {
		MaxRecords int           `yaml:"max_records"`
		MaxBytes   shipSize      `yaml:"max_bytes"`
		Timeout    time.Duration `yaml:"timeout"`
	} `yaml:"batch"`
	Retry struct {
		Statuses    []int         `yaml:"statuses"`
		InitialWait time.Duration `yaml:"initial_wait"`
		MaxWait     time.Duration `yaml:"max_wait"`
		MaxAttempts int           `yaml:"max_attempts"`
		MaxElapsed  time.Duration `yaml:"max_elapsed"`
	} `yaml:"retry"`
	TLS struct {
		CAFile           string `yaml:"ca_file"`
		ReplaceSystemCAs bool   `yaml:"replace_system_cas"`
		CertFile         string `yaml:"cert_file"`
		KeyFile          string `yaml:"key_file"`
		ServerName       string `yaml:"server_name"`
	} `yaml:"tls"`
	Spool struct {
		Dir                string        `yaml:"dir"`
		MaxBytes           shipSize      `yaml:"max_bytes"`
		SegmentBytes       shipSize      `yaml:"segment_bytes"`
		SyncInterval       time.Duration `yaml:"sync_interval"`
		DeadLetterMaxBytes shipSize      `yaml:"dead_letter_max_bytes"`
	} `yaml:"spool"`
	Follow struct {
		Positions    string        `yaml:"positions"`
		PollInterval time.Duration `yaml:"poll_interval"`
	} `yaml:"follow"`
}

// shipSize is a byte count written as a number or with a unit: 512KiB,
// 8MiB, 1GB.
type shipSize int64

func (s *shipSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseShipSize(n.Value)
	if err != nil {
		return err
	}
	*s = shipSize(v)
	return nil
}

// parseShipSize reads "123", "64KiB", "8 MiB", "1GB" (B, KB, MB, GB are
// powers of 1000; KiB, MiB, GiB of 1024).
func parseShipSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with a unit (KiB, MiB, GiB, KB, MB, GB)", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	mult := map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30}
	m, ok := mult[strings.ToUpper(strings.TrimSpace(t[i:]))]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (want KiB, MiB, GiB, KB, MB or GB)", s, strings.TrimSpace(t[i:]))
	}
	if n > (1<<62)/m {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n * m, nil
}

// shipConfig is a loaded configuration: the shipper's Config, the sidecar's
// own settings and the YAML tree for locating errors.
type shipConfig struct {
	cfg             ship.Config
	shutdownTimeout time.Duration
	positions       string
	poll            time.Duration
	file            string
	root            *yaml.Node
}

func loadShipConfig(o *shipOptions) (*shipConfig, error) {
	var y shipFile
	sc := &shipConfig{file: o.config}
	if o.config != "" {
		data, err := os.ReadFile(o.config)
		if err != nil {
			return nil, fmt.Errorf("reading config: %w", err)
		}
		var root yaml.Node
		if err := yaml.Unmarshal(data, &root); err != nil {
			return nil, fmt.Errorf("%s: %w", o.config, err)
		}
		sc.root = &root
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&y); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: %w", o.config, err)
		}
	}
	if o.url != "" {
		y.URL = o.url
	}
	if o.spool != "" {
		y.Spool.Dir = o.spool
	}
	for _, h := range o.headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--header %q: want 'Name: value'", h)
		}
		if y.Headers == nil {
			y.Headers = map[string]string{}
		}
		y.Headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if o.positions != "" {
		y.Follow.Positions = o.positions
	}
	c := ship.Config{
		URL: y.URL, Method: y.Method, Headers: y.Headers, Gzip: y.Gzip, MaxInFlight: y.MaxInFlight,
		RequestTimeout: y.RequestTimeout, Proxy: y.Proxy,
		Envelope: ship.Envelope{
			Format: ship.Format(y.Envelope.Format), Template: y.Envelope.Template, Framing: ship.Format(y.Envelope.Framing),
			ContentType: y.Envelope.ContentType, Labels: y.Envelope.Labels, Index: y.Envelope.Index, ServiceName: y.Envelope.ServiceName,
		},
		Queue: ship.QueueConfig{MaxRecords: y.Queue.MaxRecords, MaxBytes: int(y.Queue.MaxBytes), Policy: ship.Policy(y.Queue.Policy), BlockTimeout: y.Queue.BlockTimeout},
		Batch: ship.BatchConfig{MaxRecords: y.Batch.MaxRecords, MaxBytes: int(y.Batch.MaxBytes), Timeout: y.Batch.Timeout},
		Retry: ship.RetryConfig{Statuses: y.Retry.Statuses, InitialWait: y.Retry.InitialWait, MaxWait: y.Retry.MaxWait,
			MaxAttempts: y.Retry.MaxAttempts, MaxElapsed: y.Retry.MaxElapsed},
		TLS: ship.TLSConfig{CAFile: y.TLS.CAFile, ReplaceSystemCAs: y.TLS.ReplaceSystemCAs, CertFile: y.TLS.CertFile,
			KeyFile: y.TLS.KeyFile, ServerName: y.TLS.ServerName},
		Spool: ship.SpoolConfig{Dir: y.Spool.Dir, MaxBytes: int64(y.Spool.MaxBytes), SegmentBytes: int64(y.Spool.SegmentBytes),
			SyncInterval: y.Spool.SyncInterval, DeadLetterMaxBytes: int64(y.Spool.DeadLetterMaxBytes)},
	}
	if c.Queue.Policy == "" {
		c.Queue.Policy = shipDefaultPolicy
	}
	sc.cfg = c.WithDefaults()
	sc.shutdownTimeout = y.ShutdownTimeout
	if sc.shutdownTimeout == 0 {
		sc.shutdownTimeout = shipDefaultShutdownTimeout
	}
	sc.poll = y.Follow.PollInterval
	if sc.poll == 0 {
		sc.poll = shipDefaultPollInterval
	}
	sc.positions = y.Follow.Positions
	if sc.positions == "" {
		if sc.cfg.Spool.Dir != "" {
			sc.positions = filepath.Join(sc.cfg.Spool.Dir, "positions.json")
		} else {
			state := os.Getenv("XDG_STATE_HOME")
			if state == "" {
				home, _ := os.UserHomeDir()
				state = filepath.Join(home, ".local", "state")
			}
			sc.positions = filepath.Join(state, "skein", "ship-positions.json")
		}
	}
	if err := sc.validate(); err != nil {
		return nil, err
	}
	return sc, nil
}

func (sc *shipConfig) validate() error {
	if sc.shutdownTimeout < 0 {
		return sc.fieldErr(&ship.FieldError{Field: "shutdown_timeout", Reason: "must not be negative"})
	}
	if sc.poll < 0 {
		return sc.fieldErr(&ship.FieldError{Field: "follow.poll_interval", Reason: "must not be negative"})
	}
	if err := sc.cfg.Validate(); err != nil {
		var fe *ship.FieldError
		if errors.As(err, &fe) {
			return sc.fieldErr(fe)
		}
		return err
	}
	return nil
}

// fieldErr places a field error at its line in the config file, when the
// field is written there.
func (sc *shipConfig) fieldErr(fe *ship.FieldError) error {
	if sc.root == nil {
		return fmt.Errorf("config: %w", fe)
	}
	if line := yamlLine(sc.root, fe.Field); line > 0 {
		return fmt.Errorf("%s:%d: %w", sc.file, line, fe)
	}
	return fmt.Errorf("%s: %w", sc.file, fe)
}

func runShip(ctx context.Context, stdio IO, o *shipOptions, args []string) error {
	sc, err := loadShipConfig(o)
	if err != nil {
		return &ExitError{Code: 2, Err: err}
	}
	if o.check {
		name := o.config
		if name == "" {
			name = "flags"
		}
		fmt.Fprintf(stdio.Out, "%s: ok (%s %s, %s envelope, queue %s, spool %s)\n", name, sc.cfg.Method,
			redactedURL(sc.cfg.URL), sc.cfg.Envelope.Format, sc.cfg.Queue.Policy, orOff(sc.cfg.Spool.Dir))
		return nil
	}
	if len(args) == 0 {
		args = []string{"-"}
	}
	// The shipper reports from its own goroutines: serialise its writes with
	// ours.
	f, isFile := stdio.Err.(*os.File)
	tty := isFile && term.IsTerminal(int(f.Fd()))
	errw := &shipLockedWriter{w: stdio.Err}
	stdio.Err = errw
	sc.cfg.Logger = slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := ship.New(sc.cfg)
	if err != nil {
		return &ExitError{Code: 2, Err: err}
	}
	// SIGINT/SIGTERM end reading; draining then gets shutdown_timeout.
	sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &shipRun{stdio: stdio, s: s, sc: sc, follow: o.follow, tty: tty}
	readErr := r.read(sigCtx, args)

	// Drain: until done when nothing interrupted us (the endpoint's retry
	// budget bounds it), else for shutdown_timeout.
	drainCtx, cancelDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDrain()
	go func() {
		select {
		case <-sigCtx.Done():
		case <-drainCtx.Done():
			return
		}
		t := time.NewTimer(sc.shutdownTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancelDrain()
		case <-drainCtx.Done():
		}
	}()
	closeCtx := drainCtx
	if o.follow || sigCtx.Err() != nil {
		var cancel context.CancelFunc
		closeCtx, cancel = context.WithTimeout(drainCtx, sc.shutdownTimeout)
		defer cancel()
	}
	stopProgress := r.progress()
	closeErr := s.Close(closeCtx)
	stopProgress()
	if o.follow {
		if err := r.savePositions(); err != nil {
			fmt.Fprintf(stdio.Err, "skein ship: %v\n", err)
		}
	}
	st := s.Stats()
	fmt.Fprintf(stdio.Err, "skein ship: %s", st)
	if r.invalid > 0 {
		fmt.Fprintf(stdio.Err, " invalid_lines=%d", r.invalid)
	}
	fmt.Fprintln(stdio.Err)
	if le := s.LastError(); le != nil && st.Delivered < st.Received {
		fmt.Fprintf(stdio.Err, "skein ship: last error: %v\n", le)
	}
	if readErr != nil {
		return &ExitError{Code: 1, Err: readErr}
	}
	if dropped := st.DroppedTotal() + r.invalid; dropped > 0 {
		return &ExitError{Code: 1, Err: fmt.Errorf("%d records dropped", dropped)}
	}
	if closeErr != nil && st.Pending() > 0 {
		fmt.Fprintf(stdio.Err, "skein ship: %d records left in the spool for the next run\n", st.Pending())
	}
	return nil
}

func orOff(dir string) string {
	if dir == "" {
		return "off"
	}
	return dir
}

func redactedURL(u string) string {
	// The URL may carry a password; show it the way net/url redacts it.
	if i := strings.Index(u, "://"); i >= 0 {
		if at := strings.IndexByte(u[i+3:], '@'); at >= 0 {
			if slash := strings.IndexByte(u[i+3:], '/'); slash < 0 || at < slash {
				return u[:i+3] + "xxxxx@" + u[i+3+at+1:]
			}
		}
	}
	return u
}

// shipRun is one run of the sidecar.
type shipRun struct {
	stdio    IO
	s        *ship.Shipper
	sc       *shipConfig
	follow   bool
	tty      bool // standard error is a terminal: show progress
	tails    []*shipTail
	invalid  uint64
	badShown int
	total    int64        // bytes to read, for progress (0 when unknown)
	readB    atomic.Int64 // bytes read
}

// shipTail reads one input.
type shipTail struct {
	name  string // as given; "-" for standard input
	f     *os.File
	r     *bufio.Reader
	ino   uint64
	dev   uint64
	off   int64 // offset just past the last complete line
	line  int   // lines read, for error messages
	buf   []byte
	lines <-chan shipLine // standard input's lines, from readStdin
}

// shipLine is one line of standard input; tooLong when it was cut at
// batch.max_bytes.
type shipLine struct {
	b       []byte
	tooLong bool
}

// readStdin reads standard input in a goroutine of its own, so that a
// signal is not stuck behind a read that blocks; the goroutine ends at EOF
// or when ctx ends.
func (r *shipRun) readStdin(ctx context.Context) <-chan shipLine {
	out := make(chan shipLine, 256)
	maxLine := r.sc.cfg.Batch.MaxBytes
	go func() {
		defer close(out)
		br := bufio.NewReaderSize(r.stdio.In, 256<<10)
		for {
			var l shipLine
			var err error
			for {
				var chunk []byte
				chunk, err = br.ReadSlice('\n')
				if len(l.b)+len(chunk) <= maxLine+1 {
					l.b = append(l.b, chunk...)
				} else {
					l.tooLong = true
				}
				if !errors.Is(err, bufio.ErrBufferFull) {
					break
				}
			}
			if len(l.b) > 0 || l.tooLong {
				select {
				case out <- l:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					fmt.Fprintf(r.stdio.Err, "skein ship: reading standard input: %v\n", err)
				}
				return
			}
		}
	}()
	return out
}

// drainStdin ships the lines read from standard input: until EOF when
// block, else those already read.
func (r *shipRun) drainStdin(ctx context.Context, t *shipTail, block bool) {
	for t.lines != nil {
		var l shipLine
		var ok bool
		if block {
			select {
			case l, ok = <-t.lines:
			case <-ctx.Done():
				return
			}
		} else {
			select {
			case l, ok = <-t.lines:
			default:
				return
			}
		}
		if !ok {
			t.lines = nil
			return
		}
		if l.tooLong {
			t.line++
			r.readB.Add(int64(len(l.b)))
			r.bad(t, fmt.Sprintf("line longer than batch.max_bytes (%d bytes), skipped", r.sc.cfg.Batch.MaxBytes))
			continue
		}
		t.buf = append(t.buf[:0], l.b...)
		r.ship(t)
	}
}

type shipPosition struct {
	Inode  uint64 `json:"inode"`
	Device uint64 `json:"device"`
	Offset int64  `json:"offset"`
}

func (r *shipRun) read(ctx context.Context, names []string) error {
	var pos map[string]shipPosition
	if r.follow {
		pos = r.loadPositions()
	}
	for _, name := range names {
		t := &shipTail{name: name}
		if name == "-" {
			t.lines = r.readStdin(ctx)
		} else {
			if err := t.open(); err != nil {
				if !r.follow {
					return err
				}
				fmt.Fprintf(r.stdio.Err, "skein ship: %v (waiting for it)\n", err)
			} else if p, ok := pos[t.key()]; ok && p.Inode == t.ino && p.Device == t.dev {
				if fi, err := t.f.Stat(); err == nil && p.Offset <= fi.Size() {
					if _, err := t.f.Seek(p.Offset, io.SeekStart); err == nil {
						t.off = p.Offset
						t.r.Reset(t.f)
					}
				}
			}
			if t.f != nil {
				if fi, err := t.f.Stat(); err == nil {
					r.total += fi.Size() - t.off
				}
			}
		}
		r.tails = append(r.tails, t)
	}
	if !r.follow {
		stopProgress := r.progress()
		defer stopProgress()
		for _, t := range r.tails {
			if t.name == "-" {
				r.drainStdin(ctx, t, true)
				continue
			}
			if err := r.drainTail(ctx, t, true); err != nil {
				return err
			}
			t.f.Close()
		}
		return nil
	}
	return r.followAll(ctx)
}

func (t *shipTail) key() string {
	if abs, err := filepath.Abs(t.name); err == nil {
		return abs
	}
	return t.name
}

func (t *shipTail) open() error {
	f, err := os.Open(t.name)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	t.f, t.off, t.line = f, 0, 0
	if t.r == nil {
		t.r = bufio.NewReaderSize(f, 256<<10)
	} else {
		t.r.Reset(f)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		t.ino, t.dev = st.Ino, uint64(st.Dev)
	}
	return nil
}

// drainTail reads complete lines until EOF; at EOF, atEOF says whether a
// last line without a newline counts (files not followed).
func (r *shipRun) drainTail(ctx context.Context, t *shipTail, atEOF bool) error {
	maxLine := r.sc.cfg.Batch.MaxBytes
	for ctx.Err() == nil {
		chunk, err := t.r.ReadSlice('\n')
		t.buf = append(t.buf, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(t.buf) > maxLine+1 {
				// Too long to ship: report and skip to the end of the line.
				t.line++
				r.bad(t, fmt.Sprintf("line longer than batch.max_bytes (%d bytes), skipped", maxLine))
				t.off += int64(len(t.buf))
				r.readB.Add(int64(len(t.buf)))
				t.buf = t.buf[:0]
				for errors.Is(err, bufio.ErrBufferFull) {
					chunk, err = t.r.ReadSlice('\n')
					t.off += int64(len(chunk))
					r.readB.Add(int64(len(chunk)))
				}
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("reading %s: %w", t.name, err)
				}
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading %s: %w", t.name, err)
		}
		if errors.Is(err, io.EOF) {
			if atEOF && len(t.buf) > 0 {
				r.ship(t)
			}
			return nil
		}
		r.ship(t)
	}
	return nil
}

// ship hands the complete line in t.buf to the shipper.
func (r *shipRun) ship(t *shipTail) {
	t.line++
	t.off += int64(len(t.buf))
	r.readB.Add(int64(len(t.buf)))
	line := bytes.TrimSpace(t.buf)
	defer func() { t.buf = t.buf[:0] }()
	if len(line) == 0 {
		return
	}
	if line[0] != '{' || !json.Valid(line) {
		r.bad(t, "not a JSON object, skipped")
		return
	}
	_ = r.s.Enqueue(line) // refusals are counted in the shipper's Stats
}

func (r *shipRun) bad(t *shipTail, why string) {
	r.invalid++
	r.badShown++
	if r.badShown <= 20 {
		fmt.Fprintf(r.stdio.Err, "skein ship: %s:%d: %s\n", t.name, t.line, why)
	} else if r.badShown == 21 {
		fmt.Fprintf(r.stdio.Err, "skein ship: more bad lines; counting them without printing\n")
	}
}

// followAll polls every input for new lines, rotation and truncation until
// ctx ends, saving positions once their lines are safe.
func (r *shipRun) followAll(ctx context.Context) error {
	stopProgress := r.progress()
	defer stopProgress()
	tick := time.NewTicker(r.sc.poll)
	defer tick.Stop()
	lastSave := time.Now()
	defer func() {
		for _, t := range r.tails {
			if t.f != nil && t.name != "-" {
				t.f.Close()
			}
		}
	}()
	for {
		for _, t := range r.tails {
			if err := r.pollTail(ctx, t); err != nil {
				return err
			}
		}
		if time.Since(lastSave) >= shipDefaultCheckpoint {
			// Positions are saved only once what they cover is on disk
			// (spool) or delivered.
			if err := r.s.Persist(ctx); err == nil {
				if err := r.savePositions(); err != nil {
					fmt.Fprintf(r.stdio.Err, "skein ship: %v\n", err)
				}
			}
			lastSave = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (r *shipRun) pollTail(ctx context.Context, t *shipTail) error {
	if t.name == "-" {
		r.drainStdin(ctx, t, false)
		return nil
	}
	if t.f == nil {
		if err := t.open(); err != nil {
			return nil // not there yet
		}
	}
	if err := r.drainTail(ctx, t, false); err != nil {
		return err
	}
	fi, err := os.Stat(t.name)
	if err != nil {
		return nil // rotated away, the new file is not there yet
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && (st.Ino != t.ino || uint64(st.Dev) != t.dev) {
		// Rotated: the old file was read to its end above; take the new one.
		if len(t.buf) > 0 {
			r.ship(t) // a last line without its newline
		}
		t.f.Close()
		if err := t.open(); err != nil {
			t.f = nil
			return nil
		}
		return r.drainTail(ctx, t, false)
	}
	if fi.Size() < t.off {
		// Truncated in place: start again from the top.
		if _, err := t.f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("rewinding %s: %w", t.name, err)
		}
		t.r.Reset(t.f)
		t.off, t.line, t.buf = 0, 0, t.buf[:0]
		return r.drainTail(ctx, t, false)
	}
	return nil
}

func (r *shipRun) loadPositions() map[string]shipPosition {
	pos := map[string]shipPosition{}
	data, err := os.ReadFile(r.sc.positions)
	if err != nil {
		return pos
	}
	if err := json.Unmarshal(data, &pos); err != nil {
		fmt.Fprintf(r.stdio.Err, "skein ship: %s: %v (starting from the top of each file)\n", r.sc.positions, err)
		return map[string]shipPosition{}
	}
	return pos
}

// savePositions writes the position of every followed file, atomically.
func (r *shipRun) savePositions() error {
	pos := r.loadPositions()
	for _, t := range r.tails {
		if t.name == "-" || t.f == nil {
			continue
		}
		pos[t.key()] = shipPosition{Inode: t.ino, Device: t.dev, Offset: t.off}
	}
	data, _ := json.MarshalIndent(pos, "", "  ")
	if err := os.MkdirAll(filepath.Dir(r.sc.positions), 0o755); err != nil {
		return fmt.Errorf("saving positions: %w", err)
	}
	tmp := r.sc.positions + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("saving positions: %w", err)
	}
	if err := os.Rename(tmp, r.sc.positions); err != nil {
		return fmt.Errorf("saving positions: %w", err)
	}
	return nil
}

// progress shows, on a terminal only, how far reading and delivery are; it
// returns a function that stops and clears it.
func (r *shipRun) progress() func() {
	if !r.tty {
		return func() {}
	}
	f := r.stdio.Err
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(f, "\r\033[K")
				return
			case <-t.C:
				st := r.s.Stats()
				line := fmt.Sprintf("ship: delivered %d of %d records, %d pending, %d dropped", st.Delivered, st.Received, st.Pending(), st.DroppedTotal())
				if !r.follow && r.total > 0 {
					line = fmt.Sprintf("ship: read %d%% of %.1f MB; ", min(100, r.readB.Load()*100/r.total), float64(r.total)/1e6) + line[len("ship: "):]
				}
				fmt.Fprintf(f, "\r\033[K%s", line)
			}
		}
	}()
	var once bool
	return func() {
		if !once {
			once = true
			close(done)
			<-finished
		}
	}
}

// shipLockedWriter serialises writes to a stream shared by goroutines.
type shipLockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *shipLockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
