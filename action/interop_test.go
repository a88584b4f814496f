package action

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pythonWithEliot finds a Python interpreter that can import eliot
// (Debian's python3-eliot installs into /usr/bin/python3). Without one the
// test is skipped loudly, except in CI, where it fails.
func pythonWithEliot(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import eliot.parse").Run() == nil {
			return path
		}
	}
	msg := "SKIPPING the Python eliot interop test: no python3 with eliot (apt-get install python3-eliot)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI must run it")
	}
	t.Skip("\n\n*** " + msg + " ***\n")
	return ""
}

// TestPythonEliotReadsOurLogs writes a workflow of nested actions, slog
// records, a failure, a panic, goroutines and a task continued in "another
// process", then has the real Python eliot.parse rebuild the tasks: every task
// must be complete and have exactly the expected shape.
func TestPythonEliotReadsOurLogs(t *testing.T) {
	python := pythonWithEliot(t)
	path := filepath.Join(t.TempDir(), "ours.log")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	opts := fixedOptions()
	opts.Fields = ProcessFields()
	l := New(f, opts)
	ctx := WithWorkflow(WithLogger(context.Background(), l), "wf-interop")
	log := slog.New(l.Handler(nil))

	ctx, req := Start(ctx, "http:request", slog.String("path", "/api/message/"))
	log.InfoContext(ctx, "creating message", "user", 7)
	_ = Run(ctx, "db:insert", func(ctx context.Context) error {
		Log(ctx, "db:row", slog.Int("id", 1))
		return nil
	})
	for range 2 {
		for err := range Go(ctx, func(ctx context.Context) error {
			log.WarnContext(ctx, "text notifications disabled")
			return errors.New("not sent")
		}) {
			_ = err
		}
	}
	func() {
		defer func() { _ = recover() }()
		_ = Run(ctx, "panicky", func(context.Context) error { panic("oops") })
	}()
	remote := req.SerializeTaskID()
	_, worker, err := Continue(WithLogger(context.Background(), New(f, fixedOptions())), remote, "job:send_notification")
	if err != nil {
		t.Fatal(err)
	}
	worker.Log("job:sent")
	worker.End()
	req.End(slog.Int("status", 201))
	Log(ctx, "after") // a task of its own (req has ended), linked by parent_task
	log.Info("startup")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(python, "testdata/eliot_parse.py", path).CombinedOutput()
	if err != nil {
		t.Fatalf("eliot.parse failed: %v\n%s", err, out)
	}
	if strings.Contains(string(out), `"complete": false`) {
		t.Errorf("eliot.parse left tasks incomplete:\n%s", out)
	}
	checkGolden(t, "interop", string(out))
}
