package kinds_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/tree"
)

// childEnv makes the test binary act as a child command (see runChild).
const childEnv = "SKEIN_KINDS_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	goleak.VerifyTestMain(m)
}

// runChild is what the test binary does when run as an exec job's command.
func runChild(mode string) int {
	switch mode {
	case "echo":
		fmt.Println("hello")
		fmt.Fprintln(os.Stderr, "a warning")
		fmt.Print("no newline at end")
		return 0
	case "env":
		for _, k := range []string{"SKEIN_TASK_ID", "SKEIN_WORKFLOW_ID", "SKEIN_JOB_ID", "SKEIN_JOB_ATTEMPT", "EXTRA"} {
			fmt.Printf("%s=%s\n", k, os.Getenv(k))
		}
		return 0
	case "eliot":
		// A child that logs with skein into the task it was given.
		logger := action.New(os.Stdout, nil)
		ctx := action.WithWorkflow(action.WithLogger(context.Background(), logger), os.Getenv("SKEIN_WORKFLOW_ID"))
		ctx, a, err := action.Continue(ctx, os.Getenv("SKEIN_TASK_ID"), "child:work")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		action.Log(ctx, "child:step", slog.String("n", "1"))
		fmt.Println("plain line between messages")
		a.End()
		return 0
	case "fail":
		for i := range 50 {
			fmt.Fprintf(os.Stderr, "stderr line %d\n", i)
		}
		return 7
	case "hang":
		fmt.Println("started")
		select {}
	case "long":
		fmt.Println(strings.Repeat("x", 300))
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown child mode", mode)
	return 2
}

// syncBuffer is a log destination safe to read while written.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// attemptCtx returns a context inside a "skein:attempt" action of a new
// task, as a dispatcher gives a handler, and the action.
func attemptCtx(t *testing.T, logs io.Writer) (context.Context, *action.Action, *action.Logger) {
	t.Helper()
	logger := action.New(logs, nil)
	ctx := action.WithWorkflow(action.WithLogger(context.Background(), logger), "wf-1")
	ctx, a := action.Start(ctx, "skein:attempt")
	return ctx, a, logger
}

func job[T skein.JobArgs](args T) *skein.Job[T] {
	return &skein.Job[T]{JobRow: &store.Job{ID: "wf-1_" + action.NewID(), WorkflowID: "wf-1", Attempt: 1, MaxAttempts: 3}, Args: args}
}

// buildTasks rebuilds the trees of a log.
func buildTasks(t *testing.T, log string) []*tree.Task {
	t.Helper()
	r, err := tree.NewReader(strings.NewReader(log), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := tree.NewBuilder(nil)
	var out []*tree.Task
	for {
		m, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading log: %v\n%s", err, log)
		}
		task, err := b.Add(m)
		if err != nil {
			t.Fatalf("building tree: %v\n%s", err, log)
		}
		if task != nil {
			out = append(out, task)
		}
	}
	for _, task := range b.Flush() {
		t.Errorf("task %s is incomplete:\n%s", task.UUID, render(t, task))
		out = append(out, task)
	}
	return out
}

// outline is a compact text form of a node: "type(children...)".
func outline(n *tree.Node) string {
	if n.Message != nil {
		s := n.Message.MessageType
		if v, ok := n.Message.Get("line"); ok {
			s += "=" + v.Str()
		}
		return s
	}
	parts := make([]string, 0, len(n.Children))
	for _, c := range n.Children {
		parts = append(parts, outline(c))
	}
	return n.ActionType() + "/" + n.Status() + "(" + strings.Join(parts, ", ") + ")"
}

func render(t *testing.T, task *tree.Task) string {
	var b bytes.Buffer
	r, err := tree.NewTextRenderer(&b, &tree.TextConfig{ASCII: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Render(task)
	_ = r.Flush()
	return b.String()
}
