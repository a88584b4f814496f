package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skeinhq/skein/internal/testwait"
)

// shipSink is an HTTP endpoint on loopback counting test records by "n".
type shipSink struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     map[int]int
	total   int
	changed chan struct{}
	fail    bool // answer 503 to everything
}

func newShipSink(t *testing.T) *shipSink {
	s := &shipSink{got: map[int]int{}, changed: make(chan struct{}, 1)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		fail := s.fail
		s.mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var ns []int
		sc := bufio.NewScanner(bytes.NewReader(body))
		for sc.Scan() {
			var rec struct{ N int }
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				http.Error(w, "bad record: "+err.Error(), http.StatusBadRequest)
				return
			}
			ns = append(ns, rec.N)
		}
		s.mu.Lock()
		for _, n := range ns {
			s.got[n]++
		}
		s.total += len(ns)
		s.mu.Unlock()
		select {
		case s.changed <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// waitFor waits, on the sink's arrival signal, until cond holds.
func (s *shipSink) waitFor(t *testing.T, what string, cond func(got map[int]int, total int) bool) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		s.mu.Lock()
		ok := cond(s.got, s.total)
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.changed:
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (s *shipSink) counts() (distinct, total int, dup bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.got {
		if c > 1 {
			dup = true
		}
	}
	return len(s.got), s.total, dup
}

func shipLines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, `{"task_uuid":"u","task_level":[%d],"n":%d}`+"\n", i+1, i)
	}
	return b.String()
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestShipFiles(t *testing.T) {
	t.Parallel()
	sk := newShipSink(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	appendFile(t, a, shipLines(0, 600))
	appendFile(t, b, shipLines(600, 1000)+"this is not json\n"+`{"n": 1000}`) // last line has no newline
	out, errOut, code := runCLI(t, "", "ship", "--url", sk.srv.URL, a, b)
	if code != 1 {
		t.Errorf("exit %d, want 1 (a bad line), stdout %q stderr %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "b.log:401: not a JSON object") {
		t.Errorf("stderr does not name the bad line:\n%s", errOut)
	}
	if !strings.Contains(errOut, "received=1001 delivered=1001 dropped=0") || !strings.Contains(errOut, "invalid_lines=1") {
		t.Errorf("stderr lacks the accounting:\n%s", errOut)
	}
	if distinct, _, _ := sk.counts(); distinct != 1001 {
		t.Errorf("sink got %d distinct records, want 1001", distinct)
	}
	if out != "" {
		t.Errorf("stdout %q, want nothing", out)
	}
}

func TestShipStdinAllDelivered(t *testing.T) {
	t.Parallel()
	sk := newShipSink(t)
	_, errOut, code := runCLI(t, shipLines(0, 300), "ship", "--url", sk.srv.URL, "--header", "X-Team: core", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if distinct, _, _ := sk.counts(); distinct != 300 {
		t.Errorf("sink got %d records", distinct)
	}
	if strings.Contains(errOut, "\r") {
		t.Errorf("progress printed although stderr is not a terminal: %q", errOut)
	}
}

func TestShipDroppedExitsNonZero(t *testing.T) {
	t.Parallel()
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bucket not found", http.StatusNotFound)
	}))
	defer refusing.Close()
	_, errOut, code := runCLI(t, shipLines(0, 10), "ship", "--url", refusing.URL)
	if code != 1 || !strings.Contains(errOut, "dropped_rejected=10") || !strings.Contains(errOut, "bucket not found") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
}

func TestShipCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name, yaml, want string
		code             int
	}{
		{"good", "url: https://logs.example.com/ingest\nbatch:\n  max_bytes: 512KiB\n", "ok (POST https://logs.example.com/ingest, ndjson envelope, queue block, spool off)", 0},
		{"no url", "gzip: true\n", "bad.yaml: url: required", 2},
		{"bad field value", "url: http://x/\nqueue:\n  max_records: -3\n", "bad.yaml:3: queue.max_records: must be at least 1, got -3", 2},
		{"unknown key", "url: http://x/\nbatch:\n  max_recs: 3\n", "line 3: field max_recs not found", 2},
		{"bad size", "url: http://x/\nqueue:\n  max_bytes: 8 parsecs\n", `unknown unit "parsecs"`, 2},
		{"bad duration", "url: http://x/\nbatch:\n  timeout: soon\n", "soon", 2},
		{"bad status", "url: http://x/\nretry:\n  statuses: [429, 200]\n", "bad.yaml:3: retry.statuses[1]: 200 is a success", 2},
		{"bad template", "url: http://x/\nenvelope:\n  format: template\n  template: '{\"a\": \"{{records_string}}\"}'\n", "bad.yaml:4: envelope.template: template does not make valid JSON", 2},
		{"unset env", "url: http://x/\nheaders:\n  Authorization: Bearer ${SKEIN_SURELY_UNSET}\n", "bad.yaml:3: headers.Authorization: environment variable SKEIN_SURELY_UNSET is not set", 2},
		{"bad policy", "url: http://x/\nqueue:\n  policy: drop_all\n", "bad.yaml:3: queue.policy: must be drop_oldest, drop_newest or block", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "bad.yaml")
			if tt.name == "good" {
				path = filepath.Join(dir, "good.yaml")
			}
			if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := runCLI(t, "", "ship", "--check", "--config", path)
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Errorf("exit %d, output %q%q; want %d and %q", code, out, errOut, tt.code, tt.want)
			}
		})
	}
}

// TestShipCorporateConfig runs the documented configuration for the
// structlog story's endpoint (testdata/ship/corporate.yaml) against a
// server as strict as that one.
func TestShipCorporateConfig(t *testing.T) {
	t.Setenv("CORP_LOG_TOKEN", "tok-9")
	var mu sync.Mutex
	got := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if r.Header.Get("Authorization") != "Bearer tok-9" || json.NewDecoder(r.Body).Decode(&body) != nil ||
			len(body) != 2 || body["bucket"] != "team-a" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		payload, ok := body["payload"].(string)
		var recs []map[string]any
		if !ok || json.Unmarshal([]byte(payload), &recs) != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		mu.Lock()
		got += len(recs)
		mu.Unlock()
	}))
	defer srv.Close()
	_, errOut, code := runCLI(t, shipLines(0, 50), "ship", "--config", "testdata/ship/corporate.yaml", "--url", srv.URL+"/ingest")
	if code != 0 || got != 50 {
		t.Errorf("exit %d, %d records arrived; stderr:\n%s", code, got, errOut)
	}
	out, _, code := runCLI(t, "", "ship", "--check", "--config", "testdata/ship/corporate.yaml")
	if code != 0 || !strings.Contains(out, "template envelope") {
		t.Errorf("--check of the documented config: %d %q", code, out)
	}
}

func TestShipParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"123", 123, true}, {"64KiB", 64 << 10, true}, {"8 MiB", 8 << 20, true}, {"1GB", 1e9, true},
		{"2kb", 2000, true}, {"", 0, false}, {"MiB", 0, false}, {"5 parsecs", 0, false}, {"99999999999999999999", 0, false},
		{"9999999999GiB", 0, false},
	}
	for _, tt := range tests {
		got, err := parseShipSize(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("parseShipSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzShipParseSize(f *testing.F) {
	for _, s := range []string{"1", "8MiB", "1 GB", "x", "9223372036854775807", "10KIB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseShipSize(s)
		if err == nil && n < 0 {
			t.Errorf("parseShipSize(%q) = %d", s, n)
		}
	})
}

// runShipFollow runs `skein ship --follow` in-process until stop is called.
func runShipFollow(t *testing.T, args ...string) (stop func() (stderr string, code int)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var errb bytes.Buffer
	done := make(chan int)
	go func() {
		done <- Run(ctx, append([]string{"ship", "--follow"}, args...), IO{In: strings.NewReader(""), Out: io.Discard, Err: &errb})
	}()
	return func() (string, int) {
		cancel()
		code := <-done
		return errb.String(), code
	}
}

func TestShipFollowRotationTruncationRestart(t *testing.T) {
	t.Parallel()
	sk := newShipSink(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	positions := filepath.Join(dir, "positions.json")
	appendFile(t, log, shipLines(0, 100))
	args := []string{"--url", sk.srv.URL, "--positions", positions, "--config", writeYAML(t, dir, "batch:\n  timeout: 10ms\nfollow:\n  poll_interval: 10ms\n"), log}
	stop := runShipFollow(t, args...)
	has := func(n int) func(map[int]int, int) bool {
		return func(got map[int]int, _ int) bool { return len(got) >= n }
	}
	sk.waitFor(t, "the first 100 records", has(100))

	appendFile(t, log, shipLines(100, 150))
	sk.waitFor(t, "appended records", has(150))

	// Rotate: rename, keep writing to the old file a little, start a new one.
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, log+".1", shipLines(150, 160))
	appendFile(t, log, shipLines(160, 200))
	sk.waitFor(t, "records across rotation", has(200))

	// Truncate in place, then write again from the top.
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, log, shipLines(200, 210))
	sk.waitFor(t, "records after truncation", has(210))

	errOut, code := stop()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if distinct, total, dup := sk.counts(); distinct != 210 || total != 210 || dup {
		t.Errorf("got %d distinct of %d records (duplicates: %v), want 210 once each", distinct, total, dup)
	}

	// A restart neither repeats nor skips.
	appendFile(t, log, shipLines(210, 220))
	stop = runShipFollow(t, args...)
	sk.waitFor(t, "records written while stopped", has(220))
	errOut, code = stop()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if distinct, total, dup := sk.counts(); distinct != 220 || total != 220 || dup {
		t.Errorf("after restart: %d distinct of %d records (duplicates: %v), want 220 once each", distinct, total, dup)
	}
}

func writeYAML(t *testing.T, dir, s string) string {
	t.Helper()
	path := filepath.Join(dir, "ship.yaml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startShipChild runs skein ship in a child process (this test binary).
func startShipChild(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childArgs(append([]string{"ship"}, args...)...))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &stderr
}

// TestShipSIGTERMDrains sends a real SIGTERM to a following sidecar: it
// drains, prints its accounting and exits 0.
func TestShipSIGTERMDrains(t *testing.T) {
	t.Parallel()
	sk := newShipSink(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, shipLines(0, 500))
	cmd, stderr := startShipChild(t, "--follow", "--url", sk.srv.URL, "--positions", filepath.Join(dir, "pos.json"), log)
	sk.waitFor(t, "the child's records", func(got map[int]int, _ int) bool { return len(got) == 500 })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr.String(), "received=500 delivered=500 dropped=0") {
		t.Errorf("child's accounting:\n%s", stderr)
	}
}

// TestShipSidecarKill9WithSpool kills a following sidecar with SIGKILL
// while its endpoint fails, then runs it again with the endpoint up: every
// line it had taken (as its saved positions say) arrives.
func TestShipSidecarKill9WithSpool(t *testing.T) {
	t.Parallel()
	sk := newShipSink(t)
	sk.mu.Lock()
	sk.fail = true
	sk.mu.Unlock()
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	spoolDir := filepath.Join(dir, "spool")
	appendFile(t, log, shipLines(0, 3000))
	cfg := writeYAML(t, dir, "retry:\n  initial_wait: 1ms\n  max_wait: 5ms\nfollow:\n  poll_interval: 10ms\n")
	cmd, stderr := startShipChild(t, "--follow", "--config", cfg, "--url", sk.srv.URL, "--spool", spoolDir, log)
	// Wait (polling the child's own file: it is another process) until it
	// has saved a position covering every line.
	posFile := filepath.Join(spoolDir, "positions.json")
	want := int64(len(shipLines(0, 3000)))
	if !testwait.For(30*time.Second, func() bool {
		var pos map[string]shipPosition
		var offset int64
		if data, err := os.ReadFile(posFile); err == nil && json.Unmarshal(data, &pos) == nil {
			for _, p := range pos {
				offset = p.Offset
			}
		}
		return offset >= want
	}) {
		t.Fatalf("child never saved its position; stderr:\n%s", stderr)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if distinct, _, _ := sk.counts(); distinct != 0 {
		t.Fatalf("the failing sink accepted %d records", distinct)
	}

	sk.mu.Lock()
	sk.fail = false
	sk.mu.Unlock()
	appendFile(t, log, shipLines(3000, 3100))
	_, errOut, code := runCLI(t, "", "ship", "--follow=false", "--url", sk.srv.URL, "--spool", spoolDir, "/dev/null")
	if code != 0 {
		t.Fatalf("replay run: exit %d\n%s", code, errOut)
	}
	if distinct, _, _ := sk.counts(); distinct != 3000 {
		t.Errorf("after kill -9 and replay, %d of 3000 records arrived\n%s", distinct, errOut)
	}
	// Following again picks up after the saved position: only new lines.
	stop := runShipFollow(t, "--url", sk.srv.URL, "--spool", spoolDir, "--config", cfg, log)
	sk.waitFor(t, "the lines written after the kill", func(got map[int]int, _ int) bool { return len(got) == 3100 })
	if errOut, code := stop(); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	sk.mu.Lock()
	defer sk.mu.Unlock()
	for i := 3000; i < 3100; i++ {
		if sk.got[i] != 1 {
			t.Fatalf("record %d arrived %d times", i, sk.got[i])
		}
	}
}

// TestShipSIGTERMWithOpenStdin: a signal ends the sidecar even while its
// standard input stays open (a pipe from a process still running).
func TestShipSIGTERMWithOpenStdin(t *testing.T) {
	t.Parallel()
	sk := newShipSink(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childArgs("ship", "--url", sk.srv.URL, "-"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(stdin, shipLines(0, 10)); err != nil {
		t.Fatal(err)
	}
	sk.waitFor(t, "the piped records", func(got map[int]int, _ int) bool { return len(got) == 10 })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "received=10 delivered=10") {
		t.Errorf("child's accounting:\n%s", stderr.String())
	}
}

// TestShipProxyFromEnvironment runs the sidecar in a child process whose
// HTTP_PROXY names a proxy wanting Basic credentials; the endpoint's name
// is one only the proxy knows (it maps it to the loopback sink).
func TestShipProxyFromEnvironment(t *testing.T) {
	t.Parallel()
	sk := newShipSink(t)
	sinkAddr := strings.TrimPrefix(sk.srv.URL, "http://")
	var mu sync.Mutex
	seen := 0
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Proxy-Authorization") != "Basic YWxpY2U6czNjcmV0" { // alice:s3cret
			w.Header().Set("Proxy-Authenticate", `Basic realm="corp"`)
			http.Error(w, "proxy authentication required", http.StatusProxyAuthRequired)
			return
		}
		if r.URL.Host != "logs.corp.internal:8080" {
			http.Error(w, "unknown host "+r.URL.Host, http.StatusBadGateway)
			return
		}
		mu.Lock()
		seen++
		mu.Unlock()
		out, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+sinkAddr+r.URL.Path, r.Body)
		out.Header = r.Header.Clone()
		out.Header.Del("Proxy-Authorization")
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	defer proxy.Close()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childArgs("ship", "--url", "http://logs.corp.internal:8080/ingest", "-"),
		"HTTP_PROXY="+strings.Replace(proxy.URL, "http://", "http://alice:s3cret@", 1), "http_proxy=", "NO_PROXY=", "no_proxy=")
	cmd.Stdin = strings.NewReader(shipLines(0, 40))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\n%s", err, stderr.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if distinct, _, _ := sk.counts(); distinct != 40 || seen == 0 {
		t.Errorf("%d records arrived through %d proxied requests\n%s", distinct, seen, stderr.String())
	}
	if strings.Contains(stderr.String(), "s3cret") {
		t.Errorf("the proxy password leaked:\n%s", stderr.String())
	}
}
