package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", to empty the queue between runs

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/open"
)

// skeinSystem is skein's job system with its defaults (no tuning), on
// PostgreSQL ("skein-postgres") or on an SQLite file ("skein-sqlite"). Its
// causal logs go to io.Discard: the cost of writing them is measured, the
// cost of a disk is not.
type skeinSystem struct {
	name   string
	dsn    string
	st     store.Store
	client *skein.Client
	ctx    context.Context // carries the discarding Logger
	ran    atomic.Pointer[func(int64)]
}

type skeinNoop struct {
	InsertedAt int64 `json:"t"`
}

func (skeinNoop) Kind() string { return "noop" }

func newSkein(ctx context.Context, name, dsn string) (system, error) {
	st, err := open.Open(ctx, dsn, &open.Opts{AutoMigrate: true})
	if err != nil {
		return nil, err
	}
	logger := action.New(io.Discard, nil)
	client, err := skein.NewClient(st, &skein.ClientConfig{Logger: logger})
	if err != nil {
		st.Close()
		return nil, err
	}
	return &skeinSystem{name: name, dsn: dsn, st: st, client: client, ctx: action.WithLogger(ctx, logger)}, nil
}

func (s *skeinSystem) Name() string { return s.name }

func (s *skeinSystem) Skip() []string { return nil }

func (s *skeinSystem) Reset(ctx context.Context) error {
	if strings.HasPrefix(s.dsn, "postgres") {
		conn, err := pgx.Connect(ctx, s.dsn)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "TRUNCATE skein_jobs"); err != nil {
			return err
		}
		checkpoint(ctx, conn)
		return nil
	}
	db, err := sql.Open("sqlite", s.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "PRAGMA busy_timeout = 10000; DELETE FROM skein_jobs")
	return err
}

func (s *skeinSystem) Insert(ctx context.Context, at int64) error {
	_, err := s.client.Enqueue(s.ctx, skeinNoop{InsertedAt: at}, nil)
	return err
}

func (s *skeinSystem) InsertBatch(ctx context.Context, n int, at int64) error {
	params := make([]skein.EnqueueParams, n)
	for i := range params {
		params[i] = skein.EnqueueParams{Args: skeinNoop{InsertedAt: at}}
	}
	_, err := s.client.EnqueueMany(s.ctx, params)
	return err
}

func (s *skeinSystem) Work(ctx context.Context, workers int, ran func(int64)) (func() error, error) {
	s.ran.Store(&ran)
	handlers := skein.NewHandlers()
	skein.AddHandler(handlers, func(_ context.Context, job *skein.Job[skeinNoop]) error {
		if f := s.ran.Load(); f != nil {
			(*f)(job.Args.InsertedAt)
		}
		return nil
	})
	d, err := skein.NewDispatcher(s.st, &skein.Config{
		Handlers: handlers,
		Agents:   []skein.AgentConfig{{Size: workers}},
		Logger:   action.New(io.Discard, nil),
	})
	if err != nil {
		return nil, err
	}
	if err := d.Start(ctx); err != nil {
		return nil, fmt.Errorf("starting dispatcher: %w", err)
	}
	return func() error {
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return d.Stop(stopCtx)
	}, nil
}

func (s *skeinSystem) Close() { s.st.Close() }
