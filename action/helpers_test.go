package action

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// fixedOptions gives a Logger a clock that starts at 2026-11-22 14:28:20 UTC
// and advances 1 ms per message, and task uuids 00000000-…-000000000001, …2, ….
func fixedOptions() *Options {
	var mu sync.Mutex
	t := time.Date(2026, 11, 22, 14, 28, 20, 0, time.UTC)
	n := 0
	return &Options{
		Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			t = t.Add(time.Millisecond)
			return t
		},
		NewTaskUUID: func() string {
			mu.Lock()
			defer mu.Unlock()
			n++
			return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
		},
	}
}

// newTestLogger returns a Logger with fixed clock and ids writing to a
// buffer, and a context that uses it.
func newTestLogger(t testing.TB) (context.Context, *Logger, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	l := New(out, fixedOptions())
	return WithLogger(context.Background(), l), l, out
}

// message is one decoded output line.
type message map[string]any

// decode parses JSON lines, failing the test on any invalid one.
func decode(t testing.TB, out string) []message {
	t.Helper()
	var msgs []message
	sc := bufio.NewScanner(bytes.NewBufferString(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("invalid JSON line %q: %v", sc.Text(), err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// levelKey returns the message's "uuid /1/2" identity.
func (m message) levelKey() string {
	var b bytes.Buffer
	b.WriteString(fmt.Sprint(m["task_uuid"]))
	b.WriteByte(' ')
	levels, _ := m["task_level"].([]any)
	for _, l := range levels {
		fmt.Fprintf(&b, "/%v", l)
	}
	return b.String()
}
