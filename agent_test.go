package skein_test

import (
	"context"
	"testing"
	"time"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/store"
)

type gate struct {
	Slow bool `json:"slow"`
	N    int  `json:"n"`
}

func (gate) Kind() string { return "gate" }

// A busy agent waits briefly for its slots to free before it claims again
// (to claim many short jobs at once); a job that holds its slot for long
// must not stop it from claiming into the other slots.
func TestAgentClaimsPastASlowJob(t *testing.T) {
	eachStore(t, func(t *testing.T, h *harness) {
		release := make(chan struct{})
		slowStarted := make(chan struct{})
		handlers := skein.NewHandlers()
		skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[gate]) error {
			if job.Args.Slow {
				close(slowStarted)
				<-release
			}
			return nil
		})
		cfg := h.testConfig(handlers)
		cfg.Agents = []skein.AgentConfig{{Size: 2}}
		// Only notifications and freed slots drive claims here: a timed
		// poll would hide an agent that waits for the slow slot.
		cfg.PollInterval = time.Hour
		_, events := h.start(cfg)
		ctx := context.Background()

		slow, err := h.client.Enqueue(ctx, gate{Slow: true}, &skein.EnqueueOpts{Priority: -1})
		if err != nil {
			t.Fatalf("Enqueue slow: %v", err)
		}
		waitClosed(t, slowStarted, "the slow job")
		params := make([]skein.EnqueueParams, 30)
		for i := range params {
			params[i] = skein.EnqueueParams{Args: gate{N: i}}
		}
		res, err := h.client.EnqueueMany(ctx, params)
		if err != nil {
			t.Fatalf("EnqueueMany: %v", err)
		}
		want := map[string]store.State{}
		for _, r := range res {
			want[r.Job.ID] = store.StateCompleted
		}
		// All 30 run through the one free slot while the slow job holds
		// the other.
		waitEvents(t, events, want)
		if j := h.getJob(slow.Job.ID); j.State != store.StateRunning {
			t.Errorf("slow job is %s, want running", j.State)
		}
		close(release)
		waitEvent(t, events, slow.Job.ID, store.StateCompleted)
	})
}

// Runs of a busy agent reuse worker goroutines rather than starting one
// per job; Stop ends them (goleak checks in TestMain).
func TestAgentReusesWorkers(t *testing.T) {
	eachStore(t, func(t *testing.T, h *harness) {
		handlers := skein.NewHandlers()
		skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[gate]) error { return nil })
		cfg := h.testConfig(handlers)
		cfg.Agents = []skein.AgentConfig{{Size: 1}}
		d, events := h.start(cfg)
		ctx := context.Background()
		const n = 20
		params := make([]skein.EnqueueParams, n)
		for i := range params {
			params[i] = skein.EnqueueParams{Args: gate{N: i}}
		}
		res, err := h.client.EnqueueMany(ctx, params)
		if err != nil {
			t.Fatalf("EnqueueMany: %v", err)
		}
		want := map[string]store.State{}
		for _, r := range res {
			want[r.Job.ID] = store.StateCompleted
		}
		waitEvents(t, events, want)
		goroutines := map[int64]bool{}
		for _, r := range d.Jobs(0) {
			if r.Goroutine == 0 {
				t.Errorf("job %s: no goroutine recorded", r.ID)
			}
			goroutines[r.Goroutine] = true
		}
		// One worker runs them all unless, now and then, the next claim
		// came back before the worker was waiting for it.
		if len(goroutines) > n/2 {
			t.Errorf("%d jobs ran on %d goroutines, want them to reuse workers", n, len(goroutines))
		}
	})
}
