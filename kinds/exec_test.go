package kinds_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/internal/testwait"
	"github.com/skeinhq/skein/kinds"
)

// self returns the command that runs the test binary as a child in mode.
func self(t *testing.T, mode string) (kinds.ExecArgs, *kinds.Exec) {
	t.Helper()
	e, err := kinds.NewExec(&kinds.ExecConfig{Env: append(os.Environ(), childEnv+"="+mode), KillGrace: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return kinds.ExecArgs{Command: []string{os.Args[0], "-test.run=^$"}}, e
}

func TestExecOutputBecomesMessages(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	ctx, att, logger := attemptCtx(t, logs)
	args, _ := self(t, "echo")
	e, err := kinds.NewExec(&kinds.ExecConfig{Logger: logger, Env: append(os.Environ(), childEnv+"=echo")})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(ctx, job(args)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	att.End()
	tasks := buildTasks(t, logs.String())
	if len(tasks) != 1 {
		t.Fatalf("got %d tasks, want 1:\n%s", len(tasks), logs)
	}
	got := outline(tasks[0].Root)
	// stdout and stderr are read concurrently: check each stream's order.
	for _, want := range []string{"exec:started", "exec:stdout=hello", "exec:stderr=a warning", "exec:stdout=no newline at end", "exec:task_id_unused", "exec:exited"} {
		if !strings.Contains(got, want) {
			t.Errorf("tree %s\nlacks %s", got, want)
		}
	}
	if i, j := strings.Index(got, "exec:stdout=hello"), strings.Index(got, "exec:stdout=no newline"); i > j {
		t.Errorf("stdout lines out of order: %s", got)
	}
}

func TestExecEnvironment(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	ctx, att, logger := attemptCtx(t, logs)
	e, err := kinds.NewExec(&kinds.ExecConfig{Logger: logger, Env: append(os.Environ(), childEnv+"=env", "SKEIN_TASK_ID=stale")})
	if err != nil {
		t.Fatal(err)
	}
	args := kinds.ExecArgs{Command: []string{os.Args[0], "-test.run=^$"}, Env: map[string]string{"EXTRA": "x y"}}
	j := job(args)
	if err := e.Run(ctx, j); err != nil {
		t.Fatalf("Run: %v", err)
	}
	att.End()
	log := logs.String()
	wantTaskPrefix := att.TaskUUID() + "@/"
	for _, want := range []string{
		`"line":"SKEIN_TASK_ID=` + wantTaskPrefix,
		`"line":"SKEIN_WORKFLOW_ID=wf-1"`,
		`"line":"SKEIN_JOB_ID=` + j.ID + `"`,
		`"line":"SKEIN_JOB_ATTEMPT=1"`,
		`"line":"EXTRA=x y"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
	if strings.Contains(log, "stale") {
		t.Errorf("the base environment's SKEIN_TASK_ID reached the child:\n%s", log)
	}
}

func TestExecChildJoinsTheTree(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	ctx, att, logger := attemptCtx(t, logs)
	e, err := kinds.NewExec(&kinds.ExecConfig{Logger: logger, Env: append(os.Environ(), childEnv+"=eliot")})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(ctx, job(kinds.ExecArgs{Command: []string{os.Args[0], "-test.run=^$"}})); err != nil {
		t.Fatalf("Run: %v", err)
	}
	att.End()
	tasks := buildTasks(t, logs.String())
	if len(tasks) != 1 || !tasks[0].Complete {
		t.Fatalf("got %d tasks, want 1 complete:\n%s", len(tasks), logs)
	}
	got := outline(tasks[0].Root)
	want := "skein:attempt/succeeded(child:work/succeeded(child:step), exec:started, exec:stdout=plain line between messages, exec:exited)"
	if got != want {
		t.Errorf("tree:\n got %s\nwant %s", got, want)
	}
	if strings.Contains(logs.String(), "exec:task_id_unused") {
		t.Errorf("the slot was filled although the child used it")
	}
}

func TestExecFailure(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	ctx, att, logger := attemptCtx(t, logs)
	e, err := kinds.NewExec(&kinds.ExecConfig{Logger: logger, Env: append(os.Environ(), childEnv+"=fail"), TailBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Run(ctx, job(kinds.ExecArgs{Command: []string{os.Args[0], "-test.run=^$"}}))
	att.Fail(err)
	var xe *kinds.ExitError
	if !errors.As(err, &xe) {
		t.Fatalf("got %T %v, want *kinds.ExitError", err, err)
	}
	if xe.Code != 7 {
		t.Errorf("exit code %d, want 7", xe.Code)
	}
	if !strings.HasPrefix(xe.Stderr, "…stderr line") || !strings.HasSuffix(xe.Stderr, "stderr line 49\n") {
		t.Errorf("stderr tail %q: want the last lines, cut at a line start", xe.Stderr)
	}
	if len(xe.Stderr) > 110 {
		t.Errorf("stderr tail is %d bytes, want about 100", len(xe.Stderr))
	}
	if msg := err.Error(); !strings.Contains(msg, "exited with status 7; stderr:\n…stderr line") {
		t.Errorf("error text %q", msg)
	}
	var discard *skein.DiscardError
	if errors.As(err, &discard) {
		t.Errorf("a failed run must be retried, not discarded")
	}
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	ctx, att, logger := attemptCtx(t, logs)
	// sh starts a grandchild (the test binary hanging) and waits for it;
	// the timeout must stop both.
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	e, err := kinds.NewExec(&kinds.ExecConfig{Logger: logger, Env: append(os.Environ(), childEnv+"=hang"), KillGrace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	args := kinds.ExecArgs{Command: []string{"sh", "-c", `"$0" -test.run='^$' & echo $! > "$1"; wait`, os.Args[0], pidFile}}
	err = e.Run(ctx, job(args))
	att.Fail(err)
	var xe *kinds.ExitError
	if !errors.As(err, &xe) || xe.Signal == "" {
		t.Fatalf("got %v, want an *ExitError for a signal", err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	// The grandchild was signalled; wait until it is gone or a zombie
	// (an external process: poll with a deadline).
	if !testwait.For(10*time.Second, func() bool { return !alive(pid) }) {
		t.Fatalf("grandchild %d still running after the job's timeout", pid)
	}
}

// alive reports whether process pid runs (exists and is not a zombie).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil {
		// "pid (comm) S ...": the state follows the last ')'.
		s := string(stat)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
			return s[i+2] != 'Z' && s[i+2] != 'X'
		}
		return true
	}
	if _, statErr := os.Stat("/proc/self/stat"); statErr == nil {
		return false // /proc works and the process is not in it
	}
	return syscall.Kill(pid, 0) == nil
}

func TestExecBadArgsAreDiscarded(t *testing.T) {
	t.Parallel()
	e, err := kinds.NewExec(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args kinds.ExecArgs
		want string
	}{
		{"empty command", kinds.ExecArgs{}, `field "command" is empty`},
		{"bad env name", kinds.ExecArgs{Command: []string{"true"}, Env: map[string]string{"A=B": "x"}}, `field "env"`},
		{"not found", kinds.ExecArgs{Command: []string{"skein-no-such-program-xyz"}}, "executable file not found"},
		{"not a file", kinds.ExecArgs{Command: []string{"/nonexistent/prog"}}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, att, _ := attemptCtx(t, &syncBuffer{})
			err := e.Run(ctx, job(tt.args))
			att.Finish(err)
			var discard *skein.DiscardError
			if !errors.As(err, &discard) {
				t.Fatalf("got %v, want a discard", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestExecLongLinesAreCut(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	ctx, att, logger := attemptCtx(t, logs)
	e, err := kinds.NewExec(&kinds.ExecConfig{Logger: logger, Env: append(os.Environ(), childEnv+"=long"), MaxLineBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(ctx, job(kinds.ExecArgs{Command: []string{os.Args[0], "-test.run=^$"}})); err != nil {
		t.Fatal(err)
	}
	att.End()
	want := `"line":"` + strings.Repeat("x", 100) + `","dropped_bytes":200`
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, logs)
	}
}

func TestExecStdin(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	ctx, att, logger := attemptCtx(t, logs)
	e, err := kinds.NewExec(&kinds.ExecConfig{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(ctx, job(kinds.ExecArgs{Command: []string{"cat"}, Stdin: "from stdin\n"})); err != nil {
		t.Fatal(err)
	}
	att.End()
	if !strings.Contains(logs.String(), `"line":"from stdin"`) {
		t.Errorf("log lacks the stdin line:\n%s", logs)
	}
}

// TestExecPythonEliot runs a real Python eliot child that continues
// SKEIN_TASK_ID with Action.continue_task.
func TestExecPythonEliot(t *testing.T) {
	t.Parallel()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import eliot").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3-eliot is required in CI: %v", err)
		}
		t.Skipf("SKIPPED: Python eliot is not installed (apt-get install python3-eliot): %v", err)
	}
	logs := &syncBuffer{}
	ctx, att, logger := attemptCtx(t, logs)
	e, err := kinds.NewExec(&kinds.ExecConfig{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	script := `
import os, sys
from eliot import Action, Message, to_file
to_file(sys.stdout)
with Action.continue_task(task_id=os.environ["SKEIN_TASK_ID"]):
    Message.log(message_type="py:hello", n=1)
    print("plain", flush=True)
`
	if err := e.Run(ctx, job(kinds.ExecArgs{Command: []string{py, "-c", script}})); err != nil {
		t.Fatalf("Run: %v", err)
	}
	att.End()
	tasks := buildTasks(t, logs.String())
	if len(tasks) != 1 || !tasks[0].Complete {
		t.Fatalf("got %d tasks, want 1 complete:\n%s", len(tasks), logs)
	}
	got := outline(tasks[0].Root)
	if !strings.Contains(got, "eliot:remote_task/succeeded(py:hello") {
		t.Errorf("tree %s: want Python's eliot:remote_task inside the attempt", got)
	}
	_ = action.Workflow(ctx)
}
