package postgres

import (
	"context"
	"fmt"
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
