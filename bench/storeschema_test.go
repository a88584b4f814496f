package bench

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/skeinhq/skein/store"

	"github.com/skeinhq/skein/internal/pgtest"
	"github.com/skeinhq/skein/store/postgres"
)

// schemaVariants are the changes to the PostgreSQL store's indexes that
// BenchmarkStoreSchema weighs, each applied to the store's own schema.
var schemaVariants = []struct{ name, sql string }{
	{"current", ""},
	{"no-newest", `DROP INDEX skein_jobs_newest`},
	{"newest-not-running", `DROP INDEX skein_jobs_newest;
		CREATE INDEX skein_jobs_newest ON skein_jobs (created_at) WHERE state <> 'running'`},
	{"newest-brin", `DROP INDEX skein_jobs_newest;
		CREATE INDEX skein_jobs_newest ON skein_jobs USING brin (created_at)`},
	{"no-claim-any", `DROP INDEX skein_jobs_claim_any`},
	{"args-text", `ALTER TABLE skein_jobs ALTER args TYPE text, ALTER args SET DEFAULT '{}',
		ALTER metadata TYPE text, ALTER metadata SET DEFAULT '{}'`},
	{"fillfactor-90", `ALTER TABLE skein_jobs SET (fillfactor = 90)`},
}

// cycleBacklog is how many jobs wait in the queue, besides the ones the
// claim + finish benchmark runs.
const cycleBacklog = 20000

// BenchmarkStoreSchema measures what each index of skein_jobs costs the
// server, through the PostgreSQL store itself: batches of 1000 (COPY), one
// job per call from 8 goroutines (combined INSERTs), and claim + finish
// (50 workers, claims of 10), each on a fresh database holding the store's
// schema with one change (schemaVariants). Read server-µs/job and wal-B/job;
// "no-claim-any" shows what claiming from all queues costs without its index
// (a sort of every claimable job per claim, here with cycleBacklog jobs
// waiting besides the measured ones). It weighs design choices rather than
// comparing skein with its peers, and takes minutes, so it runs only when
// SKEIN_BENCH_SCHEMA is set (`make bench` skips it):
//
//	cd bench && SKEIN_BENCH_SCHEMA=1 go test -run '^$' -bench 'BenchmarkStoreSchema' -count 3 .
func BenchmarkStoreSchema(b *testing.B) {
	if os.Getenv("SKEIN_BENCH_SCHEMA") == "" {
		b.Skip("set SKEIN_BENCH_SCHEMA=1 to weigh the schema variants (takes minutes)")
	}
	ctx := context.Background()
	var srv *pgtest.Server
	if os.Getenv(pgtest.EnvURL) == "" {
		srv = pgtest.StartStockServer(b)
	}
	var seq atomic.Int64
	for _, v := range schemaVariants {
		// A fresh database per variant and operation: the table's size and
		// bloat are the same for every variant.
		open := func(b *testing.B, backlog int) storeSystem {
			var dsn string
			if srv != nil {
				dsn = srv.NewDatabase(b)
			} else {
				dsn = pgtest.NewDatabase(b)
			}
			pg, err := postgres.Open(ctx, &postgres.Config{DSN: dsn, AutoMigrate: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { pg.Close() })
			if v.sql != "" {
				if _, err := pg.Pool().Exec(ctx, v.sql); err != nil {
					b.Fatalf("schema %s: %v", v.name, err)
				}
			}
			// Warm up (connections, the relation's first pages), then the
			// backlog that claims find waiting besides the measured jobs.
			for range 1 + backlog/1000 {
				if _, err := pg.Insert(ctx, skeinParams(1000, &seq)); err != nil {
					b.Fatal(err)
				}
			}
			return storeSystem{name: "skein-postgres", store: pg, meter: newServerMeter(b, dsn),
				insert: func(ctx context.Context, n int) error {
					_, err := pg.Insert(ctx, skeinParams(n, &seq))
					return err
				}}
		}
		b.Run("schema="+v.name+"/op=batch", func(b *testing.B) { storeInsertBatch(b, open(b, 0), 1000) })
		b.Run("schema="+v.name+"/op=one", func(b *testing.B) { storeInsertOne(b, open(b, 0)) })
		b.Run("schema="+v.name+"/op=cycle", func(b *testing.B) { storeCycle(b, open(b, cycleBacklog)) })
	}
}

// listRows is how many jobs BenchmarkStoreListNewest lists from.
const listRows = 1_000_000

// BenchmarkStoreListNewest is what the created_at index buys: listing jobs
// newest first (as `skein jobs list` and the monitor do) from a table of
// listRows jobs (90 % completed, 10 % waiting; created one per millisecond,
// a workflow per 1000), with the index and without it (a sorted scan), one
// page of 50 and one of 10,000 (the monitor's page).
//
//	go test -run '^$' -bench 'BenchmarkStoreListNewest' -count 6 .
func BenchmarkStoreListNewest(b *testing.B) {
	ctx := context.Background()
	var dsn string
	if os.Getenv(pgtest.EnvURL) == "" {
		dsn = pgtest.StartStockServer(b).NewDatabase(b)
	} else {
		dsn = pgtest.NewDatabase(b)
	}
	pg, err := postgres.Open(ctx, &postgres.Config{DSN: dsn, AutoMigrate: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pg.Close() })
	if _, err := pg.Pool().Exec(ctx, `INSERT INTO skein_jobs (id, kind, queue, priority, args, state, max_attempts,
			scheduled_at, created_at, finalized_at, workflow_id)
		SELECT w || '_' || gen_random_uuid(), 'noop', 'default', 0, json_build_object('n', i),
			CASE WHEN i <= $1 * 0.9 THEN 'completed' ELSE 'available' END, 25,
			t, t, CASE WHEN i <= $1 * 0.9 THEN t END, w
		FROM generate_series(1, $1) i,
			LATERAL (SELECT 'wf' || (i / 1000) AS w, now() - ($1 - i) * interval '1 ms' AS t) x`, listRows); err != nil {
		b.Fatal(err)
	}
	if _, err := pg.Pool().Exec(ctx, `VACUUM ANALYZE skein_jobs`); err != nil {
		b.Fatal(err)
	}
	for _, index := range []bool{true, false} {
		if !index {
			if _, err := pg.Pool().Exec(ctx, `DROP INDEX skein_jobs_newest`); err != nil {
				b.Fatal(err)
			}
		}
		for _, limit := range []int{50, store.MaxListLimit} {
			b.Run(fmt.Sprintf("newest-index=%t/limit=%d", index, limit), func(b *testing.B) {
				for b.Loop() {
					page, err := pg.ListJobs(ctx, &store.ListJobsParams{Order: store.OrderNewest, Limit: limit})
					if err != nil {
						b.Fatal(err)
					}
					if len(page.Jobs) != limit {
						b.Fatalf("%d jobs listed, want %d", len(page.Jobs), limit)
					}
				}
			})
		}
	}
}
