package postgres

import (
	"slices"
	"time"

	"context"
	"fmt"
	"github.com/skeinhq/skein/store/internal/shared"
	"strings"
	"testing"

	"github.com/skeinhq/skein/store"
)

// The claim's planner setting lasts only for its own transaction: the
// connection it ran on (the only one of the pool) has it back at its
// default afterwards.
func TestClaimPlanSettingDoesNotLeak(t *testing.T) {
	ctx := context.Background()
	s := open(t, &Config{AutoMigrate: true, MaxConns: 1})
	if err := s.RegisterDispatcher(ctx, &store.Dispatcher{ID: "d1", Agents: []store.Agent{{Name: "a", Size: 1}}}); err != nil {
		t.Fatalf("RegisterDispatcher: %v", err)
	}
	if _, err := s.Insert(ctx, []*store.InsertParams{{ID: "w_1", WorkflowID: "w", Kind: "k", Queue: "q", MaxAttempts: 1}}); err != nil {
		t.Fatalf("Insert: %v", err)
	}
	jobs, err := s.Claim(ctx, &store.ClaimParams{Dispatcher: "d1", Agent: "a", Limit: 5})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Claim = %d jobs, %v; want 1, nil", len(jobs), err)
	}
	var got string
	if err := s.Pool().QueryRow(ctx, "SHOW enable_bitmapscan").Scan(&got); err != nil {
		t.Fatalf("SHOW: %v", err)
	}
	if got != "on" {
		t.Errorf("enable_bitmapscan after a claim = %q, want on (the default)", got)
	}
}

// On a table without statistics (just truncated), the claim reads the claim
// index in order rather than every claimable row.
func TestClaimPlanWithoutStatistics(t *testing.T) {
	ctx := context.Background()
	s := open(t, &Config{AutoMigrate: true, MaxConns: 1})
	const n = 2000
	params := make([]*store.InsertParams, n)
	for i := range params {
		params[i] = &store.InsertParams{ID: fmt.Sprintf("w_%05d", i), WorkflowID: "w", Kind: "k", Queue: "q", MaxAttempts: 1}
	}
	if _, err := s.Pool().Exec(ctx, "TRUNCATE skein_jobs"); err != nil {
		t.Fatalf("TRUNCATE: %v", err)
	}
	if _, err := s.Insert(ctx, params); err != nil {
		t.Fatalf("Insert: %v", err)
	}
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, claimPlanSQL); err != nil {
		t.Fatalf("%s: %v", claimPlanSQL, err)
	}
	rows, err := tx.Query(ctx, `EXPLAIN SELECT id FROM skein_jobs WHERE state IN ('available', 'scheduled', 'retryable')
		AND (state = 'available' OR scheduled_at <= now()) AND kind IN ('k')
		ORDER BY priority, scheduled_at LIMIT 10 FOR UPDATE SKIP LOCKED`)
	if err != nil {
		t.Fatalf("EXPLAIN: %v", err)
	}
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatalf("EXPLAIN: %v", err)
		}
		plan.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("EXPLAIN: %v", err)
	}
	if !strings.Contains(plan.String(), "Index Scan using skein_jobs_claim") || strings.Contains(plan.String(), "Sort") {
		t.Errorf("claim plan does not read a claim index in order:\n%s", plan.String())
	}
}

// Newest-first listing reads the two created_at indexes (running jobs and
// the others) in order and merges them, rather than sorting the table.
func TestNewestListingPlan(t *testing.T) {
	ctx := context.Background()
	s := open(t, &Config{AutoMigrate: true, MaxConns: 1})
	if _, err := s.Pool().Exec(ctx, "TRUNCATE skein_jobs"); err != nil {
		t.Fatalf("TRUNCATE: %v", err)
	}
	if err := s.RegisterDispatcher(ctx, &store.Dispatcher{ID: "d1", Agents: []store.Agent{{Name: "a", Size: 1}}}); err != nil {
		t.Fatalf("RegisterDispatcher: %v", err)
	}
	const n = 20000
	params := make([]*store.InsertParams, n)
	for i := range params {
		params[i] = &store.InsertParams{ID: fmt.Sprintf("w_%05d", i), WorkflowID: "w", Kind: "k", Queue: "q", MaxAttempts: 1}
	}
	if _, err := s.Insert(ctx, params); err != nil {
		t.Fatalf("Insert: %v", err)
	}
	// Distinct creation times, as jobs inserted over time have; a quarter
	// of the jobs completed.
	if _, err := s.Pool().Exec(ctx, `UPDATE skein_jobs SET created_at = created_at + substr(id, 3)::int * interval '1 ms',
		state = CASE WHEN substr(id, 3)::int % 4 = 0 THEN 'completed' ELSE state END,
		finalized_at = CASE WHEN substr(id, 3)::int % 4 = 0 THEN now() END`); err != nil {
		t.Fatalf("UPDATE: %v", err)
	}
	jobs, err := s.Claim(ctx, &store.ClaimParams{Dispatcher: "d1", Agent: "a", Limit: 100})
	if err != nil || len(jobs) != 100 {
		t.Fatalf("Claim = %d jobs, %v", len(jobs), err)
	}
	if _, err := s.Pool().Exec(ctx, "ANALYZE skein_jobs"); err != nil {
		t.Fatalf("ANALYZE: %v", err)
	}
	for _, states := range [][]store.State{nil, {store.StateRunning, store.StateCompleted}, {store.StateAvailable}, {store.StateRunning}} {
		b := shared.Builder{Postgres: true, Time: func(t time.Time) any { return t }}
		b.Filter(&store.JobFilter{States: states})
		q := newestQuery(&b, states, 51)
		rows, err := s.Pool().Query(ctx, "EXPLAIN "+q, b.Args...)
		if err != nil {
			t.Fatalf("EXPLAIN: %v", err)
		}
		var plan strings.Builder
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatalf("EXPLAIN: %v", err)
			}
			plan.WriteString(line + "\n")
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("EXPLAIN: %v", err)
		}
		p := plan.String()
		wantRunning := len(states) == 0 || slices.Contains(states, store.StateRunning)
		wantOthers := len(states) == 0 || slices.ContainsFunc(states, func(s store.State) bool { return s != store.StateRunning })
		if strings.Contains(p, "Seq Scan") || strings.Contains(p, "Bitmap") ||
			strings.Contains(p, "skein_jobs_running") != wantRunning || strings.Contains(p, "skein_jobs_newest") != wantOthers {
			t.Errorf("newest-first plan for states %v does not read the created_at indexes in order:\n%s", states, p)
		}
	}
}
