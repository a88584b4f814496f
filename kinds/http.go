package kinds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/action/actionhttp"
)

// Defaults of HTTPConfig.
const (
	DefaultHTTPTimeout  = time.Minute
	DefaultMaxBodyBytes = 64 << 10
)

// HTTPArgs are the arguments of an http job.
type HTTPArgs struct {
	// Method is the request method. Defaults to GET, or POST when Body or
	// JSON is given.
	Method string `json:"method,omitempty"`
	// URL is the http:// or https:// URL to request. Required.
	URL string `json:"url"`
	// Headers are added to the request. Defaults to none.
	Headers map[string]string `json:"headers,omitempty"`
	// Body is the request body, as text. Defaults to none.
	Body string `json:"body,omitempty"`
	// JSON is a JSON request body, sent with Content-Type
	// application/json unless Headers set one. Only one of Body and JSON
	// may be given. Defaults to none.
	JSON json.RawMessage `json:"json,omitempty"`
}

// Kind implements skein.JobArgs.
func (HTTPArgs) Kind() string { return KindHTTP }

// Validate reports what is wrong with the args, naming the field.
func (a HTTPArgs) Validate() error {
	if a.URL == "" {
		return errors.New(`field "url" is empty`)
	}
	u, err := url.Parse(a.URL)
	if err != nil {
		return fmt.Errorf(`field "url": %w`, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf(`field "url": scheme %q is not http or https`, u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf(`field "url": %q has no host`, a.URL)
	}
	if a.Body != "" && len(a.JSON) > 0 {
		return errors.New(`fields "body" and "json" are both given: want one`)
	}
	if len(a.JSON) > 0 && !json.Valid(a.JSON) {
		return errors.New(`field "json" is not valid JSON`)
	}
	if a.Method != "" && strings.ContainsAny(a.Method, " \t\r\n") {
		return fmt.Errorf(`field "method": %q is not a method`, a.Method)
	}
	return nil
}

// HTTPConfig configures the http kind. The zero value means every default.
type HTTPConfig struct {
	// Base makes the requests, under an actionhttp.Transport that adds the
	// task-id, workflow and traceparent headers. Defaults to
	// http.DefaultTransport.
	Base http.RoundTripper
	// MaxBodyBytes is how much of a response body is read and kept (in the
	// result, or the error of a failed attempt). Defaults to 64 KiB.
	MaxBodyBytes int
	// Timeout bounds a request whose job has no timeout of its own.
	// Defaults to 1 min; negative means no bound.
	Timeout time.Duration
}

// HTTP runs http jobs. Create it with [NewHTTP]; it is safe for concurrent
// use.
type HTTP struct {
	cfg    HTTPConfig
	client *http.Client
}

// NewHTTP returns the http kind configured by cfg (nil: every default).
func NewHTTP(cfg *HTTPConfig) (*HTTP, error) {
	var c HTTPConfig
	if cfg != nil {
		c = *cfg
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultHTTPTimeout
	}
	if c.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("configuring http kind: field MaxBodyBytes is %d, want at least 1", c.MaxBodyBytes)
	}
	return &HTTP{cfg: c, client: &http.Client{Transport: &actionhttp.Transport{Base: c.Base}}}, nil
}

// HTTPResult is the result an http job records when it completes.
type HTTPResult struct {
	// Status is the response's status code.
	Status int `json:"status"`
	// Duration of the exchange, in seconds.
	Duration float64 `json:"duration"`
	// Body is the start of the response body (HTTPConfig.MaxBodyBytes),
	// when it is text.
	Body string `json:"body,omitempty"`
	// Truncated is set when the body was longer.
	Truncated bool `json:"truncated,omitempty"`
}

// StatusError is the error of an attempt that got a status of 400 or more.
type StatusError struct {
	Method, URL string
	Code        int
	// Body is the start of the response body.
	Body string
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Code, http.StatusText(e.Code))
	if b := strings.TrimSpace(e.Body); b != "" {
		s += ": " + b
	}
	return s
}

// Run makes one request of an http job; it is the kind's handler.
func (h *HTTP) Run(ctx context.Context, job *skein.Job[HTTPArgs]) error {
	args := job.Args
	if err := args.Validate(); err != nil {
		return skein.JobDiscard(fmt.Errorf("http job %s: %w", job.ID, err))
	}
	if _, ok := ctx.Deadline(); !ok && h.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.cfg.Timeout)
		defer cancel()
	}
	method := strings.ToUpper(args.Method)
	var body io.Reader
	switch {
	case len(args.JSON) > 0:
		body = bytes.NewReader(args.JSON)
	case args.Body != "":
		body = strings.NewReader(args.Body)
	}
	if method == "" {
		method = http.MethodGet
		if body != nil {
			method = http.MethodPost
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, args.URL, body)
	if err != nil {
		return skein.JobDiscard(fmt.Errorf("http job %s: building request: %w", job.ID, err))
	}
	for k, v := range args.Headers {
		req.Header.Set(k, v)
	}
	if len(args.JSON) > 0 && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	shown := redact(req.URL)
	start := time.Now()
	resp, err := h.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold credentials
		}
		return fmt.Errorf("%s %s: %w", method, shown, err)
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, int64(h.cfg.MaxBodyBytes)+1))
	truncated := len(data) > h.cfg.MaxBodyBytes
	if truncated {
		data = data[:h.cfg.MaxBodyBytes]
	}
	duration := time.Since(start)
	text := ""
	if isText(resp.Header.Get("Content-Type"), data) {
		text = string(data)
	}
	if resp.StatusCode >= 400 {
		se := &StatusError{Method: method, URL: shown, Code: resp.StatusCode, Body: text}
		action.Log(ctx, "http:error_response", slog.Int("status", resp.StatusCode), slog.String("body", text))
		if resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
			return skein.JobDiscard(se)
		}
		return se
	}
	if readErr != nil {
		return fmt.Errorf("%s %s: reading response body: %w", method, shown, readErr)
	}
	_ = skein.RecordResult(ctx, HTTPResult{Status: resp.StatusCode, Duration: duration.Seconds(), Body: text, Truncated: truncated})
	return nil
}

// redact drops the password and the query of u, for messages.
func redact(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	return c.Redacted()
}

// isText reports whether a body is worth keeping as text.
func isText(contentType string, data []byte) bool {
	ct := strings.ToLower(contentType)
	switch {
	case strings.HasPrefix(ct, "text/"), strings.Contains(ct, "json"), strings.Contains(ct, "xml"),
		strings.Contains(ct, "x-www-form-urlencoded"):
		return true
	case ct == "":
		return utf8.Valid(data) && !bytes.ContainsRune(data, 0)
	}
	return false
}
