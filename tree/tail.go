package tree

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// TailConfig configures a [Tail]. The zero value is ready to use.
type TailConfig struct {
	// Poll is how often the file is checked for new data, rotation and
	// truncation once its end is reached. Defaults to 250ms.
	Poll time.Duration
	// FromEnd starts reading at the current end of the file instead of its
	// start. Defaults to false.
	FromEnd bool
}

// Tail reads a file that is still being written, like tail -F: at the end
// of the data it waits for more. When the path is renamed away and a new
// file created in its place (log rotation), the rest of the old file is read
// and then the new one from its start; when the file shrinks (truncation),
// reading restarts at its start. Read returns io.EOF only once the context
// given to OpenTail has ended and the data written until then is read.
type Tail struct {
	ctx  context.Context
	path string
	poll time.Duration
	f    *os.File
	off  int64
}

// OpenTail opens path for following. The file must exist.
func OpenTail(ctx context.Context, path string, cfg *TailConfig) (*Tail, error) {
	t := &Tail{ctx: ctx, path: path, poll: 250 * time.Millisecond}
	if cfg != nil && cfg.Poll > 0 {
		t.poll = cfg.Poll
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening log to follow: %w", err)
	}
	t.f = f
	if cfg != nil && cfg.FromEnd {
		if t.off, err = f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return nil, fmt.Errorf("seeking to the end of %s: %w", path, err)
		}
	}
	return t, nil
}

// Read reads available data, waiting for more at the end of the file. Once
// the context has ended it returns what is left and then io.EOF.
func (t *Tail) Read(p []byte) (int, error) {
	for {
		n, err := t.f.Read(p)
		t.off += int64(n)
		if n > 0 {
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("following %s: %w", t.path, err)
		}
		if t.ctx.Err() != nil {
			return 0, io.EOF
		}
		switched, err := t.reopen()
		if err != nil {
			return 0, err
		}
		if switched {
			continue
		}
		timer := time.NewTimer(t.poll)
		select {
		case <-t.ctx.Done():
			timer.Stop()
			return 0, io.EOF
		case <-timer.C:
		}
	}
}

// reopen handles rotation and truncation; it reports whether reading
// should be retried at once.
func (t *Tail) reopen() (bool, error) {
	st, err := os.Stat(t.path)
	if err != nil {
		return false, nil // rotated away and not yet recreated
	}
	cur, err := t.f.Stat()
	if err != nil {
		return false, fmt.Errorf("following %s: %w", t.path, err)
	}
	if !os.SameFile(st, cur) {
		// The old file was read to its end just now; switch.
		nf, err := os.Open(t.path)
		if err != nil {
			return false, nil
		}
		t.f.Close()
		t.f, t.off = nf, 0
		return true, nil
	}
	if cur.Size() < t.off {
		if _, err := t.f.Seek(0, io.SeekStart); err != nil {
			return false, fmt.Errorf("following %s after truncation: %w", t.path, err)
		}
		t.off = 0
		return true, nil
	}
	return false, nil
}

// Close closes the file.
func (t *Tail) Close() error { return t.f.Close() }
