package sqlite

import "time"

// walRestartFrames is the WAL size (in pages) past which the checkpointer
// also restarts the log: PASSIVE checkpoints cannot rewind it while readers
// use old snapshots, and it must not grow without bound.
const walRestartFrames = 16384 // 64 MiB of 4 KiB pages

// checkpointLoop copies the write-ahead log into the database file in the
// background, at most once per interval while writes happen, on a
// connection of its own. The writer's automatic checkpoints are off: they
// would run inside whichever commit crosses the mark, holding every other
// write of the process meanwhile.
func (s *Store) checkpointLoop(interval time.Duration) {
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.checkpoint:
		}
		// Let the writes of the next interval share this checkpoint.
		t.Reset(interval)
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		var busy, frames, copied int
		if err := s.ckpt.QueryRowContext(s.ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
			continue // the next commit wakes it again
		}
		if frames > walRestartFrames {
			_, _ = s.ckpt.ExecContext(s.ctx, "PRAGMA wal_checkpoint(RESTART)")
		}
	}
}
