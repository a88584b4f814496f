package action

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewIDIsVersion4(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if !validUUID(id) || id[14] != '4' || !strings.ContainsRune("89ab", rune(id[19])) || strings.ToLower(id) != id {
			t.Fatalf("NewID() = %q, want a lower-case version 4, variant 1 UUID", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}

// Time-ordered ids sort by the time they were made, down to a fraction of
// a millisecond, and stay unique within one.
func TestNewTimeIDSortsByTime(t *testing.T) {
	base := time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC)
	var ids []string
	for _, d := range []time.Duration{0, time.Microsecond, 300 * time.Microsecond, 999 * time.Microsecond, time.Millisecond,
		time.Second, time.Hour, 24 * 365 * time.Hour} {
		u := newTimeUUID(base.Add(d))
		ids = append(ids, string(u[:]))
	}
	if !slices.IsSorted(ids) {
		t.Errorf("ids made in time order do not sort in it: %q", ids)
	}
	// The first 48 bits are the Unix milliseconds.
	if got, want := strings.ReplaceAll(ids[0][:13], "-", ""), "01a204d81600"; got != want {
		t.Errorf("time bits of %s = %s, want %s (%d ms)", ids[0], got, want, base.UnixMilli())
	}
	seen := map[string]bool{}
	for range 1000 {
		id := NewTimeID()
		if !validUUID(id) || id[14] != '7' || !strings.ContainsRune("89ab", rune(id[19])) || strings.ToLower(id) != id {
			t.Fatalf("NewTimeID() = %q, want a lower-case version 7, variant 1 UUID", id)
		}
		if seen[id] {
			t.Fatalf("NewTimeID() repeated %q", id)
		}
		seen[id] = true
	}
}
