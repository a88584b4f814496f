package skein_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/sqlite"
)

// ChargeCard are the arguments of the charge_card job.
type ChargeCard struct {
	Cents int `json:"cents"`
}

// Kind names the job's handler.
func (ChargeCard) Kind() string { return "charge_card" }

// A handler's error retries the job after a backoff; JobCancel, JobSnooze
// and JobDiscard say otherwise. Here the payment gateway fails twice.
func Example_retries() {
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
	logger := action.New(io.Discard, nil)

	handlers := skein.NewHandlers()
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[ChargeCard]) error {
		if job.Args.Cents <= 0 {
			return skein.JobDiscard(errors.New("nothing to charge")) // no retry can fix it
		}
		if job.Attempt < 3 {
			return fmt.Errorf("gateway unavailable (attempt %d)", job.Attempt)
		}
		return nil
	})
	d, err := skein.NewDispatcher(st, &skein.Config{
		Handlers: handlers,
		Logger:   logger,
		// The default is exponential with full jitter from 1 s; shortened
		// for the example.
		Backoff: skein.ExponentialBackoff{Base: time.Millisecond, Max: 10 * time.Millisecond},
	})
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
	res, err := client.Enqueue(ctx, ChargeCard{Cents: 1250}, &skein.EnqueueOpts{MaxAttempts: 5})
	if err != nil {
		log.Fatal(err)
	}
	for e := range events {
		if e.JobID != res.Job.ID {
			continue
		}
		fmt.Println(strings.TrimSpace(fmt.Sprintf("attempt %d: %s %s", e.Attempt, e.State, e.Error)))
		if e.State.Final() {
			break
		}
	}
	job, err := st.GetJob(ctx, res.Job.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("errors kept on the job:", len(job.Errors), job.State == store.StateCompleted)
	// Output:
	// attempt 1: retryable gateway unavailable (attempt 1)
	// attempt 2: retryable gateway unavailable (attempt 2)
	// attempt 3: completed
	// errors kept on the job: 2 true
}
