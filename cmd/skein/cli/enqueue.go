package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/kinds"
	"github.com/skeinhq/skein/store"
)

func init() { register("enqueue", newEnqueueCmd) }

type enqueueOptions struct {
	store       string
	log         string
	queue       string
	in          time.Duration
	at          string
	priority    int
	maxAttempts int
	timeout     time.Duration
	unique      string
	workflow    string
	force       bool
	asJSON      bool
}

const enqueueLong = `enqueue stores one job and prints its id.

ARGS-JSON is the job's arguments, a JSON object ({} when omitted). For the
exec kind, everything after -- is the command instead:

  skein enqueue exec -- echo hello
  skein enqueue exec '{"command": ["sh", "-c", "date; uptime"], "env": {"TZ": "UTC"}}'
  skein enqueue http '{"url": "http://127.0.0.1:8080/hook", "method": "POST", "json": {"id": 7}}'
  skein enqueue send_email '{"to": "a@example.com"}' --queue mail --in 10m

The kind must be a built-in one (exec, http) or one that a dispatcher
registered in the store runs (--force skips that check). The job's action is
appended to the log (--log, else $` + envLog + `, else ` + defaultLogFile + `), where skein jobs
show finds it with the attempts that skein serve logs.`

func newEnqueueCmd(_ context.Context, stdio IO) *cobra.Command {
	o := &enqueueOptions{}
	cmd := &cobra.Command{
		Use:   "enqueue KIND [ARGS-JSON | -- COMMAND...]",
		Short: "Enqueue a job and print its id",
		Long:  enqueueLong,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEnqueue(cmd, stdio, o, args, cmd.ArgsLenAtDash())
		},
	}
	storeFlag(cmd, &o.store)
	f := cmd.Flags()
	f.StringVar(&o.log, "log", "", "append the job's action to this log `FILE`; \"none\": do not log (default $"+envLog+" or "+defaultLogFile+")")
	f.StringVar(&o.queue, "queue", "", "queue `NAME` (default \"default\")")
	f.DurationVar(&o.in, "in", 0, "run the job after this `DURATION` (e.g. 30s, 2h)")
	f.StringVar(&o.at, "at", "", "run the job at this `TIME` (RFC 3339, e.g. 2026-01-02T15:04:05Z; without a zone: local time)")
	f.IntVar(&o.priority, "priority", 0, "priority: smaller runs first")
	f.IntVar(&o.maxAttempts, "max-attempts", 0, "attempts the job gets (default 25)")
	f.DurationVar(&o.timeout, "timeout", 0, "timeout of each attempt (default none: the kind's own bound)")
	f.StringVar(&o.unique, "unique", "", "unique `KEY`: no new job while another job with this key is waiting or running")
	f.StringVar(&o.workflow, "workflow", "", "workflow `ID` of the job (default a new one); the job id starts with it")
	f.BoolVar(&o.force, "force", false, "enqueue even if no dispatcher known to the store runs the kind")
	f.BoolVar(&o.asJSON, "json", false, "print the stored job as JSON instead of its id")
	return cmd
}

// rawArgs are job arguments given as JSON text.
type rawArgs struct {
	kind string
	raw  json.RawMessage
}

func (a rawArgs) Kind() string                 { return a.kind }
func (a rawArgs) MarshalJSON() ([]byte, error) { return a.raw, nil }

func runEnqueue(cmd *cobra.Command, stdio IO, o *enqueueOptions, args []string, dash int) error {
	ctx := cmd.Context()
	kind := args[0]
	usage := func(format string, a ...any) error { return &ExitError{Code: 2, Err: fmt.Errorf(format, a...)} }
	if kind == "" || strings.ContainsAny(kind, " \t\n") {
		return usage("kind %q: want a name such as exec, http or send_email", kind)
	}
	var raw json.RawMessage
	switch {
	case dash >= 0:
		if dash != 1 {
			return usage("want KIND -- COMMAND..., with nothing between the kind and --")
		}
		if kind != kinds.KindExec {
			return usage("-- COMMAND... is for kind exec only; give %s its arguments as JSON", kind)
		}
		command := args[1:]
		if len(command) == 0 {
			return usage("no command after --")
		}
		raw, _ = json.Marshal(kinds.ExecArgs{Command: command})
	case len(args) > 2:
		return usage("too many arguments: want KIND [ARGS-JSON] (quote the JSON), or exec -- COMMAND...")
	case len(args) == 2:
		var err error
		if raw, err = parseArgsJSON(args[1]); err != nil {
			return usage("%w", err)
		}
	default:
		raw = json.RawMessage(`{}`)
	}
	if err := validateBuiltinArgs(kind, raw); err != nil {
		return usage("%w", err)
	}

	opts := &skein.EnqueueOpts{Queue: o.queue, Priority: o.priority, MaxAttempts: o.maxAttempts,
		Timeout: o.timeout, UniqueKey: o.unique, RunIn: o.in}
	if o.in < 0 {
		return usage("--in %s: want a duration of 0 or more", o.in)
	}
	if o.timeout < 0 {
		return usage("--timeout %s: want a duration of 0 or more", o.timeout)
	}
	if o.maxAttempts < 0 {
		return usage("--max-attempts %d: want at least 1", o.maxAttempts)
	}
	if o.at != "" {
		if o.in != 0 {
			return usage("--at and --in: give one")
		}
		t, err := parseAt(o.at)
		if err != nil {
			return usage("--at: %w", err)
		}
		opts.RunAt = t
	}
	if o.workflow != "" {
		if len(o.workflow) > 200 || strings.ContainsFunc(o.workflow, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return usage("--workflow %q: want up to 200 printable characters without spaces", o.workflow)
		}
	}

	st, target, err := openJobStore(ctx, o.store)
	if err != nil {
		return err
	}
	defer st.Close()
	if !o.force {
		if err := checkKind(ctx, st, kind); err != nil {
			return &ExitError{Code: 1, Err: err}
		}
	}

	// The job's action goes to the shared log.
	logPath := firstNonEmpty(o.log, defaultLog())
	var logger *action.Logger
	if logPath == "none" {
		logger = action.New(io.Discard, nil)
	} else {
		f, err := action.OpenFile(logPath)
		if err != nil {
			return fmt.Errorf("opening log file: %w", err)
		}
		defer f.Close()
		logger = action.New(f, &action.Options{Fields: action.ProcessFields(), ErrorOutput: stdio.Err})
	}
	client, err := skein.NewClient(st, &skein.ClientConfig{Logger: logger})
	if err != nil {
		return err
	}
	ctx = action.WithLogger(ctx, logger)
	if o.workflow != "" {
		ctx = action.WithWorkflow(ctx, o.workflow)
	}
	res, err := client.Enqueue(ctx, rawArgs{kind: kind, raw: raw}, opts)
	if err != nil {
		if errors.Is(err, store.ErrSchemaVersion) {
			return fmt.Errorf("store %s: %w", target, err)
		}
		return err
	}
	if res.Duplicate {
		fmt.Fprintf(stdio.Err, "not enqueued: job %s (%s) holds unique key %q\n", res.Job.ID, res.Job.State, o.unique)
	}
	if o.asJSON {
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(res.Job)
	}
	fmt.Fprintln(stdio.Out, res.Job.ID)
	return nil
}

// parseArgsJSON checks that s is one JSON object and names the position of
// the first mistake.
func parseArgsJSON(s string) (json.RawMessage, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	if err == nil && dec.More() {
		off := dec.InputOffset()
		return nil, fmt.Errorf("ARGS-JSON: %s: more after the JSON value", position(s, off+int64(len(s[off:])-len(strings.TrimLeft(s[off:], " \t\r\n")))))
	}
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("ARGS-JSON is not valid JSON: %s: %v", position(s, se.Offset-1), se)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("ARGS-JSON is not valid JSON: %s: unexpected end", position(s, int64(len(s))))
		}
		return nil, fmt.Errorf("ARGS-JSON is not valid JSON: %w", err)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, fmt.Errorf("ARGS-JSON must be a JSON object ({...}), not %s", jsonKind(v))
	}
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		return nil, fmt.Errorf("ARGS-JSON: %w", err)
	}
	return b.Bytes(), nil
}

// position writes the byte index i of s as "line L, column C", the
// column counted in characters from 1.
func position(s string, i int64) string {
	i = min(max(i, 0), int64(len(s)))
	line, col := 1, 1
	for _, r := range s[:i] {
		if r == '\n' {
			line++
			col = 1
			continue
		}
		col++
	}
	return fmt.Sprintf("line %d, column %d", line, col)
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// validateBuiltinArgs checks the args of the built-in kinds field by field.
func validateBuiltinArgs(kind string, raw json.RawMessage) error {
	decode := func(v any) error {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return fmt.Errorf("args of kind %s: field %q: want %s, got JSON %s", kind, te.Field, te.Type, te.Value)
			}
			msg := strings.TrimPrefix(err.Error(), "json: ")
			return fmt.Errorf("args of kind %s: %s", kind, msg)
		}
		return nil
	}
	switch kind {
	case kinds.KindExec:
		var a kinds.ExecArgs
		if err := decode(&a); err != nil {
			return err
		}
		if err := a.Validate(); err != nil {
			return fmt.Errorf("args of kind exec: %w", err)
		}
	case kinds.KindHTTP:
		var a kinds.HTTPArgs
		if err := decode(&a); err != nil {
			return err
		}
		if err := a.Validate(); err != nil {
			return fmt.Errorf("args of kind http: %w", err)
		}
	}
	return nil
}

// checkKind fails unless kind is built in or run by a dispatcher
// registered in the store (an agent without a kind list runs every kind).
func checkKind(ctx context.Context, st store.Store, kind string) error {
	if slices.Contains(kinds.Names, kind) {
		return nil
	}
	ds, err := st.ListDispatchers(ctx)
	if err != nil {
		return fmt.Errorf("checking kind %q: listing dispatchers: %w", kind, err)
	}
	known := slices.Clone(kinds.Names)
	for _, d := range ds {
		for _, a := range d.Agents {
			if len(a.Kinds) == 0 || slices.Contains(a.Kinds, kind) {
				return nil
			}
			known = append(known, a.Kinds...)
		}
	}
	slices.Sort(known)
	known = slices.Compact(known)
	return fmt.Errorf("unknown kind %q: no dispatcher registered in the store runs it (known kinds: %s); start its worker first, or pass --force", kind, strings.Join(known, ", "))
}

// parseAt reads an RFC 3339 time, or one without a zone in local time.
func parseAt(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339, e.g. 2026-01-02T15:04:05Z", s)
}
