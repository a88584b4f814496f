package skein_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/internal/pgtest"
	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/postgres"
)

type counted struct {
	N int `json:"n"`
}

func (counted) Kind() string { return "counted" }

// TestPostgresRestartUnderLoad restarts the PostgreSQL server while a
// dispatcher runs jobs and a client enqueues more: no job is lost, none runs
// twice at once, and every one completes.
func TestPostgresRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster of its own")
	}
	srv := pgtest.StartServer(t)
	st, err := postgres.Open(context.Background(), &postgres.Config{DSN: srv.NewDatabase(t), AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	h := (&harness{t: t, kind: "postgres", store: st}).finish()

	var (
		mu      sync.Mutex
		running = map[string]bool{}
		runs    = map[string]int{}
		overlap []string
	)
	handlers := skein.NewHandlers()
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[counted]) error {
		mu.Lock()
		if running[job.ID] {
			overlap = append(overlap, job.ID)
		}
		running[job.ID] = true
		runs[job.ID]++
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(running, job.ID)
			mu.Unlock()
		}()
		return nil
	})
	cfg := h.testConfig(handlers)
	cfg.ReleaseTimeout = time.Second
	cfg.Agents = []skein.AgentConfig{{Size: 8}}
	_, events := h.start(cfg)

	ctx := context.Background()
	const total = 400
	enqueue := func(from, to int) {
		for i := from; i < to; i += 50 {
			params := make([]skein.EnqueueParams, 0, 50)
			for k := i; k < min(i+50, to); k++ {
				// The unique key makes a retried batch idempotent.
				params = append(params, skein.EnqueueParams{Args: counted{N: k}, Opts: &skein.EnqueueOpts{UniqueKey: fmt.Sprintf("counted-%d", k)}})
			}
			var err error
			for try := 0; try < 100; try++ {
				if _, err = h.client.EnqueueMany(ctx, params); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatalf("enqueueing %d..%d after 100 tries: %v", i, i+len(params), err)
			}
		}
	}
	enqueue(0, total/2)
	for done := 0; done < 40; {
		select {
		case e := <-events:
			if e.State == store.StateCompleted {
				done++
			}
		case <-time.After(waitTimeout):
			t.Fatal("jobs did not start completing")
		}
	}
	srv.Restart(t)
	enqueue(total/2, total)

	notFinal := &store.JobFilter{States: []store.State{store.StateScheduled, store.StateAvailable, store.StateRunning, store.StateRetryable}}
	deadline := time.NewTimer(2 * waitTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second) // outcomes may not all be events: a reply lost in the restart
	defer tick.Stop()
	for {
		n, err := st.CountJobs(ctx, notFinal)
		if err == nil && n == 0 {
			break
		}
		select {
		case <-events:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("%d jobs not final (last error %v)", n, err)
		}
	}
	all, err := st.CountJobs(ctx, nil)
	if err != nil || all != total {
		t.Fatalf("%d jobs stored (%v), want %d", all, err, total)
	}
	completed, err := st.CountJobs(ctx, &store.JobFilter{States: []store.State{store.StateCompleted}})
	if err != nil || completed != total {
		t.Errorf("%d jobs completed (%v), want all %d", completed, err, total)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(overlap) > 0 {
		t.Errorf("jobs ran twice at once: %v", overlap)
	}
	if len(runs) != total {
		t.Errorf("%d distinct jobs ran, want %d", len(runs), total)
	}
	msgs := parseMessages(t, h.logs.String())
	checkUnique(t, msgs)
	failures := map[string]int{}
	for _, m := range msgs {
		switch typ := m.str("message_type"); typ {
		case "skein:dispatcher:claim_failed", "skein:dispatcher:finish_failed", "skein:dispatcher:heartbeat_failed", "skein:dispatcher:lost_claim":
			failures[typ]++
		}
	}
	t.Logf("store failures seen by the dispatcher during the restart: %v", failures)
}
