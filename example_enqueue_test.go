package skein_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/store/sqlite"
)

// SendWelcome are the arguments of the send_welcome job.
type SendWelcome struct {
	User string `json:"user"`
}

// Kind names the job's handler.
func (SendWelcome) Kind() string { return "send_welcome" }

// A client enqueues a job; a dispatcher in the same (or another) process
// runs it.
func Example_enqueueAndWork() {
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
	logger := action.New(io.Discard, nil) // in production: a file, or the shipper

	handlers := skein.NewHandlers()
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[SendWelcome]) error {
		fmt.Println("welcome,", job.Args.User)
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
	defer d.Stop(ctx)

	client, err := skein.NewClient(st, &skein.ClientConfig{Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	res, err := client.Enqueue(action.WithWorkflow(ctx, "req-1"), SendWelcome{User: "alice"}, &skein.EnqueueOpts{Queue: "default"})
	if err != nil {
		log.Fatal(err)
	}
	for e := range events {
		if e.JobID == res.Job.ID && e.State.Final() {
			fmt.Println("job", e.State)
			break
		}
	}
	// Output:
	// welcome, alice
	// job completed
}
