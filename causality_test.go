package skein_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/store"
)

// node is one job of the randomized workflow: its choices (children,
// failures, snoozes) derive from Seed, so every attempt makes the same ones.
type node struct {
	Seed  uint64 `json:"seed"`
	Depth int    `json:"depth"`
}

func (node) Kind() string { return "node" }

func (n node) rng() *rand.Rand { return rand.New(rand.NewPCG(n.Seed, uint64(n.Depth))) }

// TestCausalityInvariant runs a randomized workflow (fan-out from handlers,
// batches, failures and retries, snoozes, panics, nested actions, two
// dispatchers with their own logs, and a run whose dispatcher dies) and
// checks that no (task_uuid, task_level) pair is written twice, that every
// message of the request is in its one task and carries its workflow id,
// and that every job action is ended once at the slot after its last run.
func TestCausalityInvariant(t *testing.T) {
	eachStore(t, func(t *testing.T, h *harness) {
		const workflow = "wf-causality"
		ctx := context.Background()
		handlers := skein.NewHandlers()
		log := slog.New(h.logger.Handler(nil))
		skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[node]) error {
			r := job.Args.rng()
			failures, snooze, panics := r.IntN(3), r.IntN(5) == 0, r.IntN(8) == 0
			log.InfoContext(ctx, "test:node", "depth", job.Args.Depth, "attempt", job.Attempt)
			if job.Attempt <= failures {
				if panics {
					panic(fmt.Sprintf("node %d panics", job.Args.Seed))
				}
				return fmt.Errorf("node %d fails attempt %d", job.Args.Seed, job.Attempt)
			}
			if snooze && job.Slot == int64(job.Attempt) {
				return skein.JobSnooze(time.Millisecond)
			}
			return action.Run(ctx, "test:fan_out", func(ctx context.Context) error {
				if job.Args.Depth >= 4 {
					return nil
				}
				n := r.IntN(4)
				if n == 0 {
					return nil
				}
				if r.IntN(2) == 0 {
					for range n {
						if _, err := h.client.Enqueue(ctx, node{Seed: r.Uint64(), Depth: job.Args.Depth + 1}, nil); err != nil {
							return err
						}
					}
					return nil
				}
				params := make([]skein.EnqueueParams, n)
				for i := range params {
					params[i] = skein.EnqueueParams{Args: node{Seed: r.Uint64(), Depth: job.Args.Depth + 1}}
				}
				_, err := h.client.EnqueueMany(ctx, params)
				return err
			})
		})

		// The request: a few jobs, one batch.
		rctx := action.WithLogger(action.WithWorkflow(ctx, workflow), h.logger)
		rctx, req := action.Start(rctx, "test:request")
		seeds := rand.New(rand.NewPCG(1, 2))
		var roots []skein.EnqueueParams
		for range 12 {
			roots = append(roots, skein.EnqueueParams{Args: node{Seed: seeds.Uint64()}, Opts: &skein.EnqueueOpts{MaxAttempts: 5}})
		}
		if _, err := h.client.EnqueueMany(rctx, roots[:8]); err != nil {
			t.Fatal(err)
		}
		for _, p := range roots[8:] {
			if _, err := h.client.Enqueue(rctx, p.Args, p.Opts); err != nil {
				t.Fatal(err)
			}
		}
		req.End()

		// A dispatcher that claims one job, starts its attempt and dies.
		ghostLog := &syncBuffer{}
		if err := h.store.RegisterDispatcher(ctx, &store.Dispatcher{ID: "ghost", Host: "nowhere", PID: 1}); err != nil {
			t.Fatal(err)
		}
		claimed, err := h.store.Claim(ctx, &store.ClaimParams{Dispatcher: "ghost", Agent: "main", Limit: 1})
		if err != nil || len(claimed) != 1 {
			t.Fatalf("ghost Claim = %d jobs, %v; want 1", len(claimed), err)
		}
		ghostJob := claimed[0]
		tid, err := action.ParseTaskID(ghostJob.TaskID)
		if err != nil {
			t.Fatal(err)
		}
		gctx := action.WithLogger(action.WithWorkflow(ctx, workflow), action.New(ghostLog, nil))
		gctx, _ = action.ContinueAt(gctx, tid.Child(int(ghostJob.Slot)+1), "skein:attempt", slog.String("dispatcher", "ghost"))
		action.Log(gctx, "test:ghost_working")

		// Two live dispatchers, each with its own log, as two processes.
		logs := []*syncBuffer{h.logs, {}}
		var events []<-chan skein.Event
		for i, buf := range logs {
			cfg := h.testConfig(handlers)
			cfg.Logger = action.New(buf, nil)
			cfg.DeadAfter = time.Second
			cfg.Agents = []skein.AgentConfig{{Size: 4 + i*3}}
			// The second stores outcomes with its claims, the first
			// through its completer.
			cfg.OutcomesWithClaims = i == 1
			_, ev := h.start(cfg)
			events = append(events, ev)
		}
		// Wait until no job is left unfinal, checking after every outcome.
		notFinal := &store.JobFilter{States: []store.State{store.StateScheduled, store.StateAvailable, store.StateRunning, store.StateRetryable}}
		timer := time.NewTimer(waitTimeout * 2)
		defer timer.Stop()
		for {
			n, err := h.store.CountJobs(ctx, notFinal)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			select {
			case <-events[0]:
			case <-events[1]:
			case <-timer.C:
				t.Fatalf("%d jobs still not final", n)
			}
		}
		page, err := h.store.ListJobs(ctx, &store.ListJobsParams{Limit: store.MaxListLimit})
		if err != nil {
			t.Fatal(err)
		}
		jobs := page.Jobs
		if len(jobs) < 100 {
			t.Errorf("only %d jobs ran; the workflow is too small to prove much", len(jobs))
		}

		var text strings.Builder
		for _, b := range append(logs, ghostLog) {
			text.WriteString(b.String())
		}
		msgs := parseMessages(t, text.String())
		checkUnique(t, msgs)
		pos := byPosition(msgs)
		u := req.TaskUUID()
		var inTask int
		for _, m := range msgs {
			if m.str("workflow_id") == workflow || m.uuid() == u {
				inTask++
				if m.uuid() != u {
					t.Errorf("message of the workflow in another task: %v", m)
				}
				if m.str("workflow_id") != workflow {
					t.Errorf("message of the task without the workflow id: %v", m)
				}
			}
		}
		retried, rescued := 0, 0
		for _, j := range jobs {
			if j.WorkflowID != workflow || !strings.HasPrefix(j.ID, workflow+"_") {
				t.Errorf("job %s: workflow %q", j.ID, j.WorkflowID)
			}
			if j.State != store.StateCompleted {
				t.Errorf("job %s ended %s: %+v", j.ID, j.State, j.Errors)
			}
			if j.Attempt > 1 {
				retried++
			}
			jt, err := action.ParseTaskID(j.TaskID)
			if err != nil {
				t.Errorf("job %s: task id: %v", j.ID, err)
				continue
			}
			if got := pos[jt.Child(1).String()].str("job_id"); got != j.ID {
				t.Errorf("job %s: the job action's start at %s names %q", j.ID, jt.Child(1), got)
			}
			end := pos[jt.Child(int(j.Slot)+2).String()]
			if end.str("action_type") != "skein:job" || end.str("action_status") != "succeeded" {
				t.Errorf("job %s: no job action end at %s (slot %d): %v", j.ID, jt.Child(int(j.Slot)+2), j.Slot, end)
			}
			for k := 1; k <= int(j.Slot); k++ {
				start := pos[jt.Child(k+1).Child(1).String()]
				if start.str("action_type") != "skein:attempt" {
					t.Errorf("job %s: no attempt start for slot %d", j.ID, k)
				}
			}
			for _, e := range j.Errors {
				if e.Reassigned {
					rescued++
				}
			}
		}
		if retried == 0 || rescued != 1 {
			t.Errorf("%d jobs retried and %d rescued, want some and 1", retried, rescued)
		}
		// The ghost's attempt is started and never ended.
		gpos := tid.Child(int(ghostJob.Slot) + 1)
		if pos[gpos.Child(2).String()].str("message_type") != "test:ghost_working" {
			t.Errorf("the dead dispatcher's attempt message is missing at %s", gpos.Child(2))
		}
		if m, ok := pos[gpos.Child(3).String()]; ok {
			t.Errorf("the dead dispatcher's attempt was ended: %v", m)
		}
		t.Logf("%s: %d jobs, %d messages in the request's task, %d retried", h.kind, len(jobs), inTask, retried)
	})
}
