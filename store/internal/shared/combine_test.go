package shared

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

type call struct {
	n, rows int // rows 0 counts as 1
	done    chan struct{}
}

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
		Size: func(c *call) int { return max(c.rows, 1) },
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

// A batch waits for as many calls as the largest of the last few batches,
// not only the previous one: callers that fell into two groups come back
// together (here the previous batch was one call that filled a batch alone).
func TestCombinerLingerMendsASplit(t *testing.T) {
	h := newCombinerHarness(t, time.Hour)
	h.send(1)
	h.batch(t)
	h.send(8)
	h.proceed <- struct{}{}
	if got := h.batch(t); got != 8 {
		t.Fatalf("second batch = %d calls, want 8", got)
	}
	h.m.In <- &call{rows: h.m.Max} // fills a batch on its own
	h.proceed <- struct{}{}
	if got := h.batch(t); got != 1 {
		t.Fatalf("third batch = %d calls, want 1 (a full batch does not wait)", got)
	}
	h.send(4) // queued while the third batch runs
	h.proceed <- struct{}{}
	// With Linger an hour, no batch of fewer than eight may run: none
	// within a while (a check that cannot pass by timing).
	select {
	case n := <-h.sizes:
		t.Fatalf("a batch of %d calls ran without waiting for eight", n)
	case <-time.After(20 * time.Millisecond):
	}
	h.send(4) // the other group comes back
	if got := h.batch(t); got != 8 {
		t.Errorf("fourth batch = %d calls, want 8 (as many as the largest recent batch)", got)
	}
}

// A batch waits for the callers of the round before it, counting those
// that queued (blocked in Submit) while it ran, not only those it served:
// otherwise, when a round serves all but one looping caller, the batch that
// follows stops as soon as it is as large and leaves the same straggler out
// every time.
func TestCombinerCountsQueuedCallers(t *testing.T) {
	sizes := make(chan int)
	proceed := make(chan struct{})
	m := &Combiner[call]{In: make(chan *call), Max: 100, Linger: time.Hour,
		Size: func(*call) int { return 1 },
		Run: func(ctx context.Context, cs []*call) {
			select {
			case sizes <- len(cs):
			case <-ctx.Done(): // the test ended
			}
			<-proceed
		},
		Done: func(c *call) { close(c.done) }}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { m.Loop(ctx) })
	var g Gate
	submit := func() {
		c := &call{done: make(chan struct{})}
		wg.Go(func() {
			if err := Submit(ctx, &g, m, c, c.done); err != nil && ctx.Err() == nil {
				t.Error(err)
			}
		})
	}
	defer func() {
		cancel()
		close(proceed)
		wg.Wait()
	}()
	submit()
	if n := <-sizes; n != 1 {
		t.Fatalf("first batch = %d calls, want 1", n)
	}
	for range 8 {
		submit()
	}
	if err := waitUntil(func() bool { return m.queued.Load() == 8 }); err != nil {
		t.Fatal(err)
	}
	proceed <- struct{}{}
	// The round served one caller while eight queued: the next batch
	// waits for nine.
	select {
	case n := <-sizes:
		t.Fatalf("a batch of %d calls ran without waiting for nine", n)
	case <-time.After(20 * time.Millisecond):
	}
	submit() // the first caller comes back
	if n := <-sizes; n != 9 {
		t.Errorf("second batch = %d calls, want 9", n)
	}
	proceed <- struct{}{}
}

// A lone caller that loops never waits: the combiner ends its call only
// after it counted the callers of the round, so the caller cannot be
// counted twice (once served, once queued again) and make the next batch
// wait for a second caller that does not exist (Linger is an hour here:
// one such wait would stall the test).
func TestCombinerLoneCallerNeverLingers(t *testing.T) {
	m := &Combiner[call]{In: make(chan *call), Max: 100, Linger: time.Hour,
		Size: func(*call) int { return 1 },
		Run:  func(context.Context, []*call) {},
		Done: func(c *call) { close(c.done) }}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { m.Loop(ctx) })
	defer func() { cancel(); wg.Wait() }()
	var g Gate
	done := make(chan error, 1)
	go func() {
		for range 5000 {
			c := &call{done: make(chan struct{})}
			if err := Submit(ctx, &g, m, c, c.done); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a lone caller's 5000 calls did not complete in a minute: a batch waited for a caller that does not exist")
	}
}

// waitUntil polls cond (another goroutine's progress that no channel
// reports) until it holds or 10 s passed.
func waitUntil(cond func() bool) error {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("condition not met within 10 s")
		}
		runtime.Gosched()
	}
	return nil
}
