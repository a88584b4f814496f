package skein_test

import (
	"context"
	"io"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/internal/pgtest"
	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/postgres"
	"github.com/skeinhq/skein/store/sqlite"
)

// These benchmarks measure the root package on each store with its
// defaults, durable: SQLite in WAL mode with its documented sync setting,
// PostgreSQL with its stock settings on a server started for each
// benchmark. The side-by-side comparison with River and Asynq lives in the
// bench module (bench/cmd/benchjobs, `make bench-jobs`).

type noop struct {
	N int `json:"n"`
}

func (noop) Kind() string { return "noop" }

var benchStores = []struct {
	name string
	open func(b *testing.B) store.Store
}{
	{"sqlite", func(b *testing.B) store.Store {
		st, err := sqlite.Open(context.Background(), &sqlite.Config{Path: filepath.Join(b.TempDir(), "bench.db"), AutoMigrate: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		return st
	}},
	{"postgres", func(b *testing.B) store.Store {
		// A server of its own with PostgreSQL's stock durability (fsync
		// and synchronous commit on), not the tests' fast one.
		dsn := pgtest.StartStockServer(b).NewDatabase(b)
		st, err := postgres.Open(context.Background(), &postgres.Config{DSN: dsn, AutoMigrate: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		return st
	}},
}

// BenchmarkEndToEnd: jobs enqueued in batches of 1000 and run by one
// dispatcher with 50 workers, from insert to stored completion.
func BenchmarkEndToEnd(b *testing.B) {
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			ctx := context.Background()
			st := bs.open(b)
			logger := action.New(io.Discard, nil)
			client, err := skein.NewClient(st, &skein.ClientConfig{Logger: logger})
			if err != nil {
				b.Fatal(err)
			}
			handlers := skein.NewHandlers()
			skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[noop]) error { return nil })
			d, err := skein.NewDispatcher(st, &skein.Config{Handlers: handlers, Logger: logger, Agents: []skein.AgentConfig{{Size: 50}}})
			if err != nil {
				b.Fatal(err)
			}
			events, unsubscribe := d.Subscribe(b.N + 1)
			defer unsubscribe()
			if err := d.Start(ctx); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = d.Stop(ctx) }()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i += 1000 {
				params := make([]skein.EnqueueParams, min(1000, b.N-i))
				for k := range params {
					params[k] = skein.EnqueueParams{Args: noop{N: i + k}}
				}
				if _, err := client.EnqueueMany(ctx, params); err != nil {
					b.Fatal(err)
				}
			}
			for done := 0; done < b.N; {
				if e := <-events; e.State == store.StateCompleted {
					done++
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
		})
	}
}

// BenchmarkEnqueue: one job per call from 8 goroutines, durable.
func BenchmarkEnqueue(b *testing.B) {
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			st := bs.open(b)
			client, err := skein.NewClient(st, &skein.ClientConfig{Logger: action.New(io.Discard, nil)})
			if err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			b.SetParallelism(4) // 8 goroutines on 2 CPUs
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := client.Enqueue(ctx, noop{N: int(n.Add(1))}, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
		})
	}
}

type stamped struct {
	At int64 `json:"at"` // UnixNano at enqueue
}

func (stamped) Kind() string { return "stamped" }

// BenchmarkLatency: enqueue→handler start at about 200 jobs/s, one job per
// Enqueue; reports the 50th, 95th and 99th percentiles.
func BenchmarkLatency(b *testing.B) {
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			ctx := context.Background()
			st := bs.open(b)
			logger := action.New(io.Discard, nil)
			client, err := skein.NewClient(st, &skein.ClientConfig{Logger: logger})
			if err != nil {
				b.Fatal(err)
			}
			lat := make(chan time.Duration, b.N)
			handlers := skein.NewHandlers()
			skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[stamped]) error {
				lat <- time.Since(time.Unix(0, job.Args.At))
				return nil
			})
			d, err := skein.NewDispatcher(st, &skein.Config{Handlers: handlers, Logger: logger, Agents: []skein.AgentConfig{{Size: 50}}})
			if err != nil {
				b.Fatal(err)
			}
			if err := d.Start(ctx); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = d.Stop(ctx) }()
			b.ResetTimer()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for range b.N {
				<-tick.C
				if _, err := client.Enqueue(ctx, stamped{At: time.Now().UnixNano()}, nil); err != nil {
					b.Fatal(err)
				}
			}
			all := make([]time.Duration, b.N)
			for i := range all {
				all[i] = <-lat
			}
			slices.Sort(all)
			pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))]) / 1e6 }
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.95), "p95-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
		})
	}
}
