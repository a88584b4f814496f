package skein_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/store/sqlite"
)

// SendNotification fans out to one job per channel.
type SendNotification struct {
	Message  string   `json:"message"`
	Channels []string `json:"channels"`
}

func (SendNotification) Kind() string { return "send_notification" }

// SendOn sends a notification on one channel.
type SendOn struct {
	Channel string `json:"channel"`
}

func (SendOn) Kind() string { return "send_on" }

// A request's workflow id reaches every job it causes, however deep, and
// every log line of every attempt lands in the request's one task.
func Example_workflows() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "skein-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, &sqlite.Config{Path: filepath.Join(dir, "jobs.db"), AutoMigrate: true})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	var logs bytes.Buffer
	logger := action.New(&logs, nil)
	slogger := slog.New(logger.Handler(nil)) // what the application logs with

	client, err := skein.NewClient(st, &skein.ClientConfig{Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen []string
	)
	handlers := skein.NewHandlers()
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[SendNotification]) error {
		params := make([]skein.EnqueueParams, len(job.Args.Channels))
		for i, c := range job.Args.Channels {
			params[i] = skein.EnqueueParams{Args: SendOn{Channel: c}}
		}
		_, err := client.EnqueueMany(ctx, params) // ctx: the children join the workflow
		return err
	})
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[SendOn]) error {
		if job.Args.Channel == "text" {
			slogger.WarnContext(ctx, "app:text_disabled", "reason", "user has text notifications disabled")
		}
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s: workflow %s", job.Args.Channel, action.Workflow(ctx)))
		mu.Unlock()
		return nil
	})
	d, err := skein.NewDispatcher(st, &skein.Config{Handlers: handlers, Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	events, unsubscribe := d.Subscribe(16)
	defer unsubscribe()
	if err := d.Start(ctx); err != nil {
		log.Fatal(err)
	}

	// The web request: its workflow id comes from X-Request-ID.
	rctx := action.WithLogger(action.WithWorkflow(ctx, "req-XYZ"), logger)
	rctx, request := action.Start(rctx, "app:post_message")
	if _, err := client.Enqueue(rctx, SendNotification{Message: "hi", Channels: []string{"push", "email", "text"}}, nil); err != nil {
		log.Fatal(err)
	}
	request.End()

	for done := 0; done < 4; {
		if e := <-events; e.State.Final() {
			done++
		}
	}
	if err := d.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	slices.Sort(seen)
	fmt.Println(strings.Join(seen, "\n"))

	// Every line of the workflow is in the request's task.
	tasks := map[string]bool{}
	var warning string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			log.Fatal(err)
		}
		if m["workflow_id"] == "req-XYZ" {
			tasks[m["task_uuid"].(string)] = true
		}
		if m["message_type"] == "app:text_disabled" {
			warning = fmt.Sprint(m["log_level"])
		}
	}
	fmt.Println("tasks in the workflow:", len(tasks))
	fmt.Println("warning:", warning)
	// Output:
	// email: workflow req-XYZ
	// push: workflow req-XYZ
	// text: workflow req-XYZ
	// tasks in the workflow: 1
	// warning: WARN
}
