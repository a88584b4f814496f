package skein

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// RunDurationBuckets are the upper bounds, in seconds, of the duration
// buckets of [RunCount]: 5 ms to 1 hour.
var RunDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// RunWaitBuckets are the upper bounds, in seconds, of the buckets of
// [RunCount.Waited]: 50 ms to 30 minutes.
var RunWaitBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800}

// RunCount is what a dispatcher has counted, since it was made, of the runs
// of one kind of job on one queue: runs started, and runs ended by outcome.
// Unlike [Dispatcher.Jobs], which remembers the latest runs only, the counts
// never forget a run, so they suit monotonic metrics.
type RunCount struct {
	Queue   string
	Kind    string
	Started uint64
	// Waited is how long the started runs waited: from the time their job
	// was due (its scheduled time) to the start of the run, with buckets
	// RunWaitBuckets.
	Waited OutcomeCount
	// Ended maps an outcome to its runs: "succeeded", "failed" (to be
	// retried or discarded), "cancelled", "snoozed", "interrupted" (put
	// back by a stop) or "reassigned" (rescued from this dispatcher).
	Ended map[string]OutcomeCount
}

// OutcomeCount counts the runs that ended one way.
type OutcomeCount struct {
	Runs uint64
	// Seconds is the sum of the runs' durations.
	Seconds float64
	// Buckets[i] counts the runs that took at most RunDurationBuckets[i]
	// (cumulative, as Prometheus histograms are).
	Buckets []uint64
}

type runCountKey struct{ queue, kind string }

// runCounters are a dispatcher's RunCounts.
type runCounters struct {
	mu sync.Mutex
	m  map[runCountKey]*RunCount
}

func (c *runCounters) get(queue, kind string) *RunCount {
	if c.m == nil {
		c.m = make(map[runCountKey]*RunCount)
	}
	k := runCountKey{queue, kind}
	rc := c.m[k]
	if rc == nil {
		rc = &RunCount{Queue: queue, Kind: kind, Ended: map[string]OutcomeCount{}}
		c.m[k] = rc
	}
	return rc
}

func (c *runCounters) start(queue, kind string, waited time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rc := c.get(queue, kind)
	rc.Started++
	rc.Waited.observe(waited, RunWaitBuckets)
}

// observe counts one run of the given duration.
func (oc *OutcomeCount) observe(d time.Duration, bounds []float64) {
	secs := max(d.Seconds(), 0)
	if oc.Buckets == nil {
		oc.Buckets = make([]uint64, len(bounds))
	}
	oc.Runs++
	oc.Seconds += secs
	for i, le := range bounds {
		if secs <= le {
			oc.Buckets[i]++
		}
	}
}

func (c *runCounters) end(queue, kind, outcome string, took time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rc := c.get(queue, kind)
	oc := rc.Ended[outcome]
	oc.observe(took, RunDurationBuckets)
	rc.Ended[outcome] = oc
}

// RunCounts returns the dispatcher's run counts, ordered by queue and kind.
func (d *Dispatcher) RunCounts() []RunCount {
	c := &d.counts
	c.mu.Lock()
	out := make([]RunCount, 0, len(c.m))
	for _, rc := range c.m {
		cp := *rc
		cp.Waited.Buckets = slices.Clone(rc.Waited.Buckets)
		cp.Ended = make(map[string]OutcomeCount, len(rc.Ended))
		for o, oc := range rc.Ended {
			oc.Buckets = slices.Clone(oc.Buckets)
			cp.Ended[o] = oc
		}
		out = append(out, cp)
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b RunCount) int {
		if n := strings.Compare(a.Queue, b.Queue); n != 0 {
			return n
		}
		return strings.Compare(a.Kind, b.Kind)
	})
	return out
}

// runOutcome names how a run ended for RunCount, from the state its job
// moved to.
func runOutcome(state string, failed bool) string {
	switch state {
	case "completed":
		return "succeeded"
	case "cancelled":
		return "cancelled"
	case "scheduled":
		if !failed {
			return "snoozed"
		}
	case "available":
		return "interrupted"
	}
	return "failed"
}
