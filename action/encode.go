package action

import (
	"encoding"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/skeinhq/skein/internal/jsonstr"
)

// buffer is a byte slice reused through bufPool. Only small buffers go back to
// the pool, so one huge message does not pin memory for the life of the process.
type buffer []byte

var bufPool = sync.Pool{New: func() any { b := make(buffer, 0, 1024); return &b }}

const maxPooledBuffer = 64 << 10

func getBuffer() *buffer { return bufPool.Get().(*buffer) }

func putBuffer(b *buffer) {
	if cap(*b) > maxPooledBuffer {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// encoder appends JSON for slog values. It never fails: a value that cannot
// be JSON becomes a JSON string with a marker that says why.
type encoder struct {
	maxString int // longest string value written whole; < 0 means no limit
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string (see [jsonstr.Append]).
func appendString(b []byte, s string) []byte { return jsonstr.Append(b, s) }

// appendStringValue is appendString with the encoder's length limit.
func (e encoder) appendStringValue(b []byte, s string) []byte {
	if e.maxString >= 0 && len(s) > e.maxString {
		cut := e.maxString
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		b = appendString(b, s[:cut])
		b = b[:len(b)-1]
		b = append(b, "…[truncated: "...)
		b = strconv.AppendInt(b, int64(len(s)), 10)
		return append(b, ` bytes in all]"`...)
	}
	return appendString(b, s)
}

// appendFloat appends f as a JSON number that reads back as a float in
// languages that tell 3 from 3.0 (Python). NaN and the infinities, which JSON
// cannot hold, become the strings "NaN", "+Inf" and "-Inf".
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Inf"`...)
	}
	start := len(b)
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Like encoding/json: 1e-07, not 1e-7... both are valid; keep Go's
		// two-digit exponent form.
		return b
	}
	for _, c := range b[start:] {
		if c == '.' {
			return b
		}
	}
	return append(b, '.', '0')
}

// appendTimestamp appends t as Unix seconds with microseconds, the form of
// Eliot's timestamp field, e.g. 1795357700.167039. Trailing zeros of the
// fraction are dropped but one digit always stays, so it reads as a float.
func appendTimestamp(b []byte, t time.Time) []byte {
	sec := t.Unix()
	usec := t.Nanosecond() / 1000
	if sec < 0 {
		return appendFloat(b, float64(t.UnixNano())/1e9)
	}
	b = strconv.AppendInt(b, sec, 10)
	var frac [7]byte
	frac[0] = '.'
	for i := 6; i >= 1; i-- {
		frac[i] = byte('0' + usec%10)
		usec /= 10
	}
	n := 7
	for n > 2 && frac[n-1] == '0' {
		n--
	}
	return append(b, frac[:n]...)
}

// appendKey appends "key": .
func appendKey(b []byte, key string) []byte {
	b = appendString(b, key)
	return append(b, ':')
}

// appendAttrs appends attrs as object members, each preceded by a comma.
// Empty attributes are ignored, as slog requires; group attributes with an
// empty key are inlined.
func (e encoder) appendAttrs(b []byte, attrs []slog.Attr) []byte {
	for _, a := range attrs {
		b = e.appendAttr(b, a)
	}
	return b
}

// appendAttr appends ,"key":value for one attribute, or nothing for an empty one.
func (e encoder) appendAttr(b []byte, a slog.Attr) []byte {
	v := a.Value
	if v.Kind() == slog.KindLogValuer {
		v = v.Resolve()
	}
	if a.Key == "" {
		if v.Kind() == slog.KindGroup {
			return e.appendAttrs(b, v.Group())
		}
		if v.Kind() == slog.KindAny && v.Any() == nil {
			return b
		}
	}
	if v.Kind() == slog.KindGroup && len(v.Group()) == 0 {
		return b
	}
	b = append(b, ',')
	b = appendKey(b, a.Key)
	return e.appendValue(b, v)
}

// appendValue appends a resolved slog value as JSON.
func (e encoder) appendValue(b []byte, v slog.Value) []byte {
	switch v.Kind() {
	case slog.KindString:
		return e.appendStringValue(b, v.String())
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindFloat64:
		return appendFloat(b, v.Float64())
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool())
	case slog.KindDuration:
		return strconv.AppendInt(b, int64(v.Duration()), 10)
	case slog.KindTime:
		b = append(b, '"')
		b = v.Time().AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	case slog.KindGroup:
		start := len(b)
		b = append(b, '{')
		b = e.appendAttrs(b, v.Group())
		if len(b) > start+1 {
			b[start+1] = '{' // drop the leading comma of the first member
			b = append(b[:start], b[start+1:]...)
		}
		return append(b, '}')
	case slog.KindLogValuer:
		return e.appendValue(b, v.Resolve())
	default:
		return e.appendAny(b, v.Any())
	}
}

// appendAny appends an arbitrary Go value. Errors write their text, values
// with their own JSON or text form use it, the rest go through encoding/json.
// Nothing here may panic or produce invalid JSON.
func (e encoder) appendAny(b []byte, x any) (out []byte) {
	defer func() {
		if r := recover(); r != nil {
			out = appendString(b, fmt.Sprintf("!PANIC: encoding %T: %v", x, r))
		}
	}()
	switch x := x.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return e.appendStringValue(b, x)
	case []byte:
		return e.appendStringValue(b, string(x))
	case float32:
		return appendFloat(b, float64(x))
	case float64:
		return appendFloat(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case json.Marshaler:
		// encoding/json validates and compacts what MarshalJSON returns.
		if rv := reflect.ValueOf(x); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return append(b, "null"...)
		}
		return e.appendJSON(b, x)
	case error:
		if rv := reflect.ValueOf(x); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return append(b, "null"...)
		}
		return e.appendStringValue(b, x.Error())
	case encoding.TextMarshaler:
		if rv := reflect.ValueOf(x); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return append(b, "null"...)
		}
		text, err := x.MarshalText()
		if err != nil {
			return appendString(b, "!ERROR: "+err.Error())
		}
		return e.appendStringValue(b, string(text))
	}
	return e.appendJSON(b, x)
}

func (e encoder) appendJSON(b []byte, x any) []byte {
	data, err := json.Marshal(x)
	if err != nil {
		return appendString(b, "!ERROR: "+err.Error())
	}
	if e.maxString >= 0 && len(data) > e.maxString {
		return e.appendStringValue(b, string(data))
	}
	return append(b, data...)
}
