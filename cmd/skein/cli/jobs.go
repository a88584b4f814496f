package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/open"
	"github.com/skeinhq/skein/tree"
)

func init() { register("jobs", newJobsCmd) }

// The log file every jobs command shares by default: skein serve appends
// to it, skein enqueue logs the job's action there, skein jobs show reads
// the job's tree from it.
const (
	defaultLogFile = "skein.log"
	envLog         = "SKEIN_LOG"
)

// defaultLog returns $SKEIN_LOG, else skein.log.
func defaultLog() string { return firstNonEmpty(os.Getenv(envLog), defaultLogFile) }

// storeFlag adds --store to a command.
func storeFlag(cmd *cobra.Command, dsn *string) {
	cmd.Flags().StringVar(dsn, "store", "", "store DSN: a SQLite path, sqlite://PATH or postgres://… (default $"+open.EnvStore+" or "+open.DefaultDSN+")")
}

// openJobStore opens an existing store whose schema is the one this skein
// knows. A SQLite file that does not exist is an error, not a new store.
func openJobStore(ctx context.Context, dsn string) (store.Store, open.Target, error) {
	dsn = firstNonEmpty(dsn, os.Getenv(open.EnvStore))
	target, err := open.Parse(dsn)
	if err != nil {
		return nil, target, &ExitError{Code: 2, Err: err}
	}
	if target.Driver == open.SQLite {
		if _, err := os.Stat(target.Path); errors.Is(err, os.ErrNotExist) {
			abs, _ := filepath.Abs(target.Path)
			return nil, target, fmt.Errorf("store %s: no such file (%s): start `skein serve` in this directory first, or name the store with --store or $%s", target, abs, open.EnvStore)
		}
	}
	st, err := open.Open(ctx, dsn, nil)
	if err != nil {
		return nil, target, fmt.Errorf("opening store %s: %w", target, err)
	}
	if err := st.CheckSchema(ctx); err != nil {
		_ = st.Close()
		return nil, target, fmt.Errorf("store %s: %w", target, schemaError(err))
	}
	return st, target, nil
}

// schemaError returns the *store.SchemaVersionError inside err, whose text
// says what to do, or err.
func schemaError(err error) error {
	var sve *store.SchemaVersionError
	if errors.As(err, &sve) {
		return sve
	}
	return err
}

func newJobsCmd(_ context.Context, stdio IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs list|show|retry|cancel|wait|stats",
		Short: "Inspect and act on the jobs of a store",
		Long: `jobs reads and changes the jobs of a store: the one skein serve runs (--store,
else $` + open.EnvStore + `, else ` + open.DefaultDSN + `).

  skein jobs list                 newest jobs first; --state, --queue, --kind, --workflow filter
  skein jobs show ID              one job: attempts, errors, timings, result, and its tree from the log
  skein jobs wait ID...           wait until the jobs are final; exit 0 when all completed
  skein jobs retry ID...          run final or waiting jobs again, now
  skein jobs cancel ID...         cancel jobs that have not started
  skein jobs stats                jobs per queue and state, and the dispatchers`,
	}
	cmd.AddCommand(newJobsListCmd(stdio), newJobsShowCmd(stdio), newJobsWaitCmd(stdio),
		newJobsRetryCmd(stdio, "retry"), newJobsRetryCmd(stdio, "cancel"), newJobsStatsCmd(stdio))
	return cmd
}

// ---- list ----

type jobsListOptions struct {
	store    string
	states   []string
	queues   []string
	kinds    []string
	workflow string
	limit    int
	asJSON   bool
}

func newJobsListCmd(stdio IO) *cobra.Command {
	o := &jobsListOptions{}
	cmd := &cobra.Command{
		Use:   "list [--state S] [--queue Q] [--kind K] [--workflow ID] [--limit N] [--json]",
		Short: "List jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runJobsList(cmd.Context(), stdio, o)
		},
	}
	storeFlag(cmd, &o.store)
	f := cmd.Flags()
	f.StringSliceVar(&o.states, "state", nil, "only jobs in these `STATES` (comma-separated or repeated): scheduled, available, running, retryable, completed, cancelled, discarded")
	f.StringSliceVar(&o.queues, "queue", nil, "only jobs of these `QUEUES`")
	f.StringSliceVar(&o.kinds, "kind", nil, "only jobs of these `KINDS`")
	f.StringVar(&o.workflow, "workflow", "", "only jobs of this workflow `ID`")
	f.IntVar(&o.limit, "limit", 50, "at most `N` jobs (up to 10000)")
	f.BoolVar(&o.asJSON, "json", false, "print a JSON array of the jobs, every field")
	return cmd
}

func runJobsList(ctx context.Context, stdio IO, o *jobsListOptions) error {
	filter := store.JobFilter{Queues: o.queues, Kinds: o.kinds, WorkflowID: o.workflow}
	for _, s := range o.states {
		st, err := store.ParseState(strings.TrimSpace(s))
		if err != nil {
			return &ExitError{Code: 2, Err: fmt.Errorf("--state: %w", err)}
		}
		filter.States = append(filter.States, st)
	}
	if o.limit < 1 || o.limit > store.MaxListLimit {
		return &ExitError{Code: 2, Err: fmt.Errorf("--limit %d: want 1 to %d", o.limit, store.MaxListLimit)}
	}
	st, target, err := openJobStore(ctx, o.store)
	if err != nil {
		return err
	}
	defer st.Close()
	page, err := st.ListJobs(ctx, &store.ListJobsParams{Filter: filter, Limit: o.limit})
	if err != nil {
		return fmt.Errorf("listing jobs of store %s: %w", target, err)
	}
	if o.asJSON {
		jobs := page.Jobs
		if jobs == nil {
			jobs = []*store.Job{}
		}
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(jobs)
	}
	if len(page.Jobs) == 0 {
		fmt.Fprintln(stdio.Out, "no jobs")
		return nil
	}
	tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tQUEUE\tSTATE\tATTEMPT\tCREATED\tLAST ERROR")
	now := time.Now()
	for _, j := range page.Jobs {
		last := ""
		if n := len(j.Errors); n > 0 && j.State != store.StateCompleted {
			last, _, _ = strings.Cut(j.Errors[n-1].Error, "\n")
			last = clipText(last, 60)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", j.ID, j.Kind, j.Queue, j.State, j.Attempt, j.MaxAttempts, ago(now, j.CreatedAt), last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.Next != "" {
		fmt.Fprintf(stdio.Err, "(more jobs: raise --limit, or filter)\n")
	}
	return nil
}

// ago writes a time as a short age: "12s ago", "3h ago", else a date.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + (-d).Round(time.Second).String()
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return t.UTC().Format("2006-01-02")
}

func clipText(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// ---- show ----

type jobsShowOptions struct {
	store     string
	logs      []string
	asJSON    bool
	noTree    bool
	color     string
	allFields bool
}

func newJobsShowCmd(stdio IO) *cobra.Command {
	o := &jobsShowOptions{}
	cmd := &cobra.Command{
		Use:   "show ID [--log FILE]... [--json] [--no-tree]",
		Short: "Show one job: state, attempts, errors, timings, result and its tree",
		Long: `show prints one job as the store holds it, then its task tree rebuilt from the
log: the job's action, each attempt inside it, and whatever the handlers
logged. The log is --log (repeatable, globs allowed), else $` + envLog + `, else ` + defaultLogFile + `.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runJobsShow(cmd.Context(), stdio, o, args[0])
		},
	}
	storeFlag(cmd, &o.store)
	f := cmd.Flags()
	f.StringArrayVar(&o.logs, "log", nil, "read the job's tree from this log `FILE` (repeatable; globs allowed; default $"+envLog+" or "+defaultLogFile+")")
	f.BoolVar(&o.asJSON, "json", false, "print the job as JSON (no tree)")
	f.BoolVar(&o.noTree, "no-tree", false, "do not read the log")
	f.StringVar(&o.color, "color", "auto", "colour the tree: always, auto (on a terminal) or never")
	f.BoolVar(&o.allFields, "all-fields", false, "show every field in the tree (by default workflow_id, host and process are left out)")
	return cmd
}

func runJobsShow(ctx context.Context, stdio IO, o *jobsShowOptions, id string) error {
	switch o.color {
	case "always", "auto", "never":
	default:
		return &ExitError{Code: 2, Err: fmt.Errorf("--color %q: want always, auto or never", o.color)}
	}
	st, target, err := openJobStore(ctx, o.store)
	if err != nil {
		return err
	}
	defer st.Close()
	j, err := st.GetJob(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return &ExitError{Code: 1, Err: fmt.Errorf("job %s: not found in store %s", id, target)}
	}
	if err != nil {
		return fmt.Errorf("reading job %s from store %s: %w", id, target, err)
	}
	if o.asJSON {
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(j)
	}
	writeJob(stdio.Out, j)
	if o.noTree {
		return nil
	}
	logs := o.logs
	if len(logs) == 0 {
		logs = []string{defaultLog()}
	}
	color := o.color == "always" || (o.color == "auto" && writerIsTerminal(stdio.Out) && os.Getenv("NO_COLOR") == "")
	return showJobTree(stdio, j.ID, logs, color, o.allFields)
}

func writeJob(w io.Writer, j *store.Job) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05.000Z")
	}
	fmt.Fprintf(tw, "job:\t%s\n", j.ID)
	fmt.Fprintf(tw, "kind:\t%s\n", j.Kind)
	fmt.Fprintf(tw, "state:\t%s\n", j.State)
	fmt.Fprintf(tw, "queue:\t%s (priority %d)\n", j.Queue, j.Priority)
	fmt.Fprintf(tw, "workflow:\t%s\n", j.WorkflowID)
	fmt.Fprintf(tw, "attempts:\t%d of %d\n", j.Attempt, j.MaxAttempts)
	if j.Timeout > 0 {
		fmt.Fprintf(tw, "timeout:\t%s\n", j.Timeout)
	}
	if j.UniqueKey != "" {
		fmt.Fprintf(tw, "unique key:\t%s\n", j.UniqueKey)
	}
	fmt.Fprintf(tw, "args:\t%s\n", clipText(string(j.Args), 400))
	if m := strings.TrimSpace(string(j.Metadata)); m != "" && m != "{}" {
		fmt.Fprintf(tw, "metadata:\t%s\n", clipText(m, 400))
	}
	fmt.Fprintf(tw, "created:\t%s\n", ts(j.CreatedAt))
	fmt.Fprintf(tw, "scheduled:\t%s\n", ts(j.ScheduledAt))
	if !j.AttemptedAt.IsZero() {
		by := ""
		if j.AttemptedBy != "" {
			by = fmt.Sprintf(" by dispatcher %s, agent %s", j.AttemptedBy, j.AttemptedAgent)
		}
		fmt.Fprintf(tw, "attempted:\t%s%s\n", ts(j.AttemptedAt), by)
	}
	if !j.FinalizedAt.IsZero() {
		took := ""
		if !j.AttemptedAt.IsZero() {
			took = fmt.Sprintf(" (last attempt took %s)", j.FinalizedAt.Sub(j.AttemptedAt).Round(time.Millisecond))
		}
		fmt.Fprintf(tw, "finalized:\t%s%s\n", ts(j.FinalizedAt), took)
	}
	if len(j.Result) > 0 {
		fmt.Fprintf(tw, "result:\t%s\n", clipText(string(j.Result), 1000))
	}
	_ = tw.Flush()
	if len(j.Errors) > 0 {
		fmt.Fprintf(w, "errors:\n")
		for _, e := range j.Errors {
			flags := ""
			if e.Interrupted {
				flags += " interrupted"
			}
			if e.Reassigned {
				flags += " reassigned"
			}
			fmt.Fprintf(w, "  attempt %d at %s%s:\n", e.Attempt, ts(e.At), flags)
			for _, line := range strings.Split(strings.TrimRight(e.Error, "\n"), "\n") {
				fmt.Fprintf(w, "    %s\n", line)
			}
			if e.Stack != "" {
				lines := strings.Split(strings.TrimRight(e.Stack, "\n"), "\n")
				if len(lines) > 12 {
					lines = append(lines[:12], fmt.Sprintf("… (%d more lines: skein jobs show --json)", len(lines)-12))
				}
				for _, line := range lines {
					fmt.Fprintf(w, "    | %s\n", line)
				}
			}
		}
	}
}

// showJobTree prints the part of the log's task trees that is the job's:
// its skein:job action (attempts included) or, when the log does not
// hold that action's start, every task in which the job logged.
func showJobTree(stdio IO, jobID string, patterns []string, color, allFields bool) error {
	var files []string
	for _, p := range patterns {
		matches, err := filepath.Glob(p)
		if err != nil {
			return &ExitError{Code: 2, Err: fmt.Errorf("--log %q: %w", p, err)}
		}
		if len(matches) == 0 {
			matches = []string{p}
		}
		files = append(files, matches...)
	}
	isJob := func(m *tree.Message) bool {
		v, ok := m.Get("job_id")
		return ok && v.Kind() == tree.String && v.Str() == jobID
	}
	b := tree.NewBuilder(nil)
	var tasks []*tree.Task
	var missing []string
	// A progress bar on a terminal when the logs are big.
	var total int64
	for _, name := range files {
		if fi, err := os.Stat(name); err == nil {
			total += fi.Size()
		}
	}
	var bar *progressbar.ProgressBar
	if total >= 32<<20 && writerIsTerminal(stdio.Err) {
		bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(stdio.Err),
			progressbar.OptionSetDescription("reading the log"), progressbar.OptionShowBytes(true),
			progressbar.OptionClearOnFinish(), progressbar.OptionSetWidth(30))
		defer func() { _ = bar.Finish() }()
	}
	for _, name := range files {
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			missing = append(missing, name)
			continue
		}
		if err != nil {
			return fmt.Errorf("reading log: %w", err)
		}
		var in io.Reader = f
		if bar != nil {
			pr := progressbar.NewReader(f, bar)
			in = &pr
		}
		r, err := tree.NewReader(in, &tree.ReaderConfig{Name: name, SkipBlank: true})
		if err != nil {
			_ = f.Close()
			return fmt.Errorf("reading log: %w", err)
		}
		for {
			m, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			var le *tree.LineError
			if errors.As(err, &le) {
				continue // not an Eliot message: skein tree reports those
			}
			if err != nil {
				_ = f.Close()
				return fmt.Errorf("reading log %s: %w", name, err)
			}
			t, err := b.Add(m)
			if err != nil {
				continue
			}
			if t != nil && t.Any(isJob) {
				tasks = append(tasks, t)
			}
		}
		_ = f.Close()
	}
	for _, t := range b.Flush() {
		if t.Any(isJob) {
			tasks = append(tasks, t)
		}
	}
	w := stdio.Out
	if len(missing) == len(files) {
		fmt.Fprintf(w, "\ntree: no log (%s does not exist): name the log with --log\n", strings.Join(missing, ", "))
		return nil
	}
	if len(tasks) == 0 {
		fmt.Fprintf(w, "\ntree: the job logged nothing in %s (its log is elsewhere? name it with --log)\n", strings.Join(files, ", "))
		return nil
	}
	hidden := append(slices.Clone(tree.DefaultHiddenFields), "workflow_id", "host", "process")
	if allFields {
		hidden = nil
	}
	r, err := tree.NewTextRenderer(w, &tree.TextConfig{Color: color, HiddenFields: hidden})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\ntree (%s):\n", strings.Join(files, ", "))
	for _, t := range tasks {
		sub := t
		if n := findJobNode(t.Root, jobID); n != nil {
			sub = &tree.Task{UUID: t.UUID, Root: n, Complete: t.Complete}
		}
		if err := r.Render(sub); err != nil {
			return err
		}
		if !t.Complete {
			fmt.Fprintf(w, "(task %s is not complete: the job is still running, or part of its log is in another file)\n\n", t.UUID)
		}
	}
	return r.Flush()
}

// findJobNode returns the skein:job action node of jobID, or nil.
func findJobNode(n *tree.Node, jobID string) *tree.Node {
	if n.IsAction() && n.ActionType() == "skein:job" {
		for _, m := range []*tree.Message{n.Start, n.End} {
			if m == nil {
				continue
			}
			if v, ok := m.Get("job_id"); ok && v.Str() == jobID {
				return n
			}
		}
	}
	for _, c := range n.Children {
		if c.IsAction() {
			if found := findJobNode(c, jobID); found != nil {
				return found
			}
		}
	}
	return nil
}

// ---- wait ----

type jobsWaitOptions struct {
	store   string
	timeout time.Duration
	poll    time.Duration
}

func newJobsWaitCmd(stdio IO) *cobra.Command {
	o := &jobsWaitOptions{}
	cmd := &cobra.Command{
		Use:   "wait ID... [--timeout 1m]",
		Short: "Wait until jobs are final; exit 0 when all completed",
		Long: `wait returns once every job named is completed, cancelled or discarded. It
prints each job's final state; the exit status is 0 when all completed, 1 when
any was cancelled or discarded or the timeout passed first.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runJobsWait(cmd.Context(), stdio, o, args)
		},
	}
	storeFlag(cmd, &o.store)
	cmd.Flags().DurationVar(&o.timeout, "timeout", time.Minute, "give up after this `DURATION` (0: wait forever)")
	cmd.Flags().DurationVar(&o.poll, "poll", 100*time.Millisecond, "how often to read the jobs' states")
	_ = cmd.Flags().MarkHidden("poll")
	return cmd
}

func runJobsWait(ctx context.Context, stdio IO, o *jobsWaitOptions, ids []string) error {
	st, target, err := openJobStore(ctx, o.store)
	if err != nil {
		return err
	}
	defer st.Close()
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	pending := slices.Clone(ids)
	failed := 0
	waitTimeout := func() error {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &ExitError{Code: 1, Err: fmt.Errorf("%d job(s) not final after %s: %s", len(pending), o.timeout, strings.Join(pending, ", "))}
		}
		return &ExitError{Code: 1, Err: fmt.Errorf("interrupted; %d job(s) not final: %s", len(pending), strings.Join(pending, ", "))}
	}
	tick := time.NewTicker(max(o.poll, time.Millisecond))
	defer tick.Stop()
	tty := writerIsTerminal(stdio.Err)
	start := time.Now()
	status := func(clear bool) {
		if !tty {
			return
		}
		if clear {
			fmt.Fprint(stdio.Err, "\r\x1b[K")
			return
		}
		fmt.Fprintf(stdio.Err, "\r\x1b[Kwaiting for %d of %d job(s)… %s", len(pending), len(ids), time.Since(start).Round(time.Second))
	}
	defer status(true)
	for {
		rest := pending[:0]
		for _, id := range pending {
			j, err := st.GetJob(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				return &ExitError{Code: 1, Err: fmt.Errorf("job %s: not found in store %s", id, target)}
			}
			if err != nil {
				if ctx.Err() != nil {
					return waitTimeout()
				}
				return fmt.Errorf("reading job %s from store %s: %w", id, target, err)
			}
			if !j.State.Final() {
				rest = append(rest, id)
				continue
			}
			status(true)
			fmt.Fprintf(stdio.Out, "%s %s\n", j.ID, j.State)
			if j.State != store.StateCompleted {
				failed++
			}
		}
		pending = rest
		if len(pending) == 0 {
			break
		}
		status(false)
		select {
		case <-ctx.Done():
			return waitTimeout()
		case <-tick.C:
		}
	}
	if failed > 0 {
		return &ExitError{Code: 1}
	}
	return nil
}

// ---- retry, cancel ----

func newJobsRetryCmd(stdio IO, verb string) *cobra.Command {
	var dsn, logPath string
	short := "Run jobs again now: final ones, and those waiting for a retry or their time"
	if verb == "cancel" {
		short = "Cancel jobs that are scheduled, available or waiting for a retry"
	}
	cmd := &cobra.Command{
		Use:   verb + " ID...",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runJobsChange(cmd.Context(), stdio, dsn, logPath, verb, args)
		},
	}
	storeFlag(cmd, &dsn)
	if verb == "cancel" {
		cmd.Flags().StringVar(&logPath, "log", "", "log `FILE` where the end of each cancelled job's action is written; \"none\": nowhere (default $"+envLog+" or "+defaultLogFile+")")
	}
	return cmd
}

func runJobsChange(ctx context.Context, stdio IO, dsn, logPath, verb string, ids []string) error {
	st, target, err := openJobStore(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	// The jobs before, so that only the jobs this call cancelled get their
	// job action ended (a job a dispatcher cancelled meanwhile has another
	// slot), and unknown ids fail before any change.
	before := map[string]*store.Job{}
	for _, id := range ids {
		j, err := st.GetJob(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return &ExitError{Code: 1, Err: fmt.Errorf("job %s: not found in store %s", id, target)}
		}
		if err != nil {
			return fmt.Errorf("reading job %s from store %s: %w", id, target, err)
		}
		before[id] = j
	}
	// The log is opened first: a cancel must not happen when the end of
	// its job action cannot be written.
	want := store.StateAvailable
	var logCtx context.Context
	if verb == "cancel" {
		want = store.StateCancelled
		logPath = firstNonEmpty(logPath, defaultLog())
		logger := action.New(io.Discard, nil)
		if logPath != "none" {
			f, err := action.OpenFile(logPath)
			if err != nil {
				return fmt.Errorf("opening log file: %w", err)
			}
			defer f.Close()
			logger = action.New(f, &action.Options{Fields: action.ProcessFields(), ErrorOutput: stdio.Err})
		}
		logCtx = action.WithLogger(ctx, logger)
	}
	var jobs []*store.Job
	if verb == "retry" {
		jobs, err = st.RetryJobs(ctx, ids)
	} else {
		jobs, err = st.CancelJobs(ctx, ids)
	}
	if err != nil {
		return fmt.Errorf("jobs %s in store %s: %w", verb, target, err)
	}
	unchanged := 0
	ended := map[string]bool{} // an id given twice is ended once
	for _, j := range jobs {
		if j.State == want {
			if b := before[j.ID]; verb == "cancel" && b.State != store.StateCancelled && b.Slot == j.Slot && !ended[j.ID] {
				ended[j.ID] = true
				skein.EndJobAction(logCtx, j, store.StateCancelled, errors.New("cancelled with skein jobs cancel"))
			}
			fmt.Fprintf(stdio.Out, "%s %s\n", j.ID, j.State)
			continue
		}
		unchanged++
		fmt.Fprintf(stdio.Err, "%s: left %s\n", j.ID, j.State)
	}
	if unchanged > 0 {
		return &ExitError{Code: 1}
	}
	return nil
}

// ---- stats ----

func newJobsStatsCmd(stdio IO) *cobra.Command {
	var dsn string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stats [--json]",
		Short: "Count jobs per queue and state, and list the dispatchers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runJobsStats(cmd.Context(), stdio, dsn, asJSON)
		},
	}
	storeFlag(cmd, &dsn)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the statistics as JSON")
	return cmd
}

func runJobsStats(ctx context.Context, stdio IO, dsn string, asJSON bool) error {
	st, target, err := openJobStore(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	queues, err := st.Stats(ctx)
	if err != nil {
		return fmt.Errorf("reading statistics of store %s: %w", target, err)
	}
	ds, err := st.ListDispatchers(ctx)
	if err != nil {
		return fmt.Errorf("listing dispatchers of store %s: %w", target, err)
	}
	if asJSON {
		if queues == nil {
			queues = []*store.QueueStats{}
		}
		if ds == nil {
			ds = []*store.Dispatcher{}
		}
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Store       string              `json:"store"`
			Queues      []*store.QueueStats `json:"queues"`
			Dispatchers []*store.Dispatcher `json:"dispatchers"`
		}{target.String(), queues, ds})
	}
	now := time.Now()
	fmt.Fprintf(stdio.Out, "store: %s\n\n", target)
	tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', tabwriter.AlignRight)
	header := "QUEUE\t"
	for _, s := range store.States {
		header += strings.ToUpper(string(s)) + "\t"
	}
	fmt.Fprintln(tw, header+"OLDEST WAITING\t")
	total := map[store.State]int64{}
	for _, q := range queues {
		line := q.Queue + "\t"
		for _, s := range store.States {
			line += fmt.Sprintf("%d\t", q.Counts[s])
			total[s] += q.Counts[s]
		}
		oldest := "-"
		if !q.OldestWaiting.IsZero() {
			oldest = now.Sub(q.OldestWaiting).Round(time.Second).String()
		}
		fmt.Fprintln(tw, line+oldest+"\t")
	}
	if len(queues) > 1 {
		line := "(all)\t"
		for _, s := range store.States {
			line += fmt.Sprintf("%d\t", total[s])
		}
		fmt.Fprintln(tw, line+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(queues) == 0 {
		fmt.Fprintln(stdio.Out, "(no jobs)")
	}
	fmt.Fprintln(stdio.Out)
	if len(ds) == 0 {
		fmt.Fprintln(stdio.Out, "dispatchers: none registered (is skein serve running?)")
		return nil
	}
	tw = tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DISPATCHER\tHOST\tPID\tSTATE\tHEARTBEAT\tAGENTS")
	for _, d := range ds {
		state := "alive"
		if !d.DeadAt.IsZero() {
			state = "dead"
		}
		agents := make([]string, 0, len(d.Agents))
		for _, a := range d.Agents {
			agents = append(agents, fmt.Sprintf("%s(%d)", a.Name, a.Size))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", d.ID, d.Host, d.PID, state, ago(now, d.HeartbeatAt), strings.Join(agents, " "))
	}
	return tw.Flush()
}
