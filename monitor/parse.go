package monitor

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Args are the words of a command after the tool name: positional words
// first, then named modifiers written key:value. A modifier with nothing
// after the colon has the empty value (queue: is the queue named "").
type Args struct {
	// Pos are the positional words, in order.
	Pos []string
	// Named maps a modifier's key (without the colon) to its value.
	Named map[string]string
}

// ParseArgs splits words into positional words and key:value modifiers. A
// word containing a colon is a modifier, split at its first colon. It fails,
// naming the word, when a positional word follows a modifier, when a
// modifier has no key, or when a modifier is given twice.
func ParseArgs(words []string) (Args, error) {
	a := Args{Named: map[string]string{}}
	lastNamed := ""
	for _, w := range words {
		k, v, named := strings.Cut(w, ":")
		if !named {
			if lastNamed != "" {
				return Args{}, fmt.Errorf("positional word %q comes after modifier %q: positional words must come before key:value modifiers", w, lastNamed)
			}
			a.Pos = append(a.Pos, w)
			continue
		}
		if k == "" {
			return Args{}, fmt.Errorf("modifier %q has no name before the colon", w)
		}
		if _, dup := a.Named[k]; dup {
			return Args{}, fmt.Errorf("modifier %q given twice", k+":")
		}
		a.Named[k] = v
		lastNamed = w
	}
	return a, nil
}

// maxInterval bounds intervals so that now minus an interval stays a valid
// time: 100 years.
const maxInterval = 100 * 365 * 24 * time.Hour

// ParseInterval reads an interval written [nD][nH][nM][nS] (letters in
// either case, at least one part, each part at most once and in that
// order), such as 5M, 20S or 1H30M, meaning that long before now.
func ParseInterval(s string) (time.Duration, error) {
	bad := func(why string) error {
		return fmt.Errorf("bad interval %q: %s (want [nD][nH][nM][nS], e.g. 20S, 5M or 1H30M)", s, why)
	}
	if s == "" {
		return 0, bad("empty")
	}
	units := []struct {
		letter byte
		d      time.Duration
	}{{'D', 24 * time.Hour}, {'H', time.Hour}, {'M', time.Minute}, {'S', time.Second}}
	var total time.Duration
	next := 0 // index in units of the next allowed unit
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, bad(fmt.Sprintf("expected a number at %q", rest))
		}
		if i == len(rest) {
			return 0, bad(fmt.Sprintf("number %s has no unit (D, H, M or S)", rest))
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil || n > int64(maxInterval/time.Second) {
			return 0, bad(fmt.Sprintf("number %s is too large", rest[:i]))
		}
		letter := rest[i] &^ 0x20 // upper case
		found := -1
		for j := next; j < len(units); j++ {
			if units[j].letter == letter {
				found = j
				break
			}
		}
		if found < 0 {
			return 0, bad(fmt.Sprintf("unexpected %q", rest[i:i+1]))
		}
		total += time.Duration(n) * units[found].d
		if total > maxInterval {
			return 0, bad("longer than 100 years")
		}
		next = found + 1
		rest = rest[i+1:]
	}
	return total, nil
}

// Point is where a poll-walking modifier (at:, before:, since:) points: a
// poll key, or an interval before now.
type Point struct {
	// Key is a poll key; valid when IsKey.
	Key   int64
	IsKey bool
	// Ago is the interval before now; valid when !IsKey.
	Ago time.Duration
}

// ParsePoint reads a poll key (an integer) or an interval for the modifier
// named name, which the error names.
func ParsePoint(name, s string) (Point, error) {
	if s == "" {
		return Point{}, fmt.Errorf("modifier %q: needs a poll key or an interval such as 5M", name)
	}
	if s[0] >= '0' && s[0] <= '9' || s[0] == '-' {
		if k, err := strconv.ParseInt(s, 10, 64); err == nil {
			return Point{Key: k, IsKey: true}, nil
		}
	}
	d, err := ParseInterval(s)
	if err != nil {
		return Point{}, fmt.Errorf("modifier %q: %w", name, err)
	}
	return Point{Ago: d}, nil
}

// splitWords splits a command line at runs of spaces and tabs.
func splitWords(line string) []string { return strings.Fields(line) }
