package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"testing"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/kinds"
	"github.com/skeinhq/skein/store"
)

// execLines is how many lines the child prints per op.
const execLines = 10000

// execRunners run `seq 1 N` and turn each output line into a log message
// written to w: skein's exec kind (an exec:stdout message in the attempt's
// action), and what a team writes by hand with os/exec, bufio.Scanner and
// slog's JSONHandler. "os/exec Output" only collects the output: the floor.
var execRunners = []struct {
	name string
	run  func(ctx context.Context, w io.Writer, n int) error
}{
	{"skein", func(ctx context.Context, w io.Writer, n int) error {
		logger := action.New(w, nil)
		e, err := kinds.NewExec(&kinds.ExecConfig{Logger: logger})
		if err != nil {
			return err
		}
		ctx, a := action.Start(action.WithLogger(ctx, logger), "skein:attempt")
		job := &skein.Job[kinds.ExecArgs]{JobRow: &store.Job{ID: "wf_1", WorkflowID: "wf", Attempt: 1},
			Args: kinds.ExecArgs{Command: []string{"seq", "1", fmt.Sprint(n)}}}
		err = e.Run(ctx, job)
		a.Finish(err)
		return err
	}},
	{"os/exec+slog", func(ctx context.Context, w io.Writer, n int) error {
		log := slog.New(slog.NewJSONHandler(w, nil))
		cmd := exec.CommandContext(ctx, "seq", "1", fmt.Sprint(n))
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			log.InfoContext(ctx, "exec:stdout", "line", sc.Text())
		}
		return cmd.Wait()
	}},
	{"os/exec Output", func(ctx context.Context, _ io.Writer, n int) error {
		_, err := exec.CommandContext(ctx, "seq", "1", fmt.Sprint(n)).Output()
		return err
	}},
}

// BenchmarkExecOutput measures running a command that prints 10,000 lines
// and logging each line: per op, one child process.
func BenchmarkExecOutput(b *testing.B) {
	ctx := context.Background()
	for _, r := range execRunners {
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := r.run(ctx, io.Discard, execLines); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*execLines), "ns/line")
		})
	}
}

// TestExecWorkIsTheSame checks that the runners that log write one
// message per line, with the line.
func TestExecWorkIsTheSame(t *testing.T) {
	for _, r := range execRunners[:2] {
		var buf bytes.Buffer
		if err := r.run(context.Background(), &buf, 100); err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		if got := strings.Count(buf.String(), `"line":"`); got != 100 {
			t.Errorf("%s: %d line messages, want 100", r.name, got)
		}
		if !strings.Contains(buf.String(), `"line":"100"`) {
			t.Errorf("%s: no message for the last line", r.name)
		}
	}
}
