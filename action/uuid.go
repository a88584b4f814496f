package action

import "math/rand/v2"

// uuidText is a UUID in its canonical 36-character text form.
type uuidText [36]byte

// newUUID returns a random (version 4, variant 1) UUID. The bits come from
// math/rand/v2's per-thread ChaCha8 source: unpredictable enough for ids
// and much cheaper than crypto/rand.
func newUUID() uuidText {
	hi, lo := rand.Uint64(), rand.Uint64()
	hi = hi&^(0xf<<12) | 0x4<<12 // version 4
	lo = lo&^(0x3<<62) | 0x2<<62 // variant 1
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
