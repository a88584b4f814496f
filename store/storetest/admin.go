package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skeinhq/skein/store"
)

// jobIn puts a new job in state st and returns it as stored. Each job has
// a queue of its own (prefix + state), so that claims pick exactly it. A
// job that went through a run was claimed by dispatcherA, which must be
// registered.
func jobIn(t *testing.T, s store.Store, prefix string, st store.State, maxAttempts int) *store.Job {
	t.Helper()
	p := job(prefix+string(st), "k")
	p.MaxAttempts = maxAttempts
	if st == store.StateScheduled {
		p.ScheduledAt = time.Now().Add(time.Hour)
	}
	insert(t, s, p)
	if st == store.StateScheduled || st == store.StateAvailable {
		return get(t, s, p.ID)
	}
	js := claim(t, s, &store.ClaimParams{Queues: []string{p.Queue}, Limit: 1})
	if len(js) != 1 {
		t.Fatalf("claiming the job to put in state %s: got %d jobs", st, len(js))
	}
	if st != store.StateRunning {
		o := &store.Outcome{ID: p.ID, Dispatcher: dispatcherA, Slot: js[0].Slot, State: st}
		if st == store.StateRetryable {
			o.At = time.Now().Add(time.Hour)
		}
		if nh := finish(t, s, o); len(nh) != 0 {
			t.Fatalf("Finish to %s: not held %v", st, nh)
		}
	}
	g := get(t, s, p.ID)
	if g.State != st {
		t.Fatalf("job put in state %s is %s", st, g.State)
	}
	return g
}

// sameJob reports the first field where got differs from want, or "".
func sameJob(got, want *store.Job) string {
	switch {
	case got.ID != want.ID:
		return "ID " + got.ID + ", want " + want.ID
	case got.State != want.State:
		return "state " + string(got.State) + ", want " + string(want.State)
	case got.Slot != want.Slot || got.Attempt != want.Attempt || got.MaxAttempts != want.MaxAttempts:
		return "slot, attempt or max attempts differ"
	case !got.ScheduledAt.Equal(want.ScheduledAt) || !got.FinalizedAt.Equal(want.FinalizedAt):
		return "scheduled or finalized time differs"
	case got.TaskID != want.TaskID || got.WorkflowID != want.WorkflowID || got.Queue != want.Queue:
		return "task id, workflow id or queue differ"
	}
	return ""
}

func testRetryJobs(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA)
	ctx := ctxT(t)
	for _, tc := range []struct {
		from        store.State
		maxAttempts int
		retried     bool
		slotBump    int64 // on top of the slot before
		wantMax     int
	}{
		{store.StateScheduled, 3, true, 0, 3},
		{store.StateAvailable, 3, false, 0, 3},
		{store.StateRunning, 3, false, 0, 3},
		{store.StateRetryable, 3, true, 0, 3},
		{store.StateRetryable, 1, true, 0, 2}, // no attempt left: one more
		{store.StateCompleted, 3, true, 1, 3},
		{store.StateCancelled, 3, true, 1, 3},
		{store.StateDiscarded, 1, true, 1, 2},
	} {
		t.Run(fmt.Sprintf("%s of %d attempts", tc.from, tc.maxAttempts), func(t *testing.T) {
			before := jobIn(t, s, "retry-", tc.from, tc.maxAttempts)
			start := time.Now()
			got, err := s.RetryJobs(ctx, []string{before.ID})
			if err != nil {
				t.Fatalf("RetryJobs: %v", err)
			}
			if len(got) != 1 {
				t.Fatalf("RetryJobs returned %d jobs for 1 id", len(got))
			}
			stored := get(t, s, before.ID)
			if d := sameJob(got[0], stored); d != "" {
				t.Errorf("returned job differs from the stored one: %s", d)
			}
			if !tc.retried {
				if d := sameJob(stored, before); d != "" {
					t.Errorf("a %s job was changed by RetryJobs: %s", tc.from, d)
				}
				return
			}
			if stored.State != store.StateAvailable || !stored.FinalizedAt.IsZero() {
				t.Errorf("state %s, finalized %v, want available and not finalized", stored.State, stored.FinalizedAt)
			}
			if !within(stored.ScheduledAt, start, time.Minute) {
				t.Errorf("scheduled at %v, want now (%v)", stored.ScheduledAt, start)
			}
			if stored.Slot != before.Slot+tc.slotBump {
				t.Errorf("slot %d, want %d (was %d)", stored.Slot, before.Slot+tc.slotBump, before.Slot)
			}
			if stored.Attempt != before.Attempt || stored.MaxAttempts != tc.wantMax {
				t.Errorf("attempt %d of %d, want %d of %d", stored.Attempt, stored.MaxAttempts, before.Attempt, tc.wantMax)
			}
			if stored.TaskID != before.TaskID || stored.WorkflowID != before.WorkflowID {
				t.Errorf("task id %q, workflow %q changed (were %q, %q)", stored.TaskID, stored.WorkflowID, before.TaskID, before.WorkflowID)
			}
			// The next run takes a slot no earlier run or end message used:
			// for a final job, the one after the end of its job action.
			js := claim(t, s, &store.ClaimParams{Queues: []string{before.Queue}, Limit: 1})
			if len(js) != 1 {
				t.Fatalf("the retried job is not claimable (claimed %d)", len(js))
			}
			if want := before.Slot + tc.slotBump + 1; js[0].Slot != want || js[0].Attempt != before.Attempt+1 {
				t.Errorf("next run: slot %d, attempt %d, want slot %d, attempt %d", js[0].Slot, js[0].Attempt, want, before.Attempt+1)
			}
		})
	}
	t.Run("order", func(t *testing.T) {
		a := jobIn(t, s, "order-", store.StateCompleted, 3)
		b := jobIn(t, s, "order-", store.StateRunning, 3)
		c := jobIn(t, s, "order-", store.StateDiscarded, 3)
		got, err := s.RetryJobs(ctx, []string{c.ID, b.ID, a.ID})
		if err != nil {
			t.Fatalf("RetryJobs: %v", err)
		}
		want := []struct {
			id    string
			state store.State
		}{{c.ID, store.StateAvailable}, {b.ID, store.StateRunning}, {a.ID, store.StateAvailable}}
		if len(got) != len(want) {
			t.Fatalf("RetryJobs returned %d jobs, want %d", len(got), len(want))
		}
		for i, w := range want {
			if got[i].ID != w.id || got[i].State != w.state {
				t.Errorf("result %d = %s %s, want %s %s", i, got[i].ID, got[i].State, w.id, w.state)
			}
		}
	})
	t.Run("empty", func(t *testing.T) {
		got, err := s.RetryJobs(ctx, nil)
		if err != nil || len(got) != 0 {
			t.Errorf("RetryJobs(nil) = %v, %v, want no jobs and no error", got, err)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		known := jobIn(t, s, "unknown-", store.StateCompleted, 3)
		_, err := s.RetryJobs(ctx, []string{known.ID, "wf_missing"})
		if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "wf_missing") {
			t.Fatalf("RetryJobs with an unknown id = %v, want an error wrapping ErrNotFound naming wf_missing", err)
		}
		if d := sameJob(get(t, s, known.ID), known); d != "" {
			t.Errorf("a failed call changed the known job: %s", d)
		}
	})
	t.Run("unique key", func(t *testing.T) {
		p := job("unique", "k")
		p.UniqueKey = "retry-unique"
		insert(t, s, p)
		old := claim(t, s, &store.ClaimParams{Queues: []string{p.Queue}, Limit: 1})[0]
		finish(t, s, &store.Outcome{ID: p.ID, Dispatcher: dispatcherA, Slot: old.Slot, State: store.StateCompleted})
		q := job("unique", "k")
		q.UniqueKey = p.UniqueKey
		if r := insert(t, s, q); r[0].Duplicate {
			t.Fatal("the key of a completed job is still held")
		}
		before := get(t, s, p.ID)
		_, err := s.RetryJobs(ctx, []string{p.ID})
		if err == nil || !strings.Contains(err.Error(), q.ID) || !strings.Contains(err.Error(), p.ID) {
			t.Fatalf("RetryJobs of a job whose unique key is held = %v, want an error naming both jobs", err)
		}
		if d := sameJob(get(t, s, p.ID), before); d != "" {
			t.Errorf("refused retry changed the job: %s", d)
		}
	})
}

func testCancelJobs(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA)
	ctx := ctxT(t)
	for _, tc := range []struct {
		from      store.State
		cancelled bool
	}{
		{store.StateScheduled, true},
		{store.StateAvailable, true},
		{store.StateRetryable, true},
		{store.StateRunning, false},
		{store.StateCompleted, false},
		{store.StateCancelled, false},
		{store.StateDiscarded, false},
	} {
		t.Run(string(tc.from), func(t *testing.T) {
			before := jobIn(t, s, "cancel-", tc.from, 3)
			start := time.Now()
			got, err := s.CancelJobs(ctx, []string{before.ID})
			if err != nil {
				t.Fatalf("CancelJobs: %v", err)
			}
			if len(got) != 1 {
				t.Fatalf("CancelJobs returned %d jobs for 1 id", len(got))
			}
			stored := get(t, s, before.ID)
			if d := sameJob(got[0], stored); d != "" {
				t.Errorf("returned job differs from the stored one: %s", d)
			}
			if !tc.cancelled {
				if d := sameJob(stored, before); d != "" {
					t.Errorf("a %s job was changed by CancelJobs: %s", tc.from, d)
				}
				return
			}
			if stored.State != store.StateCancelled || !within(stored.FinalizedAt, start, time.Minute) {
				t.Errorf("state %s, finalized %v, want cancelled and finalized now", stored.State, stored.FinalizedAt)
			}
			if stored.Slot != before.Slot || stored.Attempt != before.Attempt || stored.TaskID != before.TaskID {
				t.Errorf("slot %d, attempt %d, task %q, want them unchanged (%d, %d, %q)",
					stored.Slot, stored.Attempt, stored.TaskID, before.Slot, before.Attempt, before.TaskID)
			}
			// A cancelled job is never claimed, even when its time comes.
			js := claim(t, s, &store.ClaimParams{Queues: []string{before.Queue}, Limit: 1, Now: time.Now().Add(2 * time.Hour)})
			if len(js) != 0 {
				t.Errorf("claimed a cancelled job: %v", ids(js))
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		known := jobIn(t, s, "unknown-", store.StateAvailable, 3)
		_, err := s.CancelJobs(ctx, []string{known.ID, "wf_missing"})
		if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "wf_missing") {
			t.Fatalf("CancelJobs with an unknown id = %v, want an error wrapping ErrNotFound naming wf_missing", err)
		}
		if g := get(t, s, known.ID); g.State != store.StateAvailable {
			t.Errorf("a failed call changed the known job to %s", g.State)
		}
	})
	t.Run("empty", func(t *testing.T) {
		got, err := s.CancelJobs(ctx, []string{})
		if err != nil || len(got) != 0 {
			t.Errorf("CancelJobs([]) = %v, %v, want no jobs and no error", got, err)
		}
	})
	t.Run("frees unique key", func(t *testing.T) {
		p := job("cancel-unique", "k")
		p.UniqueKey = "cancel-unique"
		insert(t, s, p)
		if _, err := s.CancelJobs(ctx, []string{p.ID}); err != nil {
			t.Fatal(err)
		}
		q := job("cancel-unique", "k")
		q.UniqueKey = p.UniqueKey
		if r := insert(t, s, q); r[0].Duplicate {
			t.Error("the unique key of a cancelled job is still held")
		}
	})
}

func testRetryNotifies(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA)
	ctx := ctxT(t)
	j := jobIn(t, s, "notify-", store.StateCompleted, 3)
	sub, err := s.Subscribe(ctx, []string{j.Queue})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer sub.Close()
	for drained := false; !drained; {
		select {
		case <-sub.C():
		default:
			drained = true
		}
	}
	if _, err := s.RetryJobs(ctx, []string{j.ID}); err != nil {
		t.Fatalf("RetryJobs: %v", err)
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case q, ok := <-sub.C():
			if !ok {
				t.Fatal("subscription closed while waiting")
			}
			if q == j.Queue || q == "" {
				return
			}
		case <-timeout.C:
			t.Fatalf("no notification for queue %q within 30 s of RetryJobs", j.Queue)
		}
	}
}

func testClosed(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA)
	p := job("closed", "k")
	insert(t, s, p)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := ctxT(t)
	one := []string{p.ID}
	calls := []struct {
		method string
		call   func() error
	}{
		{"Insert", func() error { _, err := s.Insert(ctx, []*store.InsertParams{job("closed", "k")}); return err }},
		{"Insert(none)", func() error { _, err := s.Insert(ctx, nil); return err }},
		{"InsertTx", func() error { _, err := s.InsertTx(ctx, nil, []*store.InsertParams{job("closed", "k")}); return err }},
		{"Claim", func() error {
			_, err := s.Claim(ctx, &store.ClaimParams{Dispatcher: dispatcherA, Agent: "main", Limit: 1})
			return err
		}},
		{"Finish", func() error {
			_, err := s.Finish(ctx, []*store.Outcome{{ID: p.ID, Dispatcher: dispatcherA, Slot: 1, State: store.StateCompleted}})
			return err
		}},
		{"RegisterDispatcher", func() error { return s.RegisterDispatcher(ctx, &store.Dispatcher{ID: dispatcherB}) }},
		{"Heartbeat", func() error { return s.Heartbeat(ctx, dispatcherA) }},
		{"DeregisterDispatcher", func() error { return s.DeregisterDispatcher(ctx, dispatcherA) }},
		{"ListDispatchers", func() error { _, err := s.ListDispatchers(ctx); return err }},
		{"RescueDead", func() error { _, err := s.RescueDead(ctx, nil); return err }},
		{"Subscribe", func() error {
			sub, err := s.Subscribe(ctx, nil)
			if err == nil {
				_ = sub.Close()
			}
			return err
		}},
		{"Cleanup", func() error { _, err := s.Cleanup(ctx, nil); return err }},
		{"GetJob", func() error { _, err := s.GetJob(ctx, p.ID); return err }},
		{"ListJobs", func() error { _, err := s.ListJobs(ctx, nil); return err }},
		{"CountJobs", func() error { _, err := s.CountJobs(ctx, nil); return err }},
		{"Stats", func() error { _, err := s.Stats(ctx); return err }},
		{"RetryJobs", func() error { _, err := s.RetryJobs(ctx, one); return err }},
		{"CancelJobs", func() error { _, err := s.CancelJobs(ctx, one); return err }},
		{"MigrateUp", func() error { _, err := s.MigrateUp(ctx, nil); return err }},
		{"MigrateDown", func() error { _, err := s.MigrateDown(ctx, nil); return err }},
		{"SchemaStatus", func() error { _, err := s.SchemaStatus(ctx); return err }},
		{"CheckSchema", func() error { return s.CheckSchema(ctx) }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close = %v, want an error wrapping ErrClosed", c.method, err)
		}
	}
	if s.Name() == "" {
		t.Error("Name after Close is empty")
	}
}
