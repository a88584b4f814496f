// Command causal is the causal-logging example of the README: one action
// with a slog record and a failed child action, written as Eliot JSON lines.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/skeinhq/skein/action"
)

func main() {
	logger := action.New(os.Stdout, &action.Options{Fields: action.ProcessFields()})
	log := slog.New(logger.Handler(nil))
	ctx := action.WithWorkflow(action.WithLogger(context.Background(), logger), "req-42")

	ctx, checkout := action.Start(ctx, "shop:checkout", slog.Int("user_id", 42))
	log.InfoContext(ctx, "cart loaded", "items", 2) // lands inside shop:checkout
	err := action.Run(ctx, "payment:charge", func(ctx context.Context) error {
		return errors.New("card declined")
	})
	checkout.Finish(err) // failed: exception errors.errorString, reason "card declined"
}
