package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/sqlite"
)

// Operators cancel a job that has not started and retry it later: the
// retried job is available at once, and its slot moves past the end of its
// cancelled job action. After Close, every call says the store is closed.
func ExampleStore_RetryJobs() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "skein-example")
	defer os.RemoveAll(dir)

	s, err := sqlite.Open(ctx, &sqlite.Config{Path: filepath.Join(dir, "skein.db"), AutoMigrate: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, _ = s.Insert(ctx, []*store.InsertParams{{
		ID: "req7_91ac", WorkflowID: "req7", Kind: "send_email", Queue: "default", MaxAttempts: 3,
	}})

	jobs, _ := s.CancelJobs(ctx, []string{"req7_91ac"})
	fmt.Println(jobs[0].ID, jobs[0].State, "slot", jobs[0].Slot)
	jobs, _ = s.RetryJobs(ctx, []string{"req7_91ac"})
	fmt.Println(jobs[0].ID, jobs[0].State, "slot", jobs[0].Slot)
	_, err = s.RetryJobs(ctx, []string{"req7_0000"})
	fmt.Println(errors.Is(err, store.ErrNotFound), err)

	_ = s.Close()
	_, err = s.GetJob(ctx, "req7_91ac")
	fmt.Println(errors.Is(err, store.ErrClosed), err)
	// Output:
	// req7_91ac cancelled slot 0
	// req7_91ac available slot 1
	// true retrying job req7_0000: not found
	// true reading job req7_91ac: store closed
}
