package sqlite

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/skeinhq/skein/store"
)

// The writer leaves checkpoints to the background checkpointer unless
// CheckpointInterval is negative; the store works either way.
func TestCheckpointSettings(t *testing.T) {
	tests := []struct {
		name     string
		interval int64 // nanoseconds
		want     int
	}{
		{"default: background", 0, 0},
		{"negative: SQLite's automatic checkpoints", -1, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := Open(ctx, &Config{Path: filepath.Join(t.TempDir(), "ckpt.db"), AutoMigrate: true,
				CheckpointInterval: time.Duration(tt.interval)})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			var got int
			if err := s.writer.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&got); err != nil {
				t.Fatalf("PRAGMA wal_autocheckpoint: %v", err)
			}
			if got != tt.want {
				t.Errorf("writer's wal_autocheckpoint = %d, want %d", got, tt.want)
			}
			if (s.ckpt != nil) != (tt.want == 0) {
				t.Errorf("checkpointer running = %v, want %v", s.ckpt != nil, tt.want == 0)
			}
			params := make([]*store.InsertParams, 500)
			for i := range params {
				params[i] = &store.InsertParams{ID: "w_" + strconv.Itoa(i), WorkflowID: "w", Kind: "k", Queue: "q", MaxAttempts: 1}
			}
			if _, err := s.Insert(ctx, params); err != nil {
				t.Fatalf("Insert: %v", err)
			}
			if n, err := s.CountJobs(ctx, nil); err != nil || n != 500 {
				t.Errorf("CountJobs = %d, %v; want 500", n, err)
			}
		})
	}
}
