package jsonstr

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppend(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{"a\"b\\c", `"a\"b\\c"`},
		{"\n\r\t\x00\x1f", `"\n\r\t\u0000\u001f"`},
		{"é€😀", `"é€😀"`},
		{"a\u2028b\u2029", `"a\u2028b\u2029"`},
		{"a\xffb", `"a\ufffdb"`},
		{"\x7f", "\"\x7f\""},
	}
	for _, tt := range tests {
		if got := string(Append(nil, tt.in)); got != tt.want {
			t.Errorf("Append(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if got := string(AppendBytes([]byte("x"), []byte(tt.in))); got != "x"+tt.want {
			t.Errorf("AppendBytes(%q) = %s", tt.in, got)
		}
	}
}

// FuzzAppend checks that any input encodes as a JSON string that
// encoding/json reads back as the input with invalid bytes as U+FFFD.
func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "x", "é\u2028\x00\xff", `"\`, "\x7f\x1f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := Append(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q encoded as invalid JSON %q: %v", s, b, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("%q came back as %q", s, back)
		}
		if !utf8.ValidString(s) && back != strings.ToValidUTF8(s, "\uFFFD") && !strings.Contains(back, "\uFFFD") {
			t.Fatalf("%q came back as %q", s, back)
		}
	})
}
