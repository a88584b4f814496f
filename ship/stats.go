package ship

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// DropReason says why records were dropped.
type DropReason uint8

const (
	dropNone DropReason = iota
	// DropQueueFull: the queue was full (evicted under drop_oldest,
	// refused under drop_newest).
	DropQueueFull
	// DropBlockTimeout: the caller waited Queue.BlockTimeout for room.
	DropBlockTimeout
	// DropTooLarge: one record larger than Queue.MaxBytes or
	// Batch.MaxBytes.
	DropTooLarge
	// DropInvalid: not a JSON object (checked by the first and last byte).
	DropInvalid
	// DropRejected: the endpoint refused the batch for good (a 4xx not in
	// Retry.Statuses); with a spool the batch is in dead-letter.ndjson.
	DropRejected
	// DropRetriesExhausted: transient failures outlasted Retry.MaxAttempts
	// or Retry.MaxElapsed (without a spool).
	DropRetriesExhausted
	// DropShutdown: still undelivered when Close's deadline passed (without
	// a spool), or written after Close.
	DropShutdown
	// DropSpoolFull: in the oldest spool segment, deleted to stay under
	// Spool.MaxBytes.
	DropSpoolFull
	// DropSpoolError: the spool could not be written, or an entry read
	// back from it was damaged.
	DropSpoolError
	numDropReasons
)

var dropNames = [numDropReasons]string{
	"", "queue_full", "block_timeout", "too_large", "invalid", "rejected",
	"retries_exhausted", "shutdown", "spool_full", "spool_error",
}

func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

// DropReasons lists every reason, in a fixed order.
func DropReasons() []DropReason {
	rs := make([]DropReason, 0, numDropReasons-1)
	for r := DropQueueFull; r < numDropReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

// counters are the shipper's accounting, updated atomically.
type counters struct {
	received  atomic.Uint64
	delivered atomic.Uint64
	dropped   [numDropReasons]atomic.Uint64
	queued    atomic.Int64
	inFlight  atomic.Int64
	spooled   atomic.Int64

	requests     atomic.Uint64
	failures     atomic.Uint64
	retries      atomic.Uint64
	bytesSent    atomic.Uint64
	deadLettered atomic.Uint64
	corrupt      atomic.Uint64
}

// Stats is a snapshot of a shipper's accounting. When the shipper is idle
// (after Flush or Close returned),
//
//	Received == Delivered + Dropped + Pending()
//
// holds exactly; while records move, the fields are read one by one and the
// sum may be off by the records in motion.
type Stats struct {
	// Received counts records handed to the shipper, plus records found in
	// the spool when it was opened.
	Received uint64
	// Delivered counts records in batches the endpoint answered with 2xx.
	Delivered uint64
	// Dropped counts lost records by reason.
	Dropped map[DropReason]uint64
	// Queued, InFlight and Spooled are the pending records: in the memory
	// queue, in a request or its retries, and on disk waiting to be read.
	Queued, InFlight, Spooled int64

	// Requests counts HTTP attempts; Failures the attempts that did not get
	// a 2xx; Retries the waits before another attempt.
	Requests, Failures, Retries uint64
	// BytesSent counts request body bytes of successful requests.
	BytesSent uint64
	// DeadLettered counts records written to dead-letter.ndjson (also
	// counted in Dropped[DropRejected]).
	DeadLettered uint64
	// CorruptRegions counts damaged spool regions skipped.
	CorruptRegions uint64
}

// DroppedTotal sums Dropped.
func (s Stats) DroppedTotal() uint64 {
	var n uint64
	for _, v := range s.Dropped {
		n += v
	}
	return n
}

// Pending is Queued + InFlight + Spooled.
func (s Stats) Pending() int64 { return s.Queued + s.InFlight + s.Spooled }

// Balanced reports whether Received == Delivered + Dropped + Pending.
func (s Stats) Balanced() bool {
	return int64(s.Received) == int64(s.Delivered)+int64(s.DroppedTotal())+s.Pending()
}

// String formats the accounting on one line, as the sidecar prints it.
func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "received=%d delivered=%d dropped=%d", s.Received, s.Delivered, s.DroppedTotal())
	for _, r := range DropReasons() {
		if s.Dropped[r] > 0 {
			fmt.Fprintf(&b, " dropped_%s=%d", r, s.Dropped[r])
		}
	}
	fmt.Fprintf(&b, " pending=%d", s.Pending())
	if s.Spooled > 0 {
		fmt.Fprintf(&b, " spooled=%d", s.Spooled)
	}
	if s.DeadLettered > 0 {
		fmt.Fprintf(&b, " dead_lettered=%d", s.DeadLettered)
	}
	fmt.Fprintf(&b, " requests=%d retries=%d", s.Requests, s.Retries)
	return b.String()
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Dropped:        make(map[DropReason]uint64, numDropReasons),
		Queued:         c.queued.Load(),
		InFlight:       c.inFlight.Load(),
		Spooled:        c.spooled.Load(),
		Requests:       c.requests.Load(),
		Failures:       c.failures.Load(),
		Retries:        c.retries.Load(),
		BytesSent:      c.bytesSent.Load(),
		DeadLettered:   c.deadLettered.Load(),
		CorruptRegions: c.corrupt.Load(),
	}
	s.Delivered = c.delivered.Load()
	for r := DropQueueFull; r < numDropReasons; r++ {
		s.Dropped[r] = c.dropped[r].Load()
	}
	s.Received = c.received.Load()
	return s
}
