package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/skeinhq/skein/monitor"
	"github.com/skeinhq/skein/monitor/skeinmon"
	"github.com/skeinhq/skein/store/open"
)

func init() {
	register("monitor", newMonitorCmd)
	registerServeComponent("monitor", startServeMonitor)
}

// Environment variables of skein monitor and of the monitor of skein serve.
const (
	envMonitorAddr   = "SKEIN_MONITOR_ADDR"
	envMonitorSocket = "SKEIN_MONITOR_SOCKET"
	envMonitorToken  = "SKEIN_MONITOR_TOKEN"
	envMonitorHTTP   = "SKEIN_MONITOR_HTTP"
	envMonitorStatsd = "SKEIN_MONITOR_STATSD"
)

// Defaults of skein monitor --watch.
const (
	monitorDefaultInterval = 2 * time.Second
	monitorWatchPolls      = 5
	monitorWatchJobs       = 8
)

type monitorOptions struct {
	addr     string
	socket   string
	token    string
	timeout  time.Duration
	color    string
	watch    bool
	interval time.Duration
	count    int
}

const monitorLong = `monitor sends one command to a running monitor server (skein serve, or
skein monitor serve) and prints its answer: the zc.async "async" tools on the
server's dispatcher, the "asyncdb" tools on its store. Without a command it
prints the server's help.

    skein monitor async status          is the dispatcher alive, stuck, polling?
    skein monitor async jobs            what runs now
    skein monitor async polls count:10  the last 10 polls
    skein monitor asyncdb status        queues, dispatchers dead or alive
    skein monitor asyncdb jobs failed end:since1H
    skein monitor async help            every tool; 'async help TOOL' for one

The same works with nc: echo 'async status' | nc 127.0.0.1 8701.

--watch refreshes a compact view of status, running jobs, recent polls and
(when the server has a store) the queues, every --interval; on a terminal the
screen is redrawn, otherwise each view is printed in turn, without colors.

The server is --socket PATH, else --addr HOST:PORT, else $` + envMonitorSocket + `,
else $` + envMonitorAddr + `, else ` + monitor.DefaultAddr + `. A server that is not on loopback
wants its token (--token, else $` + envMonitorToken + `) as the first line.

Exit status: 0, 1 when the server answers an error or cannot be reached, 2
for bad flags.`

func newMonitorCmd(_ context.Context, stdio IO) *cobra.Command {
	o := &monitorOptions{}
	cmd := &cobra.Command{
		Use:   "monitor [--addr HOST:PORT | --socket PATH] [COMMAND...]",
		Short: "Ask a running dispatcher or the cluster what it is doing (async and asyncdb tools)",
		Long:  monitorLong,
		Example: `  skein monitor async status
  skein monitor --socket /run/skein/monitor.sock asyncdb status
  skein monitor --watch --interval 1s`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMonitor(cmd.Context(), stdio, o, args)
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false) // everything after the first word is the command
	addMonitorClientFlags(cmd, o)
	f.StringVar(&o.color, "color", "auto", "color JSON answers: auto (on a terminal), always or never")
	f.BoolVarP(&o.watch, "watch", "w", false, "refresh a compact live view of status, jobs and polls")
	f.DurationVar(&o.interval, "interval", monitorDefaultInterval, "time between --watch refreshes")
	f.IntVar(&o.count, "count", 0, "with --watch: stop after this many views (0: until interrupted)")
	cmd.AddCommand(newMonitorServeCmd(stdio))
	return cmd
}

func addMonitorClientFlags(cmd *cobra.Command, o *monitorOptions) {
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "", "monitor server `HOST:PORT` (default $"+envMonitorAddr+" or "+monitor.DefaultAddr+")")
	f.StringVar(&o.socket, "socket", "", "monitor server unix socket `PATH` (default $"+envMonitorSocket+")")
	f.StringVar(&o.token, "token", "", "token to send first, for a server that is not on loopback (default $"+envMonitorToken+")")
	f.DurationVar(&o.timeout, "timeout", monitor.DefaultClientTimeout, "time allowed for one answer")
}

func (o *monitorOptions) client() *monitor.ClientConfig {
	c := &monitor.ClientConfig{Addr: o.addr, Socket: o.socket, Token: firstNonEmpty(o.token, os.Getenv(envMonitorToken)), Timeout: o.timeout}
	if c.Addr == "" && c.Socket == "" {
		c.Socket = os.Getenv(envMonitorSocket)
		if c.Socket == "" {
			c.Addr = firstNonEmpty(os.Getenv(envMonitorAddr), monitor.DefaultAddr)
		}
	}
	return c
}

func (o *monitorOptions) where() string {
	c := o.client()
	if c.Socket != "" {
		return c.Socket
	}
	return c.Addr
}

func runMonitor(ctx context.Context, stdio IO, o *monitorOptions, args []string) error {
	switch {
	case o.addr != "" && o.socket != "":
		return &ExitError{Code: 2, Err: errors.New("monitor: give --addr or --socket, not both")}
	case o.color != "auto" && o.color != "always" && o.color != "never":
		return &ExitError{Code: 2, Err: fmt.Errorf("monitor: --color %q: want auto, always or never", o.color)}
	case o.interval <= 0:
		return &ExitError{Code: 2, Err: fmt.Errorf("monitor: --interval %s: want a positive duration", o.interval)}
	case o.count < 0:
		return &ExitError{Code: 2, Err: fmt.Errorf("monitor: --count %d: want 0 or more", o.count)}
	case o.watch && len(args) > 0:
		return &ExitError{Code: 2, Err: fmt.Errorf("monitor: --watch shows its own view; drop the command %q", strings.Join(args, " "))}
	}
	if o.watch {
		return watchMonitor(ctx, stdio, o)
	}
	command := strings.Join(args, " ")
	if command == "" {
		command = "help"
	}
	out, err := monitor.Query(ctx, o.client(), command)
	if err != nil {
		return &ExitError{Code: 1, Err: fmt.Errorf("monitor: %w", err)}
	}
	if o.color == "always" || (o.color == "auto" && isTerminal(stdio.Out) && os.Getenv("NO_COLOR") == "") {
		out = colorJSON(out)
	}
	_, err = fmt.Fprintln(stdio.Out, out)
	return err
}

// ANSI colors of the pretty output.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiBlue   = "\x1b[34m"
	ansiCyan   = "\x1b[36m"
	ansiGray   = "\x1b[90m"
)

// statusColors color the dispatcher states wherever they appear.
var statusColors = map[string]string{
	monitor.StateRunning: ansiGreen, monitor.StateStarting: ansiYellow,
	monitor.StateStuck: ansiBold + ansiRed, monitor.StateStopped: ansiGray,
}

// colorJSON colors an answer that is JSON (keys, strings, numbers,
// literals); other text is returned as it is.
func colorJSON(s string) string {
	if !json.Valid([]byte(s)) || (!strings.HasPrefix(s, "{") && !strings.HasPrefix(s, "[")) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(s))
			tok := s[i:j]
			rest := strings.TrimLeft(s[j:], " ")
			switch {
			case strings.HasPrefix(rest, ":"):
				b.WriteString(ansiBlue + tok + ansiReset)
			case statusColors[strings.Trim(tok, `"`)] != "":
				b.WriteString(statusColors[strings.Trim(tok, `"`)] + tok + ansiReset)
			default:
				b.WriteString(ansiGreen + tok + ansiReset)
			}
			i = j
		case c == '-' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(s) && strings.IndexByte("0123456789.eE+-", s[j]) >= 0 {
				j++
			}
			b.WriteString(ansiCyan + s[i:j] + ansiReset)
			i = j
		case strings.HasPrefix(s[i:], "true"), strings.HasPrefix(s[i:], "false"):
			n := 4
			if c == 'f' {
				n = 5
			}
			b.WriteString(ansiYellow + s[i:i+n] + ansiReset)
			i += n
		case strings.HasPrefix(s[i:], "null"):
			b.WriteString(ansiGray + "null" + ansiReset)
			i += 4
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// watchView is what one --watch refresh read.
type watchView struct {
	at      time.Time
	status  map[string]any
	jobs    []string
	polls   []map[string]any
	cluster map[string]any // nil without a store
	errs    []string
}

func readWatchView(ctx context.Context, c *monitor.ClientConfig) (*watchView, error) {
	v := &watchView{at: time.Now()}
	query := func(cmd string, into any) error {
		out, err := monitor.Query(ctx, c, cmd)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(strings.NewReader(out))
		dec.UseNumber() // counts print as integers, however large
		if err := dec.Decode(into); err != nil {
			return fmt.Errorf("%s: answer is not JSON: %w", cmd, err)
		}
		return nil
	}
	if err := query("async status", &v.status); err != nil {
		var ce *monitor.CommandError
		if !errors.As(err, &ce) {
			return nil, err // the server is unreachable
		}
		v.errs = append(v.errs, "async status: "+err.Error())
	} else {
		if err := query("async jobs", &v.jobs); err != nil {
			v.errs = append(v.errs, "async jobs: "+err.Error())
		}
		if err := query(fmt.Sprintf("async polls count:%d", monitorWatchPolls), &v.polls); err != nil {
			v.errs = append(v.errs, "async polls: "+err.Error())
		}
	}
	if err := query("asyncdb status", &v.cluster); err != nil {
		v.cluster = nil
		if !strings.Contains(err.Error(), "no store is configured") {
			v.errs = append(v.errs, "asyncdb status: "+err.Error())
		}
	}
	return v, nil
}

// durationOf reads a monitor duration object.
func durationOf(v any) (time.Duration, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return 0, false
	}
	var d time.Duration
	for k, unit := range map[string]time.Duration{"days": 24 * time.Hour, "hours": time.Hour, "minutes": time.Minute, "seconds": time.Second} {
		if n, ok := m[k].(json.Number); ok {
			if f, err := n.Float64(); err == nil {
				d += time.Duration(f * float64(unit))
			}
		}
	}
	return d, true
}

func shortDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func renderWatch(w io.Writer, where string, v *watchView, color bool) {
	paint := func(c, s string) string {
		if !color || c == "" {
			return s
		}
		return c + s + ansiReset
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s  %s  %s\n", paint(ansiBold, "skein monitor"), where, v.at.UTC().Format(time.RFC3339))
	if v.status != nil {
		state, _ := v.status["status"].(string)
		uuid, _ := v.status["uuid"].(string)
		fmt.Fprintf(&b, "dispatcher %s  %s", uuid, paint(statusColors[state], state))
		if d, ok := durationOf(v.status["uptime"]); ok {
			fmt.Fprintf(&b, "  up %s", shortDuration(d))
		}
		if d, ok := durationOf(v.status["time since last poll"]); ok {
			fmt.Fprintf(&b, "  last poll %s ago", shortDuration(d))
		}
		if d, ok := durationOf(v.status["poll interval"]); ok {
			fmt.Fprintf(&b, " (every %s)", shortDuration(d))
		}
		b.WriteByte('\n')
		agents, _ := v.status["agents"].(map[string]any)
		names := make([]string, 0, len(agents))
		for n := range agents {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			a, _ := agents[n].(map[string]any)
			queues := "all"
			if qs, ok := a["queues"].([]any); ok && len(qs) > 0 {
				queues = fmt.Sprint(qs...)
			}
			fmt.Fprintf(&b, "  agent %-12s %v/%v running  queues: %s\n", n, a["len"], a["size"], queues)
		}
		fmt.Fprintf(&b, "running jobs (%d), newest first:\n", len(v.jobs))
		for i, id := range v.jobs {
			if i == monitorWatchJobs {
				fmt.Fprintf(&b, "  … and %d more (skein monitor async jobs)\n", len(v.jobs)-i)
				break
			}
			b.WriteString("  " + id + "\n")
		}
		if len(v.polls) > 0 {
			b.WriteString("recent polls:\n")
		}
		for _, p := range v.polls {
			ts, _ := p["time"].(string)
			if t, err := time.Parse(monitor.TimeLayout, ts); err == nil {
				ts = t.UTC().Format("15:04:05.000")
			}
			results, _ := p["results"].(map[string]any)
			for _, agent := range slices.Sorted(mapKeys(results)) {
				r, _ := results[agent].(map[string]any)
				newJobs, _ := r["new jobs"].([]any)
				line := fmt.Sprintf("  %s  %-10s %-7v claimed %d  held %v/%v", ts, agent, r["reason"], len(newJobs), r["len"], r["size"])
				if e, ok := r["error"].(string); ok {
					line += "  " + paint(ansiRed, "error: "+e)
				}
				b.WriteString(line + "\n")
			}
		}
	}
	if v.cluster != nil {
		queues, _ := v.cluster["queues"].(map[string]any)
		if len(queues) > 0 {
			b.WriteString("queues:\n")
		}
		for _, q := range slices.Sorted(mapKeys(queues)) {
			qv, _ := queues[q].(map[string]any)
			counts, _ := qv["counts"].(map[string]any)
			fmt.Fprintf(&b, "  %-16s %v pending  %v running  %v failed for good", q, qv["len"], num(counts["running"]), num(counts["discarded"]))
			if d, ok := durationOf(qv["waiting for"]); ok {
				fmt.Fprintf(&b, "  oldest waiting %s", shortDuration(d))
			}
			b.WriteByte('\n')
		}
		ds, _ := v.cluster["dispatchers"].(map[string]any)
		var alive, dead int
		var deadIDs []string
		for id, d := range ds {
			if dm, _ := d.(map[string]any); dm["dead"] == true {
				dead++
				deadIDs = append(deadIDs, id)
			} else {
				alive++
			}
		}
		slices.Sort(deadIDs)
		fmt.Fprintf(&b, "dispatchers: %d alive, %s", alive, paint(map[bool]string{true: ansiRed}[dead > 0], fmt.Sprintf("%d dead", dead)))
		if dead > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(deadIDs, ", "))
		}
		b.WriteByte('\n')
	}
	for _, e := range v.errs {
		b.WriteString(paint(ansiRed, "error: "+e) + "\n")
	}
	_, _ = w.Write(b.Bytes())
}

func num(v any) any {
	if v == nil {
		return 0
	}
	return v
}

func mapKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func watchMonitor(ctx context.Context, stdio IO, o *monitorOptions) error {
	tty := isTerminal(stdio.Out)
	color := o.color == "always" || (o.color == "auto" && tty && os.Getenv("NO_COLOR") == "")
	c := o.client()
	t := time.NewTicker(o.interval)
	defer t.Stop()
	for n := 1; ; n++ {
		v, err := readWatchView(ctx, c)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return &ExitError{Code: 1, Err: fmt.Errorf("monitor: %w", err)}
		}
		var frame bytes.Buffer
		if tty {
			frame.WriteString("\x1b[H\x1b[2J") // home, clear
		} else if n > 1 {
			frame.WriteByte('\n')
		}
		renderWatch(&frame, o.where(), v, color)
		if _, err := stdio.Out.Write(frame.Bytes()); err != nil {
			return err
		}
		if o.count > 0 && n >= o.count {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// serveMonitorConfig is the monitor: section of skein serve's config
// file. Its zero values mean the defaults written in docs/monitor.md.
type serveMonitorConfig struct {
	// Addr is the TCP address of the command server; "off" disables it.
	Addr string `yaml:"addr"`
	// Socket is the path of a unix socket for the command server.
	Socket string `yaml:"socket"`
	// Token lets clients that are not on loopback in.
	Token string `yaml:"token"`
	// HTTP is the address of the HTTP JSON API and /metrics; empty: none.
	HTTP string `yaml:"http"`
	// Statsd is the UDP address of a statsd server; empty: no reports.
	Statsd         string       `yaml:"statsd"`
	StatsdPrefix   string       `yaml:"statsd_prefix"`
	StatsdInterval yamlDuration `yaml:"statsd_interval"`
}

// monitorSection reads the monitor: section of a serve config file, if
// any, then the environment.
func monitorSection(file string, data []byte) (serveMonitorConfig, error) {
	var c serveMonitorConfig
	if len(data) > 0 {
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err == nil && len(doc.Content) > 0 && doc.Content[0].Kind == yaml.MappingNode {
			top := doc.Content[0]
			for i := 0; i+1 < len(top.Content); i += 2 {
				if top.Content[i].Value == "monitor" {
					var wrap struct {
						Monitor serveMonitorConfig `yaml:"monitor"`
					}
					sub := &yaml.Node{Kind: yaml.MappingNode, Content: top.Content[i : i+2]}
					if err := decodeNode(file, "", sub, reflect.ValueOf(&wrap).Elem()); err != nil {
						return c, err
					}
					c = wrap.Monitor
				}
			}
		}
	}
	for _, e := range []struct {
		env string
		to  *string
	}{{envMonitorAddr, &c.Addr}, {envMonitorSocket, &c.Socket}, {envMonitorToken, &c.Token}, {envMonitorHTTP, &c.HTTP}, {envMonitorStatsd, &c.Statsd}} {
		if v, ok := os.LookupEnv(e.env); ok {
			*e.to = v
		}
	}
	return c, nil
}

// startServeMonitor runs the monitor beside skein serve's dispatcher: the
// command server (default 127.0.0.1:8701), and when configured the HTTP
// API with /metrics and the statsd reporter.
func startServeMonitor(ctx context.Context, env *serveEnv) (*serveRunning, error) {
	c, err := monitorSection(env.ConfigFile, env.ConfigData)
	if err != nil {
		return nil, err
	}
	if env.MonitorAddr != "" {
		c.Addr = env.MonitorAddr
	}
	if env.MonitorSocket != "" {
		c.Socket = env.MonitorSocket
	}
	explicit := c.Addr != ""
	if c.Addr == "" {
		c.Addr = monitor.DefaultAddr
	}
	if c.Addr == "off" {
		c.Addr = ""
	}
	m, err := monitor.New(&monitor.Config{Dispatchers: []monitor.Dispatcher{skeinmon.New(env.Dispatcher)}, Store: env.Store,
		DeadAfter: env.Dispatcher.Status().DeadAfter})
	if err != nil {
		return nil, err
	}
	r, err := runMonitorServers(ctx, m, c, explicit)
	if err != nil {
		return nil, err
	}
	if len(r.banner) == 0 {
		r.banner = []string{"off (monitor.addr is off)"}
	}
	return &serveRunning{Banner: "monitor:  " + strings.Join(r.banner, "; "), Stop: r.stop}, nil
}

// monitorServers are the running servers of a monitor.
type monitorServers struct {
	banner []string
	stops  []func(context.Context) error
}

func (r *monitorServers) stop(ctx context.Context) error {
	var errs []error
	for i := len(r.stops) - 1; i >= 0; i-- {
		errs = append(errs, r.stops[i](ctx))
	}
	return errors.Join(errs...)
}

// runMonitorServers starts the command server, the HTTP server and the
// statsd reporter c asks for. A default TCP address that is in use is reported in the banner
// rather than failing; an explicit one fails.
func runMonitorServers(ctx context.Context, m *monitor.Monitor, c serveMonitorConfig, explicitAddr bool) (*monitorServers, error) {
	r := &monitorServers{}
	if c.Addr != "" || c.Socket != "" {
		srv, err := monitor.NewServer(m, &monitor.ServerConfig{Addr: c.Addr, Socket: c.Socket, Token: c.Token})
		if err != nil {
			return nil, err
		}
		err = srv.Start(ctx)
		if err != nil && !explicitAddr && c.Socket == "" && errors.Is(err, syscall.EADDRINUSE) {
			r.banner = append(r.banner, fmt.Sprintf("off (%s is in use; set monitor.addr or $%s)", c.Addr, envMonitorAddr))
		} else if err != nil {
			return nil, err
		} else {
			r.stops = append(r.stops, srv.Stop)
			var where []string
			if a := srv.Addr(); a != nil {
				where = append(where, a.String())
			}
			if c.Socket != "" {
				where = append(where, c.Socket)
			}
			r.banner = append(r.banner, strings.Join(where, " and ")+" (skein monitor async help)")
		}
	}
	if c.HTTP != "" {
		host, _, err := net.SplitHostPort(c.HTTP)
		if err != nil {
			_ = r.stop(context.Background())
			return nil, fmt.Errorf("monitor: http address %q: %w", c.HTTP, err)
		}
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			_ = r.stop(context.Background())
			return nil, fmt.Errorf("monitor: http address %q is not loopback: the API has no authentication; put it behind a proxy that has", c.HTTP)
		}
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", c.HTTP)
		if err != nil {
			_ = r.stop(context.Background())
			return nil, fmt.Errorf("monitor: listening on %s: %w", c.HTTP, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/api/", m.Handler())
		mux.Handle("/metrics", m.MetricsHandler())
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = hs.Serve(ln)
		}()
		r.stops = append(r.stops, func(ctx context.Context) error {
			err := hs.Shutdown(ctx)
			<-done
			return err
		})
		r.banner = append(r.banner, fmt.Sprintf("http://%s/api/ and /metrics", ln.Addr()))
	}
	if c.Statsd != "" {
		sr, err := monitor.NewStatsdReporter(m, &monitor.StatsdConfig{Addr: c.Statsd, Prefix: c.StatsdPrefix, Interval: time.Duration(c.StatsdInterval)})
		if err == nil {
			err = sr.Start(ctx)
		}
		if err != nil {
			_ = r.stop(context.Background())
			return nil, fmt.Errorf("monitor: statsd: %w", err)
		}
		r.stops = append(r.stops, sr.Stop)
		r.banner = append(r.banner, "statsd to "+c.Statsd)
	}
	return r, nil
}

type monitorServeOptions struct {
	store        string
	addr         string
	socket       string
	token        string
	http         string
	statsd       string
	statsdPrefix string
}

func newMonitorServeCmd(stdio IO) *cobra.Command {
	o := &monitorServeOptions{}
	cmd := &cobra.Command{
		Use:   "serve [--store DSN] [--addr HOST:PORT] [--socket PATH] [--http HOST:PORT] [--statsd HOST:PORT]",
		Short: "Serve the asyncdb tools of a store, without a dispatcher",
		Long: `serve runs a monitor server on a store alone: the asyncdb tools (queues,
dispatchers dead or alive, jobs by state), with --http the same as a JSON API
beside Prometheus /metrics, and with --statsd the queue depths as statsd
gauges. The async tools need a dispatcher: skein serve runs this same server
beside its own.

The store is --store, else $` + open.EnvStore + `, else ` + open.DefaultDSN + `. Ctrl-C stops.`,
		Example: `  skein monitor serve --store postgres://skein@db/skein --http 127.0.0.1:8702
  skein monitor --addr 127.0.0.1:8701 asyncdb status`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMonitorServe(cmd.Context(), stdio, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.store, "store", "", "store DSN (default $"+open.EnvStore+" or "+open.DefaultDSN+")")
	f.StringVar(&o.addr, "addr", "", "TCP `HOST:PORT` of the command server; \"off\": none (default $"+envMonitorAddr+" or "+monitor.DefaultAddr+")")
	f.StringVar(&o.socket, "socket", "", "unix socket `PATH` of the command server (default $"+envMonitorSocket+")")
	f.StringVar(&o.token, "token", "", "token that clients not on loopback send first (default $"+envMonitorToken+")")
	f.StringVar(&o.http, "http", "", "loopback `HOST:PORT` for the HTTP JSON API and /metrics (default $"+envMonitorHTTP+", else none)")
	f.StringVar(&o.statsd, "statsd", "", "send queue depths to the statsd server at `HOST:PORT` every 10s (default $"+envMonitorStatsd+", else none)")
	f.StringVar(&o.statsdPrefix, "statsd-prefix", monitor.DefaultStatsdPrefix, "prefix of the statsd names")
	return cmd
}

func runMonitorServe(ctx context.Context, stdio IO, o *monitorServeOptions) error {
	dsn := firstNonEmpty(o.store, os.Getenv(open.EnvStore), open.DefaultDSN)
	target, err := open.Parse(dsn)
	if err != nil {
		return &ExitError{Code: 2, Err: err}
	}
	st, err := open.Open(ctx, dsn, nil)
	if err != nil {
		return fmt.Errorf("opening store %s: %w", target, schemaError(err))
	}
	defer st.Close()
	if err := st.CheckSchema(ctx); err != nil {
		return fmt.Errorf("store %s: %w", target, schemaError(err))
	}
	m, err := monitor.New(&monitor.Config{Store: st})
	if err != nil {
		return err
	}
	c := serveMonitorConfig{
		Addr:   firstNonEmpty(o.addr, os.Getenv(envMonitorAddr), monitor.DefaultAddr),
		Socket: firstNonEmpty(o.socket, os.Getenv(envMonitorSocket)),
		Token:  firstNonEmpty(o.token, os.Getenv(envMonitorToken)),
		HTTP:   firstNonEmpty(o.http, os.Getenv(envMonitorHTTP)),
		Statsd: firstNonEmpty(o.statsd, os.Getenv(envMonitorStatsd)),

		StatsdPrefix: o.statsdPrefix,
	}
	if c.Addr == "off" {
		c.Addr = ""
	}
	if c.Addr == "" && c.Socket == "" && c.HTTP == "" && c.Statsd == "" {
		return &ExitError{Code: 2, Err: errors.New("monitor serve: nothing to serve: --addr off without --socket, --http or --statsd")}
	}
	r, err := runMonitorServers(ctx, m, c, true)
	if err != nil {
		return &ExitError{Code: 1, Err: fmt.Errorf("monitor serve: %w", err)}
	}
	fmt.Fprintf(stdio.Out, "skein monitor serve: store %s\n  monitor:  %s\nCtrl-C stops.\n", target, strings.Join(r.banner, "; "))
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.stop(stopCtx)
}
