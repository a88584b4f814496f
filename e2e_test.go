package skein_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/store"
)

type greet struct {
	Name string `json:"name"`
}

func (greet) Kind() string { return "greet" }

type flaky struct {
	FailTimes int `json:"fail_times"`
}

func (flaky) Kind() string { return "flaky" }

func TestEnqueueRunComplete(t *testing.T) {
	eachStore(t, func(t *testing.T, h *harness) {
		handlers := skein.NewHandlers()
		ran := make(chan string, 1)
		skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[greet]) error {
			slog.New(h.logger.Handler(nil)).InfoContext(ctx, "app:greeting", "name", job.Args.Name)
			if err := skein.RecordResult(ctx, map[string]string{"greeted": job.Args.Name}); err != nil {
				return err
			}
			ran <- action.Workflow(ctx)
			return nil
		})
		_, events := h.start(h.testConfig(handlers))

		ctx := action.WithWorkflow(context.Background(), "req-42")
		ctx = action.WithLogger(ctx, h.logger)
		ctx, root := action.Start(ctx, "app:request")
		res, err := h.client.Enqueue(ctx, greet{Name: "alice"}, nil)
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		root.End()
		if !strings.HasPrefix(res.Job.ID, "req-42_") {
			t.Errorf("job id %q does not start with the workflow id req-42_", res.Job.ID)
		}
		if got := waitClosed(t, ran, "the handler"); got != "req-42" {
			t.Errorf("handler's workflow = %q, want req-42", got)
		}
		waitEvent(t, events, res.Job.ID, store.StateCompleted)
		j := h.getJob(res.Job.ID)
		if j.State != store.StateCompleted || j.Attempt != 1 || j.Slot != 1 {
			t.Errorf("job state/attempt/slot = %s/%d/%d, want completed/1/1", j.State, j.Attempt, j.Slot)
		}
		var result map[string]string
		if err := json.Unmarshal(j.Result, &result); err != nil || result["greeted"] != "alice" {
			t.Errorf("result = %s (%v), want {\"greeted\":\"alice\"}", j.Result, err)
		}
		if j.WorkflowID != "req-42" {
			t.Errorf("stored workflow = %q, want req-42", j.WorkflowID)
		}

		// The tree: request [1], job at /2 (start /2/1), attempt at /2/2
		// (start /2/2/1, the handler's message /2/2/2, end /2/2/3), job end
		// /2/3, request end /3.
		msgs := parseMessages(t, h.logs.String())
		checkUnique(t, msgs)
		pos := byPosition(msgs)
		u := root.TaskUUID()
		want := []struct {
			level, field, value string
		}{
			{"/1", "action_type", "app:request"},
			{"/2/1", "action_type", "skein:job"},
			{"/2/2/1", "action_type", "skein:attempt"},
			{"/2/2/2", "message_type", "app:greeting"},
			{"/2/2/3", "action_status", "succeeded"},
			{"/2/3", "action_status", "succeeded"},
			{"/3", "action_status", "succeeded"},
		}
		for _, w := range want {
			m, ok := pos[u+"@"+w.level]
			if !ok {
				t.Errorf("no message at %s; log:\n%s", w.level, h.logs.String())
				continue
			}
			if got := m.str(w.field); got != w.value {
				t.Errorf("message at %s: %s = %q, want %q", w.level, w.field, got, w.value)
			}
			if got := m.str("workflow_id"); got != "req-42" {
				t.Errorf("message at %s: workflow_id = %q, want req-42", w.level, got)
			}
		}
		if m := pos[u+"@/2/1"]; m.str("job_id") != res.Job.ID {
			t.Errorf("job action's job_id = %q, want %q", m.str("job_id"), res.Job.ID)
		}
	})
}

func TestEnqueueWithoutActionIsNewTask(t *testing.T) {
	h := openSQLite(t)
	handlers := skein.NewHandlers()
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[greet]) error { return nil })
	_, events := h.start(h.testConfig(handlers))
	res, err := h.client.Enqueue(context.Background(), greet{Name: "bob"}, nil)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	waitEvent(t, events, res.Job.ID, store.StateCompleted)
	wf, _, _ := strings.Cut(res.Job.ID, "_")
	if res.Job.WorkflowID != wf {
		t.Errorf("workflow %q is not the job id's prefix %q", res.Job.WorkflowID, wf)
	}
	if !strings.HasSuffix(res.Job.TaskID, "@/") {
		t.Errorf("task id %q of a job without enqueuing action is not a task root", res.Job.TaskID)
	}
	msgs := parseMessages(t, h.logs.String())
	checkUnique(t, msgs)
	pos := byPosition(msgs)
	u := strings.TrimSuffix(res.Job.TaskID, "@/")
	for level, status := range map[string]string{"/1": "started", "/2/1": "started", "/2/2": "succeeded", "/3": "succeeded"} {
		if got := pos[u+"@"+level].str("action_status"); got != status {
			t.Errorf("message at %s: action_status = %q, want %q", level, got, status)
		}
	}
}

func TestRetriesWithBackoff(t *testing.T) {
	eachStore(t, func(t *testing.T, h *harness) {
		handlers := skein.NewHandlers()
		var calls atomic.Int32
		skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[flaky]) error {
			if int(calls.Add(1)) <= job.Args.FailTimes {
				return fmt.Errorf("flaky failure %d", job.Attempt)
			}
			return nil
		})
		var delays atomic.Int32
		cfg := h.testConfig(handlers)
		cfg.Backoff = skein.BackoffFunc(func(attempt int) time.Duration {
			delays.Add(1)
			return time.Duration(attempt) * time.Millisecond
		})
		_, events := h.start(cfg)
		res, err := h.client.Enqueue(context.Background(), flaky{FailTimes: 2}, &skein.EnqueueOpts{MaxAttempts: 5})
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		var states []store.State
		for {
			e := waitEvent(t, events, res.Job.ID, store.StateRetryable, store.StateCompleted)
			states = append(states, e.State)
			if e.State == store.StateCompleted {
				break
			}
		}
		if got, want := fmt.Sprint(states), "[retryable retryable completed]"; got != want {
			t.Errorf("outcomes = %s, want %s", got, want)
		}
		if got := delays.Load(); got != 2 {
			t.Errorf("backoff asked %d times, want 2", got)
		}
		j := h.getJob(res.Job.ID)
		if j.Attempt != 3 || len(j.Errors) != 2 || j.Errors[1].Error != "flaky failure 2" || j.Errors[1].Attempt != 2 {
			t.Errorf("job attempt %d, errors %+v; want attempt 3 and 2 errors, the last of attempt 2", j.Attempt, j.Errors)
		}
		msgs := parseMessages(t, h.logs.String())
		checkUnique(t, msgs)
		var failed, succeeded int
		for _, m := range msgs {
			if m.str("action_type") == "skein:attempt" {
				switch m.str("action_status") {
				case "failed":
					failed++
				case "succeeded":
					succeeded++
				}
			}
		}
		if failed != 2 || succeeded != 1 {
			t.Errorf("attempt actions: %d failed, %d succeeded; want 2 and 1", failed, succeeded)
		}
	})
}

type outcomeArgs struct {
	Mode string `json:"mode"`
}

func (outcomeArgs) Kind() string { return "outcome" }

func TestHandlerOutcomes(t *testing.T) {
	h := openSQLite(t)
	handlers := skein.NewHandlers()
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[outcomeArgs]) error {
		switch job.Args.Mode {
		case "cancel":
			return skein.JobCancel(errors.New("user gone"))
		case "discard":
			return skein.JobDiscard(errors.New("bad input"))
		case "snooze":
			if job.Slot == 1 {
				return skein.JobSnooze(time.Millisecond)
			}
			return nil
		case "panic":
			panic("kaboom")
		case "timeout":
			<-ctx.Done()
			return ctx.Err()
		case "fail":
			return errors.New("always fails")
		}
		return nil
	})
	_, events := h.start(h.testConfig(handlers))

	tests := []struct {
		mode        string
		opts        *skein.EnqueueOpts
		wantState   store.State
		wantAttempt int
		wantSlot    int64
		wantErr     string // in the last error entry
		wantStack   bool
	}{
		{"cancel", nil, store.StateCancelled, 1, 1, "user gone", false},
		{"discard", nil, store.StateDiscarded, 1, 1, "bad input", false},
		{"snooze", nil, store.StateCompleted, 1, 2, "", false},
		{"panic", &skein.EnqueueOpts{MaxAttempts: 2}, store.StateDiscarded, 2, 2, "handler panicked: kaboom", true},
		{"timeout", &skein.EnqueueOpts{MaxAttempts: 1, Timeout: 30 * time.Millisecond}, store.StateDiscarded, 1, 1, "job timed out after 30ms", false},
		{"fail", &skein.EnqueueOpts{MaxAttempts: 3}, store.StateDiscarded, 3, 3, "always fails", false},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			res, err := h.client.Enqueue(context.Background(), outcomeArgs{Mode: tt.mode}, tt.opts)
			if err != nil {
				t.Fatalf("Enqueue: %v", err)
			}
			waitEvent(t, events, res.Job.ID, tt.wantState)
			j := h.getJob(res.Job.ID)
			if j.State != tt.wantState || j.Attempt != tt.wantAttempt || j.Slot != tt.wantSlot {
				t.Errorf("state/attempt/slot = %s/%d/%d, want %s/%d/%d", j.State, j.Attempt, j.Slot, tt.wantState, tt.wantAttempt, tt.wantSlot)
			}
			if tt.wantErr == "" {
				if len(j.Errors) != 0 {
					t.Errorf("errors = %+v, want none", j.Errors)
				}
				return
			}
			if len(j.Errors) == 0 {
				t.Fatalf("no error recorded, want %q", tt.wantErr)
			}
			last := j.Errors[len(j.Errors)-1]
			if !strings.Contains(last.Error, tt.wantErr) {
				t.Errorf("last error = %q, want it to contain %q", last.Error, tt.wantErr)
			}
			if got := strings.Contains(last.Stack, "panic"); got != tt.wantStack {
				t.Errorf("stack recorded = %v, want %v (stack %q)", got, tt.wantStack, last.Stack)
			}
		})
	}
	msgs := parseMessages(t, h.logs.String())
	checkUnique(t, msgs)
	var snoozed, tracebacks int
	for _, m := range msgs {
		if m.str("snoozed") != "" {
			snoozed++
		}
		if m.str("message_type") == "eliot:traceback" {
			tracebacks++
		}
	}
	if snoozed != 1 || tracebacks != 2 {
		t.Errorf("%d snoozed attempt ends and %d tracebacks, want 1 and 2", snoozed, tracebacks)
	}
}

func TestBadArgsAreDiscarded(t *testing.T) {
	h := openSQLite(t)
	handlers := skein.NewHandlers()
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[flaky]) error { return nil })
	_, events := h.start(h.testConfig(handlers))
	res, err := h.store.Insert(context.Background(), []*store.InsertParams{{
		ID: "wf_bad", Kind: "flaky", Queue: skein.DefaultQueue, MaxAttempts: 5,
		Args: []byte(`{"fail_times":"many"}`), WorkflowID: "wf", TaskID: "not a task id",
	}})
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	waitEvent(t, events, res[0].Job.ID, store.StateDiscarded)
	j := h.getJob("wf_bad")
	if len(j.Errors) != 1 || !strings.Contains(j.Errors[0].Error, "decoding args of job wf_bad (kind flaky)") {
		t.Errorf("errors = %+v, want one naming the job and the decoding", j.Errors)
	}
}

func TestUniqueKey(t *testing.T) {
	eachStore(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		opts := &skein.EnqueueOpts{UniqueKey: "greet:carol", RunIn: time.Hour}
		first, err := h.client.Enqueue(ctx, greet{Name: "carol"}, opts)
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		if first.Duplicate || first.Job.State != store.StateScheduled {
			t.Errorf("first: duplicate %v state %s, want false scheduled", first.Duplicate, first.Job.State)
		}
		second, err := h.client.Enqueue(ctx, greet{Name: "carol"}, opts)
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		if !second.Duplicate || second.Job.ID != first.Job.ID {
			t.Errorf("second: duplicate %v id %s, want true and %s", second.Duplicate, second.Job.ID, first.Job.ID)
		}
		n, err := h.store.CountJobs(ctx, nil)
		if err != nil || n != 1 {
			t.Errorf("CountJobs = %d, %v; want 1", n, err)
		}
		msgs := parseMessages(t, h.logs.String())
		checkUnique(t, msgs)
		var dup int
		for _, m := range msgs {
			if m.str("duplicate_of") == first.Job.ID {
				dup++
			}
		}
		if dup != 1 {
			t.Errorf("%d duplicate job actions logged, want 1", dup)
		}
	})
}

func TestEnqueueMany(t *testing.T) {
	eachStore(t, func(t *testing.T, h *harness) {
		handlers := skein.NewHandlers()
		var ran atomic.Int32
		skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[greet]) error {
			ran.Add(1)
			return nil
		})
		cfg := h.testConfig(handlers)
		cfg.Agents = []skein.AgentConfig{{Size: 7}}
		cfg.OutcomesWithClaims = true // a busy agent: outcomes go with its claims
		_, events := h.start(cfg)
		const n = 200
		params := make([]skein.EnqueueParams, n)
		for i := range params {
			params[i] = skein.EnqueueParams{Args: greet{Name: fmt.Sprint(i)}, Opts: &skein.EnqueueOpts{Priority: i % 3}}
		}
		res, err := h.client.EnqueueMany(context.Background(), params)
		if err != nil {
			t.Fatalf("EnqueueMany: %v", err)
		}
		if len(res) != n {
			t.Fatalf("%d results, want %d", len(res), n)
		}
		wf := res[0].Job.WorkflowID
		done := make(map[string]bool)
		for _, r := range res {
			if r.Job.WorkflowID != wf {
				t.Errorf("job %s has workflow %s, want the batch's %s", r.Job.ID, r.Job.WorkflowID, wf)
			}
		}
		timer := time.NewTimer(waitTimeout)
		defer timer.Stop()
		for len(done) < n {
			select {
			case e := <-events:
				if e.State == store.StateCompleted {
					done[e.JobID] = true
				}
			case <-timer.C:
				t.Fatalf("%d of %d jobs completed", len(done), n)
			}
		}
		if got := ran.Load(); got != n {
			t.Errorf("handler ran %d times, want %d", got, n)
		}
		checkUnique(t, parseMessages(t, h.logs.String()))
	})
}

func TestEnqueueTx(t *testing.T) {
	eachStore(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		rolled, err := h.begin(ctx)
		if err != nil {
			t.Fatalf("begin: %v", err)
		}
		res, err := h.client.EnqueueTx(ctx, rolled.tx, greet{Name: "dave"}, nil)
		if err != nil {
			t.Fatalf("EnqueueTx: %v", err)
		}
		if err := rolled.rollback(); err != nil {
			t.Fatalf("rollback: %v", err)
		}
		if _, err := h.store.GetJob(ctx, res.Job.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetJob after rollback: %v, want ErrNotFound", err)
		}
		committed, err := h.begin(ctx)
		if err != nil {
			t.Fatalf("begin: %v", err)
		}
		res2, err := h.client.EnqueueTx(ctx, committed.tx, greet{Name: "erin"}, nil)
		if err != nil {
			t.Fatalf("EnqueueTx: %v", err)
		}
		if err := committed.commit(); err != nil {
			t.Fatalf("commit: %v", err)
		}
		if j := h.getJob(res2.Job.ID); j.State != store.StateAvailable {
			t.Errorf("committed job state %s, want available", j.State)
		}
		if _, err := h.client.EnqueueTx(ctx, nil, greet{}, nil); err == nil {
			t.Error("EnqueueTx(nil tx) succeeded, want an error")
		}
		if _, err := h.client.EnqueueTx(ctx, "not a tx", greet{}, nil); !errors.Is(err, store.ErrUnsupportedTx) {
			t.Errorf("EnqueueTx(string) = %v, want ErrUnsupportedTx", err)
		}
	})
}

type unmarshalable struct {
	C chan int `json:"c"`
}

func (unmarshalable) Kind() string { return "unmarshalable" }

type noKind struct{}

func (noKind) Kind() string { return "" }

func TestEnqueueErrors(t *testing.T) {
	h := openSQLite(t)
	ctx := context.Background()
	tests := []struct {
		name string
		args skein.JobArgs
		opts *skein.EnqueueOpts
		want string
	}{
		{"nil args", nil, nil, "field Args is nil"},
		{"empty kind", noKind{}, nil, "Kind() returned an empty string"},
		{"bad args", unmarshalable{C: make(chan int)}, nil, "encoding args"},
		{"bad max attempts", greet{}, &skein.EnqueueOpts{MaxAttempts: -1}, "field MaxAttempts is -1"},
		{"bad metadata", greet{}, &skein.EnqueueOpts{Metadata: []byte("{")}, "field Metadata is not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.client.Enqueue(ctx, tt.args, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Enqueue error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	// A store failure fills the reserved position with a failed job action.
	ctx = action.WithLogger(ctx, h.logger)
	ctx, root := action.Start(ctx, "app:request")
	if _, err := h.client.Enqueue(ctx, greet{}, &skein.EnqueueOpts{}); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	_ = h.store.Close()
	if _, err := h.client.Enqueue(ctx, greet{}, nil); err == nil {
		t.Fatal("Enqueue on a closed store succeeded")
	}
	root.End()
	msgs := parseMessages(t, h.logs.String())
	checkUnique(t, msgs)
	if got := byPosition(msgs)[root.TaskUUID()+"@/3/2"].str("action_status"); got != "failed" {
		t.Errorf("failed enqueue's job action at /3/2 has status %q, want failed; log:\n%s", got, h.logs.String())
	}
}

func TestEndJobAction(t *testing.T) {
	var buf syncBuffer
	ctx := action.WithLogger(context.Background(), action.New(&buf, nil))
	const u = "1c1defcd-38e9-4a99-9c6c-95bc6da3dc61"
	tests := []struct {
		name   string
		job    *skein.JobRow
		state  store.State
		err    error
		level  string // "" = nothing written
		status string
	}{
		{"cancelled before any run", &skein.JobRow{TaskID: u + "@/", WorkflowID: "wf"}, store.StateCancelled, errors.New("by user"), "/2", "failed"},
		{"completed at slot 3", &skein.JobRow{TaskID: u + "@/4/1", Slot: 3, Attempt: 2}, store.StateCompleted, nil, "/4/1/5", "succeeded"},
		{"no task id", &skein.JobRow{}, store.StateDiscarded, nil, "", ""},
		{"bad task id", &skein.JobRow{TaskID: "nope"}, store.StateDiscarded, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(parseMessages(t, buf.String()))
			skein.EndJobAction(ctx, tt.job, tt.state, tt.err)
			msgs := parseMessages(t, buf.String())[before:]
			if tt.level == "" {
				if len(msgs) != 0 {
					t.Errorf("wrote %v, want nothing", msgs)
				}
				return
			}
			if len(msgs) != 1 {
				t.Fatalf("wrote %d messages, want 1", len(msgs))
			}
			m := msgs[0]
			if m.uuid() != u || m.level() != tt.level || m.str("action_status") != tt.status || m.str("state") != string(tt.state) {
				t.Errorf("wrote %v, want %s at %s with state %s", m, tt.status, tt.level, tt.state)
			}
			if tt.job.WorkflowID != "" && m.str("workflow_id") != tt.job.WorkflowID {
				t.Errorf("workflow_id = %q, want %q", m.str("workflow_id"), tt.job.WorkflowID)
			}
		})
	}
}

// failingFinishClaim is a real store whose first FinishClaim carrying
// outcomes fails having applied nothing, as a dropped connection would.
type failingFinishClaim struct {
	store.Store
	failed atomic.Bool
}

func (s *failingFinishClaim) FinishClaim(ctx context.Context, outcomes []*store.Outcome, p *store.ClaimParams) ([]string, []*store.Job, error) {
	if len(outcomes) > 0 && s.failed.CompareAndSwap(false, true) {
		return nil, nil, errors.New("connection reset (injected)")
	}
	return s.Store.FinishClaim(ctx, outcomes, p)
}

// With OutcomesWithClaims, outcomes whose claim failed go back to the
// completer: every job is still completed, once.
func TestOutcomesWithFailedClaim(t *testing.T) {
	eachStore(t, func(t *testing.T, h *harness) {
		handlers := skein.NewHandlers()
		skein.AddHandler(handlers, func(context.Context, *skein.Job[greet]) error { return nil })
		st := &failingFinishClaim{Store: h.store}
		cfg := h.testConfig(handlers)
		cfg.Agents = []skein.AgentConfig{{Size: 3}}
		cfg.OutcomesWithClaims = true
		d, err := skein.NewDispatcher(st, cfg)
		if err != nil {
			t.Fatal(err)
		}
		events, unsubscribe := d.Subscribe(1000)
		defer unsubscribe()
		const n = 30
		params := make([]skein.EnqueueParams, n)
		for i := range params {
			params[i] = skein.EnqueueParams{Args: greet{Name: fmt.Sprint(i)}}
		}
		if _, err := h.client.EnqueueMany(context.Background(), params); err != nil {
			t.Fatal(err)
		}
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { // on a failure; Stop twice is a no-op
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			_ = d.Stop(ctx)
		})
		completed := map[string]int{}
		timer := time.NewTimer(waitTimeout)
		defer timer.Stop()
		for len(completed) < n {
			select {
			case e := <-events:
				if e.State == store.StateCompleted {
					completed[e.JobID]++
				}
			case <-timer.C:
				t.Fatalf("%d of %d jobs completed", len(completed), n)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		// Whatever came after the last awaited event.
		for drained := false; !drained; {
			select {
			case e := <-events:
				if e.State == store.StateCompleted {
					completed[e.JobID]++
				}
			default:
				drained = true
			}
		}
		if !st.failed.Load() {
			t.Fatal("no FinishClaim with outcomes was made")
		}
		for id, c := range completed {
			if c != 1 {
				t.Errorf("job %s completed %d times", id, c)
			}
			if j := h.getJob(id); j.State != store.StateCompleted || j.Attempt != 1 {
				t.Errorf("job %s: %s at attempt %d, want completed at attempt 1", id, j.State, j.Attempt)
			}
		}
	})
}
