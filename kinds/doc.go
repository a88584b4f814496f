// Package kinds holds skein's built-in job kinds, so that a dispatcher is
// useful without writing Go: "exec" runs a command in a child process and
// "http" makes an HTTP request. `skein serve` registers both.
//
// # exec
//
// An [ExecArgs] job runs its command (no shell: argv as given) in a child
// process of its own process group:
//
//	{"command": ["python3", "send_text.py", "--user", "7"], "env": {"LANG": "C"}}
//
// The child's standard output and error are read line by line. A line that
// is an Eliot message (a JSON object with "task_uuid" and "task_level") is
// written to the log as it is ([action.Logger.WriteMessage]); any other line
// becomes an "exec:stdout" or "exec:stderr" message, field "line", in the
// attempt's action. The child's environment adds:
//
//	SKEIN_TASK_ID      a serialized task id for this attempt (action.SerializeTaskID)
//	SKEIN_WORKFLOW_ID  the job's workflow id
//	SKEIN_JOB_ID       the job's id
//	SKEIN_JOB_ATTEMPT  the attempt number, 1 for the first
//
// so a child that continues SKEIN_TASK_ID — with [action.Continue] in Go, or
// with Python eliot's Action.continue_task(task_id=...) — logs into the same
// tree as the job. Exit status 0 completes the job (its result holds the
// exit code and the tail of its standard output); another status fails the
// attempt with an [*ExitError] holding the code and the tail of standard
// error, and the job is retried. A command that cannot be found, or empty
// args, fail the job for good ([skein.JobDiscard]).
//
// The run is bounded by the job's timeout (its context's deadline) or, when
// the job has none, by ExecConfig.Timeout. When the context ends the process
// group gets SIGTERM, then SIGKILL after ExecConfig.KillGrace.
//
// Anyone who can enqueue jobs into a store served with the exec kind can run
// commands as the dispatcher's user: give the store the protection you would
// give a shell.
//
// # http
//
// An [HTTPArgs] job makes one request through [actionhttp.Transport], so the
// task-id, workflow and traceparent headers go along and a server using
// actionhttp.Middleware logs into the job's tree:
//
//	{"method": "POST", "url": "http://127.0.0.1:8080/hook", "json": {"id": 7}}
//
// A status below 400 completes the job (its result holds the status and the
// start of the body). A status of 500 or more, 408, 429 or a network error
// fails the attempt and the job is retried; any other 4xx fails the job for
// good ([skein.JobDiscard]): repeating the same request would get the same
// answer.
package kinds
