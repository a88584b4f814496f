package ship

import (
	"sync"
	"time"
)

// queue is the bounded in-memory queue between callers and the worker. It is
// a ring of record lengths over a ring of bytes: pushing a record copies it
// into the byte ring, so callers may reuse their buffers and enqueueing does
// not allocate once the ring has grown to its working size.
type queue struct {
	mu sync.Mutex

	buf    []byte   // byte ring; grows by doubling up to maxBytes
	bhead  int      // offset of the oldest record's first byte
	bytes  int      // bytes held
	lens   []uint32 // record-length ring, len == maxRecords
	rhead  int      // index of the oldest record
	n      int      // records held
	popped uint64   // records that left the head (taken or evicted), ever
	pushed uint64   // records pushed, ever

	maxRecords int
	maxBytes   int
	policy     Policy
	blockFor   time.Duration
	closed     bool

	// Worker wake-up: the worker announces how it sleeps, producers kick it
	// only when that state calls for it, so the common push does no channel
	// operation at all.
	sleep       sleepState
	kickRecords int // with sleepTimer: kick once n reaches this
	kickBytes   int // ... or bytes reaches this
	kick        chan struct{}

	// Blocked producers wait on space, which is closed and replaced when
	// records leave the queue.
	waiters int
	space   chan struct{}

	drops *counters
}

type sleepState uint8

const (
	awake      sleepState = iota // worker is running; it will look again
	sleepEmpty                   // worker sleeps on an empty queue: kick on any push
	sleepTimer                   // worker sleeps with a batch timer: kick when a batch is full
)

func newQueue(maxRecords, maxBytes int, policy Policy, blockFor time.Duration, kickRecords, kickBytes int, c *counters) *queue {
	initial := 64 << 10
	if initial > maxBytes {
		initial = maxBytes
	}
	return &queue{
		buf:         make([]byte, initial),
		lens:        make([]uint32, maxRecords),
		maxRecords:  maxRecords,
		maxBytes:    maxBytes,
		policy:      policy,
		blockFor:    blockFor,
		kickRecords: kickRecords,
		kickBytes:   kickBytes,
		kick:        make(chan struct{}, 1),
		space:       make(chan struct{}),
		drops:       c,
	}
}

// push copies p into the queue. It reports the reason when p was not
// accepted (dropNone when it was). Records evicted to make room are counted
// here.
func (q *queue) push(p []byte) DropReason { return q.pushWith(p, q.policy) }

func (q *queue) pushWith(p []byte, policy Policy) DropReason {
	size := len(p)
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return DropShutdown
	}
	if q.n+1 > q.maxRecords || q.bytes+size > q.maxBytes {
		switch policy {
		case DropNewest:
			q.mu.Unlock()
			return DropQueueFull
		case Block:
			if r := q.waitSpace(size); r != dropNone {
				q.mu.Unlock()
				return r
			}
		default: // DropOldest
			for q.n > 0 && (q.n+1 > q.maxRecords || q.bytes+size > q.maxBytes) {
				q.evictLocked()
			}
		}
	}
	if size > len(q.buf)-q.bytes {
		q.growLocked(q.bytes + size)
	}
	// Copy at the tail, in two pieces when the record wraps.
	tail := q.bhead + q.bytes
	if tail >= len(q.buf) {
		tail -= len(q.buf)
	}
	c := copy(q.buf[tail:], p)
	if c < size {
		copy(q.buf, p[c:])
	}
	ri := q.rhead + q.n
	if ri >= q.maxRecords {
		ri -= q.maxRecords
	}
	q.lens[ri] = uint32(size)
	q.n++
	q.bytes += size
	q.pushed++
	q.drops.queued.Add(1)
	if q.sleep != awake && (q.sleep == sleepEmpty || q.n >= q.kickRecords || q.bytes >= q.kickBytes) {
		q.sleep = awake
		select {
		case q.kick <- struct{}{}:
		default:
		}
	}
	q.mu.Unlock()
	return dropNone
}

// waitSpace blocks, with q.mu held on entry and exit, until a record of size
// bytes fits, the queue closes or the policy's timeout passes.
func (q *queue) waitSpace(size int) DropReason {
	var deadline <-chan time.Time
	if q.blockFor > 0 {
		t := time.NewTimer(q.blockFor)
		defer t.Stop()
		deadline = t.C
	}
	for q.n+1 > q.maxRecords || q.bytes+size > q.maxBytes {
		if q.closed {
			return DropShutdown
		}
		// Make sure the worker knows there is something to take.
		if q.sleep != awake {
			q.sleep = awake
			select {
			case q.kick <- struct{}{}:
			default:
			}
		}
		q.waiters++
		space := q.space
		q.mu.Unlock()
		select {
		case <-space:
			q.mu.Lock()
			q.waiters--
		case <-deadline:
			q.mu.Lock()
			q.waiters--
			return DropBlockTimeout
		}
	}
	return dropNone
}

// freedLocked wakes blocked producers after records left the queue.
func (q *queue) freedLocked() {
	if q.waiters > 0 {
		close(q.space)
		q.space = make(chan struct{})
	}
}

func (q *queue) evictLocked() {
	size := int(q.lens[q.rhead])
	q.advanceLocked(size)
	q.drops.queued.Add(-1)
	q.drops.dropped[DropQueueFull].Add(1)
}

func (q *queue) advanceLocked(size int) {
	q.bhead += size
	if q.bhead >= len(q.buf) {
		q.bhead -= len(q.buf)
	}
	q.bytes -= size
	q.rhead++
	if q.rhead == q.maxRecords {
		q.rhead = 0
	}
	q.n--
	q.popped++
	if q.n == 0 {
		q.bhead = 0
	}
}

// growLocked re-lays the byte ring out flat in a bigger buffer.
func (q *queue) growLocked(need int) {
	size := len(q.buf) * 2
	if size == 0 {
		size = 4096
	}
	for size < need {
		size *= 2
	}
	if size > q.maxBytes {
		size = q.maxBytes
	}
	nb := make([]byte, size)
	c := copy(nb, q.buf[q.bhead:min(q.bhead+q.bytes, len(q.buf))])
	if c < q.bytes {
		copy(nb[c:], q.buf[:q.bytes-c])
	}
	q.buf = nb
	q.bhead = 0
}

// take moves up to maxRecords records and maxBytes bytes (at least one record
// when any is queued) into b, and returns how many it moved.
func (q *queue) take(b *batch, maxRecords, maxBytes int) int {
	q.mu.Lock()
	moved := 0
	for q.n > 0 && moved < maxRecords {
		size := int(q.lens[q.rhead])
		if moved > 0 && b.rawBytes()+size > maxBytes {
			break
		}
		end := q.bhead + size
		if end <= len(q.buf) {
			b.add(q.buf[q.bhead:end])
		} else {
			b.add2(q.buf[q.bhead:], q.buf[:end-len(q.buf)])
		}
		q.advanceLocked(size)
		moved++
	}
	if moved > 0 {
		q.drops.queued.Add(int64(-moved))
		q.freedLocked()
	}
	q.mu.Unlock()
	return moved
}

// state reports what is queued.
func (q *queue) state() (records, bytes int) {
	q.mu.Lock()
	records, bytes = q.n, q.bytes
	q.mu.Unlock()
	return records, bytes
}

// sleepIfIdle records how the worker is about to sleep, unless there is
// already work for it: it returns false when the worker should not sleep.
func (q *queue) sleepIfIdle(withTimer bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		q.sleep = sleepEmpty
		return true
	}
	if q.n >= q.kickRecords || q.bytes >= q.kickBytes || !withTimer {
		return false
	}
	q.sleep = sleepTimer
	return true
}

// wake marks the worker awake again (after any wake-up source).
func (q *queue) wake() {
	q.mu.Lock()
	q.sleep = awake
	q.mu.Unlock()
}

// close refuses further pushes and releases blocked producers.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	if q.waiters > 0 {
		close(q.space)
		q.space = make(chan struct{})
	}
	q.mu.Unlock()
}

// marks returns the monotonic push and pop counters.
func (q *queue) marks() (pushed, popped uint64) {
	q.mu.Lock()
	pushed, popped = q.pushed, q.popped
	q.mu.Unlock()
	return pushed, popped
}

// discard empties the queue, counting every record as dropped for reason.
func (q *queue) discard(reason DropReason) int {
	q.mu.Lock()
	n := q.n
	for q.n > 0 {
		q.advanceLocked(int(q.lens[q.rhead]))
	}
	q.drops.queued.Add(int64(-n))
	q.drops.dropped[reason].Add(uint64(n))
	q.freedLocked()
	q.mu.Unlock()
	return n
}
