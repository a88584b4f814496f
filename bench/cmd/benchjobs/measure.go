package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// system is one job system under measurement. Every job is a no-op whose
// args carry the time it was inserted (Unix nanoseconds).
type system interface {
	// Reset empties the queue.
	Reset(ctx context.Context) error
	// Insert inserts one job, durably, in its own call.
	Insert(ctx context.Context, insertedAt int64) error
	// InsertBatch inserts n jobs in one call; errUnsupported if the system
	// has no batch insert.
	InsertBatch(ctx context.Context, n int, insertedAt int64) error
	// Work runs workers until stop is called; ran is called at the start of
	// every job with its insert time.
	Work(ctx context.Context, workers int, ran func(insertedAt int64)) (stop func() error, err error)
	// Skip lists metrics this system does not take part in.
	Skip() []string
	Close()
}

var errUnsupported = errors.New("unsupported")

func measure(ctx context.Context, c *config, env *environment, sys system, emit func(result)) error {
	name := sysName(sys)
	cost := &costMeter{env: env, system: name, emit: emit, postgres: name == "skein-postgres" || strings.HasPrefix(name, "river")}
	skip := sys.Skip()
	groups := map[string]string{"enqueue_jobs_per_sec": "enqueue", "enqueue_batch_jobs_per_sec": "batch",
		"e2e_jobs_per_sec": "e2e", "latency_p50_ms": "latency"}
	want := func(metric string) bool {
		return !slices.Contains(skip, metric) && (c.metrics == nil || c.metrics[groups[metric]])
	}

	if want("enqueue_jobs_per_sec") {
		if err := sys.Reset(ctx); err != nil {
			return err
		}
		var next atomic.Int64
		if err := cost.begin(ctx); err != nil {
			return err
		}
		start := time.Now()
		g, gctx := errgroup.WithContext(ctx)
		for range c.producers {
			g.Go(func() error {
				for next.Add(1) <= int64(c.enqueueJobs) {
					if err := sys.Insert(gctx, time.Now().UnixNano()); err != nil {
						return fmt.Errorf("insert: %w", err)
					}
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		emit(result{name, "enqueue_jobs_per_sec", float64(c.enqueueJobs) / time.Since(start).Seconds(), "jobs/s"})
		if err := cost.end(ctx, "enqueue", c.enqueueJobs); err != nil {
			return err
		}
	}

	if want("enqueue_batch_jobs_per_sec") {
		if err := sys.Reset(ctx); err != nil {
			return err
		}
		if err := cost.begin(ctx); err != nil {
			return err
		}
		start := time.Now()
		for done := 0; done < c.batchJobs; done += c.batch {
			err := sys.InsertBatch(ctx, c.batch, time.Now().UnixNano())
			if errors.Is(err, errUnsupported) {
				break
			}
			if err != nil {
				return fmt.Errorf("batch insert: %w", err)
			}
			if done+c.batch >= c.batchJobs {
				emit(result{name, "enqueue_batch_jobs_per_sec", float64(c.batchJobs) / time.Since(start).Seconds(), "jobs/s"})
				if err := cost.end(ctx, "batch", c.batchJobs); err != nil {
					return err
				}
			}
		}
	}

	if want("e2e_jobs_per_sec") {
		if err := sys.Reset(ctx); err != nil {
			return err
		}
		if err := fill(ctx, c, sys, c.e2eJobs); err != nil {
			return err
		}
		var ran atomic.Int64
		all := make(chan struct{})
		if err := cost.begin(ctx); err != nil {
			return err
		}
		cpu0 := processCPU()
		start := time.Now()
		stop, err := sys.Work(ctx, c.workers, func(int64) {
			if ran.Add(1) == int64(c.e2eJobs) {
				close(all)
			}
		})
		if err != nil {
			return err
		}
		select {
		case <-all:
		case <-time.After(10 * time.Minute):
			_ = stop()
			return fmt.Errorf("end-to-end: only %d of %d jobs ran in 10 minutes", ran.Load(), c.e2eJobs)
		}
		elapsed := time.Since(start)
		cpu := processCPU() - cpu0
		if err := stop(); err != nil {
			return err
		}
		emit(result{name, "e2e_jobs_per_sec", float64(c.e2eJobs) / elapsed.Seconds(), "jobs/s"})
		emit(result{name, "e2e_client_cpu_us_per_job", float64(cpu.Microseconds()) / float64(c.e2eJobs), "µs/job"})
		if err := cost.end(ctx, "e2e", c.e2eJobs); err != nil {
			return err
		}
	}

	if want("latency_p50_ms") {
		if err := sys.Reset(ctx); err != nil {
			return err
		}
		var mu sync.Mutex
		var lat []time.Duration
		total := int(float64(c.rate) * c.latencyFor.Seconds())
		all := make(chan struct{})
		stop, err := sys.Work(ctx, c.workers, func(insertedAt int64) {
			d := time.Since(time.Unix(0, insertedAt))
			mu.Lock()
			lat = append(lat, d)
			if len(lat) == total {
				close(all)
			}
			mu.Unlock()
		})
		if err != nil {
			return err
		}
		tick := time.NewTicker(time.Second / time.Duration(c.rate))
		for range total {
			<-tick.C
			if err := sys.Insert(ctx, time.Now().UnixNano()); err != nil {
				tick.Stop()
				_ = stop()
				return fmt.Errorf("latency insert: %w", err)
			}
		}
		tick.Stop()
		select {
		case <-all:
		case <-time.After(time.Minute):
		}
		if err := stop(); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if len(lat) < total {
			return fmt.Errorf("latency: only %d of %d jobs ran", len(lat), total)
		}
		slices.Sort(lat)
		for _, p := range []struct {
			metric string
			q      float64
		}{{"latency_p50_ms", 0.50}, {"latency_p95_ms", 0.95}, {"latency_p99_ms", 0.99}} {
			d := lat[min(len(lat)-1, int(p.q*float64(len(lat))))]
			emit(result{name, p.metric, float64(d.Microseconds()) / 1000, "ms"})
		}
	}
	return nil
}

// fill inserts n jobs as fast as the system allows: in batches where it has
// them, else from several goroutines.
func fill(ctx context.Context, c *config, sys system, n int) error {
	now := time.Now().UnixNano()
	for done := 0; done < n; done += c.batch {
		err := sys.InsertBatch(ctx, min(c.batch, n-done), now)
		if errors.Is(err, errUnsupported) {
			break
		}
		if err != nil {
			return err
		}
		if done+c.batch >= n {
			return nil
		}
	}
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range c.producers {
		g.Go(func() error {
			for next.Add(1) <= int64(n) {
				if err := sys.Insert(gctx, now); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// named is implemented by systems to report their name.
type named interface{ Name() string }

func sysName(s system) string { return s.(named).Name() }

// warmUp inserts c.warmup jobs one at a time and in batches and runs them,
// untimed, so that every system is measured warm: connections opened, the
// database's files and write-ahead log grown, code paths exercised.
func warmUp(ctx context.Context, c *config, sys system) error {
	if err := sys.Reset(ctx); err != nil {
		return err
	}
	n := c.warmup
	singles := min(n/5, 2000)
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range c.producers {
		g.Go(func() error {
			for next.Add(1) <= int64(singles) {
				if err := sys.Insert(gctx, time.Now().UnixNano()); err != nil {
					return fmt.Errorf("warm-up insert: %w", err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := fill(ctx, c, sys, n-singles); err != nil {
		return fmt.Errorf("warm-up batch insert: %w", err)
	}
	var ran atomic.Int64
	all := make(chan struct{})
	stop, err := sys.Work(ctx, c.workers, func(int64) {
		if ran.Add(1) == int64(n) {
			close(all)
		}
	})
	if err != nil {
		return err
	}
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		_ = stop()
		return fmt.Errorf("warm-up: only %d of %d jobs ran in 5 minutes", ran.Load(), n)
	}
	return stop()
}

// processCPU returns the CPU time this process (the systems' clients and
// workers, and SQLite) used so far, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
