package action

import (
	"slices"
	"strings"
	"testing"
)

func TestParseTaskID(t *testing.T) {
	const u = "1c1defcd-38e9-4a99-9c6c-95bc6da3dc61"
	good := []struct {
		in    string
		level []int
	}{
		{u + "@/5", []int{5}},
		{u + "@/2/2", []int{2, 2}},
		{u + "@2/3/", []int{2, 3}},
		{u + "@//7", []int{7}},
		{strings.ToUpper(u) + "@/1", []int{1}},
	}
	for _, tt := range good {
		id, err := ParseTaskID(tt.in)
		if err != nil {
			t.Errorf("ParseTaskID(%q): %v", tt.in, err)
			continue
		}
		if id.UUID != u || !slices.Equal(id.Level, tt.level) {
			t.Errorf("ParseTaskID(%q) = %v, want %s %v", tt.in, id, u, tt.level)
		}
	}
	bad := []struct{ in, wantErr string }{
		{"", "no '@'"},
		{u, "no '@'"},
		{"abc@/1", `task uuid "abc" is not a UUID`},
		{u + "x@/1", "is not a UUID"},
		{"1c1defcd_38e9-4a99-9c6c-95bc6da3dc61@/1", "is not a UUID"},
		{u + "@", "empty level"},
		{u + "@/", "empty level"},
		{u + "@/0", `level part "0" is not a positive integer`},
		{u + "@/-1", `"-1" is not a positive integer`},
		{u + "@/+1", `"+1" is not a positive integer`},
		{u + "@/1/x", `"x" is not a positive integer`},
		{u + "@/99999999999", "is not a positive integer"},
		{u + "@/1@/2", `"1@" is not a positive integer`},
		{u + "@" + strings.Repeat("/1", MaxLevelDepth+1), "deeper than 256"},
	}
	for _, tt := range bad {
		_, err := ParseTaskID(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseTaskID(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestSerializeTakesASlot(t *testing.T) {
	ctx, _, _ := newTestLogger(t)
	ctx, a := Start(ctx, "a")
	first := SerializeTaskID(ctx)
	second := a.SerializeTaskID()
	if !strings.HasSuffix(first, "@/2") || !strings.HasSuffix(second, "@/3") {
		t.Errorf("serialized %q then %q, want slots /2 and /3", first, second)
	}
	if got := a.TaskID().String(); got != a.TaskUUID()+"@" {
		t.Errorf("TaskID of a task's root action = %q", got)
	}
	if SerializeTaskID(t.Context()) != "" {
		t.Error("SerializeTaskID without an action returned an id")
	}
}

// FuzzParseTaskID checks that parsing never panics and that whatever parses
// prints back to text that parses to the same id.
func FuzzParseTaskID(f *testing.F) {
	for _, s := range []string{
		"1c1defcd-38e9-4a99-9c6c-95bc6da3dc61@/5",
		"1c1defcd-38e9-4a99-9c6c-95bc6da3dc61@/2/2/1",
		"1c1defcd-38e9-4a99-9c6c-95bc6da3dc61@",
		"x@/1", "@", "", "1c1defcd-38e9-4a99-9c6c-95bc6da3dc61@/1//2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseTaskID(s)
		if err != nil {
			return
		}
		again, err := ParseTaskID(id.String())
		if err != nil {
			t.Fatalf("%q parsed to %v whose text %q does not parse: %v", s, id, id.String(), err)
		}
		if again.UUID != id.UUID || !slices.Equal(again.Level, id.Level) {
			t.Fatalf("round trip %q -> %v -> %v", s, id, again)
		}
		for _, l := range id.Level {
			if l < 1 {
				t.Fatalf("%q parsed to non-positive level %v", s, id.Level)
			}
		}
	})
}
