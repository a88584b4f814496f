// Package storetest is the conformance suite of store.Store: every driver
// runs it from its own tests with
//
//	storetest.Run(t, newStore, hooks)
//
// newStore returns a fresh, migrated, empty store for one subtest (and closes
// it in t.Cleanup). Subtests run in parallel. hooks gives what the interface
// cannot: beginning the driver's transactions and forging a newer schema.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skeinhq/skein/store"
)

// Tx is a transaction of the driver's kind for InsertTx.
type Tx struct {
	// Tx is passed to InsertTx.
	Tx       any
	Commit   func(context.Context) error
	Rollback func(context.Context) error
}

// Hooks reach into a driver where the interface cannot.
type Hooks struct {
	// BeginTx begins, per transaction kind the driver accepts (e.g. "pgx",
	// "sql"), a transaction on the same database as s. Defaults to none:
	// the tests of InsertTx are then skipped.
	BeginTx map[string]func(ctx context.Context, s store.Store) (*Tx, error)
	// SetSchemaVersion records version v as applied without running it.
	// Defaults to nil: the newer-schema test is then skipped.
	SetSchemaVersion func(ctx context.Context, s store.Store, v int) error
	// LargeBatch is the size of the large-batch test. Defaults to 10000.
	LargeBatch int
}

// Run runs every conformance test against stores from newStore.
func Run(t *testing.T, newStore func(t *testing.T) store.Store, hooks *Hooks) {
	if hooks == nil {
		hooks = &Hooks{}
	}
	tests := []struct {
		name string
		f    func(t *testing.T, s store.Store, h *Hooks)
	}{
		{"InsertAndGet", testInsertAndGet},
		{"InsertValidation", testInsertValidation},
		{"InsertDuplicateID", testInsertDuplicateID},
		{"UniqueKey", testUniqueKey},
		{"ClaimOrder", testClaimOrder},
		{"ClaimFilters", testClaimFilters},
		{"ClaimScheduled", testClaimScheduled},
		{"ClaimDispatcherChecks", testClaimDispatcherChecks},
		{"Transitions", testTransitions},
		{"FinishGuards", testFinishGuards},
		{"FinishClaim", testFinishClaim},
		{"SnoozeSlots", testSnoozeSlots},
		{"ConcurrentClaimers", testConcurrentClaimers},
		{"Rescue", testRescue},
		{"Deregister", testDeregister},
		{"Retention", testRetention},
		{"ListAndCount", testListAndCount},
		{"Stats", testStats},
		{"LargeBatch", testLargeBatch},
		{"Notifications", testNotifications},
		{"Schema", testSchema},
		{"InsertTx", testInsertTx},
		{"RetryJobs", testRetryJobs},
		{"CancelJobs", testCancelJobs},
		{"RetryNotifies", testRetryNotifies},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			tc.f(t, s, hooks)
		})
	}
}

const dispatcherA, dispatcherB = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"

var seq struct {
	sync.Mutex
	n int
}

// job returns valid insert params with a fresh id in workflow wf.
func job(queue, kind string) *store.InsertParams {
	seq.Lock()
	seq.n++
	n := seq.n
	seq.Unlock()
	return &store.InsertParams{
		ID: fmt.Sprintf("wf_%08d", n), Kind: kind, Queue: queue, MaxAttempts: 3,
		Args: json.RawMessage(`{"n":` + fmt.Sprint(n) + `}`), WorkflowID: "wf", TaskID: "task@/1",
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func insert(t *testing.T, s store.Store, ps ...*store.InsertParams) []store.InsertResult {
	t.Helper()
	res, err := s.Insert(ctxT(t), ps)
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	if len(res) != len(ps) {
		t.Fatalf("Insert returned %d results for %d params", len(res), len(ps))
	}
	return res
}

func register(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		d := &store.Dispatcher{ID: id, Host: "host-" + id[len(id)-1:], PID: 42,
			Agents: []store.Agent{{Name: "main", Size: 10, Queues: []string{"default"}}}}
		if err := s.RegisterDispatcher(ctxT(t), d); err != nil {
			t.Fatalf("RegisterDispatcher(%s): %v", id, err)
		}
	}
}

func claim(t *testing.T, s store.Store, p *store.ClaimParams) []*store.Job {
	t.Helper()
	if p.Dispatcher == "" {
		p.Dispatcher = dispatcherA
	}
	if p.Agent == "" {
		p.Agent = "main"
	}
	jobs, err := s.Claim(ctxT(t), p)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	return jobs
}

func get(t *testing.T, s store.Store, id string) *store.Job {
	t.Helper()
	j, err := s.GetJob(ctxT(t), id)
	if err != nil {
		t.Fatalf("GetJob(%s): %v", id, err)
	}
	return j
}

func ids(jobs []*store.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

func finish(t *testing.T, s store.Store, os ...*store.Outcome) []string {
	t.Helper()
	notHeld, err := s.Finish(ctxT(t), os)
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return notHeld
}

func jsonEq(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ab, _ := json.Marshal(x)
	bb, _ := json.Marshal(y)
	return string(ab) == string(bb)
}

func within(got, want time.Time, d time.Duration) bool {
	diff := got.Sub(want)
	return diff <= d && diff >= -d
}

func testInsertAndGet(t *testing.T, s store.Store, _ *Hooks) {
	before := time.Now()
	p := job("default", "email")
	p.Priority = 2
	p.Metadata = json.RawMessage(`{"m": [1, 2]}`)
	p.Timeout = 1500 * time.Millisecond
	p.UniqueKey = "u1"
	future := job("default", "email")
	future.ScheduledAt = time.Now().Add(time.Hour)
	noArgs := job("other", "sms")
	noArgs.Args = nil
	res := insert(t, s, p, future, noArgs)
	for i, r := range res {
		if r.Duplicate || r.Job == nil {
			t.Fatalf("result %d: %+v, want an inserted job", i, r)
		}
	}
	got := get(t, s, p.ID)
	want := store.Job{ID: p.ID, Kind: "email", Queue: "default", Priority: 2, State: store.StateAvailable,
		MaxAttempts: 3, Timeout: 1500 * time.Millisecond, WorkflowID: "wf", TaskID: "task@/1", UniqueKey: "u1"}
	if got.ID != want.ID || got.Kind != want.Kind || got.Queue != want.Queue || got.Priority != want.Priority ||
		got.State != want.State || got.MaxAttempts != want.MaxAttempts || got.Timeout != want.Timeout ||
		got.WorkflowID != want.WorkflowID || got.TaskID != want.TaskID || got.UniqueKey != want.UniqueKey ||
		got.Attempt != 0 || got.Slot != 0 || got.AttemptedBy != "" || len(got.Errors) != 0 || got.Result != nil {
		t.Errorf("GetJob = %+v, want %+v", got, want)
	}
	if !jsonEq(got.Args, p.Args) || !jsonEq(got.Metadata, p.Metadata) {
		t.Errorf("args, metadata = %s, %s, want %s, %s", got.Args, got.Metadata, p.Args, p.Metadata)
	}
	if !within(got.CreatedAt, before, time.Minute) || !within(got.ScheduledAt, got.CreatedAt, time.Second) {
		t.Errorf("created_at, scheduled_at = %v, %v, want about %v", got.CreatedAt, got.ScheduledAt, before)
	}
	if !got.AttemptedAt.IsZero() || !got.FinalizedAt.IsZero() {
		t.Errorf("attempted_at, finalized_at = %v, %v, want zero", got.AttemptedAt, got.FinalizedAt)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at location = %v, want UTC", got.CreatedAt.Location())
	}
	f := get(t, s, future.ID)
	if f.State != store.StateScheduled || !f.ScheduledAt.Equal(future.ScheduledAt.Truncate(time.Microsecond)) {
		t.Errorf("future job: state %s at %v, want scheduled at %v", f.State, f.ScheduledAt, future.ScheduledAt)
	}
	if res[1].Job.State != store.StateScheduled {
		t.Errorf("insert result state = %s, want scheduled", res[1].Job.State)
	}
	if n := get(t, s, noArgs.ID); !jsonEq(n.Args, json.RawMessage(`{}`)) || !jsonEq(n.Metadata, json.RawMessage(`{}`)) {
		t.Errorf("nil args, metadata stored as %s, %s, want {} and {}", n.Args, n.Metadata)
	}
	_, err := s.GetJob(ctxT(t), "nope")
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("GetJob(nope) = %v, want ErrNotFound naming the id", err)
	}
	if res, err := s.Insert(ctxT(t), nil); err != nil || len(res) != 0 {
		t.Errorf("Insert(nil) = %v, %v, want nothing", res, err)
	}
}

func testInsertValidation(t *testing.T, s store.Store, _ *Hooks) {
	for _, tc := range []struct {
		name  string
		edit  func(p *store.InsertParams)
		field string
	}{
		{"no id", func(p *store.InsertParams) { p.ID = "" }, "ID"},
		{"id outside its workflow", func(p *store.InsertParams) { p.WorkflowID = "elsewhere" }, "ID"},
		{"no kind", func(p *store.InsertParams) { p.Kind = "" }, "Kind"},
		{"no queue", func(p *store.InsertParams) { p.Queue = "" }, "Queue"},
		{"no attempts", func(p *store.InsertParams) { p.MaxAttempts = 0 }, "MaxAttempts"},
		{"bad args", func(p *store.InsertParams) { p.Args = json.RawMessage(`{`) }, "Args"},
		{"bad metadata", func(p *store.InsertParams) { p.Metadata = json.RawMessage(`nope`) }, "Metadata"},
		{"negative timeout", func(p *store.InsertParams) { p.Timeout = -1 }, "Timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good, bad := job("default", "k"), job("default", "k")
			tc.edit(bad)
			_, err := s.Insert(ctxT(t), []*store.InsertParams{good, bad})
			if err == nil || !strings.Contains(err.Error(), "field "+tc.field) || !strings.Contains(err.Error(), "params[1]") {
				t.Fatalf("Insert = %v, want an error naming params[1] and field %s", err, tc.field)
			}
			if _, err := s.GetJob(ctxT(t), good.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the valid job of a rejected batch was stored (GetJob: %v)", err)
			}
		})
	}
}

func testInsertDuplicateID(t *testing.T, s store.Store, _ *Hooks) {
	p := job("default", "k")
	insert(t, s, p)
	other := job("default", "k")
	dup := *p
	_, err := s.Insert(ctxT(t), []*store.InsertParams{other, &dup})
	if !errors.Is(err, store.ErrJobExists) || !strings.Contains(err.Error(), p.ID) {
		t.Fatalf("Insert of an existing id = %v, want ErrJobExists naming %s", err, p.ID)
	}
	if _, err := s.GetJob(ctxT(t), other.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a job of the failed batch was stored (GetJob: %v)", err)
	}
}

func testUniqueKey(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA)
	first := job("default", "k")
	first.UniqueKey = "key"
	insert(t, s, first)
	second, third := job("default", "k"), job("default", "k")
	second.UniqueKey, third.UniqueKey = "key", "key"
	plain := job("default", "k")
	res := insert(t, s, second, plain, third)
	for _, i := range []int{0, 2} {
		if !res[i].Duplicate || res[i].Job == nil || res[i].Job.ID != first.ID {
			t.Fatalf("result %d = %+v, want a duplicate of %s", i, res[i], first.ID)
		}
	}
	if res[1].Duplicate {
		t.Fatalf("a job without a key was reported duplicate")
	}
	if _, err := s.GetJob(ctxT(t), second.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("duplicate job was stored (GetJob: %v)", err)
	}
	// In a batch: the first of two new jobs with one key wins.
	a, b := job("default", "k"), job("default", "k")
	a.UniqueKey, b.UniqueKey = "batch", "batch"
	res = insert(t, s, a, b)
	if res[0].Duplicate || !res[1].Duplicate || res[1].Job.ID != a.ID {
		t.Fatalf("batch results = %+v / %+v, want the second a duplicate of the first", res[0], res[1])
	}
	// Running and retryable still hold the key.
	jobs := claim(t, s, &store.ClaimParams{Limit: 10})
	var held *store.Job
	for _, j := range jobs {
		if j.ID == first.ID {
			held = j
		}
	}
	if held == nil {
		t.Fatalf("claimed %v, want %s among them", ids(jobs), first.ID)
	}
	again := job("default", "k")
	again.UniqueKey = "key"
	if r := insert(t, s, again); !r[0].Duplicate {
		t.Fatalf("insert while the holder runs: not a duplicate")
	}
	finish(t, s, &store.Outcome{ID: first.ID, Dispatcher: dispatcherA, Slot: held.Slot, State: store.StateRetryable,
		At: time.Now().Add(time.Hour), Error: &store.AttemptError{Error: "boom"}})
	if r := insert(t, s, again); !r[0].Duplicate {
		t.Fatalf("insert while the holder is retryable: not a duplicate")
	}
	// Final states free the key.
	held = claim(t, s, &store.ClaimParams{Limit: 10, Now: time.Now().Add(2 * time.Hour)})[0]
	if held.ID != first.ID {
		t.Fatalf("claimed %s, want %s", held.ID, first.ID)
	}
	finish(t, s, &store.Outcome{ID: first.ID, Dispatcher: dispatcherA, Slot: held.Slot, State: store.StateCompleted})
	if r := insert(t, s, again); r[0].Duplicate || r[0].Job.ID != again.ID {
		t.Fatalf("insert after the holder completed = %+v, want inserted", r[0])
	}
}

func testClaimOrder(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA)
	base := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	var ps []*store.InsertParams
	// (priority, scheduled offset) in insertion order.
	for _, x := range []struct{ prio, off int }{{3, 0}, {1, 5}, {2, 1}, {1, 2}, {1, 2}, {2, 0}} {
		p := job("default", "k")
		p.Priority = x.prio
		p.ScheduledAt = base.Add(time.Duration(x.off) * time.Second)
		ps = append(ps, p)
	}
	insert(t, s, ps...)
	// The two (1, 2) jobs tie: they come in either order, in one claim of 4
	// (which returns its jobs sorted by id).
	want := []string{ps[3].ID, ps[4].ID, ps[1].ID, ps[5].ID, ps[2].ID, ps[0].ID}
	got := ids(claim(t, s, &store.ClaimParams{Limit: 4}))
	got = append(got, ids(claim(t, s, &store.ClaimParams{Limit: 4}))...)
	if !slices.Equal(got, want) {
		t.Errorf("claim order = %v, want %v", got, want)
	}
	if rest := claim(t, s, &store.ClaimParams{Limit: 4}); len(rest) != 0 {
		t.Errorf("claimed %v from an empty queue", ids(rest))
	}
}

func testClaimFilters(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA)
	a1, a2, b1, c1 := job("qa", "k1"), job("qa", "k2"), job("qb", "k1"), job("qc", "k3")
	insert(t, s, a1, a2, b1, c1)
	got := ids(claim(t, s, &store.ClaimParams{Queues: []string{"qa", "qb"}, Kinds: []string{"k1"}, Limit: 10}))
	slices.Sort(got)
	want := []string{a1.ID, b1.ID}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("claim queues qa,qb kind k1 = %v, want %v", got, want)
	}
	if got := ids(claim(t, s, &store.ClaimParams{Queues: []string{"qa"}, Limit: 10})); !slices.Equal(got, []string{a2.ID}) {
		t.Errorf("claim queue qa = %v, want %v", got, []string{a2.ID})
	}
	if got := ids(claim(t, s, &store.ClaimParams{Limit: 10})); !slices.Equal(got, []string{c1.ID}) {
		t.Errorf("claim all queues = %v, want %v", got, []string{c1.ID})
	}
}

func testClaimScheduled(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA)
	p := job("default", "k")
	p.ScheduledAt = time.Now().Add(time.Hour)
	insert(t, s, p)
	if got := claim(t, s, &store.ClaimParams{Limit: 10}); len(got) != 0 {
		t.Fatalf("claimed %v before its time", ids(got))
	}
	now := time.Now().Add(2 * time.Hour)
	got := claim(t, s, &store.ClaimParams{Limit: 10, Now: now})
	if len(got) != 1 || got[0].ID != p.ID {
		t.Fatalf("claim after its time = %v, want [%s]", ids(got), p.ID)
	}
	j := got[0]
	if j.State != store.StateRunning || j.Attempt != 1 || j.Slot != 1 || j.AttemptedBy != dispatcherA ||
		j.AttemptedAgent != "main" || !within(j.AttemptedAt, now, time.Millisecond) {
		t.Errorf("claimed job = state %s attempt %d slot %d by %s/%s at %v, want running 1 1 %s/main at %v",
			j.State, j.Attempt, j.Slot, j.AttemptedBy, j.AttemptedAgent, j.AttemptedAt, dispatcherA, now)
	}
	if g := get(t, s, p.ID); g.State != store.StateRunning || g.Slot != 1 || g.AttemptedBy != dispatcherA {
		t.Errorf("stored job = %s slot %d by %q, want running slot 1 by %s", g.State, g.Slot, g.AttemptedBy, dispatcherA)
	}
}

func testClaimDispatcherChecks(t *testing.T, s store.Store, _ *Hooks) {
	insert(t, s, job("default", "k"))
	_, err := s.Claim(ctxT(t), &store.ClaimParams{Dispatcher: dispatcherA, Agent: "main", Limit: 1})
	if !errors.Is(err, store.ErrDispatcherNotFound) {
		t.Errorf("claim by an unregistered dispatcher = %v, want ErrDispatcherNotFound", err)
	}
	if err := s.Heartbeat(ctxT(t), dispatcherA); !errors.Is(err, store.ErrDispatcherNotFound) {
		t.Errorf("heartbeat of an unregistered dispatcher = %v, want ErrDispatcherNotFound", err)
	}
	register(t, s, dispatcherA, dispatcherB)
	if _, err := s.RescueDead(ctxT(t), &store.RescueParams{By: dispatcherB, Now: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Claim(ctxT(t), &store.ClaimParams{Dispatcher: dispatcherA, Agent: "main", Limit: 1})
	var dead *store.DispatcherDeadError
	if !errors.Is(err, store.ErrDispatcherDead) || !errors.As(err, &dead) || dead.DeadBy != dispatcherB {
		t.Errorf("claim by a dead dispatcher = %v, want a DispatcherDeadError by %s", err, dispatcherB)
	}
	for _, p := range []*store.ClaimParams{nil, {Agent: "a", Limit: 1}, {Dispatcher: "d", Limit: 1}, {Dispatcher: "d", Agent: "a"}} {
		if _, err := s.Claim(ctxT(t), p); err == nil {
			t.Errorf("Claim(%+v) succeeded, want a validation error", p)
		}
	}
}

func testFinishClaim(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA, dispatcherB)
	a, b, c := job("default", "k"), job("default", "k"), job("default", "k")
	insert(t, s, a)
	insert(t, s, b)
	insert(t, s, c)
	got := claim(t, s, &store.ClaimParams{Limit: 2})
	if !slices.Equal(ids(got), []string{a.ID, b.ID}) {
		t.Fatalf("claimed %v, want [%s %s]", ids(got), a.ID, b.ID)
	}
	// a completes; b fails and is due again at once, so the claim that
	// follows in the same call takes it back with c; an outcome for a slot
	// that is not held is reported and changes nothing.
	past := time.Now().Add(-time.Minute)
	notHeld, jobs, err := s.FinishClaim(ctxT(t), []*store.Outcome{
		{ID: a.ID, Dispatcher: dispatcherA, Slot: 1, State: store.StateCompleted},
		{ID: b.ID, Dispatcher: dispatcherA, Slot: 1, State: store.StateRetryable, At: past, Error: &store.AttemptError{Error: "boom"}},
		{ID: c.ID, Dispatcher: dispatcherA, Slot: 1, State: store.StateCompleted},
	}, &store.ClaimParams{Dispatcher: dispatcherA, Agent: "main", Limit: 10})
	if err != nil {
		t.Fatalf("FinishClaim: %v", err)
	}
	if !slices.Equal(notHeld, []string{c.ID}) {
		t.Errorf("not held %v, want [%s]", notHeld, c.ID)
	}
	if !slices.Equal(ids(jobs), []string{b.ID, c.ID}) {
		t.Fatalf("claimed %v, want [%s %s] (the retried job is due first)", ids(jobs), b.ID, c.ID)
	}
	if jb := jobs[0]; jb.State != store.StateRunning || jb.Attempt != 2 || jb.Slot != 2 || len(jb.Errors) != 1 || jb.Errors[0].Attempt != 1 {
		t.Errorf("retried job: state %s attempt %d slot %d errors %+v, want running, attempt 2, slot 2, one error of attempt 1",
			jb.State, jb.Attempt, jb.Slot, jb.Errors)
	}
	if ja := get(t, s, a.ID); ja.State != store.StateCompleted || ja.FinalizedAt.IsZero() {
		t.Errorf("completed job: state %s finalized %v", ja.State, ja.FinalizedAt)
	}
	// No outcomes: a plain claim (nothing left to claim).
	if notHeld, jobs, err := s.FinishClaim(ctxT(t), nil, &store.ClaimParams{Dispatcher: dispatcherA, Agent: "main", Limit: 10}); err != nil || len(notHeld) != 0 || len(jobs) != 0 {
		t.Errorf("FinishClaim with no outcomes = %v, %v, %v; want nothing", notHeld, ids(jobs), err)
	}
	// Two outcomes for one run: one applies, the other is not held.
	notHeld, _, err = s.FinishClaim(ctxT(t), []*store.Outcome{
		{ID: b.ID, Dispatcher: dispatcherA, Slot: 2, State: store.StateCompleted},
		{ID: b.ID, Dispatcher: dispatcherA, Slot: 2, State: store.StateCancelled},
	}, &store.ClaimParams{Dispatcher: dispatcherA, Agent: "main", Limit: 1})
	if err != nil || !slices.Equal(notHeld, []string{b.ID}) {
		t.Errorf("two outcomes for one run: not held %v, %v; want [%s]", notHeld, err, b.ID)
	}
	if jb := get(t, s, b.ID); jb.State != store.StateCompleted {
		t.Errorf("job with two outcomes is %s, want completed (the first)", jb.State)
	}
	// A dispatcher judged dead: its outcomes are not held, the claim fails.
	d := job("default", "k")
	insert(t, s, d)
	if got := claim(t, s, &store.ClaimParams{Limit: 1}); len(got) != 1 {
		t.Fatalf("claimed %d jobs, want 1", len(got))
	}
	if _, err := s.RescueDead(ctxT(t), &store.RescueParams{By: dispatcherB, Now: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	notHeld, jobs, err = s.FinishClaim(ctxT(t), []*store.Outcome{{ID: d.ID, Dispatcher: dispatcherA, Slot: 1, State: store.StateCompleted}},
		&store.ClaimParams{Dispatcher: dispatcherA, Agent: "main", Limit: 10})
	var after *store.ClaimAfterFinishError
	if !errors.Is(err, store.ErrDispatcherDead) || !errors.As(err, &after) || len(jobs) != 0 || !slices.Equal(notHeld, []string{d.ID}) {
		t.Errorf("FinishClaim by a dead dispatcher = not held %v, jobs %v, %v; want [%s], none, a ClaimAfterFinishError wrapping ErrDispatcherDead", notHeld, ids(jobs), err, d.ID)
	}
	if jd := get(t, s, d.ID); jd.State != store.StateAvailable {
		t.Errorf("the rescued job is %s, want available", jd.State)
	}
	if _, _, err := s.FinishClaim(ctxT(t), []*store.Outcome{{ID: d.ID}}, &store.ClaimParams{Dispatcher: dispatcherA, Agent: "main", Limit: 1}); err == nil || !strings.Contains(err.Error(), "field") {
		t.Errorf("FinishClaim with an invalid outcome = %v, want an error naming the field", err)
	}
}

func testTransitions(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA)
	later := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	for _, tc := range []struct {
		name        string
		out         store.Outcome
		wantState   store.State
		wantAttempt int
		final       bool
		wantSched   time.Time // zero: unchanged
	}{
		{"complete", store.Outcome{State: store.StateCompleted, Result: json.RawMessage(`{"ok":true}`)}, store.StateCompleted, 1, true, time.Time{}},
		{"retry", store.Outcome{State: store.StateRetryable, At: later, Error: &store.AttemptError{Error: "boom", Stack: "main.go:1"}}, store.StateRetryable, 1, false, later},
		{"snooze", store.Outcome{State: store.StateScheduled, At: later, UndoAttempt: true}, store.StateScheduled, 0, false, later},
		{"release", store.Outcome{State: store.StateAvailable, UndoAttempt: true, Error: &store.AttemptError{Error: "stopping", Interrupted: true}}, store.StateAvailable, 0, false, time.Time{}},
		{"cancel", store.Outcome{State: store.StateCancelled, Error: &store.AttemptError{Error: "cancelled"}}, store.StateCancelled, 1, true, time.Time{}},
		{"discard", store.Outcome{State: store.StateDiscarded, Error: &store.AttemptError{Error: "fatal"}}, store.StateDiscarded, 1, true, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := job("q-"+tc.name, "k")
			inserted := insert(t, s, p)[0].Job
			j := claim(t, s, &store.ClaimParams{Queues: []string{p.Queue}, Limit: 1})[0]
			o := tc.out
			o.ID, o.Dispatcher, o.Slot = j.ID, dispatcherA, j.Slot
			if nh := finish(t, s, &o); len(nh) != 0 {
				t.Fatalf("Finish: not held %v", nh)
			}
			g := get(t, s, p.ID)
			if g.State != tc.wantState || g.Attempt != tc.wantAttempt {
				t.Errorf("state, attempt = %s, %d, want %s, %d", g.State, g.Attempt, tc.wantState, tc.wantAttempt)
			}
			if tc.final != !g.FinalizedAt.IsZero() {
				t.Errorf("finalized_at = %v, want set: %v", g.FinalizedAt, tc.final)
			}
			wantSched := tc.wantSched
			if wantSched.IsZero() {
				wantSched = inserted.ScheduledAt
			}
			if !g.ScheduledAt.Equal(wantSched) {
				t.Errorf("scheduled_at = %v, want %v", g.ScheduledAt, wantSched)
			}
			if tc.out.Result != nil && !jsonEq(g.Result, tc.out.Result) {
				t.Errorf("result = %s, want %s", g.Result, tc.out.Result)
			}
			if tc.out.Error == nil {
				if len(g.Errors) != 0 {
					t.Errorf("errors = %+v, want none", g.Errors)
				}
				return
			}
			if len(g.Errors) != 1 {
				t.Fatalf("errors = %+v, want one", g.Errors)
			}
			e := g.Errors[0]
			if e.Error != tc.out.Error.Error || e.Stack != tc.out.Error.Stack || e.Attempt != 1 || e.Slot != j.Slot ||
				e.Dispatcher != dispatcherA || e.Interrupted != tc.out.Error.Interrupted || e.Reassigned ||
				!within(e.At, time.Now(), time.Minute) {
				t.Errorf("error entry = %+v, want %q attempt 1 slot %d by %s", e, tc.out.Error.Error, j.Slot, dispatcherA)
			}
		})
	}
	// A second error is appended after the first.
	p := job("q-twice", "k")
	insert(t, s, p)
	for i := range 2 {
		j := claim(t, s, &store.ClaimParams{Queues: []string{p.Queue}, Limit: 1, Now: time.Now().Add(time.Duration(i) * time.Hour)})[0]
		finish(t, s, &store.Outcome{ID: j.ID, Dispatcher: dispatcherA, Slot: j.Slot, State: store.StateRetryable,
			At: time.Now().Add(time.Minute), Error: &store.AttemptError{Error: fmt.Sprint("err", i+1)}})
	}
	g := get(t, s, p.ID)
	if len(g.Errors) != 2 || g.Errors[0].Error != "err1" || g.Errors[1].Error != "err2" || g.Errors[1].Attempt != 2 || g.Errors[1].Slot != 2 {
		t.Errorf("errors after two failures = %+v, want err1 then err2 (attempt 2, slot 2)", g.Errors)
	}
	// Invalid outcomes are refused, naming the field.
	for _, o := range []*store.Outcome{{Dispatcher: "d", State: store.StateCompleted}, {ID: "x", State: store.StateCompleted},
		{ID: "x", Dispatcher: "d", State: store.StateRunning}, {ID: "x", Dispatcher: "d", State: "weird"},
		{ID: "x", Dispatcher: "d", State: store.StateCompleted, Result: json.RawMessage("{")}} {
		if _, err := s.Finish(ctxT(t), []*store.Outcome{o}); err == nil || !strings.Contains(err.Error(), "field") {
			t.Errorf("Finish(%+v) = %v, want an error naming the field", o, err)
		}
	}
}

func testFinishGuards(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA, dispatcherB)
	p, q := job("default", "k"), job("default", "k")
	insert(t, s, p, q)
	j := claim(t, s, &store.ClaimParams{Limit: 2})
	if len(j) != 2 {
		t.Fatalf("claimed %d jobs, want 2", len(j))
	}
	notHeld := finish(t, s,
		&store.Outcome{ID: j[0].ID, Dispatcher: dispatcherB, Slot: j[0].Slot, State: store.StateCompleted},     // wrong dispatcher
		&store.Outcome{ID: j[1].ID, Dispatcher: dispatcherA, Slot: j[1].Slot + 1, State: store.StateCompleted}, // wrong slot
		&store.Outcome{ID: "missing", Dispatcher: dispatcherA, Slot: 1, State: store.StateCompleted},
	)
	if want := []string{j[0].ID, j[1].ID, "missing"}; !slices.Equal(notHeld, want) {
		t.Errorf("not held = %v, want %v", notHeld, want)
	}
	for _, x := range j {
		if g := get(t, s, x.ID); g.State != store.StateRunning {
			t.Errorf("job %s is %s after refused outcomes, want running", x.ID, g.State)
		}
	}
	// The holder can finish once; a second outcome for the same run is refused.
	o := &store.Outcome{ID: j[0].ID, Dispatcher: dispatcherA, Slot: j[0].Slot, State: store.StateCompleted}
	if nh := finish(t, s, o); len(nh) != 0 {
		t.Fatalf("holder's outcome refused: %v", nh)
	}
	if nh := finish(t, s, o); !slices.Equal(nh, []string{o.ID}) {
		t.Errorf("second outcome for a finished run: not held = %v, want [%s]", nh, o.ID)
	}
}

func testSnoozeSlots(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA)
	p := job("default", "k")
	insert(t, s, p)
	var slots []int64
	now := time.Now()
	for i := range 3 {
		j := claim(t, s, &store.ClaimParams{Limit: 1, Now: now.Add(time.Duration(i) * time.Hour)})
		if len(j) != 1 {
			t.Fatalf("run %d: claimed %d jobs", i, len(j))
		}
		if j[0].Attempt != 1 {
			t.Errorf("run %d: attempt %d, want 1 (snoozes do not spend attempts)", i, j[0].Attempt)
		}
		slots = append(slots, j[0].Slot)
		finish(t, s, &store.Outcome{ID: p.ID, Dispatcher: dispatcherA, Slot: j[0].Slot, State: store.StateScheduled,
			At: now.Add(time.Duration(i)*time.Hour + time.Minute), UndoAttempt: true})
	}
	if !slices.Equal(slots, []int64{1, 2, 3}) {
		t.Errorf("slots of three runs = %v, want [1 2 3]", slots)
	}
}

func testConcurrentClaimers(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA, dispatcherB)
	const n, workers = 600, 12
	ps := make([]*store.InsertParams, n)
	for i := range ps {
		ps[i] = job("default", "k")
	}
	insert(t, s, ps...)
	ctx := ctxT(t)
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
		errs = make(chan error, workers)
	)
	for w := range workers {
		wg.Go(func() {
			d := dispatcherA
			if w%2 == 1 {
				d = dispatcherB
			}
			for {
				jobs, err := s.Claim(ctx, &store.ClaimParams{Dispatcher: d, Agent: fmt.Sprint("agent", w), Limit: 1 + w%7})
				if err != nil {
					errs <- err
					return
				}
				if len(jobs) == 0 {
					return
				}
				var os []*store.Outcome
				mu.Lock()
				for _, j := range jobs {
					seen[j.ID]++
					os = append(os, &store.Outcome{ID: j.ID, Dispatcher: d, Slot: j.Slot, State: store.StateCompleted})
				}
				mu.Unlock()
				if nh, err := s.Finish(ctx, os); err != nil || len(nh) != 0 {
					errs <- fmt.Errorf("finish: not held %v, err %v", nh, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(seen) != n {
		t.Errorf("%d distinct jobs claimed, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("job %s claimed %d times", id, c)
		}
	}
	if c, err := s.CountJobs(ctx, &store.JobFilter{States: []store.State{store.StateCompleted}}); err != nil || c != n {
		t.Errorf("completed count = %d, %v, want %d", c, err, n)
	}
}

func testRescue(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA, dispatcherB)
	p, last, other := job("default", "k"), job("default", "k"), job("default", "k")
	last.MaxAttempts = 1
	insert(t, s, p, last, other)
	held := claim(t, s, &store.ClaimParams{Dispatcher: dispatcherA, Limit: 2})
	if len(held) != 2 {
		t.Fatalf("A claimed %d jobs, want 2", len(held))
	}
	bJobs := claim(t, s, &store.ClaimParams{Dispatcher: dispatcherB, Limit: 5})
	if len(bJobs) != 1 {
		t.Fatalf("B claimed %d jobs, want 1", len(bJobs))
	}
	// Nothing is dead yet.
	res, err := s.RescueDead(ctxT(t), &store.RescueParams{By: dispatcherB})
	if err != nil || len(res.Dead) != 0 || len(res.Jobs) != 0 {
		t.Fatalf("rescue with fresh heartbeats = %+v, %v, want nothing", res, err)
	}
	// A minute later B (the rescuer) is spared, A is dead.
	now := time.Now().Add(time.Minute)
	res, err = s.RescueDead(ctxT(t), &store.RescueParams{By: dispatcherB, Now: now})
	if err != nil {
		t.Fatalf("RescueDead: %v", err)
	}
	if len(res.Dead) != 1 || res.Dead[0].ID != dispatcherA || res.Dead[0].DeadBy != dispatcherB || !within(res.Dead[0].DeadAt, now, time.Millisecond) {
		t.Fatalf("dead = %+v, want only %s, by %s", res.Dead, dispatcherA, dispatcherB)
	}
	if got, want := ids(res.Jobs), ids(held); !slices.Equal(sorted(got), sorted(want)) {
		t.Fatalf("rescued %v, want %v", got, want)
	}
	for _, j := range res.Jobs {
		wantState := store.StateAvailable
		if j.ID == last.ID {
			wantState = store.StateDiscarded
		}
		g := get(t, s, j.ID)
		if g.State != wantState || j.State != wantState {
			t.Errorf("rescued job %s: %s (stored %s), want %s", j.ID, j.State, g.State, wantState)
		}
		if wantState.Final() != !g.FinalizedAt.IsZero() {
			t.Errorf("rescued job %s: finalized_at %v", j.ID, g.FinalizedAt)
		}
		if len(g.Errors) != 1 {
			t.Fatalf("rescued job %s: errors %+v, want one", j.ID, g.Errors)
		}
		e := g.Errors[0]
		if !e.Interrupted || !e.Reassigned || e.Dispatcher != dispatcherA || e.Attempt != 1 || e.Slot != 1 || e.Error == "" {
			t.Errorf("rescued job %s: error entry %+v, want interrupted, reassigned, by %s, attempt 1, slot 1", j.ID, e, dispatcherA)
		}
	}
	if g := get(t, s, other.ID); g.State != store.StateRunning || g.AttemptedBy != dispatcherB {
		t.Errorf("the rescuer's own job is %s by %s, want running by %s", g.State, g.AttemptedBy, dispatcherB)
	}
	// Rescue is idempotent.
	res, err = s.RescueDead(ctxT(t), &store.RescueParams{By: dispatcherB, Now: now})
	if err != nil || len(res.Dead) != 0 || len(res.Jobs) != 0 {
		t.Errorf("second rescue = %+v, %v, want nothing", res, err)
	}
	// A notices, cannot finish its old runs, and rejoins.
	var dead *store.DispatcherDeadError
	if err := s.Heartbeat(ctxT(t), dispatcherA); !errors.As(err, &dead) || dead.ID != dispatcherA || dead.DeadBy != dispatcherB {
		t.Fatalf("heartbeat of a dead dispatcher = %v, want DispatcherDeadError", err)
	}
	if !strings.Contains(dead.Error(), dispatcherA) {
		t.Errorf("error %q does not name the dispatcher", dead.Error())
	}
	if nh := finish(t, s, &store.Outcome{ID: held[0].ID, Dispatcher: dispatcherA, Slot: held[0].Slot, State: store.StateCompleted}); len(nh) != 1 {
		t.Errorf("a dead dispatcher finished a rescued job")
	}
	ds, err := s.ListDispatchers(ctxT(t))
	if err != nil || len(ds) != 2 || ds[0].ID != dispatcherA || ds[0].DeadAt.IsZero() || !ds[1].DeadAt.IsZero() {
		t.Fatalf("ListDispatchers = %+v, %v, want A dead, B alive", ds, err)
	}
	if ds[1].Host != "host-b" || ds[1].PID != 42 || len(ds[1].Agents) != 1 || ds[1].Agents[0].Size != 10 || ds[1].HeartbeatAt.IsZero() || ds[1].StartedAt.IsZero() {
		t.Errorf("dispatcher B = %+v, want its registration", ds[1])
	}
	register(t, s, dispatcherA)
	if err := s.Heartbeat(ctxT(t), dispatcherA); err != nil {
		t.Fatalf("heartbeat after rejoining: %v", err)
	}
	// The rescued job runs again in a new slot.
	again := claim(t, s, &store.ClaimParams{Dispatcher: dispatcherA, Limit: 5})
	if len(again) != 1 || again[0].Slot != 2 || again[0].Attempt != 2 {
		t.Errorf("claim after rescue = %+v, want one job at slot 2, attempt 2", again)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func testDeregister(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA)
	p := job("default", "k")
	insert(t, s, p)
	j := claim(t, s, &store.ClaimParams{Limit: 1})[0]
	if err := s.DeregisterDispatcher(ctxT(t), dispatcherA); err != nil {
		t.Fatalf("DeregisterDispatcher: %v", err)
	}
	g := get(t, s, p.ID)
	if g.State != store.StateAvailable || g.Attempt != 0 || len(g.Errors) != 1 || !g.Errors[0].Interrupted || g.Errors[0].Reassigned || !g.ScheduledAt.Equal(j.ScheduledAt) {
		t.Errorf("job of a deregistered dispatcher = %s attempt %d errors %+v, want available, attempt 0, one interrupted entry, same scheduled_at", g.State, g.Attempt, g.Errors)
	}
	if ds, err := s.ListDispatchers(ctxT(t)); err != nil || len(ds) != 0 {
		t.Errorf("dispatchers after deregister = %+v, %v, want none", ds, err)
	}
	if err := s.DeregisterDispatcher(ctxT(t), dispatcherA); err != nil {
		t.Errorf("second deregister: %v", err)
	}
}

func testRetention(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA, dispatcherB)
	states := []store.State{store.StateCompleted, store.StateCompleted, store.StateCompleted, store.StateCancelled, store.StateDiscarded, store.StateRetryable}
	var ps []*store.InsertParams
	for range states {
		ps = append(ps, job("default", "k"))
	}
	pending := job("default", "k")
	insert(t, s, append(ps, pending)...)
	jobs := claim(t, s, &store.ClaimParams{Limit: len(ps)})
	var os []*store.Outcome
	for i, j := range jobs {
		os = append(os, &store.Outcome{ID: j.ID, Dispatcher: dispatcherA, Slot: j.Slot, State: states[i], At: time.Now().Add(time.Hour)})
	}
	finish(t, s, os...)
	count := func() map[store.State]int64 {
		out := map[store.State]int64{}
		for _, st := range store.States {
			n, err := s.CountJobs(ctxT(t), &store.JobFilter{States: []store.State{st}})
			if err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				out[st] = n
			}
		}
		return out
	}
	// Nothing is old enough yet.
	if r, err := s.Cleanup(ctxT(t), nil); err != nil || r.Jobs != 0 {
		t.Fatalf("Cleanup now = %+v, %v, want nothing deleted", r, err)
	}
	// After 25 h: completed and cancelled go (in batches of 2), discarded stays.
	r, err := s.Cleanup(ctxT(t), &store.CleanupParams{BatchSize: 2, Now: time.Now().Add(25 * time.Hour)})
	if err != nil || r.Jobs != 4 {
		t.Fatalf("Cleanup after 25h = %+v, %v, want 4 jobs deleted", r, err)
	}
	want := map[store.State]int64{store.StateDiscarded: 1, store.StateRetryable: 1, store.StateAvailable: 1}
	if got := count(); !mapsEqual(got, want) {
		t.Errorf("after 25h: %v, want %v", got, want)
	}
	// Negative keeps forever.
	if r, err := s.Cleanup(ctxT(t), &store.CleanupParams{DiscardedAfter: -1, Now: time.Now().Add(30 * 24 * time.Hour)}); err != nil || r.Jobs != 0 {
		t.Fatalf("Cleanup keeping discarded = %+v, %v, want nothing", r, err)
	}
	// After 8 days the discarded job goes too; never the others.
	if r, err := s.Cleanup(ctxT(t), &store.CleanupParams{Now: time.Now().Add(8 * 24 * time.Hour)}); err != nil || r.Jobs != 1 {
		t.Fatalf("Cleanup after 8 days = %+v, %v, want 1 deleted", r, err)
	}
	// Custom retention.
	if got := count(); !mapsEqual(got, map[store.State]int64{store.StateRetryable: 1, store.StateAvailable: 1}) {
		t.Errorf("after 8 days: %v", got)
	}
	// Dead dispatchers are deleted after their retention.
	if _, err := s.RescueDead(ctxT(t), &store.RescueParams{By: dispatcherB, Now: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Cleanup(ctxT(t), &store.CleanupParams{Now: time.Now().Add(26 * time.Hour)}); err != nil || r.Dispatchers != 1 {
		t.Fatalf("Cleanup of dead dispatchers = %+v, %v, want 1", r, err)
	}
	if ds, _ := s.ListDispatchers(ctxT(t)); len(ds) != 1 || ds[0].ID != dispatcherB {
		t.Errorf("dispatchers left = %+v, want only B", ds)
	}
}

func mapsEqual(a, b map[store.State]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func testListAndCount(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA)
	var all []*store.InsertParams
	for i := range 25 {
		p := job([]string{"q1", "q2"}[i%2], []string{"ka", "kb", "kc"}[i%3])
		if i >= 20 {
			p.WorkflowID, p.ID = "other", "other_"+p.ID
		}
		all = append(all, p)
		insert(t, s, p) // one by one: distinct created_at
	}
	// Newest first, paged.
	var got []string
	cursor := ""
	pages := 0
	for {
		page, err := s.ListJobs(ctxT(t), &store.ListJobsParams{Limit: 10, Cursor: cursor})
		if err != nil {
			t.Fatalf("ListJobs: %v", err)
		}
		pages++
		got = append(got, ids(page.Jobs)...)
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	var want []string
	for i := len(all) - 1; i >= 0; i-- {
		want = append(want, all[i].ID)
	}
	if !slices.Equal(got, want) || pages != 3 {
		t.Errorf("paged list (%d pages) = %v, want %v in 3 pages", pages, got, want)
	}
	page, err := s.ListJobs(ctxT(t), nil)
	if err != nil || len(page.Jobs) != 25 || page.Next != "" {
		t.Errorf("ListJobs(nil) = %d jobs, next %q, %v", len(page.Jobs), page.Next, err)
	}
	// Filters.
	claimed := claim(t, s, &store.ClaimParams{Queues: []string{"q1"}, Limit: 3})
	for _, tc := range []struct {
		name string
		f    store.JobFilter
		want func(i int, p *store.InsertParams) bool
	}{
		{"queue", store.JobFilter{Queues: []string{"q2"}}, func(i int, p *store.InsertParams) bool { return p.Queue == "q2" }},
		{"kinds", store.JobFilter{Kinds: []string{"ka", "kc"}}, func(i int, p *store.InsertParams) bool { return p.Kind != "kb" }},
		{"workflow", store.JobFilter{WorkflowID: "other"}, func(i int, p *store.InsertParams) bool { return i >= 20 }},
		{"ids", store.JobFilter{IDs: []string{all[3].ID, all[7].ID}}, func(i int, p *store.InsertParams) bool { return i == 3 || i == 7 }},
		{"running", store.JobFilter{States: []store.State{store.StateRunning}}, func(i int, p *store.InsertParams) bool { return slices.Contains(ids(claimed), p.ID) }},
		{"dispatcher", store.JobFilter{Dispatcher: dispatcherA, Agent: "main"}, func(i int, p *store.InsertParams) bool { return slices.Contains(ids(claimed), p.ID) }},
		{"queue and state", store.JobFilter{Queues: []string{"q1"}, States: []store.State{store.StateAvailable, store.StateScheduled}}, func(i int, p *store.InsertParams) bool {
			return p.Queue == "q1" && !slices.Contains(ids(claimed), p.ID)
		}},
		{"created in the future", store.JobFilter{Created: store.TimeRange{From: time.Now().Add(time.Hour)}}, func(int, *store.InsertParams) bool { return false }},
		{"created before the future", store.JobFilter{Created: store.TimeRange{To: time.Now().Add(time.Hour)}}, func(int, *store.InsertParams) bool { return true }},
		{"attempted", store.JobFilter{Attempted: store.TimeRange{From: time.Now().Add(-time.Hour)}}, func(i int, p *store.InsertParams) bool { return slices.Contains(ids(claimed), p.ID) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for i := len(all) - 1; i >= 0; i-- {
				if tc.want(i, all[i]) {
					want = append(want, all[i].ID)
				}
			}
			page, err := s.ListJobs(ctxT(t), &store.ListJobsParams{Filter: tc.f, Limit: 100})
			if err != nil {
				t.Fatalf("ListJobs: %v", err)
			}
			if got := ids(page.Jobs); !slices.Equal(got, want) {
				t.Errorf("ListJobs = %v, want %v", got, want)
			}
			f := tc.f
			if n, err := s.CountJobs(ctxT(t), &f); err != nil || n != int64(len(want)) {
				t.Errorf("CountJobs = %d, %v, want %d", n, err, len(want))
			}
		})
	}
	// Newest first across running and waiting jobs, paged (a store may
	// keep the two apart and merge them), with and without a state filter.
	for _, states := range [][]store.State{nil, {store.StateRunning, store.StateAvailable}} {
		got, cursor, pages = nil, "", 0
		for {
			page, err := s.ListJobs(ctxT(t), &store.ListJobsParams{Limit: 4, Cursor: cursor, Filter: store.JobFilter{States: states}})
			if err != nil {
				t.Fatalf("ListJobs: %v", err)
			}
			pages++
			got = append(got, ids(page.Jobs)...)
			if page.Next == "" {
				break
			}
			cursor = page.Next
		}
		if !slices.Equal(got, want) || pages != 7 {
			t.Errorf("paged list of states %v with %d running (%d pages) = %v, want %v in 7 pages", states, len(claimed), pages, got, want)
		}
	}
	// Claim order and finalized order.
	page, err = s.ListJobs(ctxT(t), &store.ListJobsParams{Order: store.OrderClaim, Limit: 1, Filter: store.JobFilter{States: []store.State{store.StateAvailable}}})
	if err != nil || len(page.Jobs) != 1 {
		t.Fatalf("ListJobs claim order: %v", err)
	}
	next := claim(t, s, &store.ClaimParams{Limit: 1})
	if len(next) != 1 || next[0].ID != page.Jobs[0].ID {
		t.Errorf("OrderClaim lists %s first, Claim took %v", page.Jobs[0].ID, ids(next))
	}
	finish(t, s, &store.Outcome{ID: claimed[1].ID, Dispatcher: dispatcherA, Slot: claimed[1].Slot, State: store.StateCompleted})
	finish(t, s, &store.Outcome{ID: claimed[0].ID, Dispatcher: dispatcherA, Slot: claimed[0].Slot, State: store.StateCompleted})
	page, err = s.ListJobs(ctxT(t), &store.ListJobsParams{Order: store.OrderFinalized, Limit: 2})
	if err != nil || len(page.Jobs) != 2 || page.Jobs[0].ID != claimed[0].ID || page.Jobs[1].ID != claimed[1].ID {
		t.Errorf("OrderFinalized = %v, %v, want [%s %s]", ids(page.Jobs), err, claimed[0].ID, claimed[1].ID)
	}
	// Bad params are refused with the field named.
	for _, p := range []*store.ListJobsParams{{Limit: -1}, {Limit: store.MaxListLimit + 1}, {Cursor: "%%%"}, {Cursor: "bm9waXBl"},
		{Order: store.OrderClaim, Cursor: page.Next + "x"}, {Filter: store.JobFilter{States: []store.State{"bogus"}}}} {
		if _, err := s.ListJobs(ctxT(t), p); err == nil || !strings.Contains(err.Error(), "field") {
			t.Errorf("ListJobs(%+v) = %v, want an error naming the field", p, err)
		}
	}
}

func testStats(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA)
	old := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	a, b, c := job("qa", "k"), job("qa", "k"), job("qb", "k")
	a.ScheduledAt = old
	future := job("qb", "k")
	future.ScheduledAt = time.Now().Add(time.Hour)
	insert(t, s, a, b, c, future)
	running := claim(t, s, &store.ClaimParams{Queues: []string{"qb"}, Limit: 1})
	stats, err := s.Stats(ctxT(t))
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if len(stats) != 2 || stats[0].Queue != "qa" || stats[1].Queue != "qb" {
		t.Fatalf("Stats = %+v, want queues qa, qb", stats)
	}
	if !mapsEqual(stats[0].Counts, map[store.State]int64{store.StateAvailable: 2}) ||
		!mapsEqual(stats[1].Counts, map[store.State]int64{store.StateRunning: 1, store.StateScheduled: 1}) {
		t.Errorf("counts = %v / %v", stats[0].Counts, stats[1].Counts)
	}
	if !stats[0].OldestWaiting.Equal(old) || !stats[0].OldestRunning.IsZero() {
		t.Errorf("qa oldest waiting, running = %v, %v, want %v, zero", stats[0].OldestWaiting, stats[0].OldestRunning, old)
	}
	if !stats[1].OldestWaiting.IsZero() || !stats[1].OldestRunning.Equal(running[0].AttemptedAt) {
		t.Errorf("qb oldest waiting, running = %v, %v, want zero, %v", stats[1].OldestWaiting, stats[1].OldestRunning, running[0].AttemptedAt)
	}
}

func testLargeBatch(t *testing.T, s store.Store, h *Hooks) {
	n := h.LargeBatch
	if n == 0 {
		n = 10000
	}
	register(t, s, dispatcherA)
	ps := make([]*store.InsertParams, n)
	for i := range ps {
		ps[i] = job("bulk", "k")
		ps[i].Priority = i % 4
	}
	res := insert(t, s, ps...)
	for i, r := range res {
		if r.Duplicate || r.Job.ID != ps[i].ID {
			t.Fatalf("result %d = %+v, want job %s", i, r, ps[i].ID)
		}
	}
	if c, err := s.CountJobs(ctxT(t), &store.JobFilter{Queues: []string{"bulk"}}); err != nil || c != int64(n) {
		t.Fatalf("count after a batch of %d = %d, %v", n, c, err)
	}
	seen := map[string]bool{}
	lastPrio := -1
	for {
		jobs := claim(t, s, &store.ClaimParams{Queues: []string{"bulk"}, Limit: 1000})
		if len(jobs) == 0 {
			break
		}
		for _, j := range jobs {
			if seen[j.ID] {
				t.Fatalf("job %s claimed twice", j.ID)
			}
			if j.Priority < lastPrio {
				t.Fatalf("priority %d claimed after %d", j.Priority, lastPrio)
			}
			seen[j.ID], lastPrio = true, j.Priority
		}
	}
	if len(seen) != n {
		t.Errorf("claimed %d of %d jobs", len(seen), n)
	}
}

func testNotifications(t *testing.T, s store.Store, _ *Hooks) {
	register(t, s, dispatcherA)
	ctx := ctxT(t)
	sub, err := s.Subscribe(ctx, []string{"notified"})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	all, err := s.Subscribe(ctx, nil)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer all.Close()
	drain := func() {
		for {
			select {
			case <-sub.C():
			case <-all.C():
			default:
				return
			}
		}
	}
	wait := func(sub store.Subscription, want string) {
		t.Helper()
		timeout := time.NewTimer(30 * time.Second)
		defer timeout.Stop()
		for {
			select {
			case q, ok := <-sub.C():
				if !ok {
					t.Fatalf("subscription closed while waiting for %q", want)
				}
				if q == want || q == "" {
					return
				}
			case <-timeout.C:
				t.Fatalf("no notification for queue %q within 30 s", want)
			}
		}
	}
	// Insert of an available job.
	drain()
	p := job("notified", "k")
	insert(t, s, p)
	wait(sub, "notified")
	wait(all, "notified")
	// A retry due now makes the job available again.
	j := claim(t, s, &store.ClaimParams{Limit: 1})[0]
	drain()
	finish(t, s, &store.Outcome{ID: j.ID, Dispatcher: dispatcherA, Slot: j.Slot, State: store.StateRetryable})
	wait(sub, "notified")
	// Rescue makes jobs available.
	j = claim(t, s, &store.ClaimParams{Limit: 1, Now: time.Now().Add(time.Minute)})[0]
	drain()
	if _, err := s.RescueDead(ctx, &store.RescueParams{By: dispatcherB, Now: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	wait(sub, "notified")
	if g := get(t, s, j.ID); g.State != store.StateAvailable {
		t.Fatalf("rescued job is %s", g.State)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for range sub.C() { // drains, then ends: the channel is closed
	}
}

func testSchema(t *testing.T, s store.Store, h *Hooks) {
	ctx := ctxT(t)
	if err := s.CheckSchema(ctx); err != nil {
		t.Fatalf("CheckSchema on a migrated store: %v", err)
	}
	st, err := s.SchemaStatus(ctx)
	if err != nil || st.Current != st.Latest || st.Latest < 1 || len(st.Migrations) != st.Latest {
		t.Fatalf("SchemaStatus = %+v, %v", st, err)
	}
	for _, m := range st.Migrations {
		if m.AppliedAt.IsZero() || m.Name == "" {
			t.Errorf("migration %+v: want a name and an applied time", m)
		}
	}
	latest := st.Latest
	if done, err := s.MigrateUp(ctx, nil); err != nil || len(done) != 0 {
		t.Errorf("MigrateUp when up to date = %v, %v, want nothing", done, err)
	}
	zero := 0
	done, err := s.MigrateDown(ctx, &store.MigrateOpts{TargetVersion: &zero})
	if err != nil || len(done) != latest || done[0].Version != latest {
		t.Fatalf("MigrateDown to 0 = %v, %v, want %d migrations newest first", done, err, latest)
	}
	err = s.CheckSchema(ctx)
	var sv *store.SchemaVersionError
	if !errors.As(err, &sv) || sv.Database != 0 || sv.Code != latest || !errors.Is(err, store.ErrSchemaVersion) {
		t.Fatalf("CheckSchema with no schema = %v, want SchemaVersionError{0, %d}", err, latest)
	}
	if st, err := s.SchemaStatus(ctx); err != nil || st.Current != 0 || !st.Migrations[0].AppliedAt.IsZero() {
		t.Errorf("SchemaStatus after down = %+v, %v", st, err)
	}
	if done, err := s.MigrateUp(ctx, nil); err != nil || len(done) != latest || done[0].Version != 1 {
		t.Fatalf("MigrateUp = %v, %v", done, err)
	}
	// The schema works again.
	insert(t, s, job("default", "k"))
	if done, err := s.MigrateDown(ctx, &store.MigrateOpts{TargetVersion: ptr(latest + 1)}); err == nil {
		t.Errorf("MigrateDown to a version above the current = %v, want an error", done)
	}
	if h.SetSchemaVersion == nil {
		t.Log("newer-schema test skipped: no SetSchemaVersion hook")
		return
	}
	if err := h.SetSchemaVersion(ctx, s, latest+7); err != nil {
		t.Fatalf("SetSchemaVersion: %v", err)
	}
	err = s.CheckSchema(ctx)
	if !errors.As(err, &sv) || sv.Database != latest+7 || sv.Code != latest {
		t.Fatalf("CheckSchema on a newer schema = %v, want SchemaVersionError{%d, %d}", err, latest+7, latest)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprint(latest+7)) || !strings.Contains(msg, fmt.Sprint(latest)) || !strings.Contains(msg, "newer") {
		t.Errorf("error %q should name both versions and say newer", msg)
	}
	if _, err := s.MigrateUp(ctx, nil); !errors.As(err, &sv) {
		t.Errorf("MigrateUp on a newer schema = %v, want SchemaVersionError", err)
	}
}

func ptr[T any](v T) *T { return &v }

func testInsertTx(t *testing.T, s store.Store, h *Hooks) {
	if _, err := s.InsertTx(ctxT(t), struct{}{}, []*store.InsertParams{job("default", "k")}); !errors.Is(err, store.ErrUnsupportedTx) {
		t.Errorf("InsertTx(struct{}) = %v, want ErrUnsupportedTx", err)
	}
	if len(h.BeginTx) == 0 {
		t.Skip("no BeginTx hook")
	}
	for kind, begin := range h.BeginTx {
		t.Run(kind, func(t *testing.T) {
			ctx := ctxT(t)
			for _, commit := range []bool{true, false} {
				tx, err := begin(ctx, s)
				if err != nil {
					t.Fatalf("begin: %v", err)
				}
				p, q := job("tx", "k"), job("tx", "k")
				q.UniqueKey = "tx-" + kind + fmt.Sprint(commit)
				res, err := s.InsertTx(ctx, tx.Tx, []*store.InsertParams{p, q})
				if err != nil {
					_ = tx.Rollback(ctx)
					t.Fatalf("InsertTx: %v", err)
				}
				if len(res) != 2 || res[0].Job.ID != p.ID || res[1].Duplicate {
					t.Errorf("InsertTx results = %+v", res)
				}
				if commit {
					err = tx.Commit(ctx)
				} else {
					err = tx.Rollback(ctx)
				}
				if err != nil {
					t.Fatalf("ending the transaction: %v", err)
				}
				for _, id := range []string{p.ID, q.ID} {
					_, err := s.GetJob(ctx, id)
					if commit && err != nil {
						t.Errorf("job %s of a committed transaction: %v", id, err)
					}
					if !commit && !errors.Is(err, store.ErrNotFound) {
						t.Errorf("job %s of a rolled back transaction: GetJob = %v, want ErrNotFound", id, err)
					}
				}
				if !commit {
					// The rolled back unique key is free.
					again := job("tx", "k")
					again.UniqueKey = q.UniqueKey
					if r := insert(t, s, again); r[0].Duplicate {
						t.Errorf("unique key of a rolled back job is still held")
					}
				}
			}
		})
	}
}
