package skein

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/sqlite"
)

// TestAppliedEarlier: an outcome refused by a retried Finish counts as
// stored when an earlier try applied it, not when the job was rescued.
func TestAppliedEarlier(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, &sqlite.Config{Path: filepath.Join(t.TempDir(), "s.db"), AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := NewHandlers()
	AddHandler(h, func(context.Context, *Job[testArgs]) error { return nil })
	d, err := NewDispatcher(st, &Config{ID: "d1", Handlers: h, Logger: action.New(io.Discard, nil)})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"d1", "d2"} {
		if err := st.RegisterDispatcher(ctx, &store.Dispatcher{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	claim := func(id string) *store.Job {
		t.Helper()
		if _, err := st.Insert(ctx, []*store.InsertParams{{ID: id, Kind: "t", Queue: "q", MaxAttempts: 3}}); err != nil {
			t.Fatal(err)
		}
		jobs, err := st.Claim(ctx, &store.ClaimParams{Dispatcher: "d1", Agent: "main", Queues: []string{"q"}, Limit: 1})
		if err != nil || len(jobs) != 1 {
			t.Fatalf("Claim: %d, %v", len(jobs), err)
		}
		return jobs[0]
	}

	done := claim("done")
	o := &store.Outcome{ID: done.ID, Dispatcher: "d1", Slot: done.Slot, State: store.StateCompleted}
	if _, err := st.Finish(ctx, []*store.Outcome{o}); err != nil {
		t.Fatal(err)
	}
	if !d.appliedEarlier(ctx, o) {
		t.Error("a completed job finished by this dispatcher at this slot: appliedEarlier = false, want true")
	}

	rescued := claim("rescued")
	if _, err := st.RescueDead(ctx, &store.RescueParams{By: "d2", DeadAfter: time.Second, Now: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	o = &store.Outcome{ID: rescued.ID, Dispatcher: "d1", Slot: rescued.Slot, State: store.StateCompleted}
	if d.appliedEarlier(ctx, o) {
		t.Error("a job rescued from this dispatcher: appliedEarlier = true, want false")
	}
	if d.appliedEarlier(ctx, &store.Outcome{ID: "missing", Dispatcher: "d1", Slot: 1}) {
		t.Error("an unknown job: appliedEarlier = true")
	}
}

type testArgs struct{}

func (testArgs) Kind() string { return "t" }

// TestTakePendingOneOutcomePerJob: a store call never carries two outcomes
// for one job (stores report refused outcomes by job id); the second waits
// for the next call, in order.
func TestTakePendingOneOutcomePerJob(t *testing.T) {
	d := &Dispatcher{}
	for _, o := range []struct {
		id   string
		slot int64
	}{{"a", 1}, {"b", 1}, {"a", 2}, {"c", 1}} {
		d.pending = append(d.pending, &finishing{outcome: &store.Outcome{ID: o.id, Slot: o.slot}})
	}
	var got [][]string
	for len(d.pending) > 0 {
		var ids []string
		for _, f := range d.takePendingLocked() {
			ids = append(ids, fmt.Sprintf("%s@%d", f.outcome.ID, f.outcome.Slot))
		}
		got = append(got, ids)
	}
	if want := [][]string{{"a@1", "b@1"}, {"a@2", "c@1"}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("batches %v, want %v", got, want)
	}
}
