// Command web is the web process of the messaging example: POST
// /api/message/ creates a message and enqueues send_notification, inside the
// request's action (actionhttp.Middleware), so the job and everything it
// causes join the request's tree and its workflow (X-Request-ID).
//
//	web --store ./skein.db --log web.log --addr 127.0.0.1:8080
//
// It prints "listening on http://ADDR" once it serves, and stops on SIGINT
// or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/action/actionhttp"
	"github.com/skeinhq/skein/examples/messaging"
	"github.com/skeinhq/skein/store/open"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "web:", err)
		os.Exit(1)
	}
}

func run() error {
	dsn := flag.String("store", "", "store DSN (default $SKEIN_STORE or ./skein.db)")
	logPath := flag.String("log", "web.log", "log file (Eliot JSON lines)")
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

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

	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/message/", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			ToUser int    `json:"to_user"`
			Text   string `json:"text"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.ToUser == 0 {
			http.Error(w, `want {"to_user": ID, "text": "..."}`, http.StatusBadRequest)
			return
		}
		ctx := r.Context()
		messageID := action.NewID()
		log.InfoContext(ctx, "message created", "message_id", messageID, "to_user", in.ToUser, "chars", len(in.Text))
		res, err := client.Enqueue(ctx, messaging.SendNotification{MessageID: messageID, UserID: in.ToUser}, nil)
		if err != nil {
			log.ErrorContext(ctx, "enqueueing send_notification failed", "error", err.Error())
			http.Error(w, "could not queue the notification", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"message_id": messageID, "job_id": res.Job.ID, "request_id": action.Workflow(ctx),
		})
	})

	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           actionhttp.Middleware(mux, &actionhttp.MiddlewareConfig{Logger: logger}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	fmt.Printf("listening on http://%s\n", l.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
