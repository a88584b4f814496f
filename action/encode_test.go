package action

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

type panickyValuer struct{}

func (panickyValuer) LogValue() slog.Value { panic("valuer exploded") }

type panickyJSON struct{}

func (panickyJSON) MarshalJSON() ([]byte, error) { panic("marshal exploded") }

type badJSON struct{}

func (badJSON) MarshalJSON() ([]byte, error) { return []byte("{not json"), nil }

type failingText struct{}

func (failingText) MarshalText() ([]byte, error) { return nil, errors.New("no text") }

// TestLoggingNeverBreaks feeds values that cannot be JSON: every message
// must still be one valid JSON line, with a marker where the value was.
func TestLoggingNeverBreaks(t *testing.T) {
	out := &syncBuffer{}
	l := New(out, &Options{MaxValueBytes: 32})
	ctx := WithLogger(t.Context(), l)
	var nilErr *json.SyntaxError
	cases := []struct {
		attr slog.Attr
		want string // the field's JSON
	}{
		{slog.Float64("nan", math.NaN()), `"NaN"`},
		{slog.Float64("inf", math.Inf(1)), `"+Inf"`},
		{slog.Float64("ninf", math.Inf(-1)), `"-Inf"`},
		{slog.Any("f32", float32(2)), `2.0`},
		{slog.Float64("tiny", 1e-9), `1e-09`},
		{slog.Float64("huge", 1e300), `1e+300`},
		{slog.Any("chan", make(chan int)), `"!ERROR: json: unsupported type: chan int"`},
		{slog.Any("func", func() {}), `"!ERROR: json: unsupported type: func()"`},
		{slog.Any("valuer", panickyValuer{}), ``},
		{slog.Any("marshal", panickyJSON{}), ``},
		{slog.Any("badjson", badJSON{}), ``},
		{slog.Any("text", failingText{}), `"!ERROR: no text"`},
		{slog.Any("nilptr", nilErr), `null`},
		{slog.Any("err", errors.New("e")), `"e"`},
		{slog.Any("bytes", []byte("raw")), `"raw"`},
		{slog.String("invalid_utf8", "a\xffb"), `"a\ufffdb"`},
		{slog.String("control", "a\x00\x1b\n\t\"\\"), `"a\u0000\u001b\n\t\"\\"`},
		{slog.String("long", strings.Repeat("é", 40)), `"` + strings.Repeat("é", 16) + `…[truncated: 80 bytes in all]"`},
		{slog.Duration("dur", 1500*time.Millisecond), `1500000000`},
		{slog.Time("time", time.Date(2026, 11, 22, 0, 0, 0, 5, time.UTC)), `"2026-11-22T00:00:00.000000005Z"`},
		{slog.Any("map", map[string]float64{"x": math.NaN()}), `"!ERROR: json: unsupported value: NaN"`},
		{slog.Group("empty"), ``},
		{slog.Any("", nil), ``},
		{slog.Uint64("u", math.MaxUint64), `18446744073709551615`},
	}
	for _, c := range cases {
		out.buf.Reset()
		Log(ctx, "m", c.attr)
		line := out.String()
		if !json.Valid([]byte(line)) || !strings.HasSuffix(line, "}\n") || strings.Count(line, "\n") != 1 {
			t.Errorf("%s: not one valid JSON line: %q", c.attr.Key, line)
			continue
		}
		if c.want == "" {
			continue
		}
		if field := `"` + c.attr.Key + `":` + c.want; !strings.Contains(line, field) {
			t.Errorf("%s: %q lacks %s", c.attr.Key, line, field)
		}
	}
	for _, key := range []string{"valuer", "marshal", "badjson"} {
		out.buf.Reset()
		for _, c := range cases {
			if c.attr.Key == key {
				Log(ctx, "m", c.attr)
			}
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(out.String()), &m)
		if s, _ := m[key].(string); !strings.Contains(s, "!") && !strings.Contains(s, "panic") {
			t.Errorf("%s: value %v has no marker", key, m[key])
		}
	}
}

func TestTimestampFormat(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Unix(1795357700, 167039000), "1795357700.167039"},
		{time.Unix(1795357700, 0), "1795357700.0"},
		{time.Unix(1795357700, 100000000), "1795357700.1"},
		{time.Unix(1795357700, 999), "1795357700.0"},
		{time.Unix(0, 1000), "0.000001"},
	}
	for _, tt := range tests {
		if got := string(appendTimestamp(nil, tt.t)); got != tt.want {
			t.Errorf("appendTimestamp(%v) = %s, want %s", tt.t, got, tt.want)
		}
	}
}

// FuzzEncodeString checks that any string, valid UTF-8 or not, encodes as a
// JSON string that encoding/json reads back as the same text (invalid bytes
// as U+FFFD).
func FuzzEncodeString(f *testing.F) {
	for _, s := range []string{"", "plain", "é\u2028\x00\xff", `"\`, "\x7f\x1f", strings.Repeat("x", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := encoder{maxString: -1}
		b := enc.appendStringValue(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q encoded as invalid JSON %q: %v", s, b, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); back != want && utf8.ValidString(s) {
			t.Fatalf("%q came back as %q", s, back)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("valid %q came back as %q", s, back)
		}
	})
}

// FuzzEncodeMessage logs a message with fuzzed keys, values and numbers: the
// line must be valid JSON that encoding/json decodes, with the values intact.
func FuzzEncodeMessage(f *testing.F) {
	f.Add("key", "value", int64(1), 1.5, "group")
	f.Add("task_uuid", "\xff", int64(-1), math.Inf(1), "")
	f.Fuzz(func(t *testing.T, key, value string, n int64, x float64, group string) {
		var out bytes.Buffer
		l := New(&out, &Options{MaxValueBytes: -1})
		ctx := WithLogger(t.Context(), l)
		slog.New(l.Handler(nil)).WithGroup(group).InfoContext(ctx, value, slog.String(key, value), slog.Int64("n", n), slog.Float64("x", x))
		Log(ctx, key, slog.String(key, value), slog.Group(group, slog.Float64(key, x)))
		for _, line := range bytes.SplitAfter(out.Bytes(), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatalf("invalid JSON %q: %v", line, err)
			}
			if _, ok := m["task_uuid"].(string); !ok {
				t.Fatalf("task_uuid lost in %q", line)
			}
		}
	})
}
