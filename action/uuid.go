package action

import (
	"math/rand/v2"
	"time"
)

// uuidText is a UUID in its canonical 36-character text form.
type uuidText [36]byte

// newUUID returns a random (version 4, variant 1) UUID. The bits come from
// math/rand/v2's per-thread ChaCha8 source: unpredictable enough for ids
// and much cheaper than crypto/rand.
func newUUID() uuidText {
	hi, lo := rand.Uint64(), rand.Uint64()
	hi = hi&^(0xf<<12) | 0x4<<12 // version 4
	lo = lo&^(0x3<<62) | 0x2<<62 // variant 1
	return formatUUID(hi, lo)
}

// newTimeUUID returns a version 7 UUID (RFC 9562) for the time t: 48 bits
// of Unix milliseconds, then 12 bits of the millisecond's fraction (so that
// uuids made one after another sort in that order, to about 250 ns), then
// 62 random bits.
func newTimeUUID(t time.Time) uuidText {
	ns := t.UnixNano()
	ms, frac := uint64(ns/1e6), uint64(ns%1e6)*4096/1e6
	hi := ms<<16 | 0x7<<12 | frac            // version 7
	lo := rand.Uint64()&^(0x3<<62) | 0x2<<62 // variant 1
	return formatUUID(hi, lo)
}

// formatUUID writes the 128 bits hi, lo in canonical text form.
func formatUUID(hi, lo uint64) uuidText {
	var raw [16]byte
	for i := 0; i < 8; i++ {
		raw[i] = byte(hi >> (56 - 8*i))
		raw[8+i] = byte(lo >> (56 - 8*i))
	}
	var t uuidText
	j := 0
	for i, c := range raw {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			t[j] = '-'
			j++
		}
		t[j] = hexDigits[c>>4]
		t[j+1] = hexDigits[c&0xf]
		j += 2
	}
	return t
}

// NewID returns a new random UUID (version 4) in canonical text form, as
// used for task uuids. It suits workflow ids too.
func NewID() string {
	t := newUUID()
	return string(t[:])
}

// NewTimeID returns a new UUID whose text sorts by the time it was made
// (version 7: Unix milliseconds, a fraction of the millisecond, then 62
// random bits), in canonical text form. As a database key it puts rows made
// together next to each other in the key's index, where random UUIDs
// scatter them over all its pages. It reveals when it was made.
func NewTimeID() string {
	t := newTimeUUID(time.Now())
	return string(t[:])
}

// validUUID reports whether s is a UUID in canonical 8-4-4-4-12 hex form.
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
