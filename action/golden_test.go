package action

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// checkGolden compares got with testdata/<name>.golden.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update to accept)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// declinedError is an error type with extra fields, like an Eliot exception
// extractor's.
type declinedError struct{ code string }

func (e *declinedError) Error() string { return "card declined" }

func (e *declinedError) LogValue() slog.Value {
	return slog.GroupValue(slog.String("decline_code", e.code))
}

// TestGolden pins the exact bytes of nested actions, messages, failures,
// serialized ids, workflows, global fields and slog records.
func TestGolden(t *testing.T) {
	out := &syncBuffer{}
	opts := fixedOptions()
	opts.Fields = []slog.Attr{slog.String("process", "web")}
	l := New(out, opts)
	ctx := WithWorkflow(WithLogger(context.Background(), l), "req-42")
	log := slog.New(l.Handler(nil))

	ctx, checkout := Start(ctx, "shop:checkout", slog.Int("user_id", 42),
		slog.Group("cart", slog.String("currency", "EUR"), slog.Any("skus", []string{"A-1", "B-2"})))
	checkout.Log("shop:cart_loaded", slog.Int("items", 2), slog.Float64("total", 31.5), slog.Float64("discount", 3))
	_ = Run(ctx, "db:query", func(ctx context.Context) error {
		Log(ctx, "db:rows", slog.Int("rows", 2))
		log.WarnContext(ctx, "slow query", "ms", 1200, slog.Group("db", "name", "shop"))
		return nil
	}, slog.String("table", "carts"))
	err := Run(ctx, "payment:charge", func(ctx context.Context) error {
		return fmt.Errorf("charging: %w", &declinedError{code: "insufficient_funds"})
	})
	_ = Run(ctx, "stock:reserve", func(ctx context.Context) error {
		return errors.New("out of stock")
	}, slog.String("task_level", "user data"))
	remote := checkout.SerializeTaskID()
	checkout.AddSuccessFields(slog.Bool("charged", false))
	checkout.Fail(err)
	checkout.End() // no-op: already finished

	// The serialized id continued by "another process" with another logger.
	out2 := &syncBuffer{}
	l2 := New(out2, fixedOptions())
	_, server, perr := Continue(WithLogger(context.Background(), l2), remote, "")
	if perr != nil {
		t.Fatal(perr)
	}
	server.Log("server:received")
	server.End(slog.String("result", "ok"))

	// A message outside any action is a task of its own.
	log.Info("started", "port", 8080)

	checkGolden(t, "checkout", out.String())
	checkGolden(t, "remote", out2.String())
}
