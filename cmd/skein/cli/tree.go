package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/skeinhq/skein/tree"
)

func init() { register("tree", newTreeCmd) }

// treeOptions holds the flags of skein tree. Field names follow eliot-tree's
// config keys where one exists.
type treeOptions struct {
	taskUUID      string
	ignored       []string
	raw           bool
	localTimezone bool
	color         string
	ascii         bool
	noColorTree   bool
	theme         string
	fieldLimit    int
	selects       []string
	start, end    string
	config        string
	showDefault   bool
	showCurrent   bool

	style      string
	output     string
	workflow   string
	tasks      []string
	failed     bool
	stats      bool
	strict     bool
	follow     bool
	idle       time.Duration
	poll       time.Duration
	progress   string
	maxBadShow int

	themeOverrides json.RawMessage // as written, to print it in its order
}

const treeLong = `Rebuild the task trees of Eliot-format JSON-lines logs (skein's own and
Python Eliot's) and print them as eliot-tree does.

FILEs are read in order as one stream of messages ("-" or none: standard
input); gzip-compressed files are detected by their content. A task that
spans several files (a client log and a server log, rotated files) is joined.
Each task is printed as soon as all of its messages have been seen;
incomplete tasks follow at the end in the order they were first seen.

Filters that select messages (-u, --select, --start, --end) act before the
trees are built, exactly as in eliot-tree: the ancestors of a selected message
show as <unnamed>. Filters that select tasks (--workflow, --task, --failed)
keep whole trees.

Lines that are not Eliot messages are skipped and counted; a summary naming
the first few (file:line) goes to standard error and the exit status stays 0.
With --strict the first bad line stops the run with eliot-tree's message and
exit status 1.`

func newTreeCmd(ctx context.Context, stdio IO) *cobra.Command {
	o := &treeOptions{}
	cmd := &cobra.Command{
		Use:   "tree [flags] [FILE ...]",
		Short: "Rebuild and print task trees from Eliot JSON-lines logs",
		Long:  treeLong,
		Example: `  skein tree app.log worker-*.log
  skein tree --workflow 7f3c… web.log worker.log.1.gz worker.log
  skein tree --failed --output html *.log > failures.html
  tail -f app.log | skein tree --follow --idle 30s
  skein tree --style eliot-tree --select 'action_type == ` + "`\"db:query\"`" + `' app.log`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTree(cmd.Context(), cmd, stdio, o, args)
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.StringVarP(&o.taskUUID, "task-uuid", "u", "", "select the messages of the task with this `UUID`")
	f.StringArrayVarP(&o.ignored, "ignore-task-key", "i", nil, "hide field `KEY` (repeatable); replaces the default hidden set "+strings.Join(tree.DefaultHiddenFields, ", "))
	f.BoolVar(&o.raw, "raw", false, "print timestamps and durations as numbers, not dates and seconds")
	f.BoolVar(&o.localTimezone, "local-timezone", false, "print timestamps in the local time zone instead of UTC")
	f.StringVar(&o.color, "color", "auto", "colour the output: always, auto (when standard output is a terminal) or never")
	f.BoolVar(&o.ascii, "ascii", false, "draw the tree with ASCII characters")
	f.BoolVar(&o.noColorTree, "no-color-tree", false, "do not colour the tree lines")
	f.StringVar(&o.theme, "theme", "auto", "colour theme: auto (from $COLORFGBG), dark or light")
	f.IntVarP(&o.fieldLimit, "field-limit", "l", tree.DefaultFieldLimit, "cut values to `LENGTH` characters or their first line; 0 prints whole values")
	f.StringArrayVar(&o.selects, "select", nil, "keep only messages for which the JMESPath `QUERY` is true (repeatable: all must hold)")
	f.StringVar(&o.start, "start", "", "keep only messages at or after this ISO 8601 `TIME` (UTC if no zone given)")
	f.StringVar(&o.end, "end", "", "keep only messages before this ISO 8601 `TIME` (UTC if no zone given)")
	f.StringVar(&o.config, "config", "", "read default options from this JSON `FILE` (default ~/.config/eliot-tree/config.json if it exists)")
	f.BoolVar(&o.showDefault, "show-default-config", false, "print the default configuration as JSON and exit")
	f.BoolVar(&o.showCurrent, "show-current-config", false, "print the effective configuration as JSON and exit")
	f.StringVar(&o.style, "style", "default", "value style: default (JSON literals: true, null, 1e+16) or eliot-tree (Python repr: True, None; byte-for-byte eliot-tree output)")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text, json (one task per line) or html (one self-contained page)")
	f.StringVar(&o.workflow, "workflow", "", "keep whole tasks in which a message carries this workflow `ID` (workflow_id, or a job_id \"ID_…\")")
	f.StringArrayVar(&o.tasks, "task", nil, "keep whole tasks in which some message matches the JMESPath `QUERY` (repeatable: all must match)")
	f.BoolVar(&o.failed, "failed", false, "keep only tasks that contain a failed action")
	f.BoolVar(&o.stats, "stats", false, "print per-action_type statistics (count, failed, duration p50/p95/max) instead of the trees")
	f.BoolVar(&o.strict, "strict", false, "stop at the first bad line as eliot-tree does (exit status 1)")
	f.BoolVarP(&o.follow, "follow", "f", false, "keep reading files as they grow (surviving rotation and truncation) until interrupted")
	f.DurationVar(&o.idle, "idle", 0, "with --follow, print an incomplete task once it has had no new message for `DURATION` (0: only at exit)")
	f.StringVar(&o.progress, "progress", "auto", "progress bar on standard error: auto (when it is a terminal), always or never")
	f.DurationVar(&o.poll, "poll", 250*time.Millisecond, "with --follow, how often to check files for new data")
	_ = f.MarkHidden("poll")
	f.IntVar(&o.maxBadShow, "bad-lines-shown", 5, "number of bad lines named in the summary")
	return cmd
}

// usageErr is a command-line mistake: exit status 2.
func usageErr(format string, a ...any) error {
	return &ExitError{Code: 2, Err: fmt.Errorf(format, a...)}
}

func runTree(ctx context.Context, cmd *cobra.Command, stdio IO, o *treeOptions, args []string) error {
	if o.showDefault {
		return writeTreeConfig(stdio.Out, defaultTreeConfig(), nil)
	}
	if err := o.loadConfig(cmd.Flags()); err != nil {
		return err
	}
	if o.showCurrent {
		cur := defaultTreeConfig()
		o.fillConfig(cur)
		cur["print_current_config"] = true
		return writeTreeConfig(stdio.Out, cur, o.themeOverrides)
	}
	p, err := newTreePipeline(o, stdio)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		args = []string{"-"}
	}
	// Nearly everything allocated is garbage within a task's lifetime and
	// the live heap is small (the open tasks), so collecting less often
	// buys speed for little memory. GOGC, when set, still decides.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(200))
	}
	if pool, ok := p.render.(*renderPool); ok {
		defer pool.Close() // stops its goroutines on early returns
	}
	return p.run(ctx, args)
}

// ---- configuration (eliot-tree compatible) ----

var treeConfigKeys = []string{"ignored_fields", "human_readable", "utc_timestamps", "color", "ascii",
	"colorize_tree", "theme_name", "field_limit", "print_current_config"}

func defaultTreeConfig() map[string]any {
	return map[string]any{
		"ignored_fields": []string{}, "human_readable": true, "utc_timestamps": true, "color": "auto",
		"ascii": false, "colorize_tree": true, "theme_name": "auto", "field_limit": tree.DefaultFieldLimit,
		"print_current_config": false,
	}
}

func (o *treeOptions) fillConfig(c map[string]any) {
	ign := o.ignored
	if ign == nil {
		ign = []string{}
	}
	c["ignored_fields"] = ign
	c["human_readable"] = !o.raw
	c["utc_timestamps"] = !o.localTimezone
	c["color"] = o.color
	c["ascii"] = o.ascii
	c["colorize_tree"] = !o.noColorTree
	c["theme_name"] = o.theme
	c["field_limit"] = o.fieldLimit
}

// writeTreeConfig prints the configuration as eliot-tree does: JSON with
// two-space indent, keys in eliot-tree's order, no final newline.
func writeTreeConfig(w io.Writer, c map[string]any, overrides json.RawMessage) error {
	var b bytes.Buffer
	b.WriteString("{")
	keys := append([]string(nil), treeConfigKeys...)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",")
		}
		v, err := json.MarshalIndent(c[k], "  ", "  ")
		if err != nil {
			return fmt.Errorf("encoding config key %s: %w", k, err)
		}
		fmt.Fprintf(&b, "\n  %q: %s", k, v)
	}
	if overrides != nil {
		var v bytes.Buffer
		if err := json.Indent(&v, overrides, "  ", "  "); err != nil {
			return fmt.Errorf("encoding theme_overrides: %w", err)
		}
		fmt.Fprintf(&b, ",\n  %q: %s", "theme_overrides", v.Bytes())
	}
	b.WriteString("\n}")
	_, err := w.Write(b.Bytes())
	return err
}

// loadConfig applies the config file's values to the flags not given on
// the command line. The file is --config, else
// ~/.config/eliot-tree/config.json when it exists.
func (o *treeOptions) loadConfig(fs *pflag.FlagSet) error {
	path := o.config
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil
		}
		p := filepath.Join(home, ".config", "eliot-tree", "config.json")
		if _, err := os.Stat(p); err != nil {
			return nil
		}
		path = p
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return usageErr("reading config: %w", err)
	}
	var c map[string]json.RawMessage
	if err := json.Unmarshal(data, &c); err != nil {
		return usageErr("reading config %s: %w", path, err)
	}
	set := func(flag string, key string, dst any) error {
		raw, ok := c[key]
		if !ok || fs.Changed(flag) {
			return nil
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return usageErr("config %s: key %s: %w", path, key, err)
		}
		return nil
	}
	var human, utc, colorTree *bool
	errs := []error{
		set("ignore-task-key", "ignored_fields", &o.ignored),
		set("raw", "human_readable", &human),
		set("local-timezone", "utc_timestamps", &utc),
		set("color", "color", &o.color),
		set("ascii", "ascii", &o.ascii),
		set("no-color-tree", "colorize_tree", &colorTree),
		set("theme", "theme_name", &o.theme),
		set("field-limit", "field_limit", &o.fieldLimit),
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if human != nil {
		o.raw = !*human
	}
	if utc != nil {
		o.localTimezone = !*utc
	}
	if colorTree != nil {
		o.noColorTree = !*colorTree
	}
	if raw, ok := c["theme_overrides"]; ok {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return usageErr("config %s: key theme_overrides: %w", path, err)
		}
		o.themeOverrides = raw
	}
	return nil
}

// applyOverrides sets theme slots from eliot-tree's [fg, bg, [attrs]] form.
func applyOverrides(th *tree.Theme, raw json.RawMessage) error {
	var overrides map[string]json.RawMessage
	if raw != nil {
		if err := json.Unmarshal(raw, &overrides); err != nil {
			return usageErr("config: theme_overrides: %w", err)
		}
	}
	for k, raw := range overrides {
		slot, ok := th.Slot(k)
		if !ok {
			return usageErr("config: theme_overrides: unknown theme key %q (known: %s)", k, strings.Join(tree.ThemeKeys, ", "))
		}
		var parts []json.RawMessage
		if err := json.Unmarshal(raw, &parts); err != nil {
			return usageErr("config: theme_overrides.%s: want [fg, bg, [attrs]]: %w", k, err)
		}
		var c tree.Color
		str := func(r json.RawMessage) (string, error) {
			var v any
			if err := json.Unmarshal(r, &v); err != nil {
				return "", err
			}
			switch x := v.(type) {
			case nil:
				return "", nil
			case string:
				return x, nil
			case float64:
				return strconv.Itoa(int(x)), nil
			}
			return "", fmt.Errorf("not a colour: %s", r)
		}
		var err error
		if len(parts) > 0 {
			if c.FG, err = str(parts[0]); err != nil {
				return usageErr("config: theme_overrides.%s: %w", k, err)
			}
		}
		if len(parts) > 1 {
			if c.BG, err = str(parts[1]); err != nil {
				return usageErr("config: theme_overrides.%s: %w", k, err)
			}
		}
		if len(parts) > 2 {
			var attrs []any
			if err := json.Unmarshal(parts[2], &attrs); err != nil {
				return usageErr("config: theme_overrides.%s: attributes: %w", k, err)
			}
			for _, a := range attrs {
				c.Attrs = append(c.Attrs, fmt.Sprint(a))
			}
		}
		*slot = c
	}
	return th.Validate()
}

// ---- time parsing (ISO 8601 as the Python iso8601 package reads it) ----

var isoRE = regexp.MustCompile(`^(\d{4})-?(\d{1,2})-?(\d{1,2})(?:[T ](\d{2})(?::?(\d{2}))?(?::?(\d{2})(?:[.,](\d+))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$`)

func parseISO(s string) (time.Time, error) {
	m := isoRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return time.Time{}, fmt.Errorf("%q is not an ISO 8601 date", s)
	}
	num := func(i int) int {
		if m[i] == "" {
			return 0
		}
		n, _ := strconv.Atoi(m[i])
		return n
	}
	ns := 0
	if frac := m[7]; frac != "" {
		frac = (frac + "000000000")[:9]
		ns, _ = strconv.Atoi(frac)
		ns = ns / 1000 * 1000 // microseconds, truncated
	}
	loc := time.UTC
	if z := m[8]; z != "" && z != "Z" {
		sign := 1
		if z[0] == '-' {
			sign = -1
		}
		z = strings.ReplaceAll(z[1:], ":", "")
		h, _ := strconv.Atoi(z[:2])
		mi := 0
		if len(z) >= 4 {
			mi, _ = strconv.Atoi(z[2:4])
		}
		loc = time.FixedZone(m[8], sign*(h*3600+mi*60))
	}
	t := time.Date(num(1), time.Month(num(2)), num(3), num(4), num(5), num(6), ns, loc)
	if t.Month() != time.Month(num(2)) || t.Day() != num(3) {
		return time.Time{}, fmt.Errorf("%q is not a valid date", s)
	}
	return t, nil
}

// ---- the pipeline ----

type treePipeline struct {
	o        *treeOptions
	stdio    IO
	msgPred  func(*tree.Message) bool // per-message filters (eliot-tree's)
	taskPred func(*tree.Task) bool    // whole-task filters
	render   tree.Renderer
	// newRenderer makes a text or JSON renderer writing to w (nil for
	// HTML, which is one page written in order).
	newRenderer func(w io.Writer) (tree.Renderer, func() []string)
	exceptions  func() []string
	stats       *tree.Stats
	builder     *tree.Builder
	bad         []*tree.LineError
	badCount    int
	strict      error // set when --strict stops the run
}

func newTreePipeline(o *treeOptions, stdio IO) (*treePipeline, error) {
	p := &treePipeline{o: o, stdio: stdio}
	switch o.color {
	case "always", "auto", "never":
	default:
		return nil, usageErr("--color: %q is not always, auto or never", o.color)
	}
	switch o.theme {
	case "auto", "dark", "light":
	default:
		return nil, usageErr("--theme: %q is not auto, dark or light", o.theme)
	}
	var style tree.Style
	switch o.style {
	case "default":
	case "eliot-tree":
		style = tree.StyleEliotTree
	default:
		return nil, usageErr("--style: %q is not default or eliot-tree", o.style)
	}
	if o.fieldLimit < 0 {
		return nil, usageErr("--field-limit: %d is negative", o.fieldLimit)
	}
	if o.idle < 0 || (o.idle > 0 && !o.follow) {
		return nil, usageErr("--idle needs --follow and a positive duration")
	}
	switch o.progress {
	case "auto", "always", "never":
	default:
		return nil, usageErr("--progress: %q is not auto, always or never", o.progress)
	}

	// Per-message filters, in eliot-tree's order.
	var preds []func(*tree.Message) bool
	if o.taskUUID != "" {
		id := o.taskUUID
		preds = append(preds, func(m *tree.Message) bool { return m.TaskUUID == id })
	}
	if o.start != "" {
		t, err := parseISO(o.start)
		if err != nil {
			return nil, usageErr("--start: %w", err)
		}
		us := t.UnixMicro()
		preds = append(preds, func(m *tree.Message) bool { v, ok := m.Micros(); return ok && v >= us })
	}
	if o.end != "" {
		t, err := parseISO(o.end)
		if err != nil {
			return nil, usageErr("--end: %w", err)
		}
		us := t.UnixMicro()
		preds = append(preds, func(m *tree.Message) bool { v, ok := m.Micros(); return ok && v < us })
	}
	for _, s := range o.selects {
		q, err := tree.CompileQuery(s)
		if err != nil {
			return nil, usageErr("--select: %w", err)
		}
		preds = append(preds, q.Match)
	}
	if len(preds) > 0 {
		p.msgPred = func(m *tree.Message) bool {
			for _, f := range preds {
				if !f(m) {
					return false
				}
			}
			return true
		}
	}

	// Whole-task filters.
	var tpreds []func(*tree.Task) bool
	if o.workflow != "" {
		match := tree.WorkflowMatcher(o.workflow)
		tpreds = append(tpreds, func(t *tree.Task) bool { return t.Any(match) })
	}
	for _, s := range o.tasks {
		q, err := tree.CompileQuery(s)
		if err != nil {
			return nil, usageErr("--task: %w", err)
		}
		tpreds = append(tpreds, func(t *tree.Task) bool { return t.Any(q.Match) })
	}
	if o.failed {
		tpreds = append(tpreds, (*tree.Task).HasFailure)
	}
	if len(tpreds) > 0 {
		p.taskPred = func(t *tree.Task) bool {
			for _, f := range tpreds {
				if !f(t) {
					return false
				}
			}
			return true
		}
	}

	var loc *time.Location
	if o.localTimezone {
		loc = localZone()
	}
	hidden := []string(nil)
	if len(o.ignored) > 0 {
		hidden = o.ignored
	}
	switch {
	case o.stats:
		p.stats = tree.NewStats()
	case o.output == "text":
		colorize := o.color == "always" || (o.color == "auto" && isTerminal(stdio.Out))
		var th *tree.Theme
		if colorize {
			dark := o.theme == "dark"
			if o.theme == "auto" {
				dark = darkBackground(os.Getenv("COLORFGBG"))
			}
			th = tree.LightTheme()
			if dark {
				th = tree.DarkTheme()
			}
			if err := applyOverrides(th, o.themeOverrides); err != nil {
				return nil, err
			}
		}
		limit := o.fieldLimit
		if limit == 0 {
			limit = -1
		}
		cfg := &tree.TextConfig{
			Style: style, FieldLimit: limit, ASCII: o.ascii, Color: colorize, NoColorTree: o.noColorTree,
			Theme: th, Raw: o.raw, Location: loc, HiddenFields: hidden,
		}
		if _, err := tree.NewTextRenderer(io.Discard, cfg); err != nil {
			return nil, usageErr("%w", err)
		}
		p.newRenderer = func(w io.Writer) (tree.Renderer, func() []string) {
			r, _ := tree.NewTextRenderer(w, cfg)
			return r, r.Exceptions
		}
	case o.output == "json":
		p.newRenderer = func(w io.Writer) (tree.Renderer, func() []string) {
			return tree.NewJSONRenderer(w), func() []string { return nil }
		}
	case o.output == "html":
		p.render = tree.NewHTMLRenderer(stdio.Out, &tree.HTMLConfig{Location: loc, HiddenFields: hidden})
		p.exceptions = func() []string { return nil }
	default:
		return nil, usageErr("--output: %q is not text, json or html", o.output)
	}
	if p.newRenderer != nil {
		// Rendering is about half the work: spread it over the cores
		// when there are several.
		if n := min(runtime.GOMAXPROCS(0), 8); n > 1 {
			pool := newRenderPool(stdio.Out, n, p.newRenderer)
			p.render, p.exceptions = pool, pool.Exceptions
		} else {
			p.render, p.exceptions = p.newRenderer(stdio.Out)
		}
	}
	p.builder = tree.NewBuilder(&tree.BuilderConfig{TrackIdle: o.follow && o.idle > 0})
	return p, nil
}

// renderPool renders tasks on several goroutines, each with its own
// renderer, and writes the results in the order the tasks were given.
type renderPool struct {
	out     io.Writer
	jobs    chan renderJob
	results chan renderResult
	workers sync.WaitGroup
	writer  chan struct{} // closed when the writer has ended

	mu      sync.Mutex
	cond    *sync.Cond
	seq     uint64 // tasks given
	written uint64 // tasks written
	err     error
	exc     []string
	closed  bool
}

type renderJob struct {
	seq  uint64
	task *tree.Task
}

type renderResult struct {
	seq uint64
	out []byte
	exc []string
	err error
}

func newRenderPool(out io.Writer, n int, mk func(io.Writer) (tree.Renderer, func() []string)) *renderPool {
	rp := &renderPool{out: out, jobs: make(chan renderJob, 4*n), results: make(chan renderResult, 4*n), writer: make(chan struct{})}
	rp.cond = sync.NewCond(&rp.mu)
	for range n {
		rp.workers.Go(func() {
			var buf bytes.Buffer
			r, exceptions := mk(&buf)
			seen := 0
			for j := range rp.jobs {
				buf.Reset()
				err := r.Render(j.task)
				if err == nil {
					err = r.Flush()
				}
				res := renderResult{seq: j.seq, out: bytes.Clone(buf.Bytes()), err: err}
				if ex := exceptions(); len(ex) > seen {
					res.exc = ex[seen:]
					seen = len(ex)
				}
				rp.results <- res
			}
		})
	}
	go func() {
		defer close(rp.writer)
		pending := make(map[uint64]renderResult)
		next := uint64(1)
		for res := range rp.results {
			pending[res.seq] = res
			for {
				r, ok := pending[next]
				if !ok {
					break
				}
				delete(pending, next)
				rp.mu.Lock()
				err := rp.err
				rp.mu.Unlock()
				if err == nil {
					err = r.err
				}
				if err == nil && len(r.out) > 0 {
					if _, werr := rp.out.Write(r.out); werr != nil {
						err = fmt.Errorf("writing tree: %w", werr)
					}
				}
				rp.mu.Lock()
				rp.err = err
				rp.exc = append(rp.exc, r.exc...)
				rp.written = next
				rp.cond.Broadcast()
				rp.mu.Unlock()
				next++
			}
		}
	}()
	return rp
}

// Render queues a task.
func (rp *renderPool) Render(t *tree.Task) error {
	rp.mu.Lock()
	rp.seq++
	seq, err := rp.seq, rp.err
	rp.mu.Unlock()
	if err != nil {
		return err
	}
	rp.jobs <- renderJob{seq: seq, task: t}
	return nil
}

// Flush waits until every queued task is written.
func (rp *renderPool) Flush() error {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for rp.written < rp.seq && !rp.closed {
		rp.cond.Wait()
	}
	return rp.err
}

// Close writes everything queued and stops the goroutines; it may be
// called more than once.
func (rp *renderPool) Close() error {
	rp.mu.Lock()
	if rp.closed {
		err := rp.err
		rp.mu.Unlock()
		return err
	}
	rp.closed = true
	rp.mu.Unlock()
	close(rp.jobs)
	rp.workers.Wait()
	close(rp.results)
	<-rp.writer
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.err
}

// Exceptions returns the formatting problems of the tasks written so far.
func (rp *renderPool) Exceptions() []string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.exc
}

// localZone is the zone $TZ names now (read at each run, not only at
// process start), else the system's.
func localZone() *time.Location {
	if tz, ok := os.LookupEnv("TZ"); ok {
		if tz == "" {
			return time.UTC
		}
		if loc, err := time.LoadLocation(strings.TrimPrefix(tz, ":")); err == nil {
			return loc
		}
	}
	return time.Local
}

// darkBackground reads $COLORFGBG as eliot-tree does: the last field 0–6
// or 8 means dark, another number light, anything else dark.
func darkBackground(v string) bool {
	if v == "" {
		return true
	}
	parts := strings.Split(v, ";")
	n, err := strconv.Atoi(strings.TrimSpace(parts[len(parts)-1]))
	if err != nil {
		return true
	}
	return (n >= 0 && n <= 6) || n == 8
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// emit passes a finished task through the task filters to the output.
func (p *treePipeline) emit(t *tree.Task) error {
	if p.taskPred != nil && !p.taskPred(t) {
		return nil
	}
	if p.stats != nil {
		p.stats.Add(t)
		return nil
	}
	return p.render.Render(t)
}

// badLine records a line that is not a message; with --strict it stops
// the run with eliot-tree's report.
func (p *treePipeline) badLine(le *tree.LineError, m *tree.Message) error {
	if p.o.strict {
		var b strings.Builder
		if tree.IsFormatError(le.Err) && m != nil {
			fmt.Fprintf(&b, "Eliot message parse error, file %s, line %d:\n%s\n\n", le.Source.File, le.Source.Line, tree.PyFormat(m))
		} else if tree.IsFormatError(le.Err) {
			if fm, err := tree.ParseLoose(le.Text); err == nil {
				fmt.Fprintf(&b, "Eliot message parse error, file %s, line %d:\n%s\n\n", le.Source.File, le.Source.Line, tree.PyFormat(fm))
			} else {
				fmt.Fprintf(&b, "Eliot message parse error, file %s, line %d:\n%s\n\n", le.Source.File, le.Source.Line, le.Text)
			}
		} else {
			fmt.Fprintf(&b, "JSON parse error, file %s, line %d:\n%s\n\n", le.Source.File, le.Source.Line, le.Text)
		}
		p.strict = &ExitError{Code: 1, Err: fmt.Errorf("tree: %w", le)}
		_ = p.flushOut()
		_, _ = io.WriteString(p.stdio.Err, b.String())
		return p.strict
	}
	p.badCount++
	if len(p.bad) < p.o.maxBadShow {
		p.bad = append(p.bad, le)
	}
	return nil
}

// message handles one parsed message.
func (p *treePipeline) message(m *tree.Message) error {
	t, err := p.builder.Add(m)
	if err != nil {
		return p.badLine(&tree.LineError{Source: m.Source, Text: m.Line(), Err: err}, m)
	}
	if t != nil {
		return p.emit(t)
	}
	return nil
}

// finish renders the incomplete tasks and the summaries.
func (p *treePipeline) finish() error {
	for _, t := range p.builder.Flush() {
		if err := p.emit(t); err != nil {
			return err
		}
	}
	var err error
	if p.stats != nil {
		if p.o.output == "json" {
			err = p.stats.WriteJSON(p.stdio.Out)
		} else {
			err = p.stats.WriteText(p.stdio.Out)
		}
	} else {
		err = p.render.Close()
	}
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	p.summaries()
	return nil
}

func (p *treePipeline) summaries() {
	if p.exceptions != nil {
		if ex := p.exceptions(); len(ex) > 0 {
			fmt.Fprintf(p.stdio.Err, "Exceptions (%d) occurred during processing:\n", len(ex))
			for _, e := range ex {
				fmt.Fprintf(p.stdio.Err, "%s\n\n", e)
			}
		}
	}
	if p.badCount > 0 {
		noun := "lines"
		if p.badCount == 1 {
			noun = "line"
		}
		fmt.Fprintf(p.stdio.Err, "skein tree: skipped %d bad %s (not Eliot messages):\n", p.badCount, noun)
		for _, le := range p.bad {
			fmt.Fprintf(p.stdio.Err, "  %s: %v\n", le.Source, le.Err)
		}
		if more := p.badCount - len(p.bad); more > 0 {
			fmt.Fprintf(p.stdio.Err, "  … and %d more\n", more)
		}
	}
}

// ---- reading ----

// treeItem is one line's outcome, in file order.
type treeItem struct {
	m   *tree.Message
	bad *tree.LineError
}

type treeBatch struct {
	items  []treeItem
	offset int64 // bytes of input consumed after this batch
	err    error // read error: the file ends here
}

const treeBatchSize = 256

// treeInput is one file being read by its own goroutine.
type treeInput struct {
	name  string
	size  int64
	batch chan treeBatch
}

func (p *treePipeline) open(name string) (io.ReadCloser, string, int64, error) {
	if name == "-" {
		in := p.stdio.In
		if in == nil {
			in = strings.NewReader("")
		}
		return io.NopCloser(in), "<stdin>", 0, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, name, 0, fmt.Errorf("opening log: %w", err)
	}
	var size int64
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, name, size, nil
}

// produce reads one input into batches until EOF, an error or ctx ends.
func (p *treePipeline) produce(ctx context.Context, r io.Reader, name string, out chan<- treeBatch, batchSize int) {
	defer close(out)
	rd, err := tree.NewReader(r, &tree.ReaderConfig{Name: name})
	if err != nil {
		select {
		case out <- treeBatch{err: err}:
		case <-ctx.Done():
		}
		return
	}
	defer rd.Close()
	items := make([]treeItem, 0, batchSize)
	send := func(err error) bool {
		b := treeBatch{items: items, offset: rd.Offset(), err: err}
		select {
		case out <- b:
			items = make([]treeItem, 0, batchSize)
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		m, err := rd.Next()
		if err != nil {
			var le *tree.LineError
			if errors.As(err, &le) {
				items = append(items, treeItem{bad: le})
			} else {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				send(err)
				return
			}
		} else if p.msgPred == nil || p.msgPred(m) {
			items = append(items, treeItem{m: m})
		}
		if len(items) >= batchSize {
			if !send(nil) {
				return
			}
		}
	}
}

func (p *treePipeline) run(ctx context.Context, names []string) error {
	if p.o.follow {
		return p.runFollow(ctx, names)
	}
	ctx, cancel := context.WithCancel(ctx)
	// File readers are waited for; a reader of standard input may be
	// blocked in a read that nothing can interrupt, so it is left to end
	// with its input.
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	inputs := make([]*treeInput, 0, len(names))
	var total int64
	for _, name := range names {
		rc, display, size, err := p.open(name)
		if err != nil {
			return &ExitError{Code: 1, Err: err}
		}
		in := &treeInput{name: display, size: size, batch: make(chan treeBatch, 2)}
		total += size
		inputs = append(inputs, in)
		read := func() {
			defer rc.Close()
			p.produce(ctx, rc, display, in.batch, treeBatchSize)
		}
		if name == "-" {
			go read()
		} else {
			wg.Go(read)
		}
	}
	bar := p.progressBar(total)
	var done int64
	for _, in := range inputs {
		var last int64
		for b := range in.batch {
			for _, it := range b.items {
				var err error
				if it.bad != nil {
					err = p.badLine(it.bad, nil)
				} else {
					err = p.message(it.m)
				}
				if err != nil {
					return err
				}
			}
			if b.err != nil {
				_ = p.flushOut()
				return &ExitError{Code: 1, Err: b.err}
			}
			if bar != nil && in.size > 0 {
				done += b.offset - last
				last = b.offset
				_ = bar.Set64(min(done, total))
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if bar != nil {
		_ = bar.Finish()
		_ = bar.Exit()
	}
	return p.finish()
}

func (p *treePipeline) progressBar(total int64) *progressbar.ProgressBar {
	show := p.o.progress == "always" || (p.o.progress == "auto" && isTerminal(p.stdio.Err))
	if !show || total < 8<<20 {
		if p.o.progress != "always" || total == 0 {
			return nil
		}
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.stdio.Err),
		progressbar.OptionSetDescription("reading logs"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(30),
	)
}

// runFollow tails the inputs until ctx ends, printing each task when it
// completes or, with --idle, once it has been quiet that long; at the end
// every line already read is processed and the tasks still open are
// printed.
func (p *treePipeline) runFollow(ctx context.Context, names []string) error {
	// pctx stops the readers when this function returns early; ctx (the
	// user's interrupt) only ends the tails, which then deliver what they
	// have read.
	pctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	merged := make(chan treeBatch, 16)
	var files, all sync.WaitGroup
	for _, name := range names {
		var r io.ReadCloser
		display := name
		if name == "-" {
			display = "<stdin>"
			in := p.stdio.In
			if in == nil {
				in = strings.NewReader("")
			}
			r = io.NopCloser(in)
		} else {
			t, err := tree.OpenTail(ctx, name, &tree.TailConfig{Poll: p.o.poll})
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			r = t
		}
		ch := make(chan treeBatch, 4)
		read := func() {
			defer r.Close()
			p.produce(pctx, r, display, ch, 1)
		}
		isFile := name != "-"
		forward := func() {
			defer all.Done()
			if isFile {
				defer files.Done()
			}
			for b := range ch {
				select {
				case merged <- b:
				case <-pctx.Done():
					for range ch {
					}
					return
				}
			}
		}
		all.Add(1)
		if isFile {
			files.Add(1)
			wg.Go(read)
			wg.Go(forward)
		} else {
			// Standard input may block in a read nothing can interrupt.
			go read()
			go forward()
		}
	}
	closed := func(w *sync.WaitGroup) <-chan struct{} {
		c := make(chan struct{})
		go func() {
			w.Wait()
			close(c)
		}()
		return c
	}
	allDone, filesDone := closed(&all), closed(&files)
	var tick <-chan time.Time
	if p.o.idle > 0 {
		t := time.NewTicker(min(p.o.idle/2, time.Second))
		defer t.Stop()
		tick = t.C
	}
	drainAndFinish := func() error {
		for {
			select {
			case b := <-merged:
				if err := p.followBatch(b); err != nil {
					return err
				}
			default:
				return p.finish()
			}
		}
	}
	interrupted := ctx.Done()
	for {
		select {
		case <-interrupted:
			// The tails now end; take in what they have read.
			interrupted = nil
			allDone = filesDone
		case <-allDone:
			return drainAndFinish()
		case b := <-merged:
			if err := p.followBatch(b); err != nil {
				return err
			}
			if len(merged) == 0 {
				if err := p.flushOut(); err != nil {
					return err
				}
			}
		case <-tick:
			for _, t := range p.builder.Expire(p.o.idle) {
				if err := p.emit(t); err != nil {
					return err
				}
			}
			if err := p.flushOut(); err != nil {
				return err
			}
		}
	}
}

func (p *treePipeline) followBatch(b treeBatch) error {
	for _, it := range b.items {
		var err error
		if it.bad != nil {
			err = p.badLine(it.bad, nil)
		} else {
			err = p.message(it.m)
		}
		if err != nil {
			return err
		}
	}
	if b.err != nil {
		_ = p.flushOut()
		return &ExitError{Code: 1, Err: b.err}
	}
	return nil
}

func (p *treePipeline) flushOut() error {
	if p.render == nil {
		return nil
	}
	if err := p.render.Flush(); err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	return nil
}
