package tree

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestParseMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		line      string
		uuid      string
		level     string
		isAction  bool
		atype     string
		mtype     string
		ts        float64
		field     string // a field to check
		wantKind  Kind
		wantRaw   string
		wantStr   string
		wantNoTS  bool
		wantLevel Level
	}{
		{name: "1.13 spacing", line: `{"x": 1, "timestamp": 1795357700.25, "task_uuid": "u", "task_level": [2, 3], "message_type": "m"}`,
			uuid: "u", level: "/2/3", mtype: "m", ts: 1795357700.25, field: "x", wantKind: Number, wantRaw: "1"},
		{name: "compact", line: `{"x":3.0,"timestamp":1,"task_uuid":"u","task_level":[1],"action_type":"a","action_status":"started"}`,
			uuid: "u", level: "/1", isAction: true, atype: "a", ts: 1, field: "x", wantKind: Number, wantRaw: "3.0"},
		{name: "NaN", line: `{"x": NaN, "task_uuid": "u", "task_level": [1]}`, uuid: "u", level: "/1", field: "x", wantKind: Number, wantRaw: "NaN", wantNoTS: true},
		{name: "-Infinity", line: `{"x": [Infinity, -Infinity], "task_uuid": "u", "task_level": [1]}`, uuid: "u", level: "/1", field: "x", wantKind: Array, wantRaw: "[Infinity, -Infinity]", wantNoTS: true},
		{name: "big int", line: `{"x": 12345678901234567890123, "task_uuid": "u", "task_level": [1]}`, uuid: "u", level: "/1", field: "x", wantKind: Number, wantRaw: "12345678901234567890123", wantNoTS: true},
		{name: "escapes", line: `{"x": "h\u00e9\ud83d\ude00\n\"", "task_uuid": "u", "task_level": [1]}`, uuid: "u", level: "/1", field: "x", wantKind: String, wantStr: "hé😀\n\"", wantNoTS: true},
		{name: "raw utf-8", line: `{"x": "héllo 世界", "task_uuid": "u", "task_level": [1]}`, uuid: "u", level: "/1", field: "x", wantKind: String, wantStr: "héllo 世界", wantNoTS: true},
		{name: "lone surrogate", line: `{"x": "a\ud800b", "task_uuid": "u", "task_level": [1]}`, uuid: "u", level: "/1", field: "x", wantKind: String, wantStr: "a\uFFFDb", wantNoTS: true},
		{name: "duplicate key last wins", line: `{"task_uuid": "a", "x": 1, "task_uuid": "b", "x": 2, "task_level": [1]}`, uuid: "b", level: "/1", field: "x", wantKind: Number, wantRaw: "2", wantNoTS: true},
		{name: "null action_type is a message", line: `{"action_type": null, "task_uuid": "u", "task_level": [1], "message_type": "m"}`, uuid: "u", level: "/1", mtype: "m", field: "action_type", wantKind: Null, wantRaw: "null", wantNoTS: true},
		{name: "CRLF and spaces", line: " \t{\"task_uuid\" : \"u\" , \"task_level\" : [ 4 , 1 ] }\r", uuid: "u", level: "/4/1", wantNoTS: true},
		{name: "escaped key", line: `{"k\u0065y": true, "task_uuid": "u", "task_level": [1]}`, uuid: "u", level: "/1", field: "key", wantKind: Bool, wantRaw: "true", wantNoTS: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := ParseMessage([]byte(tt.line))
			if err != nil {
				t.Fatalf("ParseMessage: %v", err)
			}
			if m.TaskUUID != tt.uuid || m.Level.String() != tt.level || m.IsAction != tt.isAction ||
				m.ActionType != tt.atype || m.MessageType != tt.mtype {
				t.Errorf("got uuid %q level %s action %v/%q message_type %q", m.TaskUUID, m.Level, m.IsAction, m.ActionType, m.MessageType)
			}
			if m.HasTimestamp == tt.wantNoTS || (m.HasTimestamp && m.Timestamp != tt.ts) {
				t.Errorf("timestamp %v (has %v), want %v", m.Timestamp, m.HasTimestamp, tt.ts)
			}
			if tt.field == "" {
				return
			}
			v, ok := m.Get(tt.field)
			if !ok {
				t.Fatalf("field %s missing", tt.field)
			}
			if v.Kind() != tt.wantKind {
				t.Errorf("kind %v, want %v", v.Kind(), tt.wantKind)
			}
			if tt.wantRaw != "" && v.Raw() != tt.wantRaw {
				t.Errorf("raw %q, want %q", v.Raw(), tt.wantRaw)
			}
			if tt.wantStr != "" && v.Str() != tt.wantStr {
				t.Errorf("string %q, want %q", v.Str(), tt.wantStr)
			}
		})
	}
}

func TestParseMessageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		line      string
		syntax    bool   // want *SyntaxError (else *FormatError)
		field     string // FormatError.Field
		offset    int    // SyntaxError.Offset
		msgSubstr string
	}{
		{name: "empty", line: "", syntax: true, offset: 0, msgSubstr: "empty line"},
		{name: "cut off", line: `{"task_uuid": "u", "task_level": [1`, syntax: true, offset: 35},
		{name: "trailing comma", line: `{"a": 1,}`, syntax: true, offset: 8, msgSubstr: "string key"},
		{name: "single quotes", line: `{'a': 1}`, syntax: true, offset: 1},
		{name: "raw control char", line: "{\"a\": \"x\ty\"}", syntax: true, offset: 8, msgSubstr: "control character"},
		{name: "bad escape", line: `{"a": "\x"}`, syntax: true, offset: 7, msgSubstr: "invalid escape"},
		{name: "leading zero", line: `{"a": 01}`, syntax: true, offset: 7},
		{name: "extra data", line: `{"a": 1} x`, syntax: true, offset: 9, msgSubstr: "extra data"},
		{name: "bare word", line: `{"a": nan}`, syntax: true, offset: 6},
		{name: "too deep", line: strings.Repeat("[", 1001) + strings.Repeat("]", 1001), syntax: true, offset: 1000, msgSubstr: "nested too deeply"},
		{name: "not an object", line: `[1, 2]`, msgSubstr: "a JSON array, not an object"},
		{name: "no task_uuid", line: `{"task_level": [1]}`, field: "task_uuid"},
		{name: "no task_level", line: `{"task_uuid": "u"}`, field: "task_level"},
		{name: "bad task_level", line: `{"task_uuid": "u", "task_level": [1, "a"]}`, field: "task_level"},
		{name: "zero slot", line: `{"task_uuid": "u", "task_level": [0]}`, field: "task_level"},
		{name: "uuid not string", line: `{"task_uuid": 5, "task_level": [1]}`, field: "task_uuid"},
		{name: "action without status", line: `{"task_uuid": "u", "task_level": [1], "action_type": "a"}`, field: "action_status"},
		{name: "empty level", line: `{"task_uuid": "u", "task_level": []}`, field: "task_level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseMessage([]byte(tt.line))
			var se *SyntaxError
			var fe *FormatError
			switch {
			case tt.syntax:
				if !errors.As(err, &se) {
					t.Fatalf("got %v, want a SyntaxError", err)
				}
				if se.Offset != tt.offset {
					t.Errorf("offset %d, want %d (%v)", se.Offset, tt.offset, err)
				}
			default:
				if !errors.As(err, &fe) {
					t.Fatalf("got %v, want a FormatError", err)
				}
				if fe.Field != tt.field {
					t.Errorf("field %q, want %q (%v)", fe.Field, tt.field, err)
				}
			}
			if !strings.Contains(err.Error(), tt.msgSubstr) {
				t.Errorf("error %q does not mention %q", err, tt.msgSubstr)
			}
		})
	}
}

func TestValueContainers(t *testing.T) {
	t.Parallel()
	m, err := ParseMessage([]byte(`{"d": {"b": [1, {"c": "x\"y"}], "a": {}, "b": 2}, "task_uuid": "u", "task_level": [1]}`))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := m.Get("d")
	var keys []string
	d.Members(func(k string, v Value) bool { keys = append(keys, k+"="+v.Raw()); return true })
	if got, want := strings.Join(keys, ";"), `b=[1, {"c": "x\"y"}];a={};b=2`; got != want {
		t.Errorf("members %s, want %s", got, want)
	}
	if v, _ := d.Get("b"); v.Raw() != "2" {
		t.Errorf("Get(b) = %s, want the last duplicate 2", v.Raw())
	}
	if n := d.Len(); n != 3 {
		t.Errorf("Len = %d, want 3", n)
	}
	got, _ := json.Marshal(d.Decode())
	if want := `{"a":{},"b":2}`; string(got) != want {
		t.Errorf("Decode = %s, want %s", got, want)
	}
}

func TestPyFloatRepr(t *testing.T) {
	t.Parallel()
	// Python 3.11 repr() of each float, given as a hex float literal.
	tests := []struct{ hex, want string }{
		{"0x0.0p+0", "0.0"}, {"-0x0.0p+0", "-0.0"}, {"0x1.999999999999ap-4", "0.1"}, {"0x1.8000000000000p+1", "3.0"},
		{"0x1.ad7f29abcaf48p-24", "1e-07"}, {"0x1.1c37937e08000p+53", "1e+16"}, {"0x1.1c37937e07fffp+53", "9999999999999998.0"},
		{"0x1.4f8b588e368f1p-17", "1e-05"}, {"0x1.a36e2eb1c432dp-14", "0.0001"}, {"0x1.b69b4ba630f35p+56", "1.2345678901234568e+17"},
		{"0x1.0f0cf064dd592p+73", "1e+22"}, {"0x1.01297d23ab683p-996", "1.5e-300"}, {"0x0.0000000000001p-1022", "5e-324"},
		{"0x1.fffffffffffffp+1023", "1.7976931348623157e+308"}, {"0x1.5555555555555p-2", "0.3333333333333333"},
		{"-0x1.1400000000000p+4", "-17.25"}, {"0x1.ac0bf010b9544p+30", "1795357700.1809855"}, {"0x1.c6bf526340000p+49", "1000000000000000.0"},
		{"0x1.02e4b6ce5dc68p-13", "0.00012345"}, {"0x1.9e3abe16fc70dp-17", "1.2345e-05"}, {"0x1.9000000000000p+6", "100.0"},
		{"0x1.249ad2594c37dp+332", "1e+100"}, {"-0x1.bff2ee48e0530p-333", "-1e-100"}, {"-0x1.750923ceb3ffdp-644", "-1.996150245444706e-194"},
		{"-0x1.b5bf55eb561a4p+680", "-8.57789382212775e+204"}, {"0x1.624273bfd1d33p-238", "3.132872124271458e-72"},
		{"-0x1.70386fee29476p-134", "-6.604630556388117e-41"}, {"0x1.a9c8279f248b0p+603", "5.521213857875556e+181"},
	}
	for _, tt := range tests {
		f, err := strconv.ParseFloat(tt.hex, 64)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(appendPyFloat(nil, f)); got != tt.want {
			t.Errorf("repr(%s) = %s, want %s", tt.hex, got, tt.want)
		}
	}
	for f, want := range map[float64]string{math.NaN(): "nan", math.Inf(1): "inf", math.Inf(-1): "-inf"} {
		if got := string(appendPyFloat(nil, f)); got != want {
			t.Errorf("repr(%v) = %s, want %s", f, got, want)
		}
	}
	for raw, want := range map[string]string{"3": "3", "-0": "0", "1E5": "100000.0", "2.50": "2.5", "1e400": "inf", "NaN": "nan", "-Infinity": "-inf"} {
		if got := string(appendPyNumber(nil, raw)); got != want {
			t.Errorf("Python reads %s as %s, got %s", raw, want, got)
		}
	}
}

func TestTimestampRounding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ts   float64
		want string
	}{
		{1795357700.9999996, "2026-11-22 14:28:21"}, // rounds to the next second like datetime.utcfromtimestamp
		{1795357700.9999994, "2026-11-22 14:28:20"},
		{0, "1970-01-01 00:00:00"},
		{-1.5, "1969-12-31 23:59:58"},
		{951782400, "2000-02-29 00:00:00"},
		{253402300799, "9999-12-31 23:59:59"},
	}
	for _, tt := range tests {
		if got := string(appendDateTime(nil, pySeconds(tt.ts), nil)); got != tt.want {
			t.Errorf("%v: got %s, want %s", tt.ts, got, tt.want)
		}
	}
}

func TestReader(t *testing.T) {
	t.Parallel()
	input := "{\"task_uuid\": \"a\", \"task_level\": [1]}\r\n" +
		"not json\n" +
		"\n" +
		"{\"task_uuid\": \"b\", \"task_level\": [1]}" // no final newline
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(input))
	zw.Close()
	for _, tt := range []struct {
		name string
		data []byte
		cfg  *ReaderConfig
		want string
	}{
		{"plain", []byte(input), &ReaderConfig{Name: "x.log"}, "a x.log:2:invalid x.log:3:invalid b EOF"},
		{"gzip", gz.Bytes(), &ReaderConfig{Name: "x.log.gz"}, "a x.log.gz:2:invalid x.log.gz:3:invalid b EOF"},
		{"skip blank, tiny buffer", []byte(input), &ReaderConfig{Name: "x", SkipBlank: true, BufferBytes: 4}, "a x:2:invalid b EOF"},
		{"line too long", []byte(input), &ReaderConfig{Name: "x", BufferBytes: 8, MaxLineBytes: 16}, "x:1:long x:2:invalid x:3:invalid x:4:long EOF"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := NewReader(bytes.NewReader(tt.data), tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for {
				m, err := r.Next()
				if errors.Is(err, io.EOF) {
					got = append(got, "EOF")
					break
				}
				var le *LineError
				switch {
				case errors.As(err, &le) && errors.Is(err, ErrLineTooLong):
					got = append(got, le.Source.String()+":long")
				case errors.As(err, &le):
					got = append(got, le.Source.String()+":invalid")
				case err != nil:
					t.Fatal(err)
				default:
					got = append(got, m.TaskUUID)
				}
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("got %s, want %s", g, tt.want)
			}
		})
	}
}

func TestPyFormat(t *testing.T) {
	t.Parallel()
	m, _ := ParseLoose([]byte(`{"hello": "it's", "n": 1, "f": 2.50, "l": [true, null], "d": {"b": 1, "a": "x"}}`))
	want := `{'d': {'a': 'x', 'b': 1}, 'f': 2.5, 'hello': "it's", 'l': [True, None], 'n': 1}`
	if got := PyFormat(m); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	long, _ := ParseLoose([]byte(`{"b": "` + strings.Repeat("x", 70) + `", "a": 1}`))
	want = "{'a': 1,\n 'b': '" + strings.Repeat("x", 70) + "'}"
	if got := PyFormat(long); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
