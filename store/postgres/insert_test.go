package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/skeinhq/skein/store"
)

// Every insert path (one row, one multi-row INSERT, COPY, INSERT … ON
// CONFLICT for unique keys; through the pool, a pgx.Tx and a *sql.Tx)
// inserts all its jobs with their fields, or none of them when one id
// exists, and then names that id.
func TestInsertPaths(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, &Config{AutoMigrate: true, MaxConns: 4, CopyThreshold: 8})
	// via inserts params the way a case says; tx is "", "pgx" or "sql".
	via := func(tx string, params []*store.InsertParams) error {
		switch tx {
		case "pgx":
			return pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
				_, err := s.InsertTx(ctx, tx, params)
				return err
			})
		case "sql":
			db := stdlib.OpenDBFromPool(s.Pool())
			defer db.Close()
			stx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if _, err := s.InsertTx(ctx, stx, params); err != nil {
				_ = stx.Rollback()
				return err
			}
			return stx.Commit()
		default:
			_, err := s.Insert(ctx, params)
			return err
		}
	}
	count := func(prefix string) int {
		t.Helper()
		var n int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM skein_jobs WHERE starts_with(id, $1)`, prefix).Scan(&n); err != nil {
			t.Fatalf("counting jobs: %v", err)
		}
		return n
	}
	for _, tc := range []struct {
		name   string
		tx     string
		n      int  // jobs in the batch
		unique bool // the last job has a unique key
	}{
		{"one", "", 1, false},
		{"one unique", "", 1, true},
		{"few", "", 5, false},
		{"few unique", "", 5, true},
		{"copy", "", 20, false},
		{"many unique", "", 20, true},
		{"pgx tx few", "pgx", 5, false},
		{"pgx tx copy", "pgx", 20, false},
		{"sql tx few", "sql", 5, false},
		{"sql tx few unique", "sql", 5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wf := strings.ReplaceAll(tc.name, " ", "-")
			params := make([]*store.InsertParams, tc.n)
			for i := range params {
				params[i] = &store.InsertParams{ID: fmt.Sprintf("%s_%03d", wf, i), WorkflowID: wf, Kind: "k", Queue: "q",
					Priority: i, Args: []byte(fmt.Sprintf(`{"i":%d}`, i)), MaxAttempts: 3, TaskID: "t@/1"}
			}
			if tc.unique {
				params[tc.n-1].UniqueKey = "key-" + wf
			}
			if err := via(tc.tx, params); err != nil {
				t.Fatalf("insert: %v", err)
			}
			if got := count(wf + "_"); got != tc.n {
				t.Fatalf("%d jobs stored, want %d", got, tc.n)
			}
			last := params[tc.n-1]
			j, err := s.GetJob(ctx, last.ID)
			if err != nil {
				t.Fatalf("GetJob: %v", err)
			}
			if j.Priority != tc.n-1 || string(j.Args) != string(last.Args) || j.TaskID != last.TaskID ||
				j.WorkflowID != wf || j.UniqueKey != last.UniqueKey || j.State != store.StateAvailable || j.MaxAttempts != 3 {
				t.Errorf("stored job = %+v, want the fields of %+v", j, last)
			}

			// The same batch again, under new ids but one: nothing of it goes in.
			again := make([]*store.InsertParams, tc.n)
			for i, p := range params {
				c := *p
				c.WorkflowID = wf + "-again"
				c.ID = fmt.Sprintf("%s_%03d", c.WorkflowID, i)
				if c.UniqueKey != "" {
					c.UniqueKey += "-again"
				}
				again[i] = &c
			}
			again[0].ID, again[0].WorkflowID = params[0].ID, wf
			err = via(tc.tx, again)
			if !errors.Is(err, store.ErrJobExists) || !strings.Contains(err.Error(), params[0].ID) {
				t.Fatalf("insert with an existing id = %v, want ErrJobExists naming %s", err, params[0].ID)
			}
			if got := count(wf + "-again_"); got != 0 {
				t.Errorf("%d jobs of the failed batch stored, want 0", got)
			}
		})
	}
}

// hasUniqueKey picks the statement: ON CONFLICT only when a job has a key.
func TestHasUniqueKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		keys []string
		want bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"", "", ""}, false},
		{[]string{"", "k", ""}, true},
		{[]string{"k"}, true},
	} {
		params := make([]*store.InsertParams, len(tc.keys))
		for i, k := range tc.keys {
			params[i] = &store.InsertParams{UniqueKey: k}
		}
		if got := hasUniqueKey(params); got != tc.want {
			t.Errorf("hasUniqueKey(%q) = %v, want %v", tc.keys, got, tc.want)
		}
	}
}
