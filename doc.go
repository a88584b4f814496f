// Package skein runs background jobs whose every attempt and every log line
// belongs to the causal tree of what enqueued them.
//
// A [Client] enqueues jobs into a [store.Store] (store/sqlite, embedded;
// store/postgres, distributed). A [Dispatcher], one per process, claims them
// with its agents and runs their handlers, registered by kind in
// [Handlers] with [AddHandler].
//
// # Jobs
//
// Job arguments are a Go type implementing [JobArgs] (a Kind method), stored
// as JSON. A handler gets them decoded, with the stored row:
//
//	type SendEmail struct{ To string `json:"to"` }
//
//	func (SendEmail) Kind() string { return "send_email" }
//
//	handlers := skein.NewHandlers()
//	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[SendEmail]) error {
//		slog.InfoContext(ctx, "sending", "to", job.Args.To)
//		return nil
//	})
//
// A handler's result decides what follows: nil completes the job; a plain
// error retries it after a [Backoff] (exponential with full jitter by
// default) until its attempts are spent, then discards it; [JobCancel]
// cancels it; [JobSnooze] runs it again later without spending an attempt;
// [JobDiscard] fails it for good. A panic is a failed attempt with its
// stack. A job's timeout is its handler's context deadline.
//
// Job states: scheduled, available, running, retryable, completed, cancelled,
// discarded. Every failed or interrupted attempt is kept on the job
// (time, attempt, error, stack).
//
// # Workflows and causality
//
// Every job belongs to a workflow: the one of the enqueuing context
// ([action.Workflow]: set by the HTTP middleware from X-Request-ID, or by the
// running job), or a new one. A job's id is "<workflow id>_<uuid>", so one
// grep finds everything a request caused.
//
// Once stored, a job is logged as a "skein:job" action, a child of the
// current action of the enqueuing context. Each run of the job (each claim,
// retries, snoozes and rescues included) is a "skein:attempt" action inside
// it, wherever it runs; the handler's context is that attempt, so plain
// slog.InfoContext calls through [action.Handler], nested actions and jobs
// enqueued by the handler land inside it. When the job reaches a final state
// the dispatcher ends the job action. The positions are derived from the
// job's stored task id and its claim counter (slot), so no
// (task_uuid, task_level) pair is ever written twice. An attempt whose
// dispatcher died stays visibly unfinished.
//
// # Dispatchers and agents
//
// A dispatcher registers itself (UUID, host, pid, agents) and heartbeats
// (every 5 s). Each agent claims up to its size in jobs of its queues and
// kinds, in priority then scheduled-time order, when notified of new jobs,
// when a slot frees, and at every poll (every 1 s). Polls and recent runs
// are kept in memory for the monitor ([Dispatcher.Polls], [Dispatcher.Jobs],
// [Dispatcher.Status]).
//
// There is no leader: every dispatcher rescues the running jobs of
// dispatchers whose heartbeat is older than the dead-after time (30 s), so a
// job of a killed process runs again within that time plus one poll. A
// dispatcher wrongly judged dead notices, logs it loudly and rejoins. A job
// the store says a live dispatcher holds but that it never received (a claim
// whose reply was lost) is put back by that dispatcher.
//
// [Dispatcher.Stop] stops gracefully (running jobs may finish within the
// context's deadline, the rest are put back at once);
// [Dispatcher.StopAndCancel] cancels running jobs. Final jobs are deleted
// after their retention (completed and cancelled 24 h, discarded 7 days).
//
// The [Executor] interface is the seam between an agent and the code that
// runs a job: [*Handlers] runs handlers in goroutines; other executors may
// run them in child processes.
package skein
