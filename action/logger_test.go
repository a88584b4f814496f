package action

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// failingWriter fails every write.
type failingWriter struct{ writes int }

func (f *failingWriter) Write([]byte) (int, error) {
	f.writes++
	return 0, errors.New("disk on fire")
}

func TestDestinationFailureReportedOnce(t *testing.T) {
	good := &syncBuffer{}
	bad := &failingWriter{}
	l := New(bad, &Options{Also: []io.Writer{good}})
	ctx := WithLogger(t.Context(), l)
	for range 3 {
		Log(ctx, "m")
	}
	if l.WriteErrors() != 3 {
		t.Errorf("WriteErrors() = %d, want 3", l.WriteErrors())
	}
	msgs := decode(t, good.String())
	var failures []message
	for _, m := range msgs {
		if m["message_type"] == "eliot:destination_failure" {
			failures = append(failures, m)
		}
	}
	if len(msgs) != 4 || len(failures) != 1 {
		t.Fatalf("good destination got %d messages with %d failure reports, want 4 and 1:\n%s", len(msgs), len(failures), good)
	}
	f := failures[0]
	if !strings.Contains(f["reason"].(string), "disk on fire") || f["exception"] != "errors.errorString" ||
		!strings.Contains(f["message"].(string), `"message_type":"m"`) {
		t.Errorf("failure report %v", f)
	}
}

func TestDestinationFailureWithoutOtherDestination(t *testing.T) {
	report := &syncBuffer{}
	l := New(&failingWriter{}, &Options{ErrorOutput: report})
	ctx := WithLogger(t.Context(), l)
	Log(ctx, "a")
	Log(ctx, "b")
	if got := report.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "disk on fire") {
		t.Errorf("error output %q, want one line naming the error", got)
	}
}

// TestFileSharedByProcesses has several real processes append to one log
// file at once: every line must stay whole.
func TestFileSharedByProcesses(t *testing.T) {
	if path := os.Getenv("SKEIN_ACTION_TEST_WRITER"); path != "" {
		writeLinesForTest(path)
		return
	}
	path := filepath.Join(t.TempDir(), "shared.log")
	const procs, lines = 4, 500
	var wg sync.WaitGroup
	errs := make(chan error, procs)
	for i := range procs {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestFileSharedByProcesses$")
			cmd.Env = append(os.Environ(), "SKEIN_ACTION_TEST_WRITER="+path, "SKEIN_ACTION_TEST_ID="+strconv.Itoa(i))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("writer %d: %v\n%s", i, err, out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	count := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("torn line %q: %v", sc.Text(), err)
		}
		count[fmt.Sprint(m["writer"])]++
	}
	for i := range procs {
		if n := count[strconv.Itoa(i)]; n != lines {
			t.Errorf("writer %d: %d lines, want %d", i, n, lines)
		}
	}
}

func writeLinesForTest(path string) {
	f, err := OpenFile(path)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	l := New(f, nil)
	ctx := WithLogger(context.Background(), l)
	pad := strings.Repeat("x", 3000) // longer than PIPE_BUF
	for range 500 {
		Log(ctx, "line", slog.String("writer", os.Getenv("SKEIN_ACTION_TEST_ID")), slog.String("pad", pad))
	}
}

func TestWriteMessage(t *testing.T) {
	out := &syncBuffer{}
	l := New(out, &Options{Fields: []slog.Attr{slog.String("process", "parent")}})
	good := `{"task_uuid":"00000000-0000-4000-8000-000000000001","task_level":[2,1],"message_type":"from child"}`
	if err := l.WriteMessage([]byte(good + "\n")); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "not json", `{"task_uuid":"x"}`, `[1,2]`, `{"task_uuid":"x","task_level":[]}`, good + good} {
		if err := l.WriteMessage([]byte(bad)); err == nil {
			t.Errorf("WriteMessage(%q) accepted it", bad)
		}
	}
	if got := out.String(); got != good+"\n" {
		t.Errorf("wrote %q, want the message as it was", got)
	}
}
