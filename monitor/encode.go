package monitor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// TimeLayout is how the monitor writes times: UTC, ISO 8601, microseconds,
// a trailing Z.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// formatTime writes t in [TimeLayout] after converting it to UTC.
func formatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// Time is a point in time as the monitor shows it: a UTC ISO 8601 string
// ending in Z, or null when zero.
type Time time.Time

// MarshalJSON implements [json.Marshaler].
func (t Time) MarshalJSON() ([]byte, error) {
	if time.Time(t).IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + formatTime(time.Time(t)) + `"`), nil
}

// Duration is a length of time as the monitor shows it: an object with
// integer "days", "hours" and "minutes" and float "seconds", zero parts left
// out; a zero duration is {"seconds": 0.0}. Negative durations are shown as
// zero.
type Duration time.Duration

// Parts splits d into days, hours, minutes and seconds.
func (d Duration) Parts() (days, hours, minutes int64, seconds float64) {
	v := time.Duration(d)
	if v < 0 {
		v = 0
	}
	days = int64(v / (24 * time.Hour))
	v -= time.Duration(days) * 24 * time.Hour
	hours = int64(v / time.Hour)
	v -= time.Duration(hours) * time.Hour
	minutes = int64(v / time.Minute)
	v -= time.Duration(minutes) * time.Minute
	seconds = v.Seconds()
	return days, hours, minutes, seconds
}

// MarshalJSON implements [json.Marshaler].
func (d Duration) MarshalJSON() ([]byte, error) {
	days, hours, minutes, seconds := d.Parts()
	var b bytes.Buffer
	b.WriteByte('{')
	sep := ""
	for _, p := range []struct {
		name string
		v    int64
	}{{"days", days}, {"hours", hours}, {"minutes", minutes}} {
		if p.v != 0 {
			fmt.Fprintf(&b, `%s"%s":%d`, sep, p.name, p.v)
			sep = ","
		}
	}
	if seconds != 0 || sep == "" {
		fmt.Fprintf(&b, `%s"seconds":%s`, sep, formatSeconds(seconds))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// formatSeconds writes a float the way Python's json does for whole
// numbers too: 5.0, 1.25, 0.000211.
func formatSeconds(s float64) string {
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return "0.0"
	}
	out := strconv.FormatFloat(s, 'f', -1, 64)
	if !strings.Contains(out, ".") {
		out += ".0"
	}
	return out
}

// durationOrNil returns a Duration, or nil (JSON null) when ok is false.
func durationOrNil(d time.Duration, ok bool) any {
	if !ok {
		return nil
	}
	return Duration(d)
}

// timeOrNil returns a Time, or nil (JSON null) when t is zero.
func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return Time(t)
}

// stringOrNil returns s, or nil (JSON null) when s is empty.
func stringOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Render writes a tool's result as the text protocol shows it: a string as
// it is, anything else as JSON with sorted keys and an indent of 4 spaces.
// The result never ends in a newline.
func Render(v any) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("encoding the result as JSON: %w", err)
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}
