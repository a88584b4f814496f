package tree

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// tailLines reads lines from a Tail on a goroutine and hands them over one
// by one.
func tailLines(t *testing.T, tl *Tail) (<-chan string, func()) {
	t.Helper()
	rd, err := NewReader(tl, &ReaderConfig{Name: "tail"})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		for {
			m, err := rd.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				ch <- "error: " + err.Error()
				continue
			}
			ch <- m.TaskUUID
		}
	}()
	return ch, func() { <-done }
}

func expectLine(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("read %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no line %q within 10s", want)
	}
}

func appendFile(t *testing.T, name, text string) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func line(uuid string) string {
	return `{"task_uuid": "` + uuid + `", "task_level": [1], "message_type": "m", "timestamp": 1}` + "\n"
}

func TestTailFollowsGrowthRotationAndTruncation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	name := filepath.Join(dir, "app.log")
	appendFile(t, name, line("first"))
	ctx, cancel := context.WithCancel(context.Background())
	tl, err := OpenTail(ctx, name, &TailConfig{Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ch, wait := tailLines(t, tl)
	expectLine(t, ch, "first")

	// Growth, including a line written in two pieces.
	appendFile(t, name, line("grown")+`{"task_uuid": "sp`)
	expectLine(t, ch, "grown")
	appendFile(t, name, `lit", "task_level": [1]}`+"\n")
	expectLine(t, ch, "split")

	// Rotation: the old file gets a last line, is renamed, a new one appears.
	appendFile(t, name, line("last-of-old"))
	if err := os.Rename(name, name+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, name, line("rotated"))
	expectLine(t, ch, "last-of-old")
	expectLine(t, ch, "rotated")

	// Truncation: the file is emptied and written again from the start
	// with less than was read, so the tail sees it shrink.
	if err := os.Truncate(name, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, name, line("t"))
	expectLine(t, ch, "t")

	cancel()
	for range ch {
	}
	wait()
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenTailMissing(t *testing.T) {
	t.Parallel()
	_, err := OpenTail(context.Background(), filepath.Join(t.TempDir(), "nope.log"), nil)
	if err == nil {
		t.Fatal("OpenTail of a missing file succeeded")
	}
}
