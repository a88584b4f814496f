// Command client is the client of the messaging example: it sends one
// message through POST /api/message/ inside an action of its own, with the
// request id as X-Request-ID, and prints that id: the workflow id that
// finds everything the request caused.
//
//	client --url http://127.0.0.1:8080 --log client.log --to 7 "See you at 5"
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/action/actionhttp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func run() (err error) {
	url := flag.String("url", "http://127.0.0.1:8080", "base URL of the web process")
	logPath := flag.String("log", "client.log", "log file (Eliot JSON lines)")
	to := flag.Int("to", 7, "recipient's user id")
	requestID := flag.String("request-id", "", "X-Request-ID to send (default: a new one)")
	flag.Parse()
	text := strings.Join(flag.Args(), " ")
	if text == "" {
		text = "See you at 5"
	}

	f, err := action.OpenFile(*logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	logger := action.New(f, &action.Options{Fields: action.ProcessFields()})
	id := *requestID
	if id == "" {
		id = action.NewID()
	}
	ctx := action.WithWorkflow(action.WithLogger(context.Background(), logger), id)
	ctx, a := action.Start(ctx, "client:send_message", slog.Int("to_user", *to))
	defer func() { a.Finish(err) }()

	body, _ := json.Marshal(map[string]any{"to_user": *to, "text": text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(*url, "/")+"/api/message/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	hc := &http.Client{Transport: &actionhttp.Transport{}, Timeout: 30 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST /api/message/: %s: %s", resp.Status, bytes.TrimSpace(out))
	}
	var created struct {
		MessageID string `json:"message_id"`
		JobID     string `json:"job_id"`
	}
	if err := json.Unmarshal(out, &created); err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	a.AddSuccessFields(slog.String("message_id", created.MessageID), slog.String("job_id", created.JobID))
	fmt.Println(id)
	return nil
}
