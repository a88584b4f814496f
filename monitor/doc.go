// Package monitor answers the questions an operator asks a running skein
// system, as zc.async's monitor did: "is this dispatcher alive, what is it
// doing, what did it do in the last hour" (the async tools, from the
// dispatcher's memory) and "who is dead, what is stuck, how deep are the
// queues" (the asyncdb tools, from the store).
//
// The same commands are served four ways:
//
//   - [Server]: a line protocol on TCP (default 127.0.0.1:8701) and unix
//     sockets, one command per connection, so that
//     `echo 'async status' | nc 127.0.0.1 8701` works, or an interactive
//     session ("interactive", "quit", an empty line repeats);
//   - [Monitor.Handler]: an HTTP JSON API, GET /api/async/status,
//     /api/asyncdb/jobs?state=failed&kind=send_*;
//   - [Monitor.Collector] and [Monitor.MetricsHandler]: Prometheus metrics
//     named skein_* with low-cardinality labels;
//   - [StatsdReporter]: statsd gauges every 10 s.
//
// # Commands
//
// A command is a plugin ("async" or "asyncdb"), a tool, positional words,
// then key:value modifiers:
//
//	async status
//	async jobstats queue:default agent:main since:1H
//	async polls since:10M before:5M
//	asyncdb jobs failed kind:send_* end:since1H display:details
//
// "help", "async help" and "async help <tool>" describe them all.
// Intervals are written [nD][nH][nM][nS] (5M, 1H30M); an integer where an
// interval is expected is a poll key. Answers are JSON with sorted keys and
// an indent of 4, durations as {"days", "hours", "minutes", "seconds"} with
// zero parts left out, times in UTC ISO 8601 ending in Z. A bad command gets
// one line, "error: ...", naming the word at fault; the connection and the
// server carry on.
//
// # Sources
//
// The async tools read a [Dispatcher]: an interface of three methods
// (Status, Polls, Jobs) that package monitor/skeinmon implements for
// skein's own dispatcher and tests implement with a fake clock. The asyncdb
// tools read a [store.Store].
package monitor
