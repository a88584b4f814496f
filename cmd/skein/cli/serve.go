package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/kinds"
	"github.com/skeinhq/skein/ship"
	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/open"
)

func init() { register("serve", newServeCmd) }

// Defaults of skein serve that are its own (the dispatcher's and the
// kinds' defaults are theirs; docs/serve.md lists them all).
const (
	serveDefaultShutdownTimeout = 30 * time.Second
	serveHardStopTimeout        = 10 * time.Second
)

type serveOptions struct {
	store         string
	config        string
	logs          []string
	ship          string
	quiet         bool
	monitorAddr   string
	monitorSocket string
}

const serveLong = `serve runs a dispatcher: it claims the jobs of a store and runs them with the
built-in job kinds (exec: a command in a child process; http: an HTTP request).

With no flags it opens (or creates) the SQLite store ./skein.db, applies its
migrations, runs one agent of 10 jobs at once on every queue, and appends its
log (Eliot JSON lines) to ./skein.log, where ` + "`skein jobs show`" + ` and ` + "`skein tree`" + `
find it. Each finished job is printed on standard output (--quiet: not).

The store is --store, else the config's store:, else $` + open.EnvStore + `, else ` + open.DefaultDSN + `.
--log FILE (repeatable; "-" is standard output) replaces the config's log.file.
Every other setting comes from --config FILE (YAML); docs/serve.md lists every
key with its default. A bad key or value is an error naming the key and line.

Ctrl-C (SIGINT) or SIGTERM stops gracefully: no new claims, running jobs may
finish within dispatcher.shutdown_timeout (30s), the rest go back to their
queues. A second Ctrl-C stops at once: running jobs are cancelled and put back.`

func newServeCmd(_ context.Context, stdio IO) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve [--store DSN] [--config skein.yaml] [--log FILE]...",
		Short: "Run a dispatcher with the built-in job kinds on a store",
		Long:  serveLong,
		Example: `  skein serve
  skein serve --store postgres://skein@127.0.0.1/skein --log /var/log/skein.log
  skein serve --config skein.yaml --log - | skein tree --follow`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), stdio, o, cmd.Flags().Changed("log"))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.store, "store", "", "store DSN: a SQLite path, sqlite://PATH or postgres://… (default $"+open.EnvStore+" or "+open.DefaultDSN+")")
	f.StringVar(&o.config, "config", "", "YAML configuration `FILE` (see docs/serve.md)")
	f.StringArrayVar(&o.logs, "log", nil, "append the log (JSON lines) to `FILE`; \"-\" is standard output; repeatable (default "+defaultLogFile+")")
	f.StringVar(&o.ship, "ship", "", "also send the log to this HTTP `URL` with the shipper (NDJSON POSTs; see docs/ship.md)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print only the banner and errors, not each finished job")
	f.StringVar(&o.monitorAddr, "monitor", "", "the monitor's TCP `ADDR`ess, or \"off\" (default $SKEIN_MONITOR_ADDR, else the config's monitor.addr, else 127.0.0.1:8701; see docs/monitor.md)")
	f.StringVar(&o.monitorSocket, "monitor-socket", "", "also serve the monitor on this unix socket `PATH` (default $SKEIN_MONITOR_SOCKET, else the config's monitor.socket, else none)")
	return cmd
}

// serveFile is the YAML configuration of skein serve (docs/serve.md lists
// every key). Zero values mean the defaults.
type serveFile struct {
	// Store is the store DSN. Defaults to $SKEIN_STORE, else ./skein.db.
	Store string `yaml:"store"`
	Log   struct {
		// File is the log file. Defaults to $SKEIN_LOG, else skein.log;
		// "" means none.
		File *string `yaml:"file"`
		// Stdout also writes the log to standard output. Defaults to false.
		Stdout bool `yaml:"stdout"`
		// Quiet leaves out the line per finished job. Defaults to false.
		Quiet bool `yaml:"quiet"`
		// ShipURL also ships the log there. Defaults to none.
		ShipURL string `yaml:"ship_url"`
		// ShipSpool is the shipper's spool directory. Defaults to none.
		ShipSpool string `yaml:"ship_spool"`
	} `yaml:"log"`
	Dispatcher struct {
		// ID defaults to a new random UUID.
		ID string `yaml:"id"`
		// Host defaults to the host name.
		Host string `yaml:"host"`
		// PollInterval defaults to 1 s.
		PollInterval yamlDuration `yaml:"poll_interval"`
		// HeartbeatInterval defaults to 5 s.
		HeartbeatInterval yamlDuration `yaml:"heartbeat_interval"`
		// DeadAfter defaults to 30 s.
		DeadAfter yamlDuration `yaml:"dead_after"`
		// CleanupInterval defaults to 30 s; negative: no cleanup.
		CleanupInterval yamlDuration `yaml:"cleanup_interval"`
		// CompletedRetention defaults to 24 h; negative: forever.
		CompletedRetention yamlDuration `yaml:"completed_retention"`
		// CancelledRetention defaults to 24 h; negative: forever.
		CancelledRetention yamlDuration `yaml:"cancelled_retention"`
		// DiscardedRetention defaults to 7 days; negative: forever.
		DiscardedRetention yamlDuration `yaml:"discarded_retention"`
		// ShutdownTimeout defaults to 30 s.
		ShutdownTimeout yamlDuration `yaml:"shutdown_timeout"`
		// BackoffBase defaults to 1 s.
		BackoffBase yamlDuration `yaml:"backoff_base"`
		// BackoffMax defaults to 24 h.
		BackoffMax yamlDuration `yaml:"backoff_max"`
		// OutcomesWithClaims defaults to false.
		OutcomesWithClaims bool `yaml:"outcomes_with_claims"`
	} `yaml:"dispatcher"`
	// Agents defaults to one agent "main" of size 10 on every queue, for
	// the built-in kinds.
	Agents []serveAgent `yaml:"agents"`
	Kinds  struct {
		Exec struct {
			// Enabled defaults to true.
			Enabled *bool `yaml:"enabled"`
			// Timeout defaults to 1 h; negative: none.
			Timeout yamlDuration `yaml:"timeout"`
			// KillGrace defaults to 5 s.
			KillGrace yamlDuration `yaml:"kill_grace"`
			// MaxLineBytes defaults to 64 KiB.
			MaxLineBytes int `yaml:"max_line_bytes"`
			// TailBytes defaults to 4 KiB.
			TailBytes int `yaml:"tail_bytes"`
			// Env defaults to none (serve's own environment only).
			Env map[string]string `yaml:"env"`
		} `yaml:"exec"`
		HTTP struct {
			// Enabled defaults to true.
			Enabled *bool `yaml:"enabled"`
			// Timeout defaults to 1 min; negative: none.
			Timeout yamlDuration `yaml:"timeout"`
			// MaxBodyBytes defaults to 64 KiB.
			MaxBodyBytes int `yaml:"max_body_bytes"`
		} `yaml:"http"`
	} `yaml:"kinds"`
}

// serveAgent is one entry of agents:.
type serveAgent struct {
	// Name defaults to "main" for the first agent, "agent-N" for others.
	Name string `yaml:"name"`
	// Size defaults to 10.
	Size int `yaml:"size"`
	// Queues defaults to every queue.
	Queues []string `yaml:"queues"`
	// Kinds defaults to every kind serve runs.
	Kinds []string `yaml:"kinds"`
	// DisableClaimAhead defaults to false (skein.AgentConfig).
	DisableClaimAhead bool `yaml:"disable_claim_ahead"`
}

// yamlDuration is a duration written as Go writes them: 500ms, 2s, 1h30m.
type yamlDuration time.Duration

func (d *yamlDuration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("want a duration such as 500ms, 30s or 2h")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		if n.Value == "0" {
			return nil
		}
		return fmt.Errorf("%q is not a duration (want e.g. 500ms, 30s, 2h)", n.Value)
	}
	*d = yamlDuration(v)
	return nil
}

// configError is a bad key or value in a YAML file: exit status 2.
func configError(file string, line int, key, format string, a ...any) error {
	where := file
	if line > 0 {
		where = fmt.Sprintf("%s:%d", file, line)
	}
	return &ExitError{Code: 2, Err: fmt.Errorf("%s: %s: %s", where, key, fmt.Sprintf(format, a...))}
}

// decodeStrict decodes the YAML document in data into v (a pointer to a
// struct with yaml tags), rejecting unknown keys. Errors name the file, the
// line and the dotted key.
func decodeStrict(file string, data []byte, v any) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return &ExitError{Code: 2, Err: fmt.Errorf("%s: %w", file, err)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty file: every default
	}
	return decodeNode(file, "", doc.Content[0], reflect.ValueOf(v).Elem())
}

var yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

func decodeNode(file, path string, n *yaml.Node, v reflect.Value) error {
	name := path
	if name == "" {
		name = "(top level)"
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if v.Kind() == reflect.Pointer && n.Tag != "!!null" {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return decodeNode(file, path, n, v.Elem())
	}
	if reflect.PointerTo(v.Type()).Implements(yamlUnmarshaler) || v.Kind() != reflect.Struct && v.Kind() != reflect.Slice {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			msg := err.Error()
			msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n  ")
			if i := strings.Index(msg, ": "); strings.HasPrefix(msg, "line ") && i > 0 {
				msg = msg[i+2:]
			}
			return configError(file, n.Line, name, "%s", msg)
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Slice:
		if n.Tag == "!!null" {
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return configError(file, n.Line, name, "want a list")
		}
		out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if err := decodeNode(file, fmt.Sprintf("%s[%d]", path, i), c, out.Index(i)); err != nil {
				return err
			}
		}
		v.Set(out)
		return nil
	case reflect.Struct:
		if n.Tag == "!!null" {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			return configError(file, n.Line, name, "want a mapping of keys to values")
		}
		fields := map[string]int{}
		var known []string
		for i := 0; i < v.NumField(); i++ {
			tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			if tag != "" && tag != "-" {
				fields[tag] = i
				known = append(known, tag)
			}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := k.Value
			if path != "" {
				key = path + "." + k.Value
			}
			idx, ok := fields[k.Value]
			if !ok && path == "" && componentSection(k.Value) {
				continue // a component's section: the component reads it
			}
			if !ok {
				if path == "" {
					known = append(known, componentSections()...)
				}
				return configError(file, k.Line, key, "unknown key (known: %s)", strings.Join(known, ", "))
			}
			if seen[k.Value] {
				return configError(file, k.Line, key, "given twice")
			}
			seen[k.Value] = true
			if err := decodeNode(file, key, val, v.Field(idx)); err != nil {
				return err
			}
		}
		return nil
	}
	return nil
}

// keyLine finds the line of a dotted key in a YAML document, 0 when absent.
func keyLine(data []byte, key string) int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return 0
	}
	return yamlLine(&doc, key)
}

// serveSetup is everything serve resolved from flags and the config file.
type serveSetup struct {
	file            string // config file name, for errors
	data            []byte // config file contents
	dsn             string
	logs            []string // "-" is standard output
	shipURL         string
	shipSpool       string
	quiet           bool
	shutdownTimeout time.Duration
	dispatcher      skein.Config
	kinds           kinds.Config
}

func loadServeSetup(o *serveOptions, logsGiven bool) (*serveSetup, error) {
	var y serveFile
	s := &serveSetup{file: o.config}
	if o.config != "" {
		data, err := os.ReadFile(o.config)
		if err != nil {
			return nil, &ExitError{Code: 2, Err: fmt.Errorf("reading config: %w", err)}
		}
		s.data = data
		if err := decodeStrict(o.config, data, &y); err != nil {
			return nil, err
		}
	}
	bad := func(key, format string, a ...any) error {
		return configError(s.file, keyLine(s.data, key), key, format, a...)
	}
	s.dsn = firstNonEmpty(o.store, y.Store, os.Getenv(open.EnvStore), open.DefaultDSN)
	switch {
	case logsGiven:
		s.logs = o.logs
	case y.Log.File != nil:
		if *y.Log.File != "" {
			s.logs = []string{*y.Log.File}
		}
	default:
		s.logs = []string{firstNonEmpty(os.Getenv(envLog), defaultLogFile)}
	}
	if y.Log.Stdout && !slices.Contains(s.logs, "-") {
		s.logs = append(s.logs, "-")
	}
	s.quiet = o.quiet || y.Log.Quiet
	s.shipURL = firstNonEmpty(o.ship, y.Log.ShipURL)
	s.shipSpool = y.Log.ShipSpool
	if s.shipSpool != "" && s.shipURL == "" {
		return nil, bad("log.ship_spool", "needs log.ship_url (or --ship)")
	}
	dy := y.Dispatcher
	durations := []struct {
		key string
		v   yamlDuration
	}{
		{"dispatcher.poll_interval", dy.PollInterval}, {"dispatcher.heartbeat_interval", dy.HeartbeatInterval},
		{"dispatcher.dead_after", dy.DeadAfter}, {"dispatcher.shutdown_timeout", dy.ShutdownTimeout},
		{"dispatcher.backoff_base", dy.BackoffBase}, {"dispatcher.backoff_max", dy.BackoffMax},
		{"kinds.exec.timeout", y.Kinds.Exec.Timeout}, {"kinds.exec.kill_grace", y.Kinds.Exec.KillGrace},
		{"kinds.http.timeout", y.Kinds.HTTP.Timeout},
	}
	for _, d := range durations {
		if d.v < 0 && d.key != "kinds.exec.timeout" && d.key != "kinds.http.timeout" {
			return nil, bad(d.key, "%s is negative", time.Duration(d.v))
		}
	}
	s.shutdownTimeout = time.Duration(dy.ShutdownTimeout)
	if s.shutdownTimeout == 0 {
		s.shutdownTimeout = serveDefaultShutdownTimeout
	}
	dc := skein.Config{
		ID:                 dy.ID,
		Host:               dy.Host,
		PollInterval:       time.Duration(dy.PollInterval),
		HeartbeatInterval:  time.Duration(dy.HeartbeatInterval),
		DeadAfter:          time.Duration(dy.DeadAfter),
		CleanupInterval:    time.Duration(dy.CleanupInterval),
		CompletedRetention: time.Duration(dy.CompletedRetention),
		CancelledRetention: time.Duration(dy.CancelledRetention),
		DiscardedRetention: time.Duration(dy.DiscardedRetention),
		OutcomesWithClaims: dy.OutcomesWithClaims,
	}
	if dy.BackoffBase != 0 || dy.BackoffMax != 0 {
		dc.Backoff = skein.ExponentialBackoff{Base: time.Duration(dy.BackoffBase), Max: time.Duration(dy.BackoffMax)}
	}
	if dc.HeartbeatInterval != 0 || dc.DeadAfter != 0 {
		hb, dead := dc.HeartbeatInterval, dc.DeadAfter
		if hb == 0 {
			hb = skein.DefaultHeartbeatInterval
		}
		if dead == 0 {
			dead = skein.DefaultDeadAfter
		}
		if hb >= dead {
			key := "dispatcher.heartbeat_interval"
			if dy.HeartbeatInterval == 0 {
				key = "dispatcher.dead_after"
			}
			return nil, bad(key, "heartbeat_interval (%s) must be shorter than dead_after (%s), or live dispatchers are judged dead", hb, dead)
		}
	}
	names := map[string]bool{}
	for i, a := range y.Agents {
		key := fmt.Sprintf("agents[%d]", i)
		if a.Size < 0 {
			return nil, bad(key+".size", "%d: want at least 1", a.Size)
		}
		if a.Name != "" && names[a.Name] {
			return nil, bad(key+".name", "agent name %q is used twice", a.Name)
		}
		names[a.Name] = true
		dc.Agents = append(dc.Agents, skein.AgentConfig{Name: a.Name, Size: a.Size, Queues: a.Queues, Kinds: a.Kinds, DisableClaimAhead: a.DisableClaimAhead})
	}
	s.dispatcher = dc

	ey, hy := y.Kinds.Exec, y.Kinds.HTTP
	if ey.MaxLineBytes < 0 {
		return nil, bad("kinds.exec.max_line_bytes", "%d: want at least 1", ey.MaxLineBytes)
	}
	if ey.TailBytes < 0 {
		return nil, bad("kinds.exec.tail_bytes", "%d: want at least 1", ey.TailBytes)
	}
	if hy.MaxBodyBytes < 0 {
		return nil, bad("kinds.http.max_body_bytes", "%d: want at least 1", hy.MaxBodyBytes)
	}
	kc := kinds.Config{
		DisableExec: ey.Enabled != nil && !*ey.Enabled,
		DisableHTTP: hy.Enabled != nil && !*hy.Enabled,
		Exec: kinds.ExecConfig{
			Timeout: time.Duration(ey.Timeout), KillGrace: time.Duration(ey.KillGrace),
			MaxLineBytes: ey.MaxLineBytes, TailBytes: ey.TailBytes,
		},
		HTTP: kinds.HTTPConfig{Timeout: time.Duration(hy.Timeout), MaxBodyBytes: hy.MaxBodyBytes},
	}
	if len(ey.Env) > 0 {
		kc.Exec.Env = os.Environ()
		keys := make([]string, 0, len(ey.Env))
		for k := range ey.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				return nil, bad("kinds.exec.env", "%q is not a variable name", k)
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			kc.Exec.Env = append(kc.Exec.Env, k+"="+ey.Env[k])
		}
	}
	s.kinds = kc
	var enabled []string
	if !kc.DisableExec {
		enabled = append(enabled, kinds.KindExec)
	}
	if !kc.DisableHTTP {
		enabled = append(enabled, kinds.KindHTTP)
	}
	for i, a := range y.Agents {
		for _, k := range a.Kinds {
			if !slices.Contains(enabled, k) {
				return nil, bad(fmt.Sprintf("agents[%d].kinds", i), "serve runs no kind %q (it runs: %s); jobs of other kinds need a worker of their own", k, listOr(enabled, "none"))
			}
		}
	}
	if kc.DisableExec && kc.DisableHTTP {
		for _, a := range dc.Agents {
			if len(a.Kinds) == 0 {
				return nil, bad("kinds", "both built-in kinds are disabled, so an agent without kinds: has nothing to run")
			}
		}
		if len(dc.Agents) == 0 {
			return nil, bad("kinds", "both built-in kinds are disabled, so the default agent has nothing to run")
		}
	}
	return s, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// serveComponent is something skein serve runs beside the dispatcher: the
// monitor, the collector, the web UI. A file of this package adds one from
// an init function with registerServeComponent; serve starts them in name
// order after the dispatcher, prints the banner line each returns, and
// stops them (in reverse order) before the dispatcher. The top-level key of
// the config file named like the component is its section: serve's own
// decoder leaves it to the component (serveEnv.ConfigData).
type serveComponent struct {
	name  string
	start func(ctx context.Context, env *serveEnv) (*serveRunning, error)
}

// serveEnv is what a component gets: the running dispatcher, its store and
// log, and the config file (components read their own section from it).
type serveEnv struct {
	Dispatcher *skein.Dispatcher
	Store      store.Store
	Logger     *action.Logger
	ConfigFile string
	ConfigData []byte
	// MonitorAddr and MonitorSocket are serve's --monitor and
	// --monitor-socket flags; empty when not given.
	MonitorAddr   string
	MonitorSocket string
}

// serveRunning is a started component.
type serveRunning struct {
	// Banner is the component's line in the banner, e.g.
	// "monitor: 127.0.0.1:7070 (async help)". Empty: no line.
	Banner string
	// Stop stops it within ctx.
	Stop func(ctx context.Context) error
}

var serveComponents []serveComponent

// componentSections lists the top-level keys of the config file that
// belong to components: their names.
func componentSections() []string {
	names := make([]string, 0, len(serveComponents))
	for _, c := range serveComponents {
		names = append(names, c.name)
	}
	return names
}

func componentSection(key string) bool { return slices.Contains(componentSections(), key) }

// registerServeComponent adds a component to skein serve.
func registerServeComponent(name string, start func(ctx context.Context, env *serveEnv) (*serveRunning, error)) {
	serveComponents = append(serveComponents, serveComponent{name: name, start: start})
	slices.SortFunc(serveComponents, func(a, b serveComponent) int { return strings.Compare(a.name, b.name) })
}

func runServe(ctx context.Context, stdio IO, o *serveOptions, logsGiven bool) error {
	s, err := loadServeSetup(o, logsGiven)
	if err != nil {
		return err
	}
	target, err := open.Parse(s.dsn)
	if err != nil {
		return &ExitError{Code: 2, Err: err}
	}

	// The log.
	var (
		dests    []io.Writer
		files    []*os.File
		stdoutTo bool
	)
	defer func() {
		for _, f := range files {
			_ = f.Close()
		}
	}()
	for _, p := range s.logs {
		if p == "-" {
			stdoutTo = true
			dests = append(dests, stdio.Out)
			continue
		}
		f, err := action.OpenFile(p)
		if err != nil {
			return fmt.Errorf("opening log file: %w", err)
		}
		files = append(files, f)
		dests = append(dests, f)
	}
	if s.shipURL != "" {
		sh, err := ship.New(ship.Config{URL: s.shipURL, Spool: ship.SpoolConfig{Dir: s.shipSpool},
			Logger: slog.New(slog.NewTextHandler(stdio.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			return &ExitError{Code: 2, Err: fmt.Errorf("log.ship_url: %w", err)}
		}
		defer func() {
			c, cancel := context.WithTimeout(context.Background(), serveHardStopTimeout)
			defer cancel()
			if err := sh.Close(c); err != nil {
				fmt.Fprintf(stdio.Err, "skein: shipping the last log records: %v\n", err)
			}
		}()
		dests = append(dests, sh)
	}
	if len(dests) == 0 {
		dests = []io.Writer{io.Discard}
	}
	logger := action.New(dests[0], &action.Options{Also: dests[1:], Fields: action.ProcessFields(), ErrorOutput: stdio.Err})
	// Human lines go to standard error when the log is on standard output.
	quiet := s.quiet
	say := stdio.Out
	if stdoutTo {
		say = stdio.Err
	}

	// The store.
	st, err := open.Open(ctx, s.dsn, &open.Opts{AutoMigrate: true})
	if err != nil {
		return fmt.Errorf("opening store %s: %w", target, schemaError(err))
	}
	defer st.Close()
	if err := st.CheckSchema(ctx); err != nil {
		return fmt.Errorf("store %s: %w", target, schemaError(err))
	}
	schema, err := st.SchemaStatus(ctx)
	if err != nil {
		return fmt.Errorf("store %s: reading schema version: %w", target, err)
	}

	// The dispatcher.
	handlers := skein.NewHandlers()
	s.kinds.Logger = logger
	if err := kinds.Register(handlers, &s.kinds); err != nil {
		return err
	}
	dc := s.dispatcher
	dc.Handlers = handlers
	dc.Logger = logger
	d, err := skein.NewDispatcher(st, &dc)
	if err != nil {
		return &ExitError{Code: 2, Err: err}
	}
	var events <-chan skein.Event
	unsubscribe := func() {}
	if !quiet {
		events, unsubscribe = d.Subscribe(256)
	}
	if err := d.Start(ctx); err != nil {
		unsubscribe()
		return err
	}
	printed := make(chan struct{})
	if events != nil {
		go func() {
			defer close(printed)
			printEvents(say, events)
		}()
	} else {
		close(printed)
	}
	stopDispatcher := func(c context.Context) error {
		err := d.Stop(c)
		unsubscribe()
		<-printed
		return err
	}

	// The components (monitor, …).
	env := &serveEnv{Dispatcher: d, Store: st, Logger: logger, ConfigFile: s.file, ConfigData: s.data,
		MonitorAddr: o.monitorAddr, MonitorSocket: o.monitorSocket}
	var running []*serveRunning
	var banners []string
	for _, c := range serveComponents {
		r, err := c.start(ctx, env)
		if err != nil {
			for i := len(running) - 1; i >= 0; i-- {
				_ = running[i].Stop(context.Background())
			}
			stopCtx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
			defer cancel()
			_ = stopDispatcher(stopCtx)
			return fmt.Errorf("starting %s: %w", c.name, err)
		}
		if r == nil {
			continue
		}
		running = append(running, r)
		if r.Banner != "" {
			banners = append(banners, r.Banner)
		}
	}

	st0 := d.Status()
	fmt.Fprintf(say, "skein serve: dispatcher %s on %s, pid %d\n", d.ID(), st0.Host, st0.PID)
	fmt.Fprintf(say, "  store:    %s (schema version %d)\n", target, schema.Current)
	for _, a := range st0.Agents {
		fmt.Fprintf(say, "  agent:    %s, %d at once; queues: %s; kinds: %s\n", a.Name, a.Size, listOr(a.Queues, "all"), listOr(a.Kinds, "all"))
	}
	logNames := make([]string, 0, len(s.logs))
	for _, p := range s.logs {
		if p == "-" {
			p = "standard output"
		}
		logNames = append(logNames, p)
	}
	if s.shipURL != "" {
		logNames = append(logNames, "shipped to "+open.Redact(s.shipURL))
	}
	fmt.Fprintf(say, "  log:      %s\n", listOr(logNames, "none (log.file is empty)"))
	for _, b := range banners {
		fmt.Fprintf(say, "  %s\n", b)
	}
	fmt.Fprintf(say, "Ctrl-C stops gracefully (running jobs get %s); a second Ctrl-C stops at once.\n", s.shutdownTimeout)

	<-ctx.Done()

	// Stopping. A second signal stops at once.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	slog.New(logger.Handler(nil)).Info("skein:serve:stopping", "dispatcher", d.ID(), "shutdown_timeout", s.shutdownTimeout.String())
	fmt.Fprintf(say, "stopping: no new jobs; running jobs may finish within %s (Ctrl-C again to stop at once)\n", s.shutdownTimeout)
	for i := len(running) - 1; i >= 0; i-- {
		c, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
		_ = running[i].Stop(c)
		cancel()
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- stopDispatcher(stopCtx) }()
	var stopErr error
	select {
	case stopErr = <-stopped:
	case <-sig:
		fmt.Fprintln(say, "stopping now: cancelling running jobs, they go back to their queues")
		hard, cancelHard := context.WithTimeout(context.Background(), serveHardStopTimeout)
		_ = d.StopAndCancel(hard)
		cancelHard()
		stopErr = <-stopped
	}
	if stopErr != nil {
		return &ExitError{Code: 1, Err: fmt.Errorf("stopping dispatcher: %w (jobs still running were put back)", stopErr)}
	}
	fmt.Fprintln(say, "stopped")
	return nil
}

func listOr(l []string, none string) string {
	if len(l) == 0 {
		return none
	}
	return strings.Join(l, ", ")
}

// printEvents prints one line per finished run until events is closed.
func printEvents(w io.Writer, events <-chan skein.Event) {
	for e := range events {
		var b bytes.Buffer
		fmt.Fprintf(&b, "%s %-9s %-8s %s attempt %d", e.At.Local().Format("15:04:05"), e.State, e.Kind, e.JobID, e.Attempt)
		if e.Error != "" {
			msg, _, _ := strings.Cut(e.Error, "\n")
			fmt.Fprintf(&b, ": %s", msg)
		}
		b.WriteByte('\n')
		_, _ = w.Write(b.Bytes())
	}
}

// writerIsTerminal reports whether w is a terminal.
func writerIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
