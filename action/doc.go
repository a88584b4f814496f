// Package action is causal logging for Go in Eliot's model, native to
// [log/slog] and [context].
//
// Work is made of actions. An action has a start, the messages and child
// actions that happen inside it, and an end that says whether it succeeded or
// failed. The actions started from one root make a task, and every message of
// a task names its place in it: "task_uuid" (the task) and "task_level" (a
// path such as [3, 2]: the second thing that happened in the third thing that
// happened in the task). Sorting a task's messages by level gives the causal
// order, however many goroutines, processes and machines wrote them; `skein
// tree`, Python's eliot-tree and eliot.parse rebuild the tree.
//
// # Starting and ending actions
//
// [Start] starts an action inside the current action of a context (or a new
// task when there is none) and returns the action, which is also the context
// to use inside it:
//
//	ctx, a := action.Start(ctx, "shop:checkout", slog.Int("user_id", 42))
//	defer func() { a.Finish(err) }()
//	a.Log("shop:cart_loaded", slog.Int("items", 2))
//
// [Action.End] ends it as succeeded, [Action.Fail] as failed (with
// "exception", the error's Go type, and "reason", its text),
// [Action.Finish] as either; only the first call counts. [Run] runs a
// function inside an action and also records a panic. [StartTask] starts a
// new task whatever the context holds.
//
// # Logging with slog
//
// [Logger.Handler] is a [slog.Handler] that writes every record as a message
// of the context's current action, so plain slog calls made with a context
// land in the tree:
//
//	log := slog.New(logger.Handler(nil))
//	log.InfoContext(ctx, "user has text notifications disabled", "user", 7)
//
// [Wrap] instead adds "task_uuid", "task_level" and "workflow_id" to the
// records of any handler a team already uses.
//
// # The message format
//
// Every message is one JSON line and a valid Eliot message:
//
//	{"task_uuid":"…","task_level":[1],"timestamp":1795357700.167039,"workflow_id":"req-42","action_type":"shop:checkout","action_status":"started","user_id":42}
//
// Standard fields come first ("task_uuid", "task_level", "timestamp" in
// seconds, "workflow_id" when there is one, then "action_type" and
// "action_status" or "message_type"), then the user's fields, then the
// Logger's global fields (Options.Fields). A user field named like a
// standard field is written as "user_<name>". Values that JSON cannot hold
// become strings with a marker: NaN and the infinities "NaN", "+Inf" and
// "-Inf"; a value that fails to encode "!ERROR: …"; an overlong string is cut
// and ends "…[truncated: N bytes in all]". Logging never panics and never
// returns an error to the caller.
//
// Levels follow Eliot exactly: an action at level L writes its start at
// L+[1] and takes the next slot L+[n] for each message, each child action
// (whose own messages are then below that slot) and each serialized task id,
// and its end in the last slot. Any number of goroutines may log under one
// action at once; each message still takes its own slot. A message logged
// in an action that has already ended becomes a task of its own, linked by a
// [ParentTask] field, so that the ended action's tree stays complete.
//
// # Across goroutines, processes and machines
//
// [Action.SerializeTaskID] takes a slot and returns it as text
// ("<uuid>@/2/2"); [Continue] continues it elsewhere, in another process
// that got the id over a queue, a header or a job row, as an
// "eliot:remote_task" action (or a type of your choosing). Each id is to be
// continued exactly once. [Preserve] and [Go] do the same for goroutines
// that may outlive the action that started them, like Eliot's
// preserve_context. Package actionhttp carries the id over HTTP.
//
// # Workflows
//
// A workflow id groups every task one request caused. [WithWorkflow] puts
// one in a context; every message written under it carries "workflow_id".
// The HTTP middleware takes it from the X-Request-ID header, and skein's jobs
// keep it, so `skein tree --workflow ID` finds everything.
//
// # Destinations
//
// A [Logger] writes each message in one Write call to each of its
// destinations: a file from [OpenFile] (appended to, safe to share with other
// processes), os.Stdout, or any io.Writer (the skein shipper included). A
// failing destination never reaches the caller: its errors are counted
// ([Logger.WriteErrors]) and the first is reported once, as an
// eliot:destination_failure message on the other destinations, or on
// Options.ErrorOutput. Contexts choose their Logger with [WithLogger]; the
// rest use [Default] (os.Stderr until [SetDefault]).
package action
