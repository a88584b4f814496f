package tree

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Kind is the JSON type of a [Value].
type Kind uint8

// The kinds of JSON values. Number includes the non-standard NaN, Infinity
// and -Infinity tokens that Python's json module writes.
const (
	Invalid Kind = iota
	Null
	Bool
	Number
	String
	Array
	Object
)

var kindNames = [...]string{"invalid", "null", "bool", "number", "string", "array", "object"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one JSON value exactly as it was written in the log: its kind and
// its source text. Numbers keep their literal text, so integers, floats and
// integers too big for any machine type survive unchanged. Containers are
// decoded lazily with [Value.Members] and [Value.Elements].
//
// The zero Value is Invalid (a field that is absent).
type Value struct {
	raw  string
	kind Kind
	esc  bool // a String whose text contains backslash escapes
}

// Kind returns the JSON type of v.
func (v Value) Kind() Kind { return v.kind }

// Raw returns the JSON text of v as written in the log.
func (v Value) Raw() string { return v.raw }

// Str returns the decoded text of a String value, or "" for other kinds.
// Invalid UTF-8 and lone surrogates become U+FFFD.
func (v Value) Str() string {
	if v.kind != String {
		return ""
	}
	s := v.raw[1 : len(v.raw)-1]
	if !v.esc {
		return s
	}
	return string(unescape(make([]byte, 0, len(s)), s))
}

// Bool reports whether v is the JSON literal true.
func (v Value) Bool() bool { return v.kind == Bool && v.raw == "true" }

// IsInt reports whether v is a Number written without fraction or exponent,
// which Python reads as an int.
func (v Value) IsInt() bool {
	if v.kind != Number {
		return false
	}
	for i := 0; i < len(v.raw); i++ {
		switch v.raw[i] {
		case '.', 'e', 'E', 'N', 'I':
			return false
		}
	}
	return true
}

// Float returns the value of a Number as a float64 (NaN and ±Inf included);
// ok is false for other kinds. Integers beyond float64 precision are rounded.
func (v Value) Float() (f float64, ok bool) {
	if v.kind != Number {
		return 0, false
	}
	return parseNumber(v.raw), true
}

func parseNumber(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		// ParseFloat accepts NaN and ±Infinity and returns ±Inf with
		// ErrRange for overflow, which is what Python does too.
		return f
	}
	return f
}

// Members calls yield for each member of an Object value in written order
// (duplicated keys included) until yield returns false.
func (v Value) Members(yield func(key string, val Value) bool) {
	if v.kind != Object {
		return
	}
	s := lenient{s: v.raw, i: 1}
	for {
		s.ws()
		if s.i >= len(s.s) || s.s[s.i] == '}' {
			return
		}
		if s.s[s.i] == ',' {
			s.i++
			s.ws()
		}
		k := s.value()
		s.ws()
		s.i++ // ':'
		s.ws()
		val := s.value()
		if !yield(k.Str(), val) {
			return
		}
	}
}

// Elements calls yield for each element of an Array value until yield
// returns false.
func (v Value) Elements(yield func(i int, val Value) bool) {
	if v.kind != Array {
		return
	}
	s := lenient{s: v.raw, i: 1}
	for n := 0; ; n++ {
		s.ws()
		if s.i >= len(s.s) || s.s[s.i] == ']' {
			return
		}
		if s.s[s.i] == ',' {
			s.i++
			s.ws()
		}
		if !yield(n, s.value()) {
			return
		}
	}
}

// Len returns the number of members of an Object or elements of an Array.
func (v Value) Len() int {
	n := 0
	switch v.kind {
	case Object:
		v.Members(func(string, Value) bool { n++; return true })
	case Array:
		v.Elements(func(int, Value) bool { n++; return true })
	}
	return n
}

// Get returns the last member of an Object named key (Python's json keeps
// the last of duplicated keys).
func (v Value) Get(key string) (Value, bool) {
	var got Value
	found := false
	v.Members(func(k string, val Value) bool {
		if k == key {
			got, found = val, true
		}
		return true
	})
	return got, found
}

// lenient walks JSON text that the validating scanner already accepted.
type lenient struct {
	s string
	i int
}

func (l *lenient) ws() {
	for l.i < len(l.s) {
		switch l.s[l.i] {
		case ' ', '\t', '\n', '\r':
			l.i++
		default:
			return
		}
	}
}

func (l *lenient) value() Value {
	start := l.i
	switch c := l.s[l.i]; c {
	case '"':
		esc := false
		l.i++
		for l.i < len(l.s) {
			c := l.s[l.i]
			if c == '\\' {
				esc = true
				l.i += 2
				continue
			}
			l.i++
			if c == '"' {
				break
			}
		}
		return Value{raw: l.s[start:l.i], kind: String, esc: esc}
	case '{', '[':
		depth := 0
		for l.i < len(l.s) {
			c := l.s[l.i]
			switch c {
			case '"':
				l.value()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			l.i++
			if depth == 0 {
				break
			}
		}
		k := Object
		if c == '[' {
			k = Array
		}
		return Value{raw: l.s[start:l.i], kind: k}
	case 't':
		l.i += 4
		return Value{raw: l.s[start:l.i], kind: Bool}
	case 'f':
		l.i += 5
		return Value{raw: l.s[start:l.i], kind: Bool}
	case 'n':
		l.i += 4
		return Value{raw: l.s[start:l.i], kind: Null}
	default:
		for l.i < len(l.s) {
			switch l.s[l.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return Value{raw: l.s[start:l.i], kind: Number}
			}
			l.i++
		}
		return Value{raw: l.s[start:l.i], kind: Number}
	}
}

// unescape appends the decoded form of the JSON string body s (without
// quotes) to dst.
func unescape(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = appendValidUTF8(dst, s[i:j])
			i = j
			continue
		}
		if i+1 >= len(s) {
			break
		}
		switch s[i+1] {
		case 'n':
			dst = append(dst, '\n')
		case 't':
			dst = append(dst, '\t')
		case 'r':
			dst = append(dst, '\r')
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'u':
			if i+6 > len(s) {
				return dst
			}
			r := rune(hex4(s[i+2 : i+6]))
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2 := rune(hex4(s[i+2 : i+6]))
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						dst = utf8.AppendRune(dst, d)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

func appendValidUTF8(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			j := i + 1
			for j < len(s) && s[j] < utf8.RuneSelf {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return dst
}

func hex4(s string) uint16 {
	var v uint16
	for i := 0; i < 4; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		}
		v = v<<4 | uint16(c)
	}
	return v
}
