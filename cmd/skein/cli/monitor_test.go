package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skeinhq/skein/monitor"
)

// monitorFake is a dispatcher that polled once, for the CLI tests.
type monitorFake struct{ started time.Time }

func (f monitorFake) Status() monitor.Status {
	return monitor.Status{UUID: "d10f43dc-ffdf-11dc-abd4-0017f2c49bdd", Started: f.started, LastPoll: f.started,
		PollInterval: time.Hour, Agents: []monitor.AgentStatus{{Name: "main", Size: 3, Active: []string{"wf_1"}}}}
}

func (f monitorFake) Polls(int) []monitor.Poll {
	return []monitor.Poll{{Key: 1, Time: f.started, Agents: []monitor.AgentPoll{{Agent: "main", Reason: "poll", Size: 3, Len: 1, New: []string{"wf_1"}}}}}
}

func (f monitorFake) Jobs(int) []monitor.JobRecord {
	return []monitor.JobRecord{{ID: "wf_1", Kind: "send", Queue: "default", Agent: "main", PollKey: 1, Started: f.started}}
}

func startMonitorServer(t *testing.T, cfg *monitor.ServerConfig) *monitor.Server {
	t.Helper()
	m, err := monitor.New(&monitor.Config{Dispatchers: []monitor.Dispatcher{monitorFake{started: time.Now()}}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := monitor.NewServer(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	return srv
}

func runMonitorCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestMonitorCommand(t *testing.T) {
	t.Setenv(envMonitorAddr, "")
	t.Setenv(envMonitorSocket, "")
	t.Setenv(envMonitorToken, "")
	sock := filepath.Join(t.TempDir(), "m.sock")
	srv := startMonitorServer(t, &monitor.ServerConfig{Addr: "127.0.0.1:0", Socket: sock})
	addr := srv.Addr().String()
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string // a substring
		stderr   string // a substring
		noStdout bool
	}{
		{"status", []string{"monitor", "--addr", addr, "async", "status"}, 0, `"status": "RUNNING"`, "", false},
		{"socket", []string{"monitor", "--socket", sock, "async", "UUID"}, 0, "d10f43dc-ffdf-11dc-abd4-0017f2c49bdd\n", "", false},
		{"modifiers", []string{"monitor", "--addr", addr, "async", "jobs", "queue:default", "agent:main"}, 0, "\"wf_1\"", "", false},
		{"default is help", []string{"monitor", "--addr", addr}, 0, "Supported commands:", "", false},
		{"help is the server's", []string{"monitor", "--addr", addr, "help", "async"}, 0, "Help for async:", "", false},
		{"color always", []string{"monitor", "--addr", addr, "--color", "always", "async", "status"}, 0, "\x1b[32m\"RUNNING\"", "", false},
		{"no color when piped", []string{"monitor", "--addr", addr, "async", "status"}, 0, "", "", false},
		{"server error", []string{"monitor", "--addr", addr, "async", "nosuch"}, 1, "", `skein: monitor: unknown async tool "nosuch"`, true},
		{"bad interval", []string{"monitor", "--addr", addr, "async", "polls", "at:5X"}, 1, "", `bad interval "5X"`, true},
		{"unreachable", []string{"monitor", "--socket", filepath.Join(t.TempDir(), "none"), "async", "status"}, 1, "", "connecting to the monitor", true},
		{"both addresses", []string{"monitor", "--addr", addr, "--socket", sock, "help"}, 2, "", "give --addr or --socket, not both", true},
		{"bad color", []string{"monitor", "--color", "pink", "help"}, 2, "", `--color "pink"`, true},
		{"watch with a command", []string{"monitor", "--watch", "async", "status"}, 2, "", "drop the command", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runMonitorCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("skein %s: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
					strings.Join(tt.args, " "), code, out, errOut, tt.code, tt.stdout, tt.stderr)
			}
			if tt.noStdout && out != "" {
				t.Errorf("stdout %q, want none", out)
			}
			if tt.name == "no color when piped" && strings.Contains(out, "\x1b[") {
				t.Errorf("colors in piped output: %q", out)
			}
		})
	}
	// The environment names the server.
	t.Setenv(envMonitorAddr, addr)
	if code, out, errOut := runMonitorCLI(t, "monitor", "async", "UUID"); code != 0 || !strings.HasPrefix(out, "d10f43dc") {
		t.Errorf("with $%s: exit %d, %q, %q", envMonitorAddr, code, out, errOut)
	}
}

func TestMonitorWatchPlain(t *testing.T) {
	srv := startMonitorServer(t, &monitor.ServerConfig{Addr: "127.0.0.1:0"})
	code, out, errOut := runMonitorCLI(t, "monitor", "--addr", srv.Addr().String(), "--watch", "--count", "2", "--interval", "1ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("escape codes in piped watch output:\n%q", out)
	}
	frames := strings.Split(strings.TrimSuffix(out, "\n"), "\n\n")
	if len(frames) != 2 {
		t.Fatalf("%d views, want 2:\n%s", len(frames), out)
	}
	for _, want := range []string{
		"dispatcher d10f43dc-ffdf-11dc-abd4-0017f2c49bdd  RUNNING  up ",
		"agent main         1/3 running  queues: all",
		"running jobs (1), newest first:\n  wf_1\n",
		"recent polls:",
		"main       poll    claimed 1  held 1/3",
	} {
		if !strings.Contains(frames[0], want) {
			t.Errorf("view lacks %q:\n%s", want, frames[0])
		}
	}
}

func TestColorJSON(t *testing.T) {
	in := `{
    "a": [1, -2.5e3, true, false, null],
    "status": "STUCK",
    "s": "x\"y"
}`
	got := colorJSON(in)
	for _, want := range []string{
		ansiBlue + `"a"` + ansiReset, ansiCyan + "1" + ansiReset, ansiCyan + "-2.5e3" + ansiReset,
		ansiYellow + "true" + ansiReset, ansiYellow + "false" + ansiReset, ansiGray + "null" + ansiReset,
		ansiBold + ansiRed + `"STUCK"` + ansiReset, ansiGreen + `"x\"y"` + ansiReset,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("colorJSON lacks %q:\n%q", want, got)
		}
	}
	if got := colorJSON("plain text"); got != "plain text" {
		t.Errorf("plain text colored: %q", got)
	}
}

// startSkein starts the real skein binary and returns it with a reader of
// its standard output.
func startSkein(t *testing.T, env []string, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	bin, err := skeinBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, bufio.NewReader(out)
}

var monitorBanner = regexp.MustCompile(`monitor:\s+(127\.0\.0\.1:\d+)`)

// bannerAddr reads lines until the monitor's banner line and returns the
// address in it.
func bannerAddr(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if m := monitorBanner.FindStringSubmatch(line); m != nil {
			return m[1]
		}
		if err != nil {
			t.Fatalf("no monitor banner line: %v", err)
		}
	}
}

func stopSkein(t *testing.T, cmd *exec.Cmd, r *bufio.Reader) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, r)
	if err := cmd.Wait(); err != nil {
		t.Errorf("skein after SIGINT: %v", err)
	}
}

// TestServeRunsMonitor: skein serve runs the monitor beside its
// dispatcher where --monitor says (over the environment's "off");
// skein monitor asks it.
func TestServeRunsMonitor(t *testing.T) {
	dir := t.TempDir()
	cmd, out := startSkein(t, []string{envMonitorAddr + "=off", envMonitorSocket + "=", envMonitorHTTP + "=", envMonitorStatsd + "="},
		"serve", "--store", filepath.Join(dir, "skein.db"), "--log", filepath.Join(dir, "skein.log"), "--quiet", "--monitor", "127.0.0.1:0")
	addr := bannerAddr(t, out)
	code, status, errOut := runMonitorCLI(t, "monitor", "--addr", addr, "async", "status")
	if code != 0 {
		t.Fatalf("async status: exit %d: %s", code, errOut)
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(status), &s); err != nil {
		t.Fatalf("async status is not JSON: %v\n%s", err, status)
	}
	if s["status"] != "RUNNING" && s["status"] != "STARTING" {
		t.Errorf("status %v, want RUNNING or STARTING", s["status"])
	}
	code, uuids, errOut := runMonitorCLI(t, "monitor", "--addr", addr, "asyncdb", "UUIDs")
	if code != 0 || !strings.Contains(uuids, s["uuid"].(string)) {
		t.Errorf("asyncdb UUIDs: exit %d, %q, %q; want %s among them", code, uuids, errOut, s["uuid"])
	}
	stopSkein(t, cmd, out)
}

// TestMonitorServe: skein monitor serve answers the asyncdb tools and
// serves the HTTP API and /metrics.
func TestMonitorServe(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "skein.db")
	// Create the schema.
	if code, _, errOut := runMonitorCLI(t, "migrate", "up", "--store", db); code != 0 {
		t.Fatalf("migrate up: %d %s", code, errOut)
	}
	cmd, out := startSkein(t, nil, "monitor", "serve", "--store", db, "--addr", "127.0.0.1:0", "--http", "127.0.0.1:0")
	var addr, httpAddr string
	httpRE := regexp.MustCompile(`http://(127\.0\.0\.1:\d+)/api/`)
	for addr == "" || httpAddr == "" {
		line, err := out.ReadString('\n')
		if m := monitorBanner.FindStringSubmatch(line); m != nil {
			addr = m[1]
		}
		if m := httpRE.FindStringSubmatch(line); m != nil {
			httpAddr = m[1]
		}
		if err != nil {
			t.Fatalf("no banner with both addresses: %v", err)
		}
	}
	if code, got, errOut := runMonitorCLI(t, "monitor", "--addr", addr, "asyncdb", "count", "pending"); code != 0 || got != "0\n" {
		t.Errorf("asyncdb count pending: exit %d, %q, %q", code, got, errOut)
	}
	if code, _, errOut := runMonitorCLI(t, "monitor", "--addr", addr, "async", "status"); code != 1 || !strings.Contains(errOut, "no dispatcher runs in this process") {
		t.Errorf("async status without a dispatcher: exit %d, %q", code, errOut)
	}
	for path, want := range map[string]string{
		"/api/asyncdb/count?state=pending": "0",
		"/metrics":                         "skein_monitor_store_up 1",
	} {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d %q, want %q", path, resp.StatusCode, body, want)
		}
	}
	stopSkein(t, cmd, out)
}

func TestMonitorSection(t *testing.T) {
	for _, e := range []string{envMonitorAddr, envMonitorSocket, envMonitorToken, envMonitorHTTP, envMonitorStatsd} {
		t.Setenv(e, "") // restored when the test ends
		os.Unsetenv(e)  // LookupEnv must not see them
	}
	data := []byte("store: ./x.db\nmonitor:\n  addr: 127.0.0.1:9000\n  socket: /tmp/m.sock\n  statsd: 127.0.0.1:8125\n  statsd_interval: 5s\n")
	c, err := monitorSection("skein.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9000" || c.Socket != "/tmp/m.sock" || c.Statsd != "127.0.0.1:8125" || time.Duration(c.StatsdInterval) != 5*time.Second {
		t.Errorf("monitor section = %+v", c)
	}
	t.Setenv(envMonitorAddr, "off")
	if c, _ := monitorSection("skein.yaml", data); c.Addr != "off" {
		t.Errorf("$%s does not win: %q", envMonitorAddr, c.Addr)
	}
	_, err = monitorSection("skein.yaml", []byte("monitor:\n  adr: 127.0.0.1:9000\n"))
	if err == nil || !strings.Contains(err.Error(), "skein.yaml:2: monitor.adr: unknown key") {
		t.Errorf("bad key: %v, want one naming skein.yaml:2 and monitor.adr", err)
	}
	if c, err := monitorSection("", nil); err != nil || c.Addr != "off" {
		t.Errorf("no file: %+v, %v", c, err)
	}
}

func TestRenderWatchCluster(t *testing.T) {
	v := &watchView{at: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC), errs: []string{"async polls: boom"}}
	dec := json.NewDecoder(strings.NewReader(`{"queues": {"default": {"len": 1200000, "counts": {"running": 3, "discarded": 1},
		"waiting for": {"minutes": 3, "seconds": 2.5}}, "email": {"len": 0, "counts": {}, "waiting for": null}},
		"dispatchers": {"a": {"dead": false}, "b": {"dead": true}}}`))
	dec.UseNumber()
	if err := dec.Decode(&v.cluster); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	renderWatch(&b, "127.0.0.1:8701", v, false)
	for _, want := range []string{
		"skein monitor  127.0.0.1:8701  2026-11-22T12:00:00Z\n",
		"  default          1200000 pending  3 running  1 failed for good  oldest waiting 3m3s\n",
		"  email            0 pending  0 running  0 failed for good\n",
		"dispatchers: 1 alive, 1 dead (b)\n",
		"error: async polls: boom\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("view lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	renderWatch(&b, "x", v, true)
	if !strings.Contains(b.String(), ansiRed+"1 dead"+ansiReset) {
		t.Errorf("dead dispatchers not in red:\n%q", b.String())
	}
}
