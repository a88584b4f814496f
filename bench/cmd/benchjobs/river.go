package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// riverSystem is River on PostgreSQL: "river" with its defaults,
// "river-tuned" with FetchCooldown 2 ms and FetchPollInterval 20 ms,
// "river-copy" measuring only batch inserts through COPY (InsertManyFast).
type riverSystem struct {
	name   string
	pool   *pgxpool.Pool
	client *river.Client[pgx.Tx] // insert-only
	ran    atomic.Pointer[func(int64)]
}

type noopArgs struct {
	InsertedAt int64 `json:"t"`
}

func (noopArgs) Kind() string { return "noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	sys *riverSystem
}

func (w *noopWorker) Work(_ context.Context, job *river.Job[noopArgs]) error {
	if f := w.sys.ran.Load(); f != nil {
		(*f)(job.Args.InsertedAt)
	}
	return nil
}

func newRiver(ctx context.Context, name, dsn string) (*riverSystem, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 100
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return nil, err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("river migrations: %w", err)
	}
	s := &riverSystem{name: name, pool: pool}
	s.client, err = river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (s *riverSystem) Name() string { return s.name }

func (s *riverSystem) Skip() []string {
	if s.name == "river-copy" {
		return []string{"enqueue_jobs_per_sec", "e2e_jobs_per_sec", "latency_p50_ms"}
	}
	return nil
}

func (s *riverSystem) Reset(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, "TRUNCATE river_job"); err != nil {
		return err
	}
	checkpoint(ctx, s.pool)
	return nil
}

func (s *riverSystem) Insert(ctx context.Context, at int64) error {
	_, err := s.client.Insert(ctx, noopArgs{InsertedAt: at}, nil)
	return err
}

func (s *riverSystem) InsertBatch(ctx context.Context, n int, at int64) error {
	params := make([]river.InsertManyParams, n)
	for i := range params {
		params[i] = river.InsertManyParams{Args: noopArgs{InsertedAt: at}}
	}
	if s.name == "river-copy" {
		_, err := s.client.InsertManyFast(ctx, params)
		return err
	}
	_, err := s.client.InsertMany(ctx, params)
	return err
}

func (s *riverSystem) Work(ctx context.Context, workers int, ran func(int64)) (func() error, error) {
	s.ran.Store(&ran)
	registry := river.NewWorkers()
	river.AddWorker(registry, &noopWorker{sys: s})
	cfg := &river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}},
		Workers: registry,
	}
	if s.name == "river-tuned" {
		cfg.FetchCooldown = 2 * time.Millisecond
		cfg.FetchPollInterval = 20 * time.Millisecond
	}
	client, err := river.NewClient(riverpgxv5.New(s.pool), cfg)
	if err != nil {
		return nil, err
	}
	if err := client.Start(ctx); err != nil {
		return nil, err
	}
	return func() error {
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return client.Stop(stopCtx)
	}, nil
}

func (s *riverSystem) Close() { s.pool.Close() }
