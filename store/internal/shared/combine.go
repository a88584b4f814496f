package shared

import (
	"context"
	"fmt"
	"sync"

	"github.com/skeinhq/skein/store"
)

// Combiner runs calls of one kind in batches from one goroutine: calls that
// arrive while a batch runs go together in the next one. There is no timer:
// an idle combiner runs a call at once.
type Combiner[C any] struct {
	In   chan *C
	Max  int                                // most rows in one batch
	Size func(c *C) int                     // rows of a call
	Run  func(ctx context.Context, cs []*C) // runs a batch, ending every call
}

// Loop runs batches until ctx ends.
func (m *Combiner[C]) Loop(ctx context.Context) {
	var batch []*C
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-m.In:
			batch = append(batch[:0], c)
		}
		rows := m.Size(batch[0])
	more:
		for rows < m.Max {
			select {
			case c := <-m.In:
				batch = append(batch, c)
				rows += m.Size(c)
			default:
				break more
			}
		}
		m.Run(ctx, batch)
		clear(batch)
	}
}

// Gate lets Close wait for the calls in flight before it stops the
// combiners, and turns later calls away.
type Gate struct {
	mu     sync.RWMutex
	closed bool
}

func (g *Gate) enter() bool {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return false
	}
	return true
}

func (g *Gate) leave() { g.mu.RUnlock() }

// Close waits for the calls in flight and turns later ones away.
func (g *Gate) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// Submit hands c to m and waits until done is closed or ctx ends. When ctx
// ends first the call may still run: an insert may then still happen.
func Submit[C any](ctx context.Context, g *Gate, m *Combiner[C], c *C, done <-chan struct{}) error {
	if !g.enter() {
		return store.ErrClosed
	}
	defer g.leave()
	select {
	case m.In <- c:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w (the call was already sent and may still take effect)", ctx.Err())
	}
}
