// Command worker is the Go worker of the messaging example: a dispatcher
// that runs send_notification (which fans out to send_push, send_email and
// the text job), send_push and send_email. The text job is an exec job, run
// by `skein serve`: the --text-command with the user and message in its
// environment.
//
//	worker --store ./skein.db --log worker.log --users users.json \
//	       --text-command "python3 send_text_message.py"
//
// send_email fails its first attempt (a simulated "421 try again later" of
// the mail server), so that the tree shows a retry. It stops on SIGINT or
// SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/examples/messaging"
	"github.com/skeinhq/skein/kinds"
	"github.com/skeinhq/skein/store/open"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run() error {
	dsn := flag.String("store", "", "store DSN (default $SKEIN_STORE or ./skein.db)")
	logPath := flag.String("log", "worker.log", "log file (Eliot JSON lines)")
	usersPath := flag.String("users", "users.json", "users' notification preferences")
	textCommand := flag.String("text-command", "python3 send_text_message.py", "command of the text job, split at spaces")
	poll := flag.Duration("poll", time.Second, "poll interval")
	backoff := flag.Duration("backoff", time.Second, "cap of the first retry delay")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	users, err := messaging.LoadUsers(*usersPath)
	if err != nil {
		return err
	}
	usersAbs, err := filepath.Abs(*usersPath)
	if err != nil {
		return err
	}
	command := strings.Fields(*textCommand)
	if len(command) == 0 {
		return errors.New("--text-command is empty")
	}

	f, err := action.OpenFile(*logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	logger := action.New(f, &action.Options{Fields: action.ProcessFields()})
	log := slog.New(logger.Handler(nil))

	st, err := open.Open(ctx, firstNonEmpty(*dsn, os.Getenv(open.EnvStore)), &open.Opts{AutoMigrate: true})
	if err != nil {
		return fmt.Errorf("opening store: %w", err)
	}
	defer st.Close()
	client, err := skein.NewClient(st, nil)
	if err != nil {
		return err
	}

	h := skein.NewHandlers()
	skein.AddHandler(h, func(ctx context.Context, job *skein.Job[messaging.SendNotification]) error {
		prefs, ok := users[job.Args.UserID]
		if !ok {
			return skein.JobDiscard(fmt.Errorf("no user %d", job.Args.UserID))
		}
		log.InfoContext(ctx, "notifying recipient", "user_id", job.Args.UserID, "name", prefs.Name)
		push := messaging.SendPush(job.Args)
		email := messaging.SendEmail(job.Args)
		text := kinds.ExecArgs{Command: command, Env: map[string]string{
			messaging.EnvUsers:     usersAbs,
			messaging.EnvUserID:    strconv.Itoa(job.Args.UserID),
			messaging.EnvMessageID: job.Args.MessageID,
		}}
		// One transaction: all three channels or none.
		_, err := client.EnqueueMany(ctx, []skein.EnqueueParams{
			{Args: push}, {Args: email}, {Args: text, Opts: &skein.EnqueueOpts{MaxAttempts: 3}},
		})
		return err
	})
	skein.AddHandler(h, func(ctx context.Context, job *skein.Job[messaging.SendPush]) error {
		if !users[job.Args.UserID].Push {
			log.WarnContext(ctx, "user has push notifications disabled", "user_id", job.Args.UserID)
			return nil
		}
		log.InfoContext(ctx, "push sent", "user_id", job.Args.UserID)
		return nil
	})
	skein.AddHandler(h, func(ctx context.Context, job *skein.Job[messaging.SendEmail]) error {
		if job.Attempt == 1 {
			return errors.New("smtp: 421 4.7.0 try again later")
		}
		if !users[job.Args.UserID].Email {
			log.WarnContext(ctx, "user has email notifications disabled", "user_id", job.Args.UserID)
			return nil
		}
		log.InfoContext(ctx, "email sent", "user_id", job.Args.UserID)
		return nil
	})

	d, err := skein.NewDispatcher(st, &skein.Config{
		Handlers:     h,
		Logger:       logger,
		PollInterval: *poll,
		Backoff:      skein.ExponentialBackoff{Base: *backoff},
	})
	if err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	fmt.Printf("worker %s: running %s\n", d.ID(), strings.Join(h.Kinds(), ", "))
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return d.Stop(stopCtx)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
