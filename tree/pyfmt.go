package tree

import (
	"math"
	"strconv"
	"time"
)

// appendPyFloat appends Python's repr of f: shortest round-trip digits,
// scientific notation when the decimal exponent is < -4 or >= 16, ".0" for
// integral values, "nan", "inf", "-inf".
func appendPyFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "nan"...)
	case math.IsInf(f, 1):
		return append(b, "inf"...)
	case math.IsInf(f, -1):
		return append(b, "-inf"...)
	}
	var tmp [32]byte
	e := strconv.AppendFloat(tmp[:0], f, 'e', -1, 64)
	// e is [-]d[.ddd]e±XX
	neg := e[0] == '-'
	if neg {
		e = e[1:]
		b = append(b, '-')
	}
	ei := 0
	for ei < len(e) && e[ei] != 'e' {
		ei++
	}
	mant := e[:ei]
	exp, _ := strconv.Atoi(string(e[ei+1:]))
	var digits [24]byte
	nd := 0
	for _, c := range mant {
		if c != '.' {
			digits[nd] = c
			nd++
		}
	}
	ds := digits[:nd]
	if exp < -4 || exp >= 16 {
		b = append(b, ds[0])
		if nd > 1 {
			b = append(b, '.')
			b = append(b, ds[1:]...)
		}
		b = append(b, 'e')
		if exp < 0 {
			b = append(b, '-')
			exp = -exp
		} else {
			b = append(b, '+')
		}
		if exp < 10 {
			b = append(b, '0')
		}
		return strconv.AppendInt(b, int64(exp), 10)
	}
	if exp < 0 {
		b = append(b, '0', '.')
		for i := -1; i > exp; i-- {
			b = append(b, '0')
		}
		return append(b, ds...)
	}
	// exp >= 0: integer part has exp+1 digits.
	if nd <= exp+1 {
		b = append(b, ds...)
		for i := nd; i < exp+1; i++ {
			b = append(b, '0')
		}
		return append(b, '.', '0')
	}
	b = append(b, ds[:exp+1]...)
	b = append(b, '.')
	return append(b, ds[exp+1:]...)
}

// appendPyNumber appends Python's repr of the number read from JSON text
// raw: an int stays as written (minus a "-0" sign), anything else is a float.
func appendPyNumber(b []byte, raw string) []byte {
	v := Value{raw: raw, kind: Number}
	if v.IsInt() {
		if raw == "-0" {
			return append(b, '0')
		}
		return append(b, raw...)
	}
	return appendPyFloat(b, parseNumber(raw))
}

// pySeconds splits a timestamp into whole seconds as CPython's
// datetime.utcfromtimestamp does: microseconds rounded half to even, a
// carry into the next second.
func pySeconds(ts float64) int64 {
	ip, fp := math.Modf(ts)
	us := math.RoundToEven(fp * 1e6)
	if us >= 1e6 {
		ip++
	} else if us < 0 {
		ip--
	}
	return int64(ip)
}

// appendDateTime appends "YYYY-MM-DD HH:MM:SS" of unix second sec in loc.
func appendDateTime(b []byte, sec int64, loc *time.Location) []byte {
	if loc == nil || loc == time.UTC {
		days := floorDiv(sec, 86400)
		rem := sec - days*86400
		y, mo, d := civil(days)
		b = append4(b, y)
		b = append(b, '-')
		b = append2(b, mo)
		b = append(b, '-')
		b = append2(b, d)
		b = append(b, ' ')
		b = append2(b, int(rem/3600))
		b = append(b, ':')
		b = append2(b, int(rem/60%60))
		b = append(b, ':')
		return append2(b, int(rem%60))
	}
	return time.Unix(sec, 0).In(loc).AppendFormat(b, "2006-01-02 15:04:05")
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date.
func civil(z int64) (y, m, d int) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	yy := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	dd := doy - (153*mp+2)/5 + 1
	mm := mp + 3
	if mp >= 10 {
		mm = mp - 9
	}
	if mm <= 2 {
		yy++
	}
	return int(yy), int(mm), int(dd)
}

func append2(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }

func append4(b []byte, v int) []byte {
	if v < 0 || v > 9999 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	return append(b, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
}

// appendPyStrRepr appends Python's repr of a str.
func appendPyStrRepr(b []byte, s string) []byte {
	q := byte('\'')
	if containsByte(s, '\'') && !containsByte(s, '"') {
		q = '"'
	}
	b = append(b, q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r < 0x20 || r == 0x7f:
			b = append(b, '\\', 'x', hexDigit(byte(r)>>4), hexDigit(byte(r)&15))
		case r >= 0x80 && r < 0xa0:
			b = append(b, '\\', 'x', hexDigit(byte(r)>>4), hexDigit(byte(r)&15))
		default:
			b = appendRune(b, r)
		}
	}
	return append(b, q)
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

func hexDigit(c byte) byte { return "0123456789abcdef"[c] }

// appendPyRepr appends Python's repr of a JSON value as json.loads reads it,
// dictionaries sorted as pprint sorts them.
func appendPyRepr(b []byte, v Value) []byte {
	switch v.kind {
	case Null:
		return append(b, "None"...)
	case Bool:
		if v.Bool() {
			return append(b, "True"...)
		}
		return append(b, "False"...)
	case Number:
		return appendPyNumber(b, v.raw)
	case String:
		return appendPyStrRepr(b, v.Str())
	case Array:
		b = append(b, '[')
		first := true
		v.Elements(func(_ int, e Value) bool {
			if !first {
				b = append(b, ", "...)
			}
			first = false
			b = appendPyRepr(b, e)
			return true
		})
		return append(b, ']')
	case Object:
		b = append(b, '{')
		members := dedupeMembers(v)
		sortFields(members) // pprint sorts dictionaries
		for i, f := range members {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendPyStrRepr(b, f.Key)
			b = append(b, ": "...)
			b = appendPyRepr(b, f.Value)
		}
		return append(b, '}')
	}
	return b
}

// dedupeMembers returns an object's members in Python dict order: first
// position of each key, last value.
func dedupeMembers(v Value) []Field {
	var out []Field
	v.Members(func(k string, val Value) bool {
		for i := range out {
			if out[i].Key == k {
				out[i].Value = val
				return true
			}
		}
		out = append(out, Field{k, val})
		return true
	})
	return out
}

// PyFormat returns Python's pprint.pformat of a message (the form
// eliot-tree prints for a message it cannot parse): keys sorted, one item
// per line when the repr is wider than 80 columns.
func PyFormat(m *Message) string {
	fields := make([]Field, 0, len(m.Fields))
	for _, f := range m.Fields {
		dup := false
		for i := range fields {
			if fields[i].Key == f.Key {
				fields[i].Value, dup = f.Value, true
			}
		}
		if !dup {
			fields = append(fields, f)
		}
	}
	sortFields(fields)
	var one []byte
	one = append(one, '{')
	items := make([][]byte, len(fields))
	for i, f := range fields {
		it := appendPyStrRepr(nil, f.Key)
		it = append(it, ": "...)
		it = appendPyRepr(it, f.Value)
		items[i] = it
		if i > 0 {
			one = append(one, ", "...)
		}
		one = append(one, it...)
	}
	one = append(one, '}')
	if len([]rune(string(one))) <= 80 {
		return string(one)
	}
	var b []byte
	b = append(b, '{')
	for i, it := range items {
		if i > 0 {
			b = append(b, ",\n "...)
		}
		b = append(b, it...)
	}
	return string(append(b, '}'))
}
