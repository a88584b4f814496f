package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseArgsJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string // compacted JSON, or "" for an error
		wantErr string
	}{
		{`{}`, `{}`, ""},
		{` { "a" : [1, 2] } `, `{"a":[1,2]}`, ""},
		{`{"a": 1,}`, "", "line 1, column 9: invalid character '}'"},
		{"{\n  \"a\": 1\n  \"b\": 2\n}", "", "line 3, column 3: invalid character '\"' after object key:value pair"},
		{`{"a": "é", x}`, "", "line 1, column 12: invalid character 'x'"},
		{`{"a":`, "", "line 1, column 6: unexpected end"},
		{``, "", "line 1, column 1: unexpected end"},
		{`[1]`, "", "must be a JSON object ({...}), not an array"},
		{`"s"`, "", "not a string"},
		{`null`, "", "not null"},
		{`{} x`, "", "line 1, column 4: more after the JSON value"},
	}
	for _, tt := range tests {
		got, err := parseArgsJSON(tt.in)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("parseArgsJSON(%q) = %s, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || string(got) != tt.want):
			t.Errorf("parseArgsJSON(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

// FuzzParseArgsJSON checks that every input is either accepted as one
// compact JSON object or refused with a position inside it.
func FuzzParseArgsJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"command":["echo","hi"]}`, `{"a":`, "{\n\"a\": 1,\n}", `[1]`, `{} {}`, `"x"`, "{\"a\":\"\xff\"}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseArgsJSON(s)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "ARGS-JSON") {
				t.Fatalf("error %q does not name ARGS-JSON", msg)
			}
			if json.Valid([]byte(s)) && strings.HasPrefix(strings.TrimSpace(s), "{") {
				t.Fatalf("valid object %q refused: %v", s, err)
			}
			return
		}
		var m map[string]any
		if json.Unmarshal(got, &m) != nil || m == nil {
			t.Fatalf("accepted %q as %q, not a JSON object", s, got)
		}
		if !json.Valid([]byte(s)) {
			t.Fatalf("accepted invalid JSON %q", s)
		}
	})
}

func TestPosition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    string
		i    int64
		want string
	}{
		{"abc", 0, "line 1, column 1"},
		{"abc", 2, "line 1, column 3"},
		{"a\nbc", 3, "line 2, column 2"},
		{"éé", 2, "line 1, column 2"},
		{"abc", 99, "line 1, column 4"},
		{"abc", -5, "line 1, column 1"},
	}
	for _, tt := range tests {
		if got := position(tt.s, tt.i); got != tt.want {
			t.Errorf("position(%q, %d) = %q, want %q", tt.s, tt.i, got, tt.want)
		}
	}
}
