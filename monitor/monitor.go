package monitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/skeinhq/skein/store"
)

// Config configures a [Monitor]. The zero value is usable: a monitor with
// no dispatcher and no store, which still answers help, UUID and utcnow.
type Config struct {
	// Dispatchers are the dispatchers of this process that the async tools
	// read. The first is the one they describe unless a uuid: modifier
	// names another. Defaults to none: the async tools that need one say
	// that no dispatcher runs in this process.
	Dispatchers []Dispatcher
	// Enqueuers are the job clients of this process whose enqueues
	// /metrics exports as skein_jobs_enqueued_total{queue, kind}, summed
	// over them (skeinmon.Client adapts a *skein.Client). Defaults to
	// none: the metric is absent, since enqueues happen wherever clients
	// run and a store does not count them.
	Enqueuers []EnqueueCounter
	// Store is the job store the asyncdb tools read. Defaults to nil: the
	// asyncdb tools say that no store is configured.
	Store store.Store
	// DeadAfter is how old a dispatcher's heartbeat may be before asyncdb
	// status shows it dead even though no other dispatcher has marked it
	// so yet. Defaults to store.DefaultDeadAfter (30 s), the dispatchers'
	// own default.
	DeadAfter time.Duration
	// StuckGrace is how long past due a poll may be before async status
	// shows STUCK. Defaults to 0: STUCK as soon as the poll is past due, as
	// in zc.async.
	StuckGrace time.Duration
	// MaxResultChars is how many characters of a job's result or traceback
	// the job tools show before cutting it with a "[...TRUNCATED...]"
	// marker. Defaults to 10000.
	MaxResultChars int
	// ScanLimit is the most jobs the asyncdb tools read from the store for
	// one command when a glob filter (kind:, queue:, agent:, uuid: with * ?
	// or [) must be applied in memory. Defaults to 100000.
	ScanLimit int
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultMaxResultChars = 10000
	DefaultScanLimit      = 100000
)

func (c *Config) withDefaults() (Config, error) {
	var o Config
	if c != nil {
		o = *c
	}
	if o.DeadAfter == 0 {
		o.DeadAfter = store.DefaultDeadAfter
	}
	if o.MaxResultChars == 0 {
		o.MaxResultChars = DefaultMaxResultChars
	}
	if o.ScanLimit == 0 {
		o.ScanLimit = DefaultScanLimit
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case o.DeadAfter < 0:
		return o, fmt.Errorf("field DeadAfter is negative (%s)", o.DeadAfter)
	case o.StuckGrace < 0:
		return o, fmt.Errorf("field StuckGrace is negative (%s)", o.StuckGrace)
	case o.MaxResultChars < 0:
		return o, fmt.Errorf("field MaxResultChars is %d, want at least 1", o.MaxResultChars)
	case o.ScanLimit < 0:
		return o, fmt.Errorf("field ScanLimit is %d, want at least 1", o.ScanLimit)
	}
	for i, d := range o.Dispatchers {
		if d == nil {
			return o, fmt.Errorf("field Dispatchers[%d] is nil", i)
		}
	}
	return o, nil
}

// Monitor runs monitor commands: the async tools on this process's
// dispatchers and the asyncdb tools on the store. It is safe for concurrent
// use. [Server] serves it over TCP and unix sockets, [Monitor.Handler] over
// HTTP.
type Monitor struct {
	cfg     Config
	plugins map[string]*plugin
}

// New returns a monitor configured by cfg (nil means the defaults).
func New(cfg *Config) (*Monitor, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("creating monitor: %w", err)
	}
	m := &Monitor{cfg: c}
	m.plugins = map[string]*plugin{
		"async":   m.asyncPlugin(),
		"asyncdb": m.asyncdbPlugin(),
	}
	return m, nil
}

func (m *Monitor) now() time.Time { return m.cfg.Now().UTC() }

// unknownError names a command or tool that does not exist.
type unknownError struct{ msg string }

func (e *unknownError) Error() string { return e.msg }

// plugin is a top-level command with tools, as zc.monitor plugins are.
type plugin struct {
	name  string
	doc   string // first line: summary
	tools map[string]*tool
}

// tool is one subcommand of a plugin.
type tool struct {
	name string
	// doc's first line is the summary shown by "<plugin> help".
	doc string
	// pos is the most positional words the tool takes.
	pos int
	// named lists the modifiers the tool accepts.
	named []string
	// call runs the tool.
	call func(ctx context.Context, a Args) (any, error)
}

// Exec runs one command line ("async status", "help async", …) and returns
// its output as the text protocol shows it, without a trailing newline. An
// error is a problem with the command (unknown tool, bad modifier, …) or
// with reading the data; its text is one line naming the word at fault.
func (m *Monitor) Exec(ctx context.Context, line string) (string, error) {
	words := splitWords(line)
	if len(words) == 0 {
		return "", errors.New("empty command (try 'help')")
	}
	v, err := m.exec(ctx, words)
	if err != nil {
		return "", err
	}
	return Render(v)
}

func (m *Monitor) exec(ctx context.Context, words []string) (any, error) {
	switch words[0] {
	case "help":
		return m.help(words[1:])
	case "interactive", "quit":
		return nil, fmt.Errorf("command %q only works on a monitor connection", words[0])
	}
	p, ok := m.plugins[words[0]]
	if !ok {
		return nil, &unknownError{fmt.Sprintf("unknown command %q (try 'help')", words[0])}
	}
	if len(words) == 1 {
		return p.doc, nil
	}
	a, err := ParseArgs(words[2:])
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", p.name, words[1], err)
	}
	return m.Call(ctx, p.name, words[1], a)
}

// Call runs one tool of a plugin ("async", "asyncdb") with parsed
// arguments and returns its result: a string, or a value that encodes as
// JSON (maps with sorted keys, [Time], [Duration]).
func (m *Monitor) Call(ctx context.Context, pluginName, toolName string, a Args) (any, error) {
	p, ok := m.plugins[pluginName]
	if !ok {
		return nil, &unknownError{fmt.Sprintf("unknown command %q (try 'help')", pluginName)}
	}
	t, ok := p.tools[toolName]
	if !ok {
		return nil, &unknownError{fmt.Sprintf("unknown %s tool %q (try '%s help')", p.name, toolName, p.name)}
	}
	if len(a.Pos) > t.pos {
		if t.pos == 0 {
			return nil, fmt.Errorf("%s %s: unexpected word %q: this tool takes no positional words", p.name, t.name, a.Pos[0])
		}
		return nil, fmt.Errorf("%s %s: unexpected word %q: this tool takes at most %d positional word(s)", p.name, t.name, a.Pos[t.pos], t.pos)
	}
	for k := range a.Named {
		if !slices.Contains(t.named, k) {
			if len(t.named) == 0 {
				return nil, fmt.Errorf("%s %s: unknown modifier %q: this tool takes no modifiers", p.name, t.name, k+":")
			}
			return nil, fmt.Errorf("%s %s: unknown modifier %q (want one of %s)", p.name, t.name, k+":", strings.Join(withColons(t.named), " "))
		}
	}
	if a.Named == nil {
		a.Named = map[string]string{}
	}
	v, err := t.call(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", p.name, t.name, err)
	}
	return v, nil
}

func withColons(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + ":"
	}
	return out
}

// Plugins lists the monitor's plugins and, for each, its tools, sorted.
func (m *Monitor) Plugins() map[string][]string {
	out := map[string][]string{}
	for name, p := range m.plugins {
		for t := range p.tools {
			out[name] = append(out[name], t)
		}
		slices.Sort(out[name])
	}
	return out
}

const serverHelp = `Supported commands:
  async -- Monitor skein activity in this process.
  asyncdb -- Monitor skein activity in the store (the whole cluster).
  help -- Get help about server commands.
  interactive -- Turn on monitor's interactive mode.
  quit -- Quit the monitor.`

var builtinHelp = map[string]string{
	"help": `Get help about server commands.

    By default, a list of commands and summaries is printed.  Provide
    a command name to get detailed documentation for a command.`,
	"interactive": `Turn on monitor's interactive mode.

    Normally, the monitor releases the connection after a single command.
    By entering the interactive mode, the monitor will not end the connection
    until you enter the "quit" command.

    In interactive mode, an empty line repeats the last command.`,
	"quit": `Quit the monitor.

    This is only really useful in interactive mode (see the "interactive"
    command).`,
}

func (m *Monitor) help(args []string) (any, error) {
	if len(args) == 0 {
		return serverHelp, nil
	}
	if len(args) > 1 {
		return nil, fmt.Errorf("help: unexpected word %q: give one command name", args[1])
	}
	name := args[0]
	if p, ok := m.plugins[name]; ok {
		return "Help for " + name + ":\n\n" + p.doc, nil
	}
	if doc, ok := builtinHelp[name]; ok {
		return "Help for " + name + ":\n\n" + doc, nil
	}
	return nil, fmt.Errorf("help: unknown command %q (try 'help')", name)
}

// toolHelp is "<plugin> help [tool]".
func toolHelp(p *plugin, a Args) (any, error) {
	if len(a.Pos) == 0 {
		names := make([]string, 0, len(p.tools))
		for n := range p.tools {
			names = append(names, n)
		}
		slices.Sort(names)
		var b strings.Builder
		fmt.Fprintf(&b, "These are the tools available.  Usage for each tool is\n'%s <tool name> [modifiers...]'.  Learn more about each\ntool using '%s help <tool name>'.\n\n", p.name, p.name)
		for i, n := range names {
			summary, _, _ := strings.Cut(p.tools[n].doc, "\n")
			if i > 0 {
				b.WriteByte('\n')
			}
			fmt.Fprintf(&b, "%s: %s", n, summary)
		}
		return b.String(), nil
	}
	t, ok := p.tools[a.Pos[0]]
	if !ok {
		return nil, fmt.Errorf("unknown %s tool %q (try '%s help')", p.name, a.Pos[0], p.name)
	}
	return t.doc, nil
}
