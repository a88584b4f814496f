package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/internal/testwait"
	"github.com/skeinhq/skein/kinds"
	"github.com/skeinhq/skein/store/sqlite"
)

// skeinBinary builds the real skein command once per test binary, into
// $TMPDIR/skein-cli-test-<pid>; directories left by earlier test binaries
// that are no longer running are removed first.
var skeinBinary = sync.OnceValues(func() (string, error) {
	tmp := os.TempDir()
	if old, err := filepath.Glob(filepath.Join(tmp, "skein-cli-test-*")); err == nil {
		for _, d := range old {
			pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "skein-cli-test-"))
			if err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) != nil {
				_ = os.RemoveAll(d)
			}
		}
	}
	dir := filepath.Join(tmp, fmt.Sprintf("skein-cli-test-%d", os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "skein")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/skeinhq/skein/cmd/skein").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building skein: %v\n%s", err, out)
	}
	return bin, nil
})

// TestScripts drives the real skein binary with the scripts in
// testdata/script: serve in the background, real signals, the jobs CLI,
// and their error cases.
func TestScripts(t *testing.T) {
	bin, err := skeinBinary()
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
			env.Setenv("SKEIN_STORE", "")
			env.Setenv("SKEIN_LOG", "")
			env.Setenv("NO_COLOR", "1")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"stdout2env": cmdStdoutToEnv,
			"waitfile":   cmdWaitFile,
			"sqlexec":    cmdSQLExec,
		},
	})
}

// cmdStdoutToEnv sets an environment variable to the previous command's
// standard output, trimmed: stdout2env NAME.
func cmdStdoutToEnv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: stdout2env NAME")
	}
	ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile("stdout")))
}

// cmdWaitFile waits until a file (written by a background process) matches
// a regular expression: waitfile FILE REGEXP [TIMEOUT]. It polls: the
// writer is another process.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: waitfile FILE REGEXP [TIMEOUT]")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	timeout := 30 * time.Second
	if len(args) == 3 {
		timeout, err = time.ParseDuration(args[2])
		ts.Check(err)
	}
	path := ts.MkAbs(args[0])
	var data []byte
	if !testwait.For(timeout, func() bool {
		data, _ = os.ReadFile(path)
		return re.Match(data)
	}) {
		ts.Fatalf("%s does not match %q after %s:\n%s", args[0], args[1], timeout, data)
	}
}

// cmdSQLExec runs one statement on a SQLite file: sqlexec FILE SQL.
func cmdSQLExec(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sqlexec FILE SQL")
	}
	db, err := sqlite.OpenDB(ts.MkAbs(args[0]), nil)
	ts.Check(err)
	defer db.Close()
	_, err = db.ExecContext(context.Background(), args[1])
	ts.Check(err)
}

// FuzzServeConfig checks that any YAML is decoded or refused with an
// error naming the file, and never panics.
func FuzzServeConfig(f *testing.F) {
	seeds := []string{
		"", "store: x.db\n", "dispatcher:\n  poll_interval: 1s\n", "dispatcher:\n  pol_interval: 1s\n",
		"agents:\n  - name: a\n    size: 2\n    queues: [q]\n", "agents: main\n", "kinds:\n  exec:\n    env: {A: b}\n",
		"log:\n  file: ~\n", "a: &x 1\nb: *x\n", "dispatcher:\n\tpoll_interval: 1s\n", "kinds:\n  http:\n    timeout: -1s\n",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		var y serveFile
		err := decodeStrict("f.yaml", []byte(data), &y)
		if err != nil && !strings.HasPrefix(err.Error(), "f.yaml") {
			t.Fatalf("error %q does not name the file", err)
		}
		_ = keyLine([]byte(data), "dispatcher.poll_interval")
		_ = keyLine([]byte(data), "agents[0].size")
	})
}

// TestServeShipsLog runs serve in-process with --ship to a loopback
// endpoint and checks that a job's messages arrive there, then that serve
// stops when its context ends.
func TestServeShipsLog(t *testing.T) {
	t.Parallel()
	got := make(chan struct{})
	var once sync.Once
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"line":"shipped"`)) {
			once.Do(func() { close(got) })
		}
	}))
	defer sink.Close()

	dir := t.TempDir()
	db := filepath.Join(dir, "skein.db")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, &sqlite.Config{Path: db, AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	client, err := skein.NewClient(st, &skein.ClientConfig{Logger: action.New(io.Discard, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Enqueue(ctx, kinds.ExecArgs{Command: []string{"echo", "shipped"}}, nil); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "skein.yaml")
	if err := os.WriteFile(cfg, []byte("dispatcher:\n  poll_interval: 50ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out, errb syncBuf
	code := make(chan int, 1)
	go func() {
		code <- Run(runCtx, []string{"serve", "--store", db, "--config", cfg, "--log", filepath.Join(dir, "skein.log"), "--ship", sink.URL, "--quiet"},
			IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	}()
	select {
	case <-got:
	case c := <-code:
		t.Fatalf("serve exited %d:\n%s%s", c, out.String(), errb.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the job's output was not shipped:\n%s%s", out.String(), errb.String())
	}
	cancel()
	if c := <-code; c != 0 {
		t.Fatalf("serve exited %d:\n%s%s", c, out.String(), errb.String())
	}
	if want := "log:      " + filepath.Join(dir, "skein.log") + ", shipped to " + sink.URL; !strings.Contains(out.String(), want) {
		t.Errorf("banner lacks %q:\n%s", want, out.String())
	}
}

// syncBuf is a bytes.Buffer safe for a writer and a reader.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeSIGTERM stops a real skein serve process with SIGTERM.
func TestServeSIGTERM(t *testing.T) {
	t.Parallel()
	bin, err := skeinBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "serve", "--quiet")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SKEIN_STORE=", "SKEIN_LOG=")
	var out syncBuf
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// serve is another process: watch its log.
	if !testwait.For(30*time.Second, func() bool {
		data, _ := os.ReadFile(filepath.Join(dir, "skein.log"))
		return bytes.Contains(data, []byte("skein:dispatcher:started"))
	}) {
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("serve did not start:\n%s", out.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("serve did not stop on SIGTERM:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "\nstopped\n") {
		t.Errorf("serve output:\n%s", out.String())
	}
}

// TestServeConfigDispatcher: the dispatcher section reaches skein.Config.
func TestServeConfigDispatcher(t *testing.T) {
	path := filepath.Join(t.TempDir(), "skein.yaml")
	yaml := "dispatcher:\n  poll_interval: 250ms\n  outcomes_with_claims: true\nagents:\n  - name: a\n    size: 3\n"
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := loadServeSetup(&serveOptions{config: path}, false)
	if err != nil {
		t.Fatal(err)
	}
	d := s.dispatcher
	if d.PollInterval != 250*time.Millisecond || !d.OutcomesWithClaims || len(d.Agents) != 1 || d.Agents[0].Size != 3 {
		t.Errorf("dispatcher config %+v, want poll 250ms, outcomes with claims, one agent of 3", d)
	}
}
