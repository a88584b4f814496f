package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skeinhq/skein/internal/pgtest"
	"github.com/skeinhq/skein/store"
)

// jobsCLI runs skein in-process with its own streams.
func jobsCLI(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(ctx, args, IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// TestJobsCLIPostgres runs serve, enqueue and the jobs commands on
// PostgreSQL.
//
// Not parallel: pgtest.StartServer races with itself when two tests start
// servers at once (its script path is a package variable written without
// its lock).
func TestJobsCLIPostgres(t *testing.T) {
	var dsn string
	if os.Getenv(pgtest.EnvURL) != "" {
		dsn = pgtest.NewDatabase(t)
	} else {
		dsn = pgtest.StartServer(t).NewDatabase(t)
	}
	ctx := context.Background()
	dir := t.TempDir()
	logFile := filepath.Join(dir, "skein.log")
	cfg := filepath.Join(dir, "skein.yaml")
	if err := os.WriteFile(cfg, []byte("dispatcher:\n  poll_interval: 50ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	must := func(args ...string) string {
		t.Helper()
		code, out, errs := jobsCLI(t, ctx, args...)
		if code != 0 {
			t.Fatalf("skein %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}

	// No schema yet: a clear error.
	if code, _, errs := jobsCLI(t, ctx, "jobs", "list", "--store", dsn); code != 1 || !strings.Contains(errs, "database has no skein schema (version 0)") {
		t.Errorf("jobs list on an empty database: exit %d, %q", code, errs)
	}

	must("migrate", "up", "--store", dsn)
	id := strings.TrimSpace(must("enqueue", "--store", dsn, "--log", logFile, "--workflow", "wf-pg", "exec", "--", "echo", "from postgres"))

	// serve runs it, and stops when its context ends.
	serveCtx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	served := make(chan string, 1)
	go func() {
		_, out, errs := jobsCLI(t, serveCtx, "serve", "--store", dsn, "--config", cfg, "--log", logFile, "--quiet")
		served <- out + errs
	}()
	if !strings.HasPrefix(id, "wf-pg_") {
		t.Fatalf("job id %q does not start with the workflow", id)
	}
	if out := must("jobs", "wait", "--store", dsn, id); !strings.Contains(out, id+" completed") {
		t.Errorf("jobs wait: %q", out)
	}
	out := must("jobs", "show", "--store", dsn, "--log", logFile, id)
	for _, want := range []string{"state:      completed", "line: from postgres", "skein:attempt/2/", "skein:job/3 ⇒ succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("jobs show lacks %q:\n%s", want, out)
		}
	}

	out = must("jobs", "list", "--store", dsn, "--json", "--workflow", "wf-pg")
	var jobs []*store.Job
	if err := json.Unmarshal([]byte(out), &jobs); err != nil || len(jobs) != 1 || jobs[0].ID != id || jobs[0].State != store.StateCompleted {
		t.Errorf("jobs list --json: %v %s", err, out)
	}

	// The dispatcher of serve is registered: its kinds are known, others not.
	if code, _, errs := jobsCLI(t, ctx, "enqueue", "--store", dsn, "--log", "none", "send_email", "{}"); code != 1 || !strings.Contains(errs, `unknown kind "send_email"`) {
		t.Errorf("enqueue of an unknown kind: exit %d %q", code, errs)
	}
	out = must("jobs", "stats", "--store", dsn, "--json")
	var stats struct {
		Store       string
		Queues      []*store.QueueStats
		Dispatchers []*store.Dispatcher
	}
	if err := json.Unmarshal([]byte(out), &stats); err != nil || len(stats.Queues) != 1 || stats.Queues[0].Counts[store.StateCompleted] != 1 || len(stats.Dispatchers) != 1 {
		t.Errorf("jobs stats --json: %v %s", err, out)
	}
	stopServe()
	select {
	case out := <-served:
		if !strings.Contains(out, "stopped") {
			t.Errorf("serve did not stop cleanly:\n%s", out)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}
