// Package pgtest gives tests a real PostgreSQL database on loopback.
//
// When TEST_DATABASE_URL is set, tests use that server (its user needs the
// CREATEDB privilege). Otherwise the first test that asks starts a throwaway
// cluster with scripts/pg-test-server (once per test binary) and [Main] stops
// it when the tests end. Every call of [NewDatabase] creates a fresh database,
// dropped when its test ends.
//
// Without PostgreSQL server binaries the tests are skipped with a loud message,
// except when CI=true, where they fail: the suite never goes silently green in
// CI.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Main(m)) }
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable holding an existing server's DSN.
const EnvURL = "TEST_DATABASE_URL"

var (
	mu       sync.Mutex
	started  bool
	baseDSN  string                        // maintenance database DSN
	dir      string                        // cluster directory when we started it
	script   = sync.OnceValues(findScript) // path of scripts/pg-test-server
	startErr error
	noServer bool // binaries missing
	counter  atomic.Int64
)

// TestingM is what [Main] wraps and returns: *testing.M satisfies it, and so
// does goleak's VerifyTestMain argument.
type TestingM interface{ Run() int }

type mainM struct{ m TestingM }

func (w mainM) Run() int {
	code := w.m.Run()
	if err := Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Main wraps m so that the server started for the tests (if any) is stopped
// after they ran.
func Main(m TestingM) TestingM { return mainM{m} }

// Stop stops and removes the cluster started by this package, if any. [Main]
// calls it.
func Stop() error {
	mu.Lock()
	defer mu.Unlock()
	if dir == "" {
		return nil
	}
	d := dir
	dir = ""
	return stopCluster(d)
}

// server returns the maintenance DSN, starting a cluster when needed. It
// skips or fails t when no server can be had.
func server(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if !started {
		started = true
		baseDSN, startErr = start()
	}
	if noServer {
		skipOrFail(t, startErr)
	}
	if startErr != nil {
		t.Fatalf("pgtest: %v", startErr)
	}
	return baseDSN
}

func start() (string, error) {
	if u := os.Getenv(EnvURL); u != "" {
		return u, nil
	}
	d, dsn, err := startCluster(true)
	if err != nil {
		return "", err
	}
	dir = d
	return dsn, nil
}

// startCluster starts a cluster with the script; it sets noServer when the
// binaries are missing.
func startCluster(fast bool) (dir, dsn string, err error) {
	sc, err := script()
	if err != nil {
		return "", "", err
	}
	d, err := os.MkdirTemp("", "skein-pgtest-")
	if err != nil {
		return "", "", fmt.Errorf("making the cluster directory: %w", err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		return "", "", fmt.Errorf("making the cluster directory: %w", err)
	}
	args := []string{"start", filepath.Join(d, "pg")}
	if fast {
		args = append([]string{"--fast"}, args...)
	}
	cmd := exec.Command(sc, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		_ = os.RemoveAll(d)
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 3 {
			noServer = true
			return "", "", errors.New(strings.TrimSpace(stderr.String()))
		}
		return "", "", fmt.Errorf("starting PostgreSQL with %s: %v: %s", sc, err, stderr.String())
	}
	return filepath.Join(d, "pg"), strings.TrimSpace(string(out)), nil
}

func stopCluster(d string) error {
	sc, err := script()
	if err != nil {
		return err
	}
	out, err := exec.Command(sc, "stop", d).CombinedOutput()
	_ = os.RemoveAll(filepath.Dir(d))
	if err != nil {
		return fmt.Errorf("stopping the test PostgreSQL in %s: %v: %s", d, err, out)
	}
	return nil
}

// findScript walks up from the working directory to the module root.
func findScript() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding scripts/pg-test-server: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "scripts", "pg-test-server")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("scripts/pg-test-server not found above %s", wd)
		}
	}
}

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	msg := "\n\n*** PostgreSQL tests NOT RUN: " + err.Error() +
		"\n*** install Debian's postgresql package or set " + EnvURL + " ***\n\n"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// DSN returns the DSN of the server's maintenance database, starting the
// server if needed. Tests should prefer [NewDatabase].
func DSN(t testing.TB) string {
	t.Helper()
	return server(t)
}

// NewDatabase creates a fresh, empty database on the shared server and
// returns its DSN. The database is dropped when t ends (connections to it are
// terminated).
func NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, server(t))
}

func newDatabase(t testing.TB, base string) string {
	t.Helper()
	name := fmt.Sprintf("skein_test_%d_%d", os.Getpid(), counter.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: connecting to %s: %v", redact(base), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("pgtest: connecting to drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" {
		// A keyword/value DSN.
		return base + " dbname=" + name
	}
	u.Path = "/" + name
	return u.String()
}

// Server is a cluster of a test's own, for fault tests (restarts, kills)
// that must not disturb other tests, and for packages whose TestMain cannot
// call [Main].
type Server struct {
	dir string
	dsn string
}

// StartServer starts a cluster of t's own, stopped and removed when t ends.
// Without server binaries it skips t (fails it when CI=true). It ignores
// TEST_DATABASE_URL: a test that restarts its server needs one of its own.
func StartServer(t testing.TB) *Server {
	t.Helper()
	return startServer(t, true)
}

// StartStockServer is StartServer with PostgreSQL's stock settings (fsync
// and synchronous commit on), for benchmarks; StartServer turns them off.
func StartStockServer(t testing.TB) *Server {
	t.Helper()
	return startServer(t, false)
}

func startServer(t testing.TB, fast bool) *Server {
	t.Helper()
	mu.Lock()
	d, dsn, err := startCluster(fast)
	missing := noServer
	mu.Unlock()
	if missing {
		skipOrFail(t, err)
	}
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := stopCluster(d); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return &Server{dir: d, dsn: dsn}
}

// DSN is the server's maintenance database.
func (s *Server) DSN() string { return s.dsn }

// NewDatabase creates a fresh database on s, dropped when t ends.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, s.dsn)
}

// Restart restarts s (fast shutdown: connections are dropped, transactions
// in flight roll back); its DSNs stay valid.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	runScript(t, "restart", s.dir)
}

// Crash stops s the hard way (immediate shutdown, as a crash: the server
// recovers from its WAL when it starts) and starts it again.
func (s *Server) Crash(t testing.TB) {
	t.Helper()
	runScript(t, "crash", s.dir)
}

// Restart restarts the server started by this package (for fault tests):
// every connection is dropped, the DSNs stay valid. It fails t when the
// server came from TEST_DATABASE_URL.
func Restart(t testing.TB) {
	t.Helper()
	server(t)
	mu.Lock()
	d := dir
	mu.Unlock()
	if d == "" {
		t.Fatalf("pgtest: cannot restart a server given by %s", EnvURL)
	}
	runScript(t, "restart", d)
}

func runScript(t testing.TB, args ...string) {
	t.Helper()
	sc, err := script()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if out, err := exec.Command(sc, args...).CombinedOutput(); err != nil {
		t.Fatalf("pgtest: %s PostgreSQL: %v: %s", args[0], err, out)
	}
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
