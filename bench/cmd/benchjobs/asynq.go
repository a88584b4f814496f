package main

import (
	"context"
	"encoding/json"
	"log"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// asynqSystem is Asynq on Redis without persistence: "asynq" with its
// defaults, "asynq-tuned" with TaskCheckInterval 10 ms (default 1 s). Asynq
// has no batch insert.
type asynqSystem struct {
	name   string
	opt    asynq.RedisClientOpt
	client *asynq.Client
	rdb    *redis.Client
	ran    atomic.Pointer[func(int64)]
}

func newAsynq(name, addr string) (*asynqSystem, error) {
	opt := asynq.RedisClientOpt{Addr: addr, PoolSize: 100}
	return &asynqSystem{name: name, opt: opt, client: asynq.NewClient(opt), rdb: redis.NewClient(&redis.Options{Addr: addr})}, nil
}

func (s *asynqSystem) Name() string { return s.name }

func (s *asynqSystem) Skip() []string { return nil }

func (s *asynqSystem) Reset(ctx context.Context) error { return s.rdb.FlushAll(ctx).Err() }

func (s *asynqSystem) Insert(ctx context.Context, at int64) error {
	payload, _ := json.Marshal(map[string]int64{"t": at})
	_, err := s.client.EnqueueContext(ctx, asynq.NewTask("noop", payload))
	return err
}

func (s *asynqSystem) InsertBatch(context.Context, int, int64) error { return errUnsupported }

func (s *asynqSystem) Work(_ context.Context, workers int, ran func(int64)) (func() error, error) {
	s.ran.Store(&ran)
	cfg := asynq.Config{Concurrency: workers, Logger: quietLogger{}, LogLevel: asynq.ErrorLevel}
	if s.name == "asynq-tuned" {
		cfg.TaskCheckInterval = 10 * time.Millisecond
	}
	srv := asynq.NewServer(s.opt, cfg)
	mux := asynq.NewServeMux()
	mux.HandleFunc("noop", func(_ context.Context, t *asynq.Task) error {
		var args struct {
			T int64 `json:"t"`
		}
		_ = json.Unmarshal(t.Payload(), &args)
		if f := s.ran.Load(); f != nil {
			(*f)(args.T)
		}
		return nil
	})
	if err := srv.Start(mux); err != nil {
		return nil, err
	}
	return func() error { srv.Shutdown(); return nil }, nil
}

func (s *asynqSystem) Close() {
	_ = s.client.Close()
	_ = s.rdb.Close()
}

// quietLogger keeps Asynq's info lines out of the measurement output.
type quietLogger struct{}

func (quietLogger) Debug(...any)      {}
func (quietLogger) Info(...any)       {}
func (quietLogger) Warn(...any)       {}
func (quietLogger) Error(args ...any) { log.Print(args...) }
func (quietLogger) Fatal(args ...any) { log.Fatal(args...) }
