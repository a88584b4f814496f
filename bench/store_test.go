package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/skeinhq/skein/internal/pgtest"
	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/postgres"
	"github.com/skeinhq/skein/store/sqlite"
)

// The store benchmarks insert the same no-op jobs (kind "noop", args
// {"n": i}, queue "default") through skein's stores and through River, on one
// PostgreSQL 15 server with stock settings started for the run on 127.0.0.1
// (or the server TEST_DATABASE_URL names).
//
//	go test -run '^$' -bench 'BenchmarkStore' -count 6 .

type noopArgs struct {
	N int `json:"n"`
}

func (noopArgs) Kind() string { return "noop" }

type storeSystem struct {
	name string
	// insert inserts n jobs in one call (a batch).
	insert func(ctx context.Context, n int) error
	// meter measures the server's work for this system (nil for SQLite).
	meter *serverMeter
	// store is skein's store under test (nil for River).
	store store.Store
}

// serverMeter measures what the PostgreSQL server spends on one database:
// the CPU time of its backends (from /proc, the server runs on this machine)
// and the WAL it writes. Unlike wall time, both hardly depend on what else
// runs on a shared machine.
type serverMeter struct {
	admin *pgxpool.Pool
	cpu   time.Duration
	wal   int64
}

func newServerMeter(b *testing.B, dsn string) *serverMeter {
	admin, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(admin.Close)
	return &serverMeter{admin: admin}
}

var clockTick = 10 * time.Millisecond // USER_HZ is 100 on Linux

func (m *serverMeter) sample(ctx context.Context) (time.Duration, int64, error) {
	rows, err := m.admin.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		return 0, 0, err
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return 0, 0, err
	}
	var cpu time.Duration
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // exited
		}
		// Fields after the ")" that ends the command name; utime and stime
		// are fields 14 and 15 of the whole line.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		cpu += time.Duration(u+s) * clockTick
	}
	var wal int64
	if err := m.admin.QueryRow(ctx, `SELECT (pg_current_wal_lsn() - '0/0')::bigint`).Scan(&wal); err != nil {
		return 0, 0, err
	}
	return cpu, wal, nil
}

func (m *serverMeter) start(b *testing.B) {
	if m == nil {
		return
	}
	var err error
	if m.cpu, m.wal, err = m.sample(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// report adds server CPU µs and WAL bytes per job.
func (m *serverMeter) report(b *testing.B, jobs int) {
	if m == nil {
		return
	}
	cpu, wal, err := m.sample(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64((cpu-m.cpu).Microseconds())/float64(jobs), "server-µs/job")
	b.ReportMetric(float64(wal-m.wal)/float64(jobs), "wal-B/job")
}

// skeinParams returns n jobs of one new workflow, ids "<workflow>_<uuid>" as
// the root package makes them (random workflow ids, as X-Request-ID values).
func skeinParams(n int, seq *atomic.Int64) []*store.InsertParams {
	wf := uuid.NewString()
	ps := make([]*store.InsertParams, n)
	for i := range ps {
		k := seq.Add(1)
		ps[i] = &store.InsertParams{
			ID: wf + "_" + uuid.NewString(), Kind: "noop", Queue: "default", MaxAttempts: 25,
			Args: []byte(`{"n":` + strconv.FormatInt(k, 10) + `}`), WorkflowID: wf,
		}
	}
	return ps
}

// storeSystems opens every system under test; cleanup is registered on b.
func storeSystems(b *testing.B) []storeSystem {
	ctx := context.Background()
	var skeinDSN, riverDSN string
	if os.Getenv(pgtest.EnvURL) != "" {
		// A server of the caller's (its user needs CREATEDB).
		skeinDSN, riverDSN = pgtest.NewDatabase(b), pgtest.NewDatabase(b)
	} else {
		srv := pgtest.StartStockServer(b)
		skeinDSN, riverDSN = srv.NewDatabase(b), srv.NewDatabase(b)
	}
	pg, err := postgres.Open(ctx, &postgres.Config{DSN: skeinDSN, AutoMigrate: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pg.Close() })
	lite, err := sqlite.Open(ctx, &sqlite.Config{Path: filepath.Join(b.TempDir(), "bench.db"), AutoMigrate: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lite.Close() })

	pool, err := pgxpool.New(ctx, riverDSN)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		b.Fatal(err)
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		b.Fatal(err)
	}
	riverParams := func(n int, seq *atomic.Int64) []river.InsertManyParams {
		ps := make([]river.InsertManyParams, n)
		for i := range ps {
			ps[i] = river.InsertManyParams{Args: noopArgs{N: int(seq.Add(1))}}
		}
		return ps
	}
	var seq atomic.Int64
	skeinMeter, riverMeter := newServerMeter(b, skeinDSN), newServerMeter(b, riverDSN)
	return []storeSystem{
		{"skein-postgres", func(ctx context.Context, n int) error {
			_, err := pg.Insert(ctx, skeinParams(n, &seq))
			return err
		}, skeinMeter, pg},
		{"skein-sqlite", func(ctx context.Context, n int) error {
			_, err := lite.Insert(ctx, skeinParams(n, &seq))
			return err
		}, nil, lite},
		{"river", func(ctx context.Context, n int) error {
			if n == 1 {
				_, err := client.Insert(ctx, noopArgs{N: int(seq.Add(1))}, nil)
				return err
			}
			_, err := client.InsertMany(ctx, riverParams(n, &seq))
			return err
		}, riverMeter, nil},
		{"river-copy", func(ctx context.Context, n int) error {
			if n == 1 {
				return nil // COPY is a batch path only
			}
			_, err := client.InsertManyFast(ctx, riverParams(n, &seq))
			return err
		}, riverMeter, nil},
	}
}

// BenchmarkStoreInsertBatch inserts batches of 1000 jobs from one goroutine.
func BenchmarkStoreInsertBatch(b *testing.B) {
	const size = 1000
	for _, sys := range storeSystems(b) {
		b.Run(fmt.Sprintf("system=%s/size=%d", sys.name, size), func(b *testing.B) { storeInsertBatch(b, sys, size) })
	}
}

func storeInsertBatch(b *testing.B, sys storeSystem, size int) {
	ctx := context.Background()
	sys.meter.start(b)
	for b.Loop() {
		if err := sys.insert(ctx, size); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "jobs/s")
	sys.meter.report(b, b.N*size)
}

// BenchmarkStoreInsertOne inserts one job per call from 8 goroutines.
func BenchmarkStoreInsertOne(b *testing.B) {
	for _, sys := range storeSystems(b) {
		if sys.name == "river-copy" {
			continue
		}
		b.Run("system="+sys.name, func(b *testing.B) { storeInsertOne(b, sys) })
	}
}

func storeInsertOne(b *testing.B, sys storeSystem) {
	ctx := context.Background()
	sys.meter.start(b)
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := sys.insert(ctx, 1); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	sys.meter.report(b, b.N)
}

// BenchmarkStoreCycle is the store's share of running jobs: 50 workers of
// one dispatcher claim batches of up to 10 jobs and finish every job with its
// own call, as a dispatcher's workers do. skein only: River has no public
// store-level API for it (the end-to-end comparison is the jobs benchmark).
func BenchmarkStoreCycle(b *testing.B) {
	for _, sys := range storeSystems(b) {
		if !strings.HasPrefix(sys.name, "skein-") {
			continue
		}
		b.Run("system="+sys.name, func(b *testing.B) { storeCycle(b, sys) })
	}
}

func storeCycle(b *testing.B, sys storeSystem) {
	const workers, claimBatch = 50, 10
	ctx := context.Background()
	s := sys.store
	d := "bench-" + uuid.NewString()
	if err := s.RegisterDispatcher(ctx, &store.Dispatcher{ID: d}); err != nil {
		b.Fatal(err)
	}
	for done := 0; done < b.N; done += 1000 {
		if err := sys.insert(ctx, min(1000, b.N-done)); err != nil {
			b.Fatal(err)
		}
	}
	sys.meter.start(b)
	b.ResetTimer()
	var finished atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for finished.Load() < int64(b.N) {
				jobs, err := s.Claim(ctx, &store.ClaimParams{Dispatcher: d, Agent: "main", Limit: claimBatch})
				if err != nil {
					b.Error(err)
					return
				}
				if len(jobs) == 0 {
					return
				}
				for _, j := range jobs {
					nh, err := s.Finish(ctx, []*store.Outcome{{ID: j.ID, Dispatcher: d, Slot: j.Slot, State: store.StateCompleted}})
					if err != nil || len(nh) > 0 {
						b.Errorf("finish: %v %v", nh, err)
						return
					}
					finished.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(finished.Load())/b.Elapsed().Seconds(), "jobs/s")
	sys.meter.report(b, int(finished.Load()))
}
