package bench

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/skeinhq/skein/action"
)

// The logging work, the same for every logger: one action written as three
// Eliot JSON lines.
//
//	start:   task_uuid, task_level [1], timestamp, action_type, action_status "started", user "alice", n 42, ok true
//	message: task_uuid, task_level [2], timestamp, message_type, k "v", i 7, f 1.5
//	end:     task_uuid, task_level [3], timestamp, action_type, action_status "succeeded", rows 3
//
// skein does it with action.Start, Action.Log and Action.End. The peers are
// given what a team would write by hand on top of them: a task uuid from
// github.com/google/uuid (with its random pool on, the fast setting), the level
// array and the float timestamp as explicit fields.

func init() { uuid.EnableRandPool() }

// loggingWork runs the work once on one logger.
type loggingWork func(ctx context.Context)

func unixSeconds() float64 { return float64(time.Now().UnixNano()) / 1e9 }

func skeinWork(w io.Writer) loggingWork {
	ctx := action.WithLogger(context.Background(), action.New(w, nil))
	return func(context.Context) {
		_, a := action.Start(ctx, "bench:op", slog.String("user", "alice"), slog.Int("n", 42), slog.Bool("ok", true))
		a.Log("bench:msg", slog.String("k", "v"), slog.Int("i", 7), slog.Float64("f", 1.5))
		a.End(slog.Int("rows", 3))
	}
}

func zerologWork(w io.Writer) loggingWork {
	logger := zerolog.New(w)
	return func(context.Context) {
		task := uuid.NewString()
		logger.Log().Str("task_uuid", task).Ints("task_level", []int{1}).Float64("timestamp", unixSeconds()).
			Str("action_type", "bench:op").Str("action_status", "started").
			Str("user", "alice").Int("n", 42).Bool("ok", true).Send()
		logger.Log().Str("task_uuid", task).Ints("task_level", []int{2}).Float64("timestamp", unixSeconds()).
			Str("message_type", "bench:msg").
			Str("k", "v").Int("i", 7).Float64("f", 1.5).Send()
		logger.Log().Str("task_uuid", task).Ints("task_level", []int{3}).Float64("timestamp", unixSeconds()).
			Str("action_type", "bench:op").Str("action_status", "succeeded").
			Int("rows", 3).Send()
	}
}

func zapWork(w io.Writer) loggingWork {
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{}) // no time, level or message keys
	logger := zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), zapcore.InfoLevel))
	return func(context.Context) {
		task := uuid.NewString()
		logger.Info("", zap.String("task_uuid", task), zap.Ints("task_level", []int{1}), zap.Float64("timestamp", unixSeconds()),
			zap.String("action_type", "bench:op"), zap.String("action_status", "started"),
			zap.String("user", "alice"), zap.Int("n", 42), zap.Bool("ok", true))
		logger.Info("", zap.String("task_uuid", task), zap.Ints("task_level", []int{2}), zap.Float64("timestamp", unixSeconds()),
			zap.String("message_type", "bench:msg"),
			zap.String("k", "v"), zap.Int("i", 7), zap.Float64("f", 1.5))
		logger.Info("", zap.String("task_uuid", task), zap.Ints("task_level", []int{3}), zap.Float64("timestamp", unixSeconds()),
			zap.String("action_type", "bench:op"), zap.String("action_status", "succeeded"),
			zap.Int("rows", 3))
	}
}

func slogWork(w io.Writer) loggingWork {
	// slog's JSONHandler with its own time, level and msg keys removed.
	logger := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
				return slog.Attr{}
			}
			return a
		},
	}))
	return func(ctx context.Context) {
		task := uuid.NewString()
		logger.LogAttrs(ctx, slog.LevelInfo, "", slog.String("task_uuid", task), slog.Any("task_level", []int{1}), slog.Float64("timestamp", unixSeconds()),
			slog.String("action_type", "bench:op"), slog.String("action_status", "started"),
			slog.String("user", "alice"), slog.Int("n", 42), slog.Bool("ok", true))
		logger.LogAttrs(ctx, slog.LevelInfo, "", slog.String("task_uuid", task), slog.Any("task_level", []int{2}), slog.Float64("timestamp", unixSeconds()),
			slog.String("message_type", "bench:msg"),
			slog.String("k", "v"), slog.Int("i", 7), slog.Float64("f", 1.5))
		logger.LogAttrs(ctx, slog.LevelInfo, "", slog.String("task_uuid", task), slog.Any("task_level", []int{3}), slog.Float64("timestamp", unixSeconds()),
			slog.String("action_type", "bench:op"), slog.String("action_status", "succeeded"),
			slog.Int("rows", 3))
	}
}

var loggers = []struct {
	name string
	work func(io.Writer) loggingWork
}{
	{"skein", skeinWork},
	{"zerolog", zerologWork},
	{"zap", zapWork},
	{"slog", slogWork},
}
