// Package tree rebuilds the task trees of Eliot-format logs and renders
// them: as text laid out exactly as eliot-tree lays it out, as JSON, or as
// one self-contained HTML page. It reads skein's own logs and real Python
// Eliot logs alike (the 1.13 ", " spacing and the newer compact form, raw
// UTF-8 or \u escapes, NaN and Infinity, gzip detected by content).
//
// # Pipeline
//
// A [Reader] turns JSON lines into [Message] values, one at a time; a line
// that is not a message comes back as a [*LineError] naming file:line, and
// reading carries on. A [Builder] takes messages in any order, from any
// number of files, and hands back each [Task] as soon as it is complete
// (eliot.parse's rule: every action has its start and end message and as
// many children as its end message's slot implies), then forgets it, so
// memory is bounded by the tasks still open. [Builder.Flush] returns the
// tasks that never completed, in the order their first message arrived.
// A renderer ([TextRenderer], [JSONRenderer], [HTMLRenderer]) writes each
// task.
//
// # Values
//
// Every field keeps its JSON text ([Value.Raw]), so integers, floats and
// integers beyond 64 bits print as they were logged. [StyleDefault] prints
// scalars as JSON literals (true, null, 1e+16); [StyleEliotTree] prints them
// as Python's repr (True, None, 1e+16, 3.0), which makes the text output
// byte-for-byte eliot-tree's.
//
// # Selection
//
// [Query] evaluates JMESPath against single messages, as eliot-tree's
// --select does; [Task.Any], [Task.HasFailure] and [WorkflowMatcher] select
// whole tasks. [Stats] summarises actions by type. [Tail] follows a growing
// log file across rotation and truncation.
package tree
