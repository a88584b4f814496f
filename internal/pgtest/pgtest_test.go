package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(Main(m)) }

func query(t *testing.T, dsn, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	var out string
	if err := conn.QueryRow(ctx, sql).Scan(&out); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func execSQL(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestNewDatabase(t *testing.T) {
	a, b := NewDatabase(t), NewDatabase(t)
	if a == b {
		t.Fatalf("two tests share database %s", a)
	}
	na, nb := query(t, a, "SELECT current_database()"), query(t, b, "SELECT current_database()")
	if na == nb || na == "postgres" {
		t.Errorf("databases %q and %q, want two fresh ones", na, nb)
	}
	if got := query(t, a, "SELECT count(*)::text FROM pg_tables WHERE schemaname = 'public'"); got != "0" {
		t.Errorf("fresh database has %s tables", got)
	}
}

func TestServerRestartAndCrash(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	dsn := s.NewDatabase(t)
	execSQL(t, dsn, "CREATE TABLE kept AS SELECT 'x'::text AS v")
	before := query(t, dsn, "SELECT pg_postmaster_start_time()::text")
	s.Restart(t)
	mid := query(t, dsn, "SELECT pg_postmaster_start_time()::text")
	s.Crash(t)
	after := query(t, dsn, "SELECT pg_postmaster_start_time()::text")
	if before == mid || mid == after {
		t.Errorf("start times %s, %s, %s: the server did not restart", before, mid, after)
	}
	if got := query(t, dsn, "SELECT v FROM kept"); got != "x" {
		t.Errorf("committed row after a crash = %q, want x", got)
	}
}
