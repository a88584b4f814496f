package shared

import (
	"context"
	"sync"
	"testing"
	"time"
)

type call struct{ n int }

// combinerHarness runs a Combiner whose Run reports each batch's size and
// waits for the test to let it finish.
type combinerHarness struct {
	m       *Combiner[call]
	sizes   chan int
	proceed chan struct{}
	stop    func()
}

func newCombinerHarness(t *testing.T, linger time.Duration) *combinerHarness {
	h := &combinerHarness{sizes: make(chan int), proceed: make(chan struct{})}
	// A buffered In: a send returns once the call is queued, so the test
	// knows what the loop will find.
	h.m = &Combiner[call]{In: make(chan *call, 16), Max: 100, Linger: linger,
		Size: func(*call) int { return 1 },
		Run: func(ctx context.Context, cs []*call) {
			select {
			case h.sizes <- len(cs):
				<-h.proceed
			case <-ctx.Done():
			}
		}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { h.m.Loop(ctx) })
	h.stop = func() {
		cancel()
		close(h.proceed) // a Run still waiting returns
		wg.Wait()
	}
	t.Cleanup(h.stop)
	return h
}

func (h *combinerHarness) send(n int) {
	for i := range n {
		h.m.In <- &call{n: i}
	}
}

func (h *combinerHarness) batch(t *testing.T) int {
	t.Helper()
	select {
	case n := <-h.sizes:
		return n
	case <-time.After(20 * time.Second):
		t.Fatal("no batch ran")
		return 0
	}
}

// A batch smaller than the previous one waits for as many calls.
func TestCombinerLingerGathersAsManyAsBefore(t *testing.T) {
	h := newCombinerHarness(t, time.Hour)
	h.send(1)
	if got := h.batch(t); got != 1 {
		t.Fatalf("first batch = %d calls, want 1 (an idle combiner runs at once)", got)
	}
	h.send(3) // they queue while the first runs
	h.proceed <- struct{}{}
	if got := h.batch(t); got != 3 {
		t.Fatalf("second batch = %d calls, want 3", got)
	}
	h.proceed <- struct{}{}
	h.send(1)
	h.send(2)
	if got := h.batch(t); got != 3 {
		t.Errorf("third batch = %d calls, want 3 (it waits for as many as the previous)", got)
	}
}

// The wait is bounded: a lone call runs after Linger.
func TestCombinerLingerIsBounded(t *testing.T) {
	h := newCombinerHarness(t, time.Millisecond)
	h.send(1)
	h.batch(t)
	h.send(2)
	h.proceed <- struct{}{}
	if got := h.batch(t); got != 2 {
		t.Fatalf("second batch = %d calls, want 2", got)
	}
	h.proceed <- struct{}{}
	h.send(1)
	if got := h.batch(t); got != 1 {
		t.Errorf("lone call's batch = %d calls, want 1", got)
	}
}
