// Command sendtext is the text job of the messaging example for machines
// without Python eliot: send_text_message.py in Go. skein serve's exec kind
// runs it; it continues the task in SKEIN_TASK_ID, so its messages land in
// the job's attempt, and prints them (Eliot JSON lines) on standard output,
// where the exec kind passes them on to its log as they are.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/examples/messaging"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sendtext:", err)
		os.Exit(1)
	}
}

func run() (err error) {
	userID, err := strconv.Atoi(os.Getenv(messaging.EnvUserID))
	if err != nil {
		return fmt.Errorf("$%s: %w", messaging.EnvUserID, err)
	}
	logger := action.New(os.Stdout, &action.Options{Fields: action.ProcessFields()})
	log := slog.New(logger.Handler(nil))
	ctx := action.WithWorkflow(action.WithLogger(context.Background(), logger), os.Getenv("SKEIN_WORKFLOW_ID"))
	ctx, remote, err := action.Continue(ctx, os.Getenv("SKEIN_TASK_ID"), "")
	if err != nil {
		return fmt.Errorf("continuing $SKEIN_TASK_ID: %w", err)
	}
	defer func() { remote.Finish(err) }()
	return action.Run(ctx, "send_text_message", func(ctx context.Context) error {
		users, err := messaging.LoadUsers(os.Getenv(messaging.EnvUsers))
		if err != nil {
			return err
		}
		if !users[userID].Text {
			log.WarnContext(ctx, "user has text notifications disabled", "user_id", userID)
			return nil
		}
		log.InfoContext(ctx, "text sent", "user_id", userID)
		return nil
	}, slog.Int("user_id", userID), slog.String("message_id", os.Getenv(messaging.EnvMessageID)))
}
