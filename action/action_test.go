package action

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

// TestLevels checks eliot.md §2's rules: start at L+[1], each message and
// child and serialized id takes the next slot, the end takes the last.
func TestLevels(t *testing.T) {
	ctx, _, out := newTestLogger(t)
	ctx, a := Start(ctx, "a")       // [1]
	a.Log("m")                      // [2]
	_, child := Start(ctx, "child") // [3,1]
	child.Log("in child")           // [3,2]
	_ = SerializeTaskID(ctx)        // takes [4]
	Log(ctx, "m2")                  // [5]
	child.End()                     // [3,3]
	a.End()                         // [6]
	var got []string
	for _, m := range decode(t, out.String()) {
		got = append(got, strings.TrimPrefix(m.levelKey(), "00000000-0000-4000-8000-000000000001 "))
	}
	want := []string{"/1", "/2", "/3/1", "/3/2", "/5", "/3/3", "/6"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("levels %v, want %v", got, want)
	}
}

// TestConcurrentLevelsUnique logs from many goroutines under one action, in
// nested actions, through slog and through Go/Preserve: no (task_uuid,
// task_level) pair may appear twice.
func TestConcurrentLevelsUnique(t *testing.T) {
	out := &syncBuffer{}
	l := New(out, nil)
	ctx := WithLogger(context.Background(), l)
	log := slog.New(l.Handler(nil))
	ctx, root := Start(ctx, "root")
	var wg sync.WaitGroup
	const workers, each = 16, 50
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				switch i % 4 {
				case 0:
					root.Log("tick", slog.Int("worker", w))
				case 1:
					log.InfoContext(ctx, "slog tick")
				case 2:
					_ = Run(ctx, "child", func(ctx context.Context) error {
						Log(ctx, "inside")
						return nil
					})
				case 3:
					done := Go(ctx, func(ctx context.Context) error {
						Log(ctx, "in goroutine")
						return nil
					})
					for range done {
					}
				}
			}
		})
	}
	wg.Wait()
	root.End()
	msgs := decode(t, out.String())
	seen := map[string]bool{}
	for _, m := range msgs {
		k := m.levelKey()
		if seen[k] {
			t.Fatalf("duplicate (task_uuid, task_level) %s", k)
		}
		seen[k] = true
	}
	// root start+end, per worker: 13 ticks, 13 slog, 12×3 child, 12×3 goroutine.
	want := 2 + workers*(13+13+12*3+12*3)
	if len(msgs) != want {
		t.Errorf("%d messages, want %d", len(msgs), want)
	}
}

func TestFinishTwiceIsNoOp(t *testing.T) {
	ctx, _, out := newTestLogger(t)
	_, a := Start(ctx, "a")
	a.Fail(errors.New("x"))
	a.End()
	a.Finish(nil)
	a.Fail(errors.New("y"))
	if n := len(decode(t, out.String())); n != 2 {
		t.Errorf("%d messages, want 2 (start, one end)", n)
	}
	if !a.Finished() {
		t.Error("Finished() = false after Fail")
	}
}

func TestStartTaskIgnoresCurrentAction(t *testing.T) {
	ctx, _, out := newTestLogger(t)
	ctx = WithWorkflow(ctx, "wf")
	ctx, a := Start(ctx, "outer")
	_, task := StartTask(ctx, "fresh")
	task.End()
	a.End()
	msgs := decode(t, out.String())
	if msgs[1]["task_uuid"] == msgs[0]["task_uuid"] {
		t.Error("StartTask reused the current task uuid")
	}
	if got := msgs[1].levelKey(); !strings.HasSuffix(got, " /1") {
		t.Errorf("new task starts at %s, want /1", got)
	}
	if msgs[1]["workflow_id"] != "wf" {
		t.Errorf("new task lost the workflow id: %v", msgs[1])
	}
}

type customErr struct{}

func (customErr) Error() string { return "custom" }

func TestExceptionNames(t *testing.T) {
	_, statErr := os.Stat("/does/not/exist")
	tests := []struct {
		err  error
		want string
	}{
		{errors.New("x"), "errors.errorString"},
		{fmt.Errorf("wrapped: %w", errors.New("x")), "errors.errorString"},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", customErr{})), "github.com/skeinhq/skein/action.customErr"},
		{statErr, "io/fs.PathError"},
		{fmt.Errorf("loading: %w", statErr), "io/fs.PathError"},
		{fmt.Errorf("no wrap %v", customErr{}), "errors.errorString"},
		{fmt.Errorf("two: %w %w", customErr{}, fs.ErrNotExist), "fmt.wrapErrors"},
		{errors.Join(customErr{}), "errors.joinError"},
		{context.Canceled, "errors.errorString"},
		{context.DeadlineExceeded, "context.deadlineExceededError"},
	}
	for _, tt := range tests {
		if got := exceptionName(tt.err); got != tt.want {
			t.Errorf("exceptionName(%#v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestRunRecordsPanicAndRepanics(t *testing.T) {
	ctx, _, out := newTestLogger(t)
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the original panic value", r)
			}
		}()
		_ = Run(ctx, "job", func(context.Context) error { panic("boom") })
	}()
	msgs := decode(t, out.String())
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want start, traceback, failure:\n%s", len(msgs), out)
	}
	tb, end := msgs[1], msgs[2]
	if tb["message_type"] != "eliot:traceback" || !strings.Contains(tb["traceback"].(string), "TestRunRecordsPanicAndRepanics") {
		t.Errorf("traceback message %v lacks the stack", tb)
	}
	if end["action_status"] != "failed" || end["exception"] != "string" || end["reason"] != "boom" || end["panic"] != true {
		t.Errorf("end message %v, want failed/string/boom/panic", end)
	}
}

func TestPreserveRunsOnceAfterParentEnds(t *testing.T) {
	ctx, _, out := newTestLogger(t)
	ctx, cancel := context.WithCancel(ctx)
	ctx, a := Start(ctx, "parent")
	var sawCancel bool
	run := Preserve(ctx, func(ctx context.Context) error {
		sawCancel = ctx.Err() != nil
		Log(ctx, "later")
		return errors.New("late failure")
	})
	a.End()
	cancel()
	if !run() {
		t.Fatal("first call did not run")
	}
	if run() {
		t.Fatal("second call ran again")
	}
	if sawCancel {
		t.Error("the preserved context carried the parent's cancellation")
	}
	var got []string
	for _, m := range decode(t, out.String()) {
		got = append(got, fmt.Sprintf("%s %v%v", strings.Fields(m.levelKey())[1], m["action_type"], m["message_type"]))
	}
	want := "/1 parent<nil> /3 parent<nil> /2/1 eliot:remote_task<nil> /2/2 <nil>later /2/3 eliot:remote_task<nil>"
	if strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
}

func TestContinueMalformed(t *testing.T) {
	ctx, _, out := newTestLogger(t)
	_, a, err := Continue(ctx, "not-a-task-id", "")
	if err == nil || a != nil {
		t.Fatalf("Continue of a malformed id = %v, %v; want an error and no action", a, err)
	}
	if out.String() != "" {
		t.Errorf("a malformed id wrote %q", out)
	}
}

func TestResumeContinuesSlots(t *testing.T) {
	ctx, _, out := newTestLogger(t)
	id := TaskID{UUID: "00000000-0000-4000-8000-0000000000aa", Level: []int{3}}
	_, a := Resume(ctx, id, "job:send", 4)
	a.Log("x")
	a.End()
	msgs := decode(t, out.String())
	if got := msgs[0].levelKey() + " " + msgs[1].levelKey(); got != id.UUID+" /3/5 "+id.UUID+" /3/6" {
		t.Errorf("levels %q", got)
	}
	if msgs[1]["action_type"] != "job:send" {
		t.Errorf("end %v", msgs[1])
	}
}

func TestWorkflowOnEveryMessage(t *testing.T) {
	ctx, l, out := newTestLogger(t)
	ctx = WithWorkflow(ctx, "wf-1")
	log := slog.New(l.Handler(nil))
	ctx, a := Start(ctx, "a")
	a.Log("m")
	log.InfoContext(ctx, "r")
	Log(WithWorkflow(WithLogger(context.Background(), l), "wf-2"), "alone")
	a.End()
	for i, m := range decode(t, out.String()) {
		want := "wf-1"
		if m["message_type"] == "alone" {
			want = "wf-2"
		}
		if m["workflow_id"] != want {
			t.Errorf("message %d %v: workflow_id %v, want %s", i, m, m["workflow_id"], want)
		}
	}
	if Workflow(ctx) != "wf-1" || a.Workflow() != "wf-1" {
		t.Error("Workflow(ctx) lost the id")
	}
}

// TestActionIsItsContext checks that an action passes on deadlines,
// cancellation and values of the context it was started in.
func TestActionIsItsContext(t *testing.T) {
	type key struct{}
	base, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	ctx, a := Start(WithLogger(base, New(&syncBuffer{}, nil)), "a")
	if ctx.Value(key{}) != "v" {
		t.Error("value lost")
	}
	derived, stop := context.WithCancel(ctx)
	defer stop()
	cancel()
	<-derived.Done() // cancellation flows through the action
	if ctx.Err() == nil {
		t.Error("action context not cancelled")
	}
	if FromContext(derived) != a {
		t.Error("FromContext of a derived context is not the action")
	}
	//lint:ignore SA1012 FromContext documents that a nil context has no action
	if FromContext(context.Background()) != nil || FromContext(nil) != nil {
		t.Error("FromContext found an action where there is none")
	}
}

func TestDefaultLoggerAndSetDefault(t *testing.T) {
	prev := Default()
	defer SetDefault(prev)
	out := &syncBuffer{}
	SetDefault(New(out, nil))
	Log(context.Background(), "to default")
	if !strings.Contains(out.String(), `"message_type":"to default"`) {
		t.Errorf("default logger got %q", out)
	}
}
