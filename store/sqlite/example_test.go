package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/sqlite"
)

// A job's life in the embedded store: insert, claim, fail once, run again and
// complete.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "skein-example")
	defer os.RemoveAll(dir)

	s, err := sqlite.Open(ctx, &sqlite.Config{Path: filepath.Join(dir, "skein.db"), AutoMigrate: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	const dispatcher = "6f1c2b1e-0000-4000-8000-000000000001"
	_ = s.RegisterDispatcher(ctx, &store.Dispatcher{ID: dispatcher, Agents: []store.Agent{{Name: "main", Size: 4}}})
	_, _ = s.Insert(ctx, []*store.InsertParams{{
		ID: "req42_0b6f", WorkflowID: "req42", Kind: "send_email", Queue: "default",
		Args: []byte(`{"to":"ada@example.com"}`), MaxAttempts: 3,
	}})

	run := func(fail bool) {
		jobs, _ := s.Claim(ctx, &store.ClaimParams{Dispatcher: dispatcher, Agent: "main", Limit: 10})
		for _, j := range jobs {
			fmt.Printf("run %s attempt %d slot %d\n", j.ID, j.Attempt, j.Slot)
			out := &store.Outcome{ID: j.ID, Dispatcher: dispatcher, Slot: j.Slot, State: store.StateCompleted}
			if fail {
				out.State, out.Error = store.StateRetryable, &store.AttemptError{Error: "smtp: connection refused"}
			}
			_, _ = s.Finish(ctx, []*store.Outcome{out})
		}
	}
	run(true)
	run(false)

	j, _ := s.GetJob(ctx, "req42_0b6f")
	fmt.Println(j.State, len(j.Errors), j.Errors[0].Error)
	// Output:
	// run req42_0b6f attempt 1 slot 1
	// run req42_0b6f attempt 2 slot 2
	// completed 1 smtp: connection refused
}
