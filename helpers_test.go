package skein_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/goleak"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/internal/pgtest"
	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/postgres"
	"github.com/skeinhq/skein/store/sqlite"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	goleak.VerifyTestMain(pgtest.Main(m))
}

// waitTimeout bounds every wait on a channel in these tests.
const waitTimeout = 20 * time.Second

// syncBuffer is a log destination safe to read while written.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tx is a caller's transaction for EnqueueTx.
type tx struct {
	tx       any
	commit   func() error
	rollback func() error
}

// harness is one store with a client and a log.
type harness struct {
	t      *testing.T
	kind   string
	store  store.Store
	path   string // sqlite file
	dsn    string // postgres
	begin  func(ctx context.Context) (*tx, error)
	logs   *syncBuffer
	logger *action.Logger
	client *skein.Client
}

type storeOpener struct {
	name string
	open func(t *testing.T) *harness
}

var storeOpeners = []storeOpener{
	{"sqlite", openSQLite},
	{"postgres", openPostgres},
}

func openSQLite(t *testing.T) *harness {
	t.Helper()
	path := filepath.Join(t.TempDir(), "skein.db")
	st, err := sqlite.Open(context.Background(), &sqlite.Config{Path: path, AutoMigrate: true})
	if err != nil {
		t.Fatalf("opening sqlite store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	h := &harness{t: t, kind: "sqlite", store: st, path: path}
	h.begin = func(ctx context.Context) (*tx, error) {
		db, err := sqlite.OpenDB(path, nil)
		if err != nil {
			return nil, err
		}
		sqlTx, err := db.BeginTx(ctx, nil)
		if err != nil {
			_ = db.Close()
			return nil, err
		}
		return &tx{tx: sqlTx,
			commit:   func() error { defer db.Close(); return sqlTx.Commit() },
			rollback: func() error { defer db.Close(); return sqlTx.Rollback() }}, nil
	}
	return h.finish()
}

func openPostgres(t *testing.T) *harness {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	st, err := postgres.Open(context.Background(), &postgres.Config{DSN: dsn, AutoMigrate: true, MaxConns: 8})
	if err != nil {
		t.Fatalf("opening postgres store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	h := &harness{t: t, kind: "postgres", store: st, dsn: dsn}
	h.begin = func(ctx context.Context) (*tx, error) {
		db := stdlib.OpenDBFromPool(st.Pool())
		sqlTx, err := db.BeginTx(ctx, nil)
		if err != nil {
			_ = db.Close()
			return nil, err
		}
		return &tx{tx: sqlTx,
			commit:   func() error { defer db.Close(); return sqlTx.Commit() },
			rollback: func() error { defer db.Close(); return sqlTx.Rollback() }}, nil
	}
	return h.finish()
}

func (h *harness) finish() *harness {
	h.logs = &syncBuffer{}
	h.logger = action.New(h.logs, nil)
	c, err := skein.NewClient(h.store, &skein.ClientConfig{Logger: h.logger})
	if err != nil {
		h.t.Fatalf("NewClient: %v", err)
	}
	h.client = c
	return h
}

// eachStore runs f as a subtest against every store driver.
func eachStore(t *testing.T, f func(t *testing.T, h *harness)) {
	for _, o := range storeOpeners {
		t.Run(o.name, func(t *testing.T) {
			f(t, o.open(t))
		})
	}
}

// testConfig is a dispatcher configuration with short intervals.
func (h *harness) testConfig(handlers *skein.Handlers) *skein.Config {
	return &skein.Config{
		Handlers:          handlers,
		Logger:            h.logger,
		PollInterval:      20 * time.Millisecond,
		HeartbeatInterval: 50 * time.Millisecond,
		DeadAfter:         5 * time.Second,
		CleanupInterval:   -1,
		Backoff:           skein.BackoffFunc(func(int) time.Duration { return time.Millisecond }),
	}
}

// start starts a dispatcher, stopped when the test ends, and subscribes
// to its events.
func (h *harness) start(cfg *skein.Config) (*skein.Dispatcher, <-chan skein.Event) {
	h.t.Helper()
	d, err := skein.NewDispatcher(h.store, cfg)
	if err != nil {
		h.t.Fatalf("NewDispatcher: %v", err)
	}
	events, unsubscribe := d.Subscribe(10000)
	if err := d.Start(context.Background()); err != nil {
		h.t.Fatalf("Start: %v", err)
	}
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			h.t.Errorf("Stop at cleanup: %v", err)
		}
		unsubscribe()
	})
	return d, events
}

// waitEvent receives events until one for jobID reaches one of states.
func waitEvent(t *testing.T, events <-chan skein.Event, jobID string, states ...store.State) skein.Event {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case e := <-events:
			if e.JobID != jobID {
				continue
			}
			for _, s := range states {
				if e.State == s {
					return e
				}
			}
		case <-timer.C:
			t.Fatalf("no event for job %s in states %v within %s", jobID, states, waitTimeout)
		}
	}
}

// waitEvents receives events until each job of want reached its state.
func waitEvents(t *testing.T, events <-chan skein.Event, want map[string]store.State) {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	left := len(want)
	for left > 0 {
		select {
		case e := <-events:
			if s, ok := want[e.JobID]; ok && s == e.State {
				left--
			}
		case <-timer.C:
			t.Fatalf("%d of %d jobs did not reach their state within %s", left, len(want), waitTimeout)
		}
	}
}

// waitClosed waits for ch to be closed or to deliver.
func waitClosed[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

func (h *harness) getJob(id string) *store.Job {
	h.t.Helper()
	j, err := h.store.GetJob(context.Background(), id)
	if err != nil {
		h.t.Fatalf("GetJob(%s): %v", id, err)
	}
	return j
}

// message is one parsed log line.
type message map[string]any

func (m message) uuid() string { s, _ := m["task_uuid"].(string); return s }

func (m message) level() string {
	l, _ := m["task_level"].([]any)
	parts := make([]string, len(l))
	for i, v := range l {
		parts[i] = fmt.Sprint(v)
	}
	return "/" + strings.Join(parts, "/")
}

func (m message) str(k string) string { s, _ := m[k].(string); return s }

func parseMessages(t *testing.T, text string) []message {
	t.Helper()
	var out []message
	for i, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if line == "" {
			continue
		}
		var m message
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %d is not JSON: %v: %s", i+1, err, line)
		}
		out = append(out, m)
	}
	return out
}

// checkUnique fails on any (task_uuid, task_level) written twice.
func checkUnique(t *testing.T, msgs []message) {
	t.Helper()
	seen := make(map[string]message, len(msgs))
	for _, m := range msgs {
		k := m.uuid() + "@" + m.level()
		if prev, ok := seen[k]; ok {
			t.Errorf("position %s written twice:\n  %v\n  %v", k, prev, m)
		}
		seen[k] = m
	}
}

// byPosition indexes messages by "uuid@/level".
func byPosition(msgs []message) map[string]message {
	out := make(map[string]message, len(msgs))
	for _, m := range msgs {
		out[m.uuid()+"@"+m.level()] = m
	}
	return out
}
