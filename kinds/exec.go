package kinds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
)

// Environment variables the exec kind gives each child.
const (
	EnvTaskID     = "SKEIN_TASK_ID"
	EnvWorkflowID = "SKEIN_WORKFLOW_ID"
	EnvJobID      = "SKEIN_JOB_ID"
	EnvJobAttempt = "SKEIN_JOB_ATTEMPT"
)

// Defaults of ExecConfig.
const (
	DefaultExecTimeout   = time.Hour
	DefaultKillGrace     = 5 * time.Second
	DefaultMaxLineBytes  = 64 << 10
	DefaultExecTailBytes = 4 << 10
)

// ExecArgs are the arguments of an exec job.
type ExecArgs struct {
	// Command is the program and its arguments; the program is looked up
	// in PATH when it has no slash. No shell is involved: use
	// ["sh", "-c", "..."] for one. Required.
	Command []string `json:"command"`
	// Dir is the working directory. Defaults to the dispatcher's.
	Dir string `json:"dir,omitempty"`
	// Env adds (or replaces) environment variables. Defaults to none.
	Env map[string]string `json:"env,omitempty"`
	// Stdin is written to the child's standard input. Defaults to empty
	// (the child reads /dev/null).
	Stdin string `json:"stdin,omitempty"`
}

// Kind implements skein.JobArgs.
func (ExecArgs) Kind() string { return KindExec }

// Validate reports what is wrong with the args, naming the field.
func (a ExecArgs) Validate() error {
	if len(a.Command) == 0 || a.Command[0] == "" {
		return errors.New(`field "command" is empty: want the program and its arguments, e.g. ["echo", "hello"]`)
	}
	for k := range a.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf(`field "env": %q is not a variable name`, k)
		}
	}
	return nil
}

// ExecConfig configures the exec kind. The zero value means every default.
type ExecConfig struct {
	// Env is the environment every child starts from, as "KEY=value"
	// strings. Defaults to the dispatcher's own environment (os.Environ).
	Env []string
	// KillGrace is how long a child's process group has between SIGTERM
	// (when the job's context ends) and SIGKILL, and how long output is
	// still read after the child exited while a grandchild holds its pipes.
	// Defaults to 5 s.
	KillGrace time.Duration
	// Logger receives, as they are, the lines the children print that are
	// Eliot messages. Defaults to the Logger of the attempt's context
	// ([action.LoggerFrom]), so that they land beside the job's messages.
	Logger *action.Logger
	// MaxLineBytes is the longest output line kept; the rest of a longer
	// line is dropped and counted in a "dropped_bytes" field. Defaults to
	// 64 KiB.
	MaxLineBytes int
	// TailBytes is how much of the end of standard output (kept in the
	// job's result) and of standard error (kept in the error of a failed
	// attempt) is kept. Defaults to 4 KiB.
	TailBytes int
	// Timeout bounds a run whose job has no timeout of its own. Defaults
	// to 1 h; negative means no bound.
	Timeout time.Duration
}

func (c *ExecConfig) withDefaults() (ExecConfig, error) {
	var o ExecConfig
	if c != nil {
		o = *c
	}
	if o.Env == nil {
		o.Env = os.Environ()
	}
	if o.KillGrace == 0 {
		o.KillGrace = DefaultKillGrace
	}
	if o.MaxLineBytes == 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.TailBytes == 0 {
		o.TailBytes = DefaultExecTailBytes
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultExecTimeout
	}
	switch {
	case o.KillGrace < 0:
		return o, fmt.Errorf("field KillGrace is negative (%s)", o.KillGrace)
	case o.MaxLineBytes < 0:
		return o, fmt.Errorf("field MaxLineBytes is %d, want at least 1", o.MaxLineBytes)
	case o.TailBytes < 0:
		return o, fmt.Errorf("field TailBytes is %d, want at least 1", o.TailBytes)
	}
	return o, nil
}

// Exec runs exec jobs. Create it with [NewExec]; it is safe for concurrent
// use.
type Exec struct {
	cfg ExecConfig
}

// NewExec returns the exec kind configured by cfg (nil: every default).
func NewExec(cfg *ExecConfig) (*Exec, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("configuring exec kind: %w", err)
	}
	return &Exec{cfg: c}, nil
}

// ExecResult is the result an exec job records when it completes.
type ExecResult struct {
	// ExitCode is 0.
	ExitCode int `json:"exit_code"`
	// Duration of the run, in seconds.
	Duration float64 `json:"duration"`
	// Stdout is the end of standard output (ExecConfig.TailBytes).
	Stdout string `json:"stdout,omitempty"`
}

// ExitError is the error of an attempt whose child exited with a status
// other than 0 or was killed by a signal.
type ExitError struct {
	// Program is the command's program (Command[0]).
	Program string
	// Code is the exit status, -1 when a signal killed the process.
	Code int
	// Signal names the signal that killed the process ("" when it exited).
	Signal string
	// Stderr is the end of standard error.
	Stderr string
}

func (e *ExitError) Error() string {
	var b strings.Builder
	if e.Signal != "" {
		fmt.Fprintf(&b, "command %s killed by signal %s", e.Program, e.Signal)
	} else {
		fmt.Fprintf(&b, "command %s exited with status %d", e.Program, e.Code)
	}
	if s := strings.TrimRight(e.Stderr, "\n"); s != "" {
		b.WriteString("; stderr:\n")
		b.WriteString(s)
	}
	return b.String()
}

// Run runs one attempt of an exec job; it is the kind's handler.
func (e *Exec) Run(ctx context.Context, job *skein.Job[ExecArgs]) error {
	args := job.Args
	if err := args.Validate(); err != nil {
		return skein.JobDiscard(fmt.Errorf("exec job %s: %w", job.ID, err))
	}
	var ownTimeout bool
	if _, ok := ctx.Deadline(); !ok && e.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.cfg.Timeout)
		defer cancel()
		ownTimeout = true
	}

	logger := e.cfg.Logger
	if logger == nil {
		logger = action.LoggerFrom(ctx)
	}
	// The child continues the attempt's task at a slot of its own.
	taskID := action.SerializeTaskID(ctx)
	var slot action.TaskID
	if taskID != "" {
		slot, _ = action.ParseTaskID(taskID)
	}
	used := new(atomic.Bool)
	stdoutTail := &tail{max: e.cfg.TailBytes}
	stderrTail := &tail{max: e.cfg.TailBytes}
	outStdout := &output{ctx: ctx, logger: logger, msgType: "exec:stdout", slot: slot, used: used}
	outStderr := &output{ctx: ctx, logger: logger, msgType: "exec:stderr", slot: slot, used: used}
	stdout := &lineWriter{max: e.cfg.MaxLineBytes, tail: stdoutTail, out: outStdout.line}
	stderr := &lineWriter{max: e.cfg.MaxLineBytes, tail: stderrTail, out: outStderr.line}

	cmd := exec.CommandContext(ctx, args.Command[0], args.Command[1:]...)
	cmd.Dir = args.Dir
	cmd.Env = e.env(args, job, taskID)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	if args.Stdin != "" {
		cmd.Stdin = strings.NewReader(args.Stdin)
	}
	setProcessGroup(cmd)
	cmd.Cancel = func() error { return signalGroup(cmd.Process, sigTerm) }
	cmd.WaitDelay = e.cfg.KillGrace

	start := time.Now()
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			// The same command on the same host will fail the same way.
			return skein.JobDiscard(fmt.Errorf("starting command %s: %w", args.Command[0], err))
		}
		return fmt.Errorf("starting command %s: %w", args.Command[0], err)
	}
	action.Log(ctx, "exec:started", slog.Any("command", args.Command), slog.Int("pid", cmd.Process.Pid))
	err := cmd.Wait()
	stdout.flush()
	stderr.flush()
	duration := time.Since(start)
	if ctx.Err() != nil {
		// Whatever the group left behind ends with the job.
		_ = signalGroup(cmd.Process, sigKill)
	}
	if slot.UUID != "" && !used.Load() {
		fillSlot(logger, slot, action.Workflow(ctx))
	}
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	action.Log(ctx, "exec:exited", slog.Int("exit_code", code), slog.Float64("duration", duration.Seconds()))

	if err == nil {
		_ = skein.RecordResult(ctx, ExecResult{ExitCode: 0, Duration: duration.Seconds(), Stdout: stdoutTail.String()})
		return nil
	}
	var xe *exec.ExitError
	if errors.As(err, &xe) {
		ee := &ExitError{Program: args.Command[0], Code: code, Signal: signalOf(cmd.ProcessState), Stderr: stderrTail.String()}
		if ctx.Err() != nil {
			if ownTimeout && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("command %s ran past the exec timeout (%s) and was stopped: %w", args.Command[0], e.cfg.Timeout, ee)
			}
			return fmt.Errorf("command %s stopped (%v): %w", args.Command[0], context.Cause(ctx), ee)
		}
		return ee
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		// The child exited 0, but something it started kept its output open.
		_ = skein.RecordResult(ctx, ExecResult{ExitCode: 0, Duration: duration.Seconds(), Stdout: stdoutTail.String()})
		action.Log(ctx, "exec:output_left_open", slog.String("reason", "a process the command started kept its output open; stopped reading after the kill grace"))
		return nil
	}
	return fmt.Errorf("running command %s: %w", args.Command[0], err)
}

// env builds the child's environment: the base, the job's Env, then the
// skein variables, each name once.
func (e *Exec) env(args ExecArgs, job *skein.Job[ExecArgs], taskID string) []string {
	set := map[string]string{}
	keys := make([]string, 0, len(args.Env))
	for k, v := range args.Env {
		set[k] = v
		keys = append(keys, k)
	}
	slices.Sort(keys)
	skeinVars := [][2]string{
		{EnvTaskID, taskID},
		{EnvWorkflowID, job.WorkflowID},
		{EnvJobID, job.ID},
		{EnvJobAttempt, strconv.Itoa(job.Attempt)},
	}
	for _, kv := range skeinVars {
		set[kv[0]] = kv[1]
	}
	out := make([]string, 0, len(e.cfg.Env)+len(set))
	for _, kv := range e.cfg.Env {
		name, _, _ := strings.Cut(kv, "=")
		if _, replaced := set[name]; !replaced {
			out = append(out, kv)
		}
	}
	for _, k := range keys {
		out = append(out, k+"="+args.Env[k])
	}
	for _, kv := range skeinVars {
		out = append(out, kv[0]+"="+kv[1])
	}
	return out
}

// fillSlot writes a message at the slot reserved for the child when the
// child logged nothing there, so that the attempt's action stays complete.
func fillSlot(l *action.Logger, slot action.TaskID, workflow string) {
	m := map[string]any{
		"task_uuid":    slot.UUID,
		"task_level":   slot.Level,
		"timestamp":    float64(time.Now().UnixMicro()) / 1e6,
		"message_type": "exec:task_id_unused",
		"reason":       "the command logged nothing under " + EnvTaskID,
	}
	if workflow != "" {
		m["workflow_id"] = workflow
	}
	b, err := json.Marshal(m)
	if err == nil {
		_ = l.WriteMessage(b)
	}
}

// lineWriter splits a child's output into lines of at most max bytes and
// hands each to out, with the number of bytes cut from it.
type lineWriter struct {
	max  int
	tail *tail
	out  func(line []byte, dropped int)

	line    []byte
	dropped int
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	w.tail.add(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.add(p)
			break
		}
		w.add(p[:i])
		w.emit()
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) add(p []byte) {
	room := w.max - len(w.line)
	if len(p) > room {
		w.line = append(w.line, p[:room]...)
		w.dropped += len(p) - room
		return
	}
	w.line = append(w.line, p...)
}

func (w *lineWriter) flush() {
	if len(w.line) > 0 || w.dropped > 0 {
		w.emit()
	}
}

// probe reads the position of a message a child printed.
type probe struct {
	TaskUUID  string `json:"task_uuid"`
	TaskLevel []int  `json:"task_level"`
}

func (w *lineWriter) emit() {
	w.out(bytes.TrimRight(w.line, "\r"), w.dropped)
	w.line, w.dropped = w.line[:0], 0
}

// output turns the lines of one stream of a child into messages.
type output struct {
	ctx     context.Context
	logger  *action.Logger
	msgType string
	slot    action.TaskID
	used    *atomic.Bool
}

func (o *output) line(line []byte, dropped int) {
	if dropped == 0 && looksLikeMessage(line) {
		if err := o.logger.WriteMessage(line); err == nil {
			if o.slot.UUID != "" && !o.used.Load() {
				var p probe
				if json.Unmarshal(line, &p) == nil && strings.EqualFold(p.TaskUUID, o.slot.UUID) && under(p.TaskLevel, o.slot.Level) {
					o.used.Store(true)
				}
			}
			return
		}
	}
	attrs := []slog.Attr{slog.String("line", string(line))}
	if dropped > 0 {
		attrs = append(attrs, slog.Int("dropped_bytes", dropped))
	}
	action.Log(o.ctx, o.msgType, attrs...)
}

// looksLikeMessage is a cheap test before the JSON check.
func looksLikeMessage(line []byte) bool {
	t := bytes.TrimSpace(line)
	return len(t) > 0 && t[0] == '{' && bytes.Contains(t, []byte(`"task_uuid"`)) && bytes.Contains(t, []byte(`"task_level"`))
}

// under reports whether level is below prefix in the tree.
func under(level, prefix []int) bool {
	return len(level) > len(prefix) && slices.Equal(level[:len(prefix)], prefix)
}
