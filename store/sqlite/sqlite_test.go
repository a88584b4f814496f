package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/storetest"
)

const childEnv = "SKEIN_SQLITE_TEST_CHILD"

// TestMain checks for leaked goroutines, and runs claimChild when a test
// re-executes this binary as a child process.
func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		if err := claimChild(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// claimChild claims and completes jobs of the file at path until none are
// left, printing each claimed id on stdout.
func claimChild(path string) error {
	ctx := context.Background()
	s, err := Open(ctx, &Config{Path: path})
	if err != nil {
		return err
	}
	defer s.Close()
	return claimAll(ctx, s, fmt.Sprintf("child-%d", os.Getpid()), func(id string) { fmt.Println(id) })
}

func claimAll(ctx context.Context, s store.Store, dispatcher string, seen func(id string)) error {
	if err := s.RegisterDispatcher(ctx, &store.Dispatcher{ID: dispatcher, PID: os.Getpid()}); err != nil {
		return err
	}
	for {
		jobs, err := s.Claim(ctx, &store.ClaimParams{Dispatcher: dispatcher, Agent: "main", Limit: 5})
		if err != nil {
			return err
		}
		if len(jobs) == 0 {
			return nil
		}
		var outs []*store.Outcome
		for _, j := range jobs {
			seen(j.ID)
			outs = append(outs, &store.Outcome{ID: j.ID, Dispatcher: dispatcher, Slot: j.Slot, State: store.StateCompleted})
		}
		if nh, err := s.Finish(ctx, outs); err != nil || len(nh) > 0 {
			return fmt.Errorf("finish: not held %v, %v", nh, err)
		}
	}
}

// Several processes share one file: every job is claimed exactly once.
func TestProcessesShareFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	s, err := Open(ctx, &Config{Path: path, AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 1500
	ps := make([]*store.InsertParams, n)
	for i := range ps {
		ps[i] = &store.InsertParams{ID: fmt.Sprintf("wf_%05d", i), Kind: "k", Queue: "default", MaxAttempts: 1}
	}
	if _, err := s.Insert(ctx, ps); err != nil {
		t.Fatal(err)
	}
	const children = 3
	outs := make([]*bytes.Buffer, children)
	cmds := make([]*exec.Cmd, children)
	for i := range cmds {
		outs[i] = &bytes.Buffer{}
		cmds[i] = exec.Command(os.Args[0], "-test.run=^$")
		cmds[i].Env = append(os.Environ(), childEnv+"="+path)
		cmds[i].Stdout, cmds[i].Stderr = outs[i], os.Stderr
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	counts := map[string]int{}
	var parent []string
	if err := claimAll(ctx, s, "parent", func(id string) { parent = append(parent, id) }); err != nil {
		t.Errorf("parent: %v", err)
	}
	for _, id := range parent {
		counts[id]++
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("child %d: %v", i, err)
		}
		for _, id := range strings.Fields(outs[i].String()) {
			counts[id]++
		}
	}
	if len(counts) != n {
		t.Errorf("%d distinct jobs claimed, want %d", len(counts), n)
	}
	for id, c := range counts {
		if c != 1 {
			t.Errorf("job %s claimed %d times", id, c)
		}
	}
	if c, err := s.CountJobs(ctx, &store.JobFilter{States: []store.State{store.StateCompleted}}); err != nil || c != n {
		t.Errorf("completed = %d, %v, want %d", c, err, n)
	}
	t.Logf("parent claimed %d of %d jobs, %d children the rest", len(parent), n, children)
}

// Stores on the same file in one process share notifications.
func TestNotifySameFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "n.db")
	a, err := Open(ctx, &Config{Path: path, AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, &Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := a.Subscribe(ctx, []string{"q"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Insert(ctx, []*store.InsertParams{{ID: "x", Kind: "k", Queue: "q", MaxAttempts: 1}}); err != nil {
		t.Fatal(err)
	}
	select {
	case q := <-sub.C():
		if q != "q" {
			t.Errorf("notified %q, want q", q)
		}
	default:
		t.Fatalf("no notification after an insert through another store on the same file")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-sub.C(); ok {
		t.Errorf("subscription still open after its store closed")
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		cfg  *Config
		want string
	}{
		{nil, "field Path"},
		{&Config{Path: filepath.Join(dir, "missing-dir", "x.db")}, "missing-dir"},
		{&Config{Path: filepath.Join(dir, "x.db"), BusyTimeout: -1}, "field BusyTimeout"},
		{&Config{Path: filepath.Join(dir, "x.db"), MaxReaders: -2}, "field MaxReaders"},
	} {
		s, err := Open(context.Background(), tc.cfg)
		if err == nil {
			s.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
	// Not a database.
	bad := filepath.Join(dir, "bad.db")
	if err := os.WriteFile(bad, bytes.Repeat([]byte("not a database "), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), &Config{Path: bad})
	if err == nil {
		_, err = s.SchemaStatus(context.Background())
		s.Close()
	}
	if err == nil {
		t.Errorf("a file that is not a database was accepted")
	}
}

func newStore(t *testing.T) store.Store {
	t.Helper()
	s, err := Open(context.Background(), &Config{Path: filepath.Join(t.TempDir(), "skein.db"), AutoMigrate: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

var hooks = &storetest.Hooks{
	BeginTx: map[string]func(ctx context.Context, s store.Store) (*storetest.Tx, error){
		"sql": func(ctx context.Context, s store.Store) (*storetest.Tx, error) {
			db, err := OpenDB(s.(*Store).Path(), nil)
			if err != nil {
				return nil, err
			}
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				_ = db.Close()
				return nil, err
			}
			return &storetest.Tx{
				Tx:       tx,
				Commit:   func(context.Context) error { defer db.Close(); return tx.Commit() },
				Rollback: func(context.Context) error { defer db.Close(); return tx.Rollback() },
			}, nil
		},
	},
	SetSchemaVersion: func(ctx context.Context, s store.Store, v int) error {
		return setSchemaVersion(ctx, s.(*Store), v)
	},
}

func TestConformance(t *testing.T) { storetest.Run(t, newStore, hooks) }

// Paths with spaces and URI-special characters work.
func TestOddPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a dir #1", "jobs 100%.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, &Config{Path: path, AutoMigrate: true})
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	defer s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the database is not at %q: %v", path, err)
	}
	if err := s.CheckSchema(ctx); err != nil {
		t.Error(err)
	}
}
