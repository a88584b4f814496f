package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/goleak"

	"github.com/skeinhq/skein/internal/pgtest"
	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Main(m)) }

func open(t *testing.T, cfg *Config) *Store {
	t.Helper()
	if cfg.DSN == "" && cfg.Pool == nil {
		cfg.DSN = pgtest.NewDatabase(t)
	}
	s, err := Open(context.Background(), cfg)
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

func newStore(t *testing.T) store.Store {
	return open(t, &Config{AutoMigrate: true, MaxConns: 8})
}

var hooks = &storetest.Hooks{
	BeginTx: map[string]func(ctx context.Context, s store.Store) (*storetest.Tx, error){
		"pgx": func(ctx context.Context, s store.Store) (*storetest.Tx, error) {
			tx, err := s.(*Store).Pool().Begin(ctx)
			if err != nil {
				return nil, err
			}
			return &storetest.Tx{Tx: tx, Commit: tx.Commit, Rollback: tx.Rollback}, nil
		},
		"sql": func(ctx context.Context, s store.Store) (*storetest.Tx, error) {
			db := stdlib.OpenDBFromPool(s.(*Store).Pool())
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				_ = db.Close()
				return nil, err
			}
			end := func(f func() error) func(context.Context) error {
				return func(context.Context) error { defer db.Close(); return f() }
			}
			return &storetest.Tx{Tx: tx, Commit: end(tx.Commit), Rollback: end(tx.Rollback)}, nil
		},
	},
	SetSchemaVersion: func(ctx context.Context, s store.Store, v int) error {
		return setSchemaVersion(ctx, s.(*Store), v)
	},
}

func TestConformance(t *testing.T) { storetest.Run(t, newStore, hooks) }

func waitFor(t *testing.T, sub store.Subscription, want string) {
	t.Helper()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case q, ok := <-sub.C():
			if !ok {
				t.Fatalf("subscription closed while waiting for %q", want)
			}
			if q == want {
				return
			}
		case <-timeout.C:
			t.Fatalf("no notification %q within 30 s", want)
		}
	}
}

// Notifications cross stores (processes) through LISTEN/NOTIFY, and the
// listener comes back after the server restarts, waking everyone.
func TestNotifyAcrossStoresAndRestart(t *testing.T) {
	t.Parallel()
	srv := pgtest.StartServer(t)
	dsn := srv.NewDatabase(t)
	listener := open(t, &Config{DSN: dsn, AutoMigrate: true, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 200 * time.Millisecond})
	inserter := open(t, &Config{DSN: dsn})
	ctx := context.Background()
	sub, err := listener.Subscribe(ctx, []string{"remote"})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer sub.Close()
	insertOne := func(id string) {
		t.Helper()
		p := &store.InsertParams{ID: id, Kind: "k", Queue: "remote", MaxAttempts: 1}
		if _, err := inserter.Insert(ctx, []*store.InsertParams{p}); err != nil {
			t.Fatalf("Insert: %v", err)
		}
	}
	insertOne("before")
	waitFor(t, sub, "remote")

	srv.Restart(t)
	waitFor(t, sub, "") // the listener reconnected
	// The inserter's pool drops its dead connections and goes on.
	var err2 error
	for range 3 {
		p := &store.InsertParams{ID: "after", Kind: "k", Queue: "remote", MaxAttempts: 1}
		if _, err2 = inserter.Insert(ctx, []*store.InsertParams{p}); err2 == nil {
			break
		}
	}
	if err2 != nil {
		t.Fatalf("Insert after restart: %v", err2)
	}
	waitFor(t, sub, "remote")
	// Jobs inserted in the caller's transaction are announced on commit.
	tx, err := inserter.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inserter.InsertTx(ctx, tx, []*store.InsertParams{{ID: "tx", Kind: "k", Queue: "remote", MaxAttempts: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sub, "remote")
}

func TestCopyDuplicateID(t *testing.T) {
	t.Parallel()
	s := open(t, &Config{AutoMigrate: true, CopyThreshold: 2})
	ctx := context.Background()
	ps := []*store.InsertParams{{ID: "a", Kind: "k", Queue: "q", MaxAttempts: 1}, {ID: "b", Kind: "k", Queue: "q", MaxAttempts: 1}}
	if _, err := s.Insert(ctx, ps); err != nil {
		t.Fatalf("Insert: %v", err)
	}
	ps = []*store.InsertParams{{ID: "c", Kind: "k", Queue: "q", MaxAttempts: 1}, {ID: "b", Kind: "k", Queue: "q", MaxAttempts: 1}}
	_, err := s.Insert(ctx, ps)
	if !errors.Is(err, store.ErrJobExists) || !strings.Contains(err.Error(), "(b)") {
		t.Fatalf("COPY with an existing id = %v, want ErrJobExists naming b", err)
	}
	if n, _ := s.CountJobs(ctx, nil); n != 2 {
		t.Errorf("%d jobs stored, want 2 (the failed batch left nothing)", n)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  *Config
		want string
	}{
		{nil, "field DSN"},
		{&Config{DSN: "postgres://127.0.0.1:1/x?connect_timeout=5"}, "connecting to 127.0.0.1:1"},
		{&Config{DSN: "::bad"}, "parsing the DSN"},
		{&Config{DSN: "postgres://h/x", CopyThreshold: -1}, "field CopyThreshold"},
	} {
		_, err := Open(context.Background(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}

// Concurrent calls share statements, yet each gets its own results and
// errors.
func TestCombinedCalls(t *testing.T) {
	t.Parallel()
	s := open(t, &Config{AutoMigrate: true})
	ctx := context.Background()
	if err := s.RegisterDispatcher(ctx, &store.Dispatcher{ID: "d"}); err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	results := make([][]store.InsertResult, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("j%03d", i)
			if i%50 == 49 {
				id = "dup" // four calls want one id: one wins
			}
			p := &store.InsertParams{ID: id, Kind: "k", Queue: "q", MaxAttempts: 1}
			if i%20 == 7 {
				p.UniqueKey = "u" // ten calls want one unique key
			}
			results[i], errs[i] = s.Insert(ctx, []*store.InsertParams{p})
		})
	}
	wg.Wait()
	dupWins, uniqueWins := 0, 0
	for i := range n {
		switch {
		case i%50 == 49:
			if errs[i] == nil {
				dupWins++
			} else if !errors.Is(errs[i], store.ErrJobExists) {
				t.Errorf("call %d: %v, want nil or ErrJobExists", i, errs[i])
			}
		case errs[i] != nil:
			t.Errorf("call %d: %v", i, errs[i])
		case i%20 == 7 && !results[i][0].Duplicate:
			uniqueWins++
		case i%20 != 7 && results[i][0].Duplicate:
			t.Errorf("call %d: a job without a key reported duplicate", i)
		}
	}
	if dupWins != 1 || uniqueWins != 1 {
		t.Errorf("%d calls inserted id dup and %d the unique key, want 1 and 1", dupWins, uniqueWins)
	}
	// 200 calls: 4 want id "dup" (one wins), 10 want key "u" (one wins).
	if c, err := s.CountJobs(ctx, nil); err != nil || c != n-4-10+2 {
		t.Errorf("%d jobs stored (%v), want %d", c, err, n-4-10+2)
	}
	// Finish concurrently, with some outcomes for the same run twice.
	jobs, err := s.Claim(ctx, &store.ClaimParams{Dispatcher: "d", Agent: "a", Limit: n})
	if err != nil {
		t.Fatal(err)
	}
	notHeld := make([][]string, len(jobs)*2)
	for i := range len(jobs) * 2 {
		wg.Go(func() {
			j := jobs[i%len(jobs)]
			nh, err := s.Finish(ctx, []*store.Outcome{{ID: j.ID, Dispatcher: "d", Slot: j.Slot, State: store.StateCompleted}})
			if err != nil {
				t.Errorf("Finish: %v", err)
			}
			notHeld[i] = nh
		})
	}
	wg.Wait()
	for i := range jobs {
		a, b := len(notHeld[i]), len(notHeld[i+len(jobs)])
		if a+b != 1 {
			t.Errorf("job %s: finished twice or never (not held: %v, %v)", jobs[i].ID, notHeld[i], notHeld[i+len(jobs)])
		}
	}
	if c, _ := s.CountJobs(ctx, &store.JobFilter{States: []store.State{store.StateCompleted}}); c != int64(len(jobs)) {
		t.Errorf("%d completed, want %d", c, len(jobs))
	}
}

// The server restarts while workers claim and finish jobs: every job ends
// completed, none is held by two workers at once, and claims whose commit
// was not seen are found and released by reconciling.
func TestRestartUnderLoad(t *testing.T) {
	t.Parallel()
	srv := pgtest.StartServer(t)
	s := open(t, &Config{DSN: srv.NewDatabase(t), AutoMigrate: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const n, workers = 3000, 8
	ps := make([]*store.InsertParams, n)
	for i := range ps {
		ps[i] = &store.InsertParams{ID: fmt.Sprintf("wf_%05d", i), WorkflowID: "wf", Kind: "k", Queue: "q", MaxAttempts: 5}
	}
	if _, err := s.Insert(ctx, ps); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterDispatcher(ctx, &store.Dispatcher{ID: "d"}); err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.RWMutex // claims (read) against reconciling (write)
		flightMu  sync.Mutex
		inFlight  = map[string]bool{}
		done      atomic.Int64
		failures  atomic.Int64
		restarted = make(chan struct{})
		halfway   = make(chan struct{})
		once      sync.Once
	)
	retry := func(what string, f func() error) {
		for {
			err := f()
			if err == nil {
				return
			}
			failures.Add(1)
			if ctx.Err() != nil {
				t.Errorf("%s: %v", what, err)
				return
			}
			// Waiting for the server (an external process) to come back.
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	reconcile := func() {
		mu.Lock()
		defer mu.Unlock()
		retry("reconcile", func() error {
			page, err := s.ListJobs(ctx, &store.ListJobsParams{Limit: store.MaxListLimit,
				Filter: store.JobFilter{Dispatcher: "d", States: []store.State{store.StateRunning}}})
			if err != nil {
				return err
			}
			var outs []*store.Outcome
			flightMu.Lock()
			for _, j := range page.Jobs {
				if !inFlight[j.ID] {
					outs = append(outs, &store.Outcome{ID: j.ID, Dispatcher: "d", Slot: j.Slot, State: store.StateAvailable, UndoAttempt: true})
				}
			}
			flightMu.Unlock()
			if len(outs) == 0 {
				return nil
			}
			_, err = s.Finish(ctx, outs)
			return err
		})
	}
	var wg sync.WaitGroup
	for w := range workers {
		sub, err := s.Subscribe(ctx, []string{"q"})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		wg.Go(func() {
			for done.Load() < n && ctx.Err() == nil {
				mu.RLock()
				jobs, err := s.Claim(ctx, &store.ClaimParams{Dispatcher: "d", Agent: fmt.Sprint(w), Limit: 10})
				if err == nil {
					flightMu.Lock()
					for _, j := range jobs {
						if inFlight[j.ID] {
							t.Errorf("job %s claimed while held", j.ID)
						}
						inFlight[j.ID] = true
					}
					flightMu.Unlock()
				}
				mu.RUnlock()
				if err != nil {
					failures.Add(1)
					<-restarted // errors come from the restart
					reconcile()
					continue
				}
				if len(jobs) == 0 {
					// Others hold the rest: wait for a released job's
					// notification, or poll as a dispatcher does.
					select {
					case <-sub.C():
					case <-time.After(100 * time.Millisecond):
					}
					continue
				}
				for _, j := range jobs {
					retry("finish", func() error {
						_, err := s.Finish(ctx, []*store.Outcome{{ID: j.ID, Dispatcher: "d", Slot: j.Slot, State: store.StateCompleted}})
						return err
					})
					flightMu.Lock()
					delete(inFlight, j.ID)
					flightMu.Unlock()
					if done.Add(1) == n/3 {
						once.Do(func() { close(halfway) })
					}
				}
			}
		})
	}
	select {
	case <-halfway:
	case <-ctx.Done():
		t.Fatal("no progress before the restart")
	}
	srv.Restart(t)
	close(restarted)
	wg.Wait()
	completed, err := s.CountJobs(ctx, &store.JobFilter{States: []store.State{store.StateCompleted}})
	if err != nil || completed != n {
		t.Fatalf("%d jobs completed (%v), want %d", completed, err, n)
	}
	t.Logf("%d errors during the restart; %d finish calls", failures.Load(), done.Load())
}

// The listener checks its quiet connection and keeps delivering.
func TestListenCheck(t *testing.T) {
	t.Parallel()
	s := open(t, &Config{AutoMigrate: true, ListenCheck: 20 * time.Millisecond})
	other := open(t, &Config{DSN: s.cfg.DSN})
	ctx := context.Background()
	sub, err := s.Subscribe(ctx, []string{"q"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// Several checks pass while nothing happens; then a remote insert
	// still arrives over the same connection.
	quiet := time.NewTimer(200 * time.Millisecond)
	select {
	case q := <-sub.C():
		t.Fatalf("notification %q while nothing happened", q)
	case <-quiet.C:
	}
	if _, err := other.Insert(ctx, []*store.InsertParams{{ID: "x", Kind: "k", Queue: "q", MaxAttempts: 1}}); err != nil {
		t.Fatal(err)
	}
	// The first hint is the insert's, not a reconnect's "".
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	select {
	case q := <-sub.C():
		if q != "q" {
			t.Fatalf("first notification %q, want q (the listener reconnected?)", q)
		}
	case <-timeout.C:
		t.Fatal("no notification within 30 s")
	}
}
