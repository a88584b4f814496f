package skein

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// EnqueueCount is what a [Client] has counted, since it was made, of the
// jobs of one kind it stored on one queue. Duplicates (refused for their
// unique key) are not counted; jobs of [Client.EnqueueTx] are counted once
// the insert returned, whether or not the caller's transaction then
// commits.
type EnqueueCount struct {
	Queue string
	Kind  string
	Jobs  uint64
}

// enqueueCounters are a client's EnqueueCounts: a lookup under a read lock
// and an atomic add per job.
type enqueueCounters struct {
	mu sync.RWMutex
	m  map[runCountKey]*atomic.Uint64
}

func (c *enqueueCounters) add(queue, kind string) {
	k := runCountKey{queue, kind}
	c.mu.RLock()
	n := c.m[k]
	c.mu.RUnlock()
	if n == nil {
		c.mu.Lock()
		if c.m == nil {
			c.m = map[runCountKey]*atomic.Uint64{}
		}
		if n = c.m[k]; n == nil {
			n = new(atomic.Uint64)
			c.m[k] = n
		}
		c.mu.Unlock()
	}
	n.Add(1)
}

// EnqueueCounts returns the client's enqueue counts, ordered by queue and
// kind. They never forget a job, so they suit monotonic metrics
// (skein_jobs_enqueued_total; see package monitor/skeinmon).
func (c *Client) EnqueueCounts() []EnqueueCount {
	c.counts.mu.RLock()
	out := make([]EnqueueCount, 0, len(c.counts.m))
	for k, n := range c.counts.m {
		out = append(out, EnqueueCount{Queue: k.queue, Kind: k.kind, Jobs: n.Load()})
	}
	c.counts.mu.RUnlock()
	slices.SortFunc(out, func(a, b EnqueueCount) int {
		if c := strings.Compare(a.Queue, b.Queue); c != 0 {
			return c
		}
		return strings.Compare(a.Kind, b.Kind)
	})
	return out
}
