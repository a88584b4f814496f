package skein

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/internal/testwait"
	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/sqlite"
)

type aheadJob struct{}

func (aheadJob) Kind() string { return "ahead" }

// An agent whose jobs run shorter than its claims claims its next batch
// while one runs: it holds up to twice its size, runs at most its size,
// and a stop puts the jobs still waiting for a slot back unstarted (no
// attempt counted, none logged), while the running ones finish.
func TestClaimAheadHoldsTwiceSizeRunsSize(t *testing.T) {
	for _, hard := range []bool{false, true} {
		name := "graceful"
		if hard {
			name = "immediate"
		}
		t.Run(name, func(t *testing.T) { testClaimAhead(t, hard) })
	}
}

func testClaimAhead(t *testing.T, hard bool) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, &sqlite.Config{Path: filepath.Join(t.TempDir(), "skein.db"), AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logBuf lockedBuffer
	logger := action.New(&logBuf, nil)

	const size = 2
	var running, maxRunning atomic.Int32
	started := make(chan struct{}, 10)
	release := make(chan struct{})
	handlers := NewHandlers()
	AddHandler(handlers, func(ctx context.Context, job *Job[aheadJob]) error {
		n := running.Add(1)
		defer running.Add(-1)
		for m := maxRunning.Load(); n > m && !maxRunning.CompareAndSwap(m, n); m = maxRunning.Load() {
		}
		started <- struct{}{}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	d, err := NewDispatcher(st, &Config{Handlers: handlers, Logger: logger, Agents: []AgentConfig{{Size: size}},
		PollInterval: 20 * time.Millisecond, CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	// As if the agent had measured runs far shorter than its claims.
	a := d.agents[0]
	a.runNanos.Store(1)
	a.claimNanos = int64(time.Hour)

	client, err := NewClient(st, &ClientConfig{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	params := make([]EnqueueParams, 2*size+1)
	for i := range params {
		params[i] = EnqueueParams{Args: aheadJob{}}
	}
	if _, err := client.EnqueueMany(ctx, params); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	count := func(s store.State) int64 {
		n, err := st.CountJobs(ctx, &store.JobFilter{States: []store.State{s}})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if !testwait.For(20*time.Second, func() bool { return count(store.StateRunning) == 2*size }) {
		t.Fatalf("running (claimed) jobs = %d, want %d: the agent did not claim ahead", count(store.StateRunning), 2*size)
	}
	for range size {
		select {
		case <-started:
		case <-time.After(20 * time.Second):
			t.Fatal("timed out waiting for the handlers to start")
		}
	}
	if n := count(store.StateAvailable); n != 1 {
		t.Errorf("available jobs = %d, want 1 (the agent holds at most twice its size)", n)
	}

	stopped := make(chan error, 1)
	go func() {
		if hard {
			stopped <- d.StopAndCancel(ctx)
		} else {
			stopped <- d.Stop(ctx)
		}
	}()
	if !hard {
		// The held jobs go back at once; the running ones keep running.
		if !testwait.For(20*time.Second, func() bool { return count(store.StateAvailable) == 1+size }) {
			t.Fatalf("available jobs = %d, want %d: the held jobs were not put back", count(store.StateAvailable), 1+size)
		}
		if n := count(store.StateRunning); n != size {
			t.Errorf("running jobs during the stop = %d, want %d", n, size)
		}
		close(release)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("stop: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("timed out waiting for the stop")
	}
	if m := maxRunning.Load(); m != size {
		t.Errorf("at most %d jobs ran at once, want %d", m, size)
	}
	page, err := st.ListJobs(ctx, &store.ListJobsParams{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var completed, unstarted int
	for _, j := range page.Jobs {
		switch {
		case j.State == store.StateCompleted:
			completed++
		case j.State == store.StateAvailable && j.Attempt == 0 && len(j.Errors) == 0:
			unstarted++
		case j.State == store.StateAvailable && j.Attempt == 0 && hard:
			// Running when cancelled: put back, its attempt not counted.
		default:
			t.Errorf("job %s: state %s, attempt %d, %d errors", j.ID, j.State, j.Attempt, len(j.Errors))
		}
	}
	wantCompleted := size
	if hard {
		wantCompleted = 0
	}
	if completed != wantCompleted || unstarted < 1+size {
		t.Errorf("completed %d, put back unstarted %d; want %d and at least %d", completed, unstarted, wantCompleted, 1+size)
	}
	if n := strings.Count(logBuf.String(), `"action_type":"skein:attempt","action_status":"started"`); n != size {
		t.Errorf("%d attempts logged, want %d (held jobs never start)", n, size)
	}
}

// lockedBuffer is a log destination safe to read while written.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
