package ship_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/skeinhq/skein/ship"
)

// A shipper is the io.Writer a logger writes JSON lines into; Close sends
// what is left before the program ends.
func Example() {
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Printf("%s %s\n%s", r.Method, r.Header.Get("Content-Type"), body)
	}))
	defer endpoint.Close()

	s, err := ship.New(ship.Config{URL: endpoint.URL})
	if err != nil {
		panic(err)
	}
	_, _ = s.Write([]byte(`{"task_uuid":"8c668cde","task_level":[1],"message_type":"app:start"}` + "\n"))
	_, _ = s.Write([]byte(`{"task_uuid":"8c668cde","task_level":[2],"message_type":"app:ready"}` + "\n"))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		panic(err)
	}
	fmt.Println(s.Stats())
	// Output:
	// POST application/x-ndjson
	// {"task_uuid":"8c668cde","task_level":[1],"message_type":"app:start"}
	// {"task_uuid":"8c668cde","task_level":[2],"message_type":"app:ready"}
	// received=2 delivered=2 dropped=0 pending=0 requests=1 retries=0
}

// An endpoint that wants the records encoded again as a JSON string under a
// fixed key, next to a bucket name: a template envelope.
func Example_template() {
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Printf("%s\n", body)
	}))
	defer endpoint.Close()

	s, err := ship.New(ship.Config{
		URL:      endpoint.URL,
		Envelope: ship.Envelope{Format: ship.Template, Template: `{"bucket":"team-a","payload":{{records_string}}}`},
	})
	if err != nil {
		panic(err)
	}
	_, _ = s.Write([]byte(`{"message_type":"hello","n":1}`))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.Close(ctx)
	// Output:
	// {"bucket":"team-a","payload":"[{\"message_type\":\"hello\",\"n\":1}]"}
}

// The shipper as a slog destination.
func ExampleShipper_Handler() {
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer endpoint.Close()

	s, err := ship.New(ship.Config{URL: endpoint.URL})
	if err != nil {
		panic(err)
	}
	log := slog.New(s.Handler(nil))
	log.Info("order placed", "order_id", 42)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.Close(ctx)
	fmt.Println(s.Stats().Delivered)
	// Output: 1
}
