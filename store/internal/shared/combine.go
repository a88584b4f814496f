package shared

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skeinhq/skein/store"
)

// Combiner runs calls of one kind in batches from one goroutine: calls that
// arrive while a batch runs go together in the next one. An idle combiner
// runs a call at once. With Linger, a batch that gathered fewer calls than
// the callers of any of the last few rounds (lingerWindow: those a round
// served and those that queued while it ran) waits up to Linger for as
// many: callers that loop (each waiting for its own call, then sending
// the next) come back together, and without the wait the first of them
// would run alone and the others after it, in two commits instead of one,
// time after time. Measuring against the largest recent batch rather than
// the previous one also mends a split: eight callers that once fell into
// two groups of four (one group late by more than Linger) would otherwise
// alternate, each group waiting for the other's commit, for good.
type Combiner[C any] struct {
	In   chan *C
	Max  int                                // most rows in one batch
	Size func(c *C) int                     // rows of a call
	Run  func(ctx context.Context, cs []*C) // runs a batch, ending every call
	// Linger, when positive, lets a batch smaller (in calls) than the
	// callers of recent batches wait up to Linger for as many calls.
	Linger time.Duration
	// Done, when set, ends a call (wakes its caller); Loop calls it for
	// every call of a batch once Run returned, and Run then must not end
	// calls itself. Only then are the callers that queued while Run ran
	// counted among the callers of its round: a caller that Run itself
	// woke could already be queued again, and would count twice.
	Done func(c *C)

	// queued counts the callers blocked sending on In (see Submit).
	queued atomic.Int64
}

// lingerWindow is how many recent batches a lingering batch measures
// itself against: callers that became fewer cost at most that many waits.
const lingerWindow = 8

// Loop runs batches until ctx ends.
func (m *Combiner[C]) Loop(ctx context.Context) {
	var batch []*C
	var linger *time.Timer
	if m.Linger > 0 {
		linger = time.NewTimer(m.Linger)
		linger.Stop()
	}
	var recent [lingerWindow]int // sizes of the last batches, in calls
	next := 0
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-m.In:
			m.queued.Add(-1) // the receiver uncounts: see Submit
			batch = append(batch[:0], c)
		}
		rows := m.Size(batch[0])
	more:
		for rows < m.Max {
			select {
			case c := <-m.In:
				m.queued.Add(-1) // the receiver uncounts: see Submit
				batch = append(batch, c)
				rows += m.Size(c)
			default:
				break more
			}
		}
		want := slices.Max(recent[:])
		if linger != nil && len(batch) < want && rows < m.Max {
			linger.Reset(m.Linger)
		wait:
			for len(batch) < want && rows < m.Max {
				select {
				case c := <-m.In:
					m.queued.Add(-1) // the receiver uncounts: see Submit
					batch = append(batch, c)
					rows += m.Size(c)
				case <-linger.C:
					break wait
				case <-ctx.Done():
					break wait
				}
			}
			linger.Stop()
		}
		m.Run(ctx, batch)
		// The callers of this round: those it served and, when Loop ends
		// the calls, those that queued meanwhile. A batch that stopped at
		// as many calls as the round before it would otherwise leave the
		// same straggler out every time.
		recent[next] = len(batch)
		if m.Done != nil {
			recent[next] += max(int(m.queued.Load()), 0) // calls sent to In directly are not counted
			for _, c := range batch {
				m.Done(c)
			}
		}
		next = (next + 1) % lingerWindow
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
	// Counted while it waits to be received: Loop uncounts it as it
	// receives it (so that a caller it served is never still counted
	// when it samples the count), this goroutine if it gives up.
	m.queued.Add(1)
	select {
	case m.In <- c:
	case <-ctx.Done():
		m.queued.Add(-1)
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w (the call was already sent and may still take effect)", ctx.Err())
	}
}
