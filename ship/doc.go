// Package ship sends JSON log records to an HTTP endpoint without ever
// hurting the program that logs them.
//
// A [Shipper] is an io.Writer that takes one JSON record per Write (the
// form in which package action and slog's JSON handler write), copies it
// into a bounded in-memory queue and returns at once. A worker goroutine
// cuts the queue into batches (512 records, 1 MiB or 1 s, whichever comes
// first) and a few sender goroutines POST them, retrying only transient
// failures (connection errors, timeouts, 408, 429, 500, 502, 503, 504) with
// capped exponential backoff and full jitter, honouring Retry-After.
//
// # Never blocks, never grows
//
// The queue is bounded by records and by bytes. When it is full the default
// policy, [DropOldest], evicts the oldest records; [DropNewest] refuses the
// new one; [Block] makes the caller wait (optionally for a bounded time).
// Every lost record is counted by reason ([DropReason]) and the accounting
//
//	received = delivered + dropped + pending
//
// holds whenever the shipper is idle ([Stats.Balanced]). It is published
// through expvar ([Shipper.Publish]) and Prometheus ([Shipper.Collector]).
//
// # Refusals
//
// A status outside 2xx that is not retried (a 4xx such as 400 or 404) is
// permanent: the batch is dropped as "rejected" (or, with a spool, written
// to dead-letter.ndjson) and the start of the response body is reported
// through Config.Logger and [Shipper.LastError], so the user sees why.
//
// # Envelopes
//
// Bodies are NDJSON by default, or a JSON array, or a template such as
//
//	{"bucket": "team-a", "payload": {{records_string}}}
//
// whose placeholders put the records in as JSON or encoded again as a JSON
// string, per batch or per record. Presets make Loki push, OTLP/HTTP JSON
// logs and Elasticsearch bulk bodies.
//
// # Spool
//
// With Config.Spool.Dir set, records go through a checksummed append-only
// log on disk (package [github.com/skeinhq/skein/ship/spool]) and leave it
// only after a 2xx: an endpoint that is down for a day, or a kill -9 of the
// process, loses nothing up to the spool's cap. Delivery is then at least
// once; Eliot records carry (task_uuid, task_level), which lets a receiver
// drop duplicates.
//
// # Shutdown and crashes
//
// [Shipper.Flush] sends everything received so far and waits for it.
// [Shipper.Close] stops intake and drains until its context ends, then stops
// every request at once: it never hangs past the deadline. In main,
//
//	defer s.RecoverAndFlush(2 * time.Second)
//
// logs a panic as an eliot:traceback record, flushes it and panics again.
//
// The shipper starts working in [New]: a log destination must take records
// from its first moment. Its own reports go to Config.Logger, never into its
// own queue.
package ship
