package skein

import (
	"strings"
	"testing"

	"github.com/skeinhq/skein/action"
)

func TestParseJobTaskID(t *testing.T) {
	const u = "1c1defcd-38e9-4a99-9c6c-95bc6da3dc61"
	tests := []struct {
		in      string
		want    string // String() of the result; "" = root
		wantErr string
	}{
		{u + "@/2/3", u + "@/2/3", ""},
		{u + "@/", "", ""},
		{strings.ToUpper(u) + "@/", "", ""},
		{u + "@", "", "empty level"},
		{"nope@/", "", "not a UUID"},
		{"", "", "no '@'"},
		{u + "@/0", "", "not a positive integer"},
	}
	for _, tt := range tests {
		got, err := parseJobTaskID(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseJobTaskID(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseJobTaskID(%q): %v", tt.in, err)
			continue
		}
		if tt.want == "" {
			if len(got.Level) != 0 || got.UUID != u {
				t.Errorf("parseJobTaskID(%q) = %v, want the root of %s", tt.in, got, u)
			}
		} else if got.String() != tt.want {
			t.Errorf("parseJobTaskID(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// FuzzParseJobTaskID: whatever is stored as a job's task id, parsing never
// panics, and what parses round-trips through the form the client stores.
func FuzzParseJobTaskID(f *testing.F) {
	for _, s := range []string{
		"1c1defcd-38e9-4a99-9c6c-95bc6da3dc61@/2/3",
		"1c1defcd-38e9-4a99-9c6c-95bc6da3dc61@/",
		"1C1DEFCD-38E9-4A99-9C6C-95BC6DA3DC61@//4//",
		"x@/", "@/", "", "@", "1c1defcd-38e9-4a99-9c6c-95bc6da3dc61@/-1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseJobTaskID(s)
		if err != nil {
			return
		}
		stored := id.String()
		if len(id.Level) == 0 {
			stored = rootTaskID(id.UUID)
		}
		again, err := parseJobTaskID(stored)
		if err != nil {
			t.Fatalf("%q parsed to %v, whose stored form %q does not parse: %v", s, id, stored, err)
		}
		if again.String() != id.String() {
			t.Fatalf("%q: round trip %v -> %q -> %v", s, id, stored, again)
		}
		if _, err := action.ParseTaskID(id.Child(1).String()); err != nil && len(id.Level) < action.MaxLevelDepth {
			t.Fatalf("%q: the first child %v does not parse: %v", s, id.Child(1), err)
		}
	})
}
