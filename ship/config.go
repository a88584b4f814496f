package ship

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Policy says what a full queue does with one more record.
type Policy string

const (
	// DropOldest evicts the oldest queued records to make room: the records
	// leading up to a failure are kept. The default.
	DropOldest Policy = "drop_oldest"
	// DropNewest refuses the new record.
	DropNewest Policy = "drop_newest"
	// Block makes the caller wait for room, for at most Queue.BlockTimeout
	// when that is set. Only for batch or audit programs: it slows the
	// program down when the endpoint is slow.
	Block Policy = "block"
)

// Format names a request body layout.
type Format string

const (
	// NDJSON sends the records one per line. The default.
	NDJSON Format = "ndjson"
	// JSONArray sends the records as one JSON array.
	JSONArray Format = "json_array"
	// Template sends Envelope.Template with its placeholders filled in.
	Template Format = "template"
	// Loki sends a Loki push request (POST /loki/api/v1/push, JSON).
	Loki Format = "loki"
	// OTLP sends OTLP/HTTP JSON logs (POST /v1/logs).
	OTLP Format = "otlp"
	// Elasticsearch sends an Elasticsearch bulk request (POST /_bulk).
	Elasticsearch Format = "elasticsearch"
)

// Config configures a [Shipper]. The zero value of every field means its
// documented default; only URL is required.
type Config struct {
	// URL is the endpoint records are sent to. Required.
	URL string

	// Method is the HTTP method of each request. Defaults to "POST".
	Method string

	// Headers are added to every request. Values may hold ${NAME}, replaced
	// by the environment variable NAME when the shipper is created (a missing
	// variable is an error); values never appear in logs or errors. Defaults
	// to none.
	Headers map[string]string

	// Envelope lays records out in the request body. Defaults to NDJSON.
	Envelope Envelope

	// Gzip compresses request bodies (Content-Encoding: gzip). Defaults to
	// false.
	Gzip bool

	// Queue bounds the in-memory queue between callers and the network.
	Queue QueueConfig

	// Batch says when queued records become a request.
	Batch BatchConfig

	// Retry says which failures are retried and how long to wait.
	Retry RetryConfig

	// MaxInFlight is the number of requests sent at the same time. Defaults
	// to 2.
	MaxInFlight int

	// RequestTimeout bounds one HTTP attempt, response included. Defaults to
	// 10s.
	RequestTimeout time.Duration

	// Proxy is the HTTP proxy URL, user:password@ included when the proxy
	// wants authentication. "" takes it from HTTPS_PROXY, HTTP_PROXY and
	// NO_PROXY; "direct" uses none. Defaults to "".
	Proxy string

	// TLS configures certificates for https URLs (and https proxies).
	TLS TLSConfig

	// Spool keeps records on disk until they are delivered. Defaults to off.
	Spool SpoolConfig

	// Logger receives the shipper's own reports (refused batches, dropped
	// records, corrupt spool entries). It must not write into this shipper;
	// if it does through [Shipper.Handler], those records are refused.
	// Defaults to a text logger on standard error at level Warn.
	Logger *slog.Logger

	// HTTPClient sends the requests. When set, Proxy and TLS are ignored.
	// Defaults to a client built from Proxy and TLS.
	HTTPClient *http.Client
}

// QueueConfig bounds the in-memory queue.
type QueueConfig struct {
	// MaxRecords is the most records queued. Defaults to 2048.
	MaxRecords int
	// MaxBytes is the most record bytes queued; a single record larger than
	// MaxBytes or Batch.MaxBytes is dropped as too_large. Defaults to 8 MiB.
	MaxBytes int
	// Policy says what a full queue does. Defaults to DropOldest.
	Policy Policy
	// BlockTimeout bounds the wait of a caller under the Block policy; the
	// record is then dropped as block_timeout. 0 waits as long as it takes.
	// Defaults to 0.
	BlockTimeout time.Duration
}

// BatchConfig says when queued records are sent: whichever limit is
// reached first.
type BatchConfig struct {
	// MaxRecords is the most records in one request. Defaults to 512.
	MaxRecords int
	// MaxBytes is the most record bytes in one request (before the envelope
	// and compression). Defaults to 1 MiB.
	MaxBytes int
	// Timeout is how long a record waits for its batch to fill. Defaults to
	// 1s.
	Timeout time.Duration
}

// RetryConfig says which failures are retried, and how.
type RetryConfig struct {
	// Statuses are the HTTP statuses retried. Connection errors and timeouts
	// are always retried; every other status outside 2xx is permanent.
	// Defaults to 408, 429, 500, 502, 503, 504.
	Statuses []int
	// InitialWait is the first backoff cap; each retry doubles it. Each wait
	// is drawn uniformly from [0, cap] (full jitter). Defaults to 1s.
	InitialWait time.Duration
	// MaxWait caps one wait, Retry-After included. Defaults to 30s.
	MaxWait time.Duration
	// MaxAttempts is the most attempts of one batch, the first included.
	// Without a spool the batch is then dropped as retries_exhausted; with
	// one it is kept and retried until delivered. Defaults to 10.
	MaxAttempts int
	// MaxElapsed bounds the time spent on one batch, waits included; a
	// Retry-After that would overrun it ends the retries at once. Same
	// spool rule as MaxAttempts. Defaults to 60s.
	MaxElapsed time.Duration
}

// TLSConfig configures certificates.
type TLSConfig struct {
	// CAFile is a PEM bundle of certificate authorities trusted in addition
	// to the system's. Defaults to none.
	CAFile string
	// ReplaceSystemCAs trusts only CAFile, not the system pool. Defaults to
	// false.
	ReplaceSystemCAs bool
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// endpoints that want mutual TLS. Defaults to none.
	CertFile string
	KeyFile  string
	// ServerName is the name the server certificate must carry, when it
	// differs from the URL's host. Defaults to the URL's host.
	ServerName string
}

// SpoolConfig configures the disk spool.
type SpoolConfig struct {
	// Dir holds the spool's segment files and dead-letter.ndjson; "" turns
	// the spool off. Defaults to "".
	Dir string
	// MaxBytes caps the spool on disk; past it the oldest segment is deleted
	// and its records dropped as spool_full. Defaults to 256 MiB.
	MaxBytes int64
	// SegmentBytes is the size at which a segment file is closed and a new
	// one started. Defaults to 8 MiB.
	SegmentBytes int64
	// SyncInterval is how often spooled records are fsynced; records reach
	// the operating system at once, so only a machine crash can lose the
	// last interval. Defaults to 500ms.
	SyncInterval time.Duration
	// DeadLetterMaxBytes caps dead-letter.ndjson, where batches the endpoint
	// refused for good are written; past it they are only counted. Defaults
	// to 64 MiB.
	DeadLetterMaxBytes int64
}

// Envelope lays records out in a request body.
type Envelope struct {
	// Format is the body layout. Defaults to NDJSON.
	Format Format

	// Template is the body for Format Template: JSON text with placeholders.
	// Batch placeholders (one request body per batch):
	//   {{records}}         the records as a JSON array
	//   {{records_string}}  that array encoded again as a JSON string
	//   {{ndjson_string}}   the records one per line, as a JSON string
	//   {{count}}           the number of records
	// Record placeholders (one document per record, framed by Framing):
	//   {{record}}          the record itself
	//   {{record_string}}   the record encoded again as a JSON string
	// A template uses placeholders of one kind only. Required with Template.
	Template string

	// Framing joins per-record template documents: NDJSON or JSONArray.
	// Defaults to NDJSON.
	Framing Format

	// ContentType overrides the Content-Type header. Defaults to
	// "application/x-ndjson" for NDJSON, per-record NDJSON templates and
	// Elasticsearch, "application/json" otherwise.
	ContentType string

	// Labels are the Loki stream labels. Defaults to {job="skein"}.
	Labels map[string]string

	// Index is the Elasticsearch index (or data stream). Defaults to
	// "skein".
	Index string

	// ServiceName is the OTLP resource's service.name. Defaults to "skein".
	ServiceName string
}

// Defaults of Config, also listed in docs/ship.md.
const (
	DefaultMethod             = http.MethodPost
	DefaultMaxInFlight        = 2
	DefaultRequestTimeout     = 10 * time.Second
	DefaultQueueRecords       = 2048
	DefaultQueueBytes         = 8 << 20
	DefaultBatchRecords       = 512
	DefaultBatchBytes         = 1 << 20
	DefaultBatchTimeout       = time.Second
	DefaultInitialWait        = time.Second
	DefaultMaxWait            = 30 * time.Second
	DefaultMaxAttempts        = 10
	DefaultMaxElapsed         = 60 * time.Second
	DefaultSpoolBytes         = 256 << 20
	DefaultSegmentBytes       = 8 << 20
	DefaultSyncInterval       = 500 * time.Millisecond
	DefaultDeadLetterMaxBytes = 64 << 20
	DefaultIndex              = "skein"
	DefaultServiceName        = "skein"
)

// DefaultRetryStatuses are the HTTP statuses retried by default.
var DefaultRetryStatuses = []int{408, 429, 500, 502, 503, 504}

// FieldError is a configuration error naming the field at fault.
type FieldError struct {
	Field  string // dotted path, as in the YAML config: "queue.max_records"
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// WithDefaults returns a copy of c with every zero field set to its
// default.
func (c Config) WithDefaults() Config {
	if c.Method == "" {
		c.Method = DefaultMethod
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	q := &c.Queue
	if q.MaxRecords == 0 {
		q.MaxRecords = DefaultQueueRecords
	}
	if q.MaxBytes == 0 {
		q.MaxBytes = DefaultQueueBytes
	}
	if q.Policy == "" {
		q.Policy = DropOldest
	}
	b := &c.Batch
	if b.MaxRecords == 0 {
		b.MaxRecords = DefaultBatchRecords
	}
	if b.MaxBytes == 0 {
		b.MaxBytes = DefaultBatchBytes
	}
	if b.Timeout == 0 {
		b.Timeout = DefaultBatchTimeout
	}
	r := &c.Retry
	if r.Statuses == nil {
		r.Statuses = append([]int(nil), DefaultRetryStatuses...)
	}
	if r.InitialWait == 0 {
		r.InitialWait = DefaultInitialWait
	}
	if r.MaxWait == 0 {
		r.MaxWait = DefaultMaxWait
	}
	if r.MaxAttempts == 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	if r.MaxElapsed == 0 {
		r.MaxElapsed = DefaultMaxElapsed
	}
	s := &c.Spool
	if s.MaxBytes == 0 {
		s.MaxBytes = DefaultSpoolBytes
	}
	if s.SegmentBytes == 0 {
		s.SegmentBytes = DefaultSegmentBytes
	}
	if s.SyncInterval == 0 {
		s.SyncInterval = DefaultSyncInterval
	}
	if s.DeadLetterMaxBytes == 0 {
		s.DeadLetterMaxBytes = DefaultDeadLetterMaxBytes
	}
	e := &c.Envelope
	if e.Format == "" {
		e.Format = NDJSON
	}
	if e.Framing == "" {
		e.Framing = NDJSON
	}
	if e.Labels == nil && e.Format == Loki {
		e.Labels = map[string]string{"job": "skein"}
	}
	if e.Index == "" {
		e.Index = DefaultIndex
	}
	if e.ServiceName == "" {
		e.ServiceName = DefaultServiceName
	}
	return c
}

// Validate checks a configuration (after [Config.WithDefaults]) and returns
// a *FieldError for the first field at fault.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if c.URL == "" {
		return bad("url", "required")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return bad("url", "not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return bad("url", "scheme must be http or https, got %q", u.Scheme)
	}
	if u.Host == "" {
		return bad("url", "no host in %q", c.URL)
	}
	if !validMethod(c.Method) {
		return bad("method", "not an HTTP method: %q", c.Method)
	}
	for _, k := range sortedKeys(c.Headers) {
		if !validHeaderName(k) {
			return bad("headers."+k, "not a valid header name")
		}
		if _, err := expandEnv(c.Headers[k]); err != nil {
			return bad("headers."+k, "%v", err)
		}
	}
	if c.MaxInFlight < 1 {
		return bad("max_in_flight", "must be at least 1, got %d", c.MaxInFlight)
	}
	if c.RequestTimeout < 0 {
		return bad("request_timeout", "must not be negative, got %v", c.RequestTimeout)
	}
	if c.Queue.MaxRecords < 1 {
		return bad("queue.max_records", "must be at least 1, got %d", c.Queue.MaxRecords)
	}
	if c.Queue.MaxBytes < 1 {
		return bad("queue.max_bytes", "must be at least 1, got %d", c.Queue.MaxBytes)
	}
	switch c.Queue.Policy {
	case DropOldest, DropNewest, Block:
	default:
		return bad("queue.policy", "must be drop_oldest, drop_newest or block, got %q", c.Queue.Policy)
	}
	if c.Queue.BlockTimeout < 0 {
		return bad("queue.block_timeout", "must not be negative, got %v", c.Queue.BlockTimeout)
	}
	if c.Batch.MaxRecords < 1 {
		return bad("batch.max_records", "must be at least 1, got %d", c.Batch.MaxRecords)
	}
	if c.Batch.MaxBytes < 1 {
		return bad("batch.max_bytes", "must be at least 1, got %d", c.Batch.MaxBytes)
	}
	if c.Batch.Timeout < 0 {
		return bad("batch.timeout", "must not be negative, got %v", c.Batch.Timeout)
	}
	for i, st := range c.Retry.Statuses {
		if st < 100 || st > 599 {
			return bad(fmt.Sprintf("retry.statuses[%d]", i), "not an HTTP status: %d", st)
		}
		if st >= 200 && st < 300 {
			return bad(fmt.Sprintf("retry.statuses[%d]", i), "%d is a success, not retried", st)
		}
	}
	if c.Retry.InitialWait < 0 {
		return bad("retry.initial_wait", "must not be negative, got %v", c.Retry.InitialWait)
	}
	if c.Retry.MaxWait < c.Retry.InitialWait {
		return bad("retry.max_wait", "must be at least retry.initial_wait (%v), got %v", c.Retry.InitialWait, c.Retry.MaxWait)
	}
	if c.Retry.MaxAttempts < 1 {
		return bad("retry.max_attempts", "must be at least 1, got %d", c.Retry.MaxAttempts)
	}
	if c.Retry.MaxElapsed < 0 {
		return bad("retry.max_elapsed", "must not be negative, got %v", c.Retry.MaxElapsed)
	}
	if c.Proxy != "" && c.Proxy != "direct" {
		p, err := url.Parse(c.Proxy)
		if err != nil {
			return bad("proxy", "not a URL: %v", redactURLError(err))
		}
		switch p.Scheme {
		case "http", "https", "socks5", "socks5h":
		default:
			return bad("proxy", "scheme must be http, https or socks5, got %q", p.Scheme)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return bad("tls.cert_file", "cert_file and key_file go together")
	}
	if c.TLS.ReplaceSystemCAs && c.TLS.CAFile == "" {
		return bad("tls.replace_system_cas", "needs tls.ca_file")
	}
	for _, f := range []struct{ field, path string }{
		{"tls.ca_file", c.TLS.CAFile}, {"tls.cert_file", c.TLS.CertFile}, {"tls.key_file", c.TLS.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return bad(f.field, "%v", err)
		}
	}
	if c.Spool.Dir != "" {
		if c.Spool.SegmentBytes < 1024 {
			return bad("spool.segment_bytes", "must be at least 1024, got %d", c.Spool.SegmentBytes)
		}
		if c.Spool.MaxBytes < 2*c.Spool.SegmentBytes {
			return bad("spool.max_bytes", "must be at least twice spool.segment_bytes (%d), got %d", c.Spool.SegmentBytes, c.Spool.MaxBytes)
		}
		if c.Spool.SyncInterval < 0 {
			return bad("spool.sync_interval", "must not be negative, got %v", c.Spool.SyncInterval)
		}
	}
	if err := validateEnvelope(c.Envelope); err != nil {
		return err
	}
	return nil
}

func validateEnvelope(e Envelope) error {
	switch e.Format {
	case NDJSON, JSONArray, Loki, OTLP, Elasticsearch:
		if e.Template != "" {
			return &FieldError{"envelope.template", fmt.Sprintf("only used with format template, not %s", e.Format)}
		}
	case Template:
		if _, err := parseTemplate(e.Template); err != nil {
			return &FieldError{"envelope.template", err.Error()}
		}
	default:
		return &FieldError{"envelope.format", fmt.Sprintf("must be ndjson, json_array, template, loki, otlp or elasticsearch, got %q", e.Format)}
	}
	switch e.Framing {
	case NDJSON, JSONArray:
	default:
		return &FieldError{"envelope.framing", fmt.Sprintf("must be ndjson or json_array, got %q", e.Framing)}
	}
	for _, k := range sortedKeys(e.Labels) {
		if !lokiLabel.MatchString(k) {
			return &FieldError{"envelope.labels." + k, "not a valid Loki label name"}
		}
	}
	return nil
}

var lokiLabel = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces each ${NAME} by the environment variable NAME; a
// variable that is not set is an error naming it.
func expandEnv(s string) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
	}
	return out, nil
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, r := range m {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// redactURLError strips the URL (which may carry a password) from a parse
// error.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redactURL returns u with any password replaced by "xxxxx".
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}
