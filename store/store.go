// Package store defines where skein keeps its jobs and dispatchers: the
// [Store] interface every storage driver implements, the types that cross it,
// and the errors it returns.
//
// Two drivers exist: store/sqlite (the embedded default, one file) and
// store/postgres (many dispatchers on many hosts sharing one database).
// store/open turns a DSN into a Store, and store/storetest is the conformance
// suite every driver passes. Applications use the root package skein, which
// is written against this interface; they rarely call a Store directly.
//
// # Jobs and their states
//
// A job is inserted scheduled (its time has not come) or available. A
// dispatcher's agent claims it ([Store.Claim]): it becomes running, its
// attempt and its slot are incremented and it records who holds it. The
// holder then finishes it ([Store.Finish]) with one of: completed, retryable
// (failed, to run again at a given time), scheduled (snoozed), available
// (released, e.g. on a graceful stop), cancelled or discarded. Scheduled and
// retryable jobs whose time has come are claimed exactly like available ones.
// Completed, cancelled and discarded are final; [Store.Cleanup] deletes them
// after their retention time. Operators move jobs outside any run:
// [Store.RetryJobs] makes waiting and final jobs available now,
// [Store.CancelJobs] cancels jobs that have not started.
//
//	scheduled ─┐                 ┌─► completed
//	retryable ─┼─► available ─► running ─┼─► retryable / scheduled / available
//	           └──(time has come)┘       └─► cancelled / discarded
//
// # Holding a job
//
// Only the dispatcher that claimed a job may finish it, and only for the run it
// claimed: every claim increments the job's [Job.Slot], and [Outcome] names
// both the dispatcher and the slot. A job rescued from a dispatcher judged dead
// and claimed again elsewhere is therefore never finished by the old holder.
//
// # Dispatchers and rescue
//
// Dispatchers register ([Store.RegisterDispatcher]) and heartbeat. Any live
// dispatcher calls [Store.RescueDead]: dispatchers whose heartbeat is older
// than the dead-after time are marked dead and their running jobs go back to
// available (or to discarded when they have no attempt left), each with an
// [AttemptError] flagged Interrupted and Reassigned. A dispatcher wrongly
// judged dead gets a [*DispatcherDeadError] from its next heartbeat or claim
// and registers again.
//
// # Time
//
// Times are UTC. Where a Params struct has a Now field, zero means the store's
// own clock: the database server's for PostgreSQL, the process's for SQLite.
// Tests set Now to move time without sleeping.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Store keeps jobs and dispatchers. Implementations are safe for concurrent
// use by many goroutines, and by many processes sharing the same database.
//
// Every method that takes a Params pointer accepts nil where the doc says so.
//
// Writes may be combined with concurrent ones into one statement or
// transaction (see the drivers); a call returns once its own writes are
// committed. A call whose context ends while it waits returns the context's
// error, yet may still take effect.
type Store interface {
	// Name is the driver name: "sqlite" or "postgres".
	Name() string

	// Insert inserts jobs in one transaction and returns one result per
	// param, in order. A job whose UniqueKey is held by another job that is
	// scheduled, available, running or retryable is not inserted: its result
	// is that other job, with Duplicate set. An ID that already exists fails
	// the whole call with an error wrapping ErrJobExists. Queues that got available jobs are notified.
	Insert(ctx context.Context, params []*InsertParams) ([]InsertResult, error)

	// InsertTx is Insert inside the caller's own transaction, so the jobs
	// exist only if that transaction commits. tx is a pgx.Tx or a *sql.Tx
	// for store/postgres, a *sql.Tx on the same database file for
	// store/sqlite; any other type fails with ErrUnsupportedTx.
	// Notifications are sent on commit (PostgreSQL) or at once (SQLite,
	// where a waiter that finds nothing simply polls again).
	InsertTx(ctx context.Context, tx any, params []*InsertParams) ([]InsertResult, error)

	// Claim moves up to Limit jobs to running for one agent of one
	// dispatcher and returns them, in claim order: priority (smaller
	// first), then scheduled time; jobs equal in both come in no particular
	// order (usually insertion order). Eligible jobs are available,
	// or scheduled or retryable with ScheduledAt <= now, in one of Queues
	// (all queues when empty) and of one of Kinds (all kinds when empty).
	// Concurrent claimers never get the same job. Each claimed job has
	// Attempt and Slot incremented, AttemptedAt set to now, AttemptedBy and
	// AttemptedAgent set. A dispatcher that is not registered or is marked
	// dead gets a *DispatcherDeadError (or ErrDispatcherNotFound).
	Claim(ctx context.Context, params *ClaimParams) ([]*Job, error)

	// Finish applies outcomes, each only if its job is still running,
	// held by Outcome.Dispatcher at Outcome.Slot. It returns the IDs of the
	// outcomes that did not apply for that reason (in input order); other
	// failures are the error. Queues that got available jobs are notified.
	Finish(ctx context.Context, outcomes []*Outcome) (notHeld []string, err error)

	// FinishClaim is Finish(outcomes) followed by Claim(params), in one
	// transaction where the driver can: a dispatcher that stores the
	// outcomes of its last jobs and claims the next ones pays one commit
	// instead of two (store/postgres; store/sqlite runs the two calls).
	// notHeld is Finish's, jobs are Claim's, and a job an outcome made
	// available may be claimed again at once. When the outcomes were
	// stored but the claim failed, the error is a *ClaimAfterFinishError
	// (wrapping, say, a *DispatcherDeadError: a dead dispatcher holds no
	// job, so its outcomes are all not held) and notHeld is valid; on any
	// other error neither is known to have taken effect. outcomes may be
	// empty.
	FinishClaim(ctx context.Context, outcomes []*Outcome, params *ClaimParams) (notHeld []string, jobs []*Job, err error)

	// RegisterDispatcher inserts or replaces a dispatcher (by ID), alive,
	// with its heartbeat set to now. A dispatcher that was marked dead
	// calls it again to rejoin.
	RegisterDispatcher(ctx context.Context, d *Dispatcher) error

	// Heartbeat records that a dispatcher is alive. It returns a
	// *DispatcherDeadError if the dispatcher was marked dead (it must then
	// register again; its running jobs were rescued) and
	// ErrDispatcherNotFound if it is not registered.
	Heartbeat(ctx context.Context, dispatcherID string) error

	// DeregisterDispatcher removes a stopping dispatcher. Jobs it still holds
	// are released first, as Finish with StateAvailable and UndoAttempt
	// would, each with an Interrupted error entry. Unknown IDs are not an
	// error.
	DeregisterDispatcher(ctx context.Context, dispatcherID string) error

	// ListDispatchers returns registered dispatchers, alive and dead,
	// ordered by ID.
	ListDispatchers(ctx context.Context) ([]*Dispatcher, error)

	// RescueDead marks dead every live dispatcher other than params.By whose
	// heartbeat is older than params.DeadAfter, then puts the running jobs
	// of dead or unregistered dispatchers back to available (discarded when
	// Attempt >= MaxAttempts), each with an AttemptError flagged Interrupted
	// and Reassigned. It returns what it did so the caller can log it.
	RescueDead(ctx context.Context, params *RescueParams) (*RescueResult, error)

	// Subscribe returns a subscription that receives a notification when
	// jobs may have become available on one of queues (all queues when
	// empty). Notifications are hints that coalesce: a waiter must still
	// claim, and must still poll (default every 1 s) because hints can be
	// lost. See the driver docs for how far they reach.
	Subscribe(ctx context.Context, queues []string) (Subscription, error)

	// Cleanup deletes final jobs older than their retention (by
	// FinalizedAt), and dead dispatchers, in batches. nil params means the
	// defaults.
	Cleanup(ctx context.Context, params *CleanupParams) (*CleanupResult, error)

	// RetryJobs makes jobs run again now, in one transaction: each job
	// that is completed, cancelled, discarded, retryable or scheduled
	// becomes available with ScheduledAt set to now and FinalizedAt
	// cleared; one whose Attempt has reached MaxAttempts gets one more
	// attempt (MaxAttempts = Attempt + 1). A final job also has its Slot
	// incremented, since its job action already ended at the position its
	// next run would otherwise take (see the root package's EndJobAction).
	// Running and available jobs are left alone. It returns every job as
	// it is after the call, in the order of ids: the caller tells the
	// retried jobs from those left alone by their state. An unknown id
	// fails the whole call with an error wrapping ErrNotFound that names
	// it. A job whose UniqueKey another scheduled, available, running or
	// retryable job holds also fails the whole call, with an error naming
	// that job. Queues that got available jobs are notified.
	RetryJobs(ctx context.Context, ids []string) ([]*Job, error)

	// CancelJobs cancels jobs that have not started, in one transaction:
	// each job that is scheduled, available or retryable becomes cancelled
	// with FinalizedAt set to now. Running jobs are left alone, and so are
	// final ones. It returns every job as it is after the call, in the
	// order of ids; an unknown id fails the whole call with an error
	// wrapping ErrNotFound that names it. The store writes no log: the
	// caller ends each cancelled job's action (the root package's
	// EndJobAction).
	CancelJobs(ctx context.Context, ids []string) ([]*Job, error)

	// GetJob returns one job, or an error wrapping ErrNotFound.
	GetJob(ctx context.Context, id string) (*Job, error)

	// ListJobs returns jobs matching params. nil params means the newest
	// DefaultListLimit jobs.
	ListJobs(ctx context.Context, params *ListJobsParams) (*JobPage, error)

	// CountJobs counts jobs matching filter (all jobs when nil).
	CountJobs(ctx context.Context, filter *JobFilter) (int64, error)

	// Stats returns per-queue counts by state and the oldest waiting and
	// running times, ordered by queue name.
	Stats(ctx context.Context) ([]*QueueStats, error)

	// MigrateUp applies pending schema migrations up to opts.TargetVersion
	// (the latest when nil or opts is nil) and returns those applied.
	MigrateUp(ctx context.Context, opts *MigrateOpts) ([]Migration, error)

	// MigrateDown reverts migrations down to opts.TargetVersion (one step
	// when nil or opts is nil; 0 removes everything) and returns those
	// reverted, newest first.
	MigrateDown(ctx context.Context, opts *MigrateOpts) ([]Migration, error)

	// SchemaStatus reports the database's schema version and every known
	// migration.
	SchemaStatus(ctx context.Context) (*SchemaStatus, error)

	// CheckSchema returns nil when the database schema is exactly the
	// version this code expects, else a *SchemaVersionError.
	CheckSchema(ctx context.Context) error

	// Close releases the store's connections and stops its goroutines.
	// Subscriptions are closed. Safe to call twice. Every other method
	// called after Close (Name aside) returns an error wrapping ErrClosed.
	Close() error
}

// State is the state of a job.
type State string

// The job states. Completed, cancelled and discarded are final.
const (
	// StateScheduled: waiting for ScheduledAt (new, or snoozed).
	StateScheduled State = "scheduled"
	// StateAvailable: ready to be claimed.
	StateAvailable State = "available"
	// StateRunning: claimed by a dispatcher (AttemptedBy).
	StateRunning State = "running"
	// StateRetryable: an attempt failed; it runs again at ScheduledAt.
	StateRetryable State = "retryable"
	// StateCompleted: finished successfully. Final.
	StateCompleted State = "completed"
	// StateCancelled: stopped on purpose, no more attempts. Final.
	StateCancelled State = "cancelled"
	// StateDiscarded: failed for good (attempts exhausted or a permanent
	// failure). Final.
	StateDiscarded State = "discarded"
)

// States lists every state, in lifecycle order.
var States = []State{StateScheduled, StateAvailable, StateRunning, StateRetryable,
	StateCompleted, StateCancelled, StateDiscarded}

// Final reports whether no more attempts follow this state.
func (s State) Final() bool {
	return s == StateCompleted || s == StateCancelled || s == StateDiscarded
}

// Valid reports whether s is one of [States].
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// ParseState returns the State named s, or an error naming it.
func ParseState(s string) (State, error) {
	if st := State(s); st.Valid() {
		return st, nil
	}
	return "", fmt.Errorf("unknown job state %q (want one of scheduled, available, running, retryable, completed, cancelled, discarded)", s)
}

// Job is one stored job.
type Job struct {
	// ID is "<workflow_id>_<uuid>", given by the caller; retries keep it.
	ID string `json:"id"`
	// Kind names the handler.
	Kind string `json:"kind"`
	// Queue the job waits in.
	Queue string `json:"queue"`
	// Priority orders claims: smaller first.
	Priority int `json:"priority"`
	// Args are the handler's arguments, JSON.
	Args json.RawMessage `json:"args"`
	// Metadata is free JSON for the caller (never nil on read: "{}" at least).
	Metadata json.RawMessage `json:"metadata"`
	// State is the current state.
	State State `json:"state"`
	// Attempt counts the attempts started (0 before the first claim).
	Attempt int `json:"attempt"`
	// MaxAttempts is the number of attempts allowed.
	MaxAttempts int `json:"max_attempts"`
	// Timeout of one attempt; 0 means none.
	Timeout time.Duration `json:"timeout"`
	// ScheduledAt is when the job becomes (or became) claimable.
	ScheduledAt time.Time `json:"scheduled_at"`
	// CreatedAt is when it was inserted.
	CreatedAt time.Time `json:"created_at"`
	// AttemptedAt is when the current or last attempt was claimed; zero
	// before the first.
	AttemptedAt time.Time `json:"attempted_at,omitzero"`
	// FinalizedAt is when the job reached a final state; zero before.
	FinalizedAt time.Time `json:"finalized_at,omitzero"`
	// AttemptedBy is the UUID of the dispatcher that holds (or last held)
	// the job.
	AttemptedBy string `json:"attempted_by,omitempty"`
	// AttemptedAgent is the name of that dispatcher's agent.
	AttemptedAgent string `json:"attempted_agent,omitempty"`
	// WorkflowID groups every job and log line of one workflow.
	WorkflowID string `json:"workflow_id"`
	// TaskID is the serialized causal position of the action that enqueued
	// the job.
	TaskID string `json:"task_id"`
	// Slot counts claims (snoozed runs and rescues included), so that every
	// run gets its own causal slot and Outcome can name the run it ends.
	Slot int64 `json:"slot"`
	// UniqueKey, when not empty, is held by at most one job that is
	// scheduled, available, running or retryable.
	UniqueKey string `json:"unique_key,omitempty"`
	// Errors has one entry per failed or interrupted attempt, oldest first.
	Errors []AttemptError `json:"errors,omitempty"`
	// Result is the handler's output, JSON; nil when none.
	Result json.RawMessage `json:"result,omitempty"`
}

// AttemptError records how one attempt ended badly.
type AttemptError struct {
	// At is when it was recorded.
	At time.Time `json:"at"`
	// Attempt is the job's Attempt at that time.
	Attempt int `json:"attempt"`
	// Slot is the job's Slot at that time: the run it belongs to.
	Slot int64 `json:"slot"`
	// Error is the error text.
	Error string `json:"error"`
	// Stack is a stack trace, when one was taken (panics).
	Stack string `json:"stack,omitempty"`
	// Interrupted means the attempt never finished: its dispatcher stopped
	// or was judged dead while it ran.
	Interrupted bool `json:"interrupted,omitempty"`
	// Reassigned means the job was taken from a dispatcher judged dead.
	Reassigned bool `json:"reassigned,omitempty"`
	// Dispatcher is the UUID of the dispatcher that held the attempt.
	Dispatcher string `json:"dispatcher,omitempty"`
}

// InsertParams describes a job to insert.
type InsertParams struct {
	// ID is required: "<workflow_id>_<uuid>". When WorkflowID is set, ID
	// must start with it and "_" (a workflow's jobs are found by that
	// prefix).
	ID string
	// Kind is required.
	Kind string
	// Queue is required.
	Queue string
	// Priority orders claims: smaller first. Any value is stored as given.
	Priority int
	// Args is the JSON of the arguments. Defaults to "{}" when nil.
	Args json.RawMessage
	// Metadata is free JSON. Defaults to "{}" when nil.
	Metadata json.RawMessage
	// MaxAttempts must be at least 1.
	MaxAttempts int
	// Timeout of one attempt. Defaults to 0: none.
	Timeout time.Duration
	// ScheduledAt is when the job may first run. Defaults to now: the job is
	// available at once. A time in the future makes it scheduled.
	ScheduledAt time.Time
	// WorkflowID of the job. Defaults to empty.
	WorkflowID string
	// TaskID is the serialized causal position. Defaults to empty.
	TaskID string
	// UniqueKey, when not empty, prevents a second job with the same key
	// while one is scheduled, available, running or retryable. Defaults to
	// empty: no uniqueness.
	UniqueKey string
}

// Validate reports the first missing or invalid field, naming it.
func (p *InsertParams) Validate() error {
	switch {
	case p == nil:
		return errors.New("insert params are nil")
	case p.ID == "":
		return errors.New("field ID is empty")
	case p.Kind == "":
		return fmt.Errorf("job %s: field Kind is empty", p.ID)
	case p.Queue == "":
		return fmt.Errorf("job %s: field Queue is empty", p.ID)
	case p.MaxAttempts < 1:
		return fmt.Errorf("job %s: field MaxAttempts is %d, want at least 1", p.ID, p.MaxAttempts)
	case p.Timeout < 0:
		return fmt.Errorf("job %s: field Timeout is negative (%s)", p.ID, p.Timeout)
	case p.WorkflowID != "" && !strings.HasPrefix(p.ID, p.WorkflowID+"_"):
		return fmt.Errorf("job %s: field ID does not start with the WorkflowID %q followed by \"_\"", p.ID, p.WorkflowID)
	case p.Args != nil && !json.Valid(p.Args):
		return fmt.Errorf("job %s: field Args is not valid JSON", p.ID)
	case p.Metadata != nil && !json.Valid(p.Metadata):
		return fmt.Errorf("job %s: field Metadata is not valid JSON", p.ID)
	}
	return nil
}

// NewJob returns the job that inserting p at now creates: defaults applied,
// state scheduled when ScheduledAt is after now, else available. Drivers use
// it; p must be valid.
func NewJob(p *InsertParams, now time.Time) *Job {
	j := &Job{
		ID: p.ID, Kind: p.Kind, Queue: p.Queue, Priority: p.Priority,
		Args: p.Args, Metadata: p.Metadata, State: StateAvailable,
		MaxAttempts: p.MaxAttempts, Timeout: p.Timeout,
		ScheduledAt: p.ScheduledAt.UTC().Truncate(time.Microsecond), CreatedAt: now,
		WorkflowID: p.WorkflowID, TaskID: p.TaskID, UniqueKey: p.UniqueKey,
	}
	if j.Args == nil {
		j.Args = json.RawMessage("{}")
	}
	if j.Metadata == nil {
		j.Metadata = json.RawMessage("{}")
	}
	if p.ScheduledAt.IsZero() {
		j.ScheduledAt = now
	} else if j.ScheduledAt.After(now) {
		j.State = StateScheduled
	}
	return j
}

// InsertResult is the outcome of inserting one job.
type InsertResult struct {
	// Job is the inserted job or, when Duplicate, the job already holding
	// the unique key.
	Job *Job
	// Duplicate is set when the job was not inserted because of its
	// UniqueKey.
	Duplicate bool
}

// ClaimParams selects the jobs one agent claims.
type ClaimParams struct {
	// Dispatcher is the claiming dispatcher's UUID (required, registered).
	Dispatcher string
	// Agent is the claiming agent's name (required).
	Agent string
	// Queues to claim from. Defaults to all queues when empty.
	Queues []string
	// Kinds to claim. Defaults to all kinds when empty.
	Kinds []string
	// Limit is the most jobs to claim (required, at least 1).
	Limit int
	// Now defaults to the store's clock.
	Now time.Time
}

// Outcome ends one run of a job.
type Outcome struct {
	// ID of the job.
	ID string
	// Dispatcher that holds it.
	Dispatcher string
	// Slot of the run being ended (Job.Slot as claimed).
	Slot int64
	// State to move to: completed, retryable, scheduled (snooze), available
	// (release), cancelled or discarded.
	State State
	// At is the new ScheduledAt for retryable and scheduled. Defaults to
	// now. A job released to available keeps its ScheduledAt, hence its
	// place in line.
	At time.Time
	// UndoAttempt decrements Attempt: the run does not count (a snooze, or
	// a release on a graceful stop). The Slot is never decremented.
	UndoAttempt bool
	// Error, when not nil, is appended to the job's Errors. Its Attempt is
	// set to the attempt that ran, Slot and Dispatcher to the Outcome's,
	// and At to now when zero.
	Error *AttemptError
	// Result, when not nil, replaces the job's Result (JSON).
	Result json.RawMessage
}

// Validate reports the first missing or invalid field, naming it.
func (o *Outcome) Validate() error {
	switch {
	case o == nil:
		return errors.New("outcome is nil")
	case o.ID == "":
		return errors.New("outcome: field ID is empty")
	case o.Dispatcher == "":
		return fmt.Errorf("outcome for job %s: field Dispatcher is empty", o.ID)
	case o.State == StateRunning || !o.State.Valid():
		return fmt.Errorf("outcome for job %s: field State is %q, want completed, retryable, scheduled, available, cancelled or discarded", o.ID, o.State)
	case o.Result != nil && !json.Valid(o.Result):
		return fmt.Errorf("outcome for job %s: field Result is not valid JSON", o.ID)
	}
	return nil
}

// Dispatcher is one registered dispatcher: one per process.
type Dispatcher struct {
	// ID is the dispatcher's UUID (required).
	ID string `json:"id"`
	// Host it runs on.
	Host string `json:"host"`
	// PID of its process.
	PID int `json:"pid"`
	// Agents it runs.
	Agents []Agent `json:"agents"`
	// StartedAt is when the dispatcher started. Defaults to now on
	// register.
	StartedAt time.Time `json:"started_at"`
	// HeartbeatAt is the last heartbeat (set by the store).
	HeartbeatAt time.Time `json:"heartbeat_at"`
	// DeadAt is when it was marked dead; zero while alive (set by the
	// store).
	DeadAt time.Time `json:"dead_at,omitzero"`
	// DeadBy is the UUID of the dispatcher that marked it dead.
	DeadBy string `json:"dead_by,omitempty"`
}

// Agent describes one agent of a dispatcher.
type Agent struct {
	// Name of the agent, unique within its dispatcher.
	Name string `json:"name"`
	// Size is how many jobs it runs at once.
	Size int `json:"size"`
	// Queues it claims from (empty: all).
	Queues []string `json:"queues,omitempty"`
	// Kinds it claims (empty: all).
	Kinds []string `json:"kinds,omitempty"`
}

// RescueParams configures [Store.RescueDead].
type RescueParams struct {
	// By is the UUID of the live dispatcher doing the rescue; it is never
	// marked dead itself. Defaults to empty (no exception).
	By string
	// DeadAfter is how old a heartbeat may be before its dispatcher is
	// dead. Defaults to DefaultDeadAfter (30 s) when zero.
	DeadAfter time.Duration
	// Now defaults to the store's clock.
	Now time.Time
}

// RescueResult says what [Store.RescueDead] did.
type RescueResult struct {
	// Dead lists the dispatchers marked dead by this call.
	Dead []*Dispatcher
	// Jobs lists the rescued jobs as they are now (available or
	// discarded), with the new error entry last in Errors.
	Jobs []*Job
}

// Subscription delivers notifications until closed.
type Subscription interface {
	// C receives the queue on which jobs may have become available; ""
	// means any queue (sent after a reconnect, when hints may have been
	// lost). The channel has a small buffer and sends never block: hints
	// coalesce.
	C() <-chan string
	// Close stops delivery. Safe to call twice.
	Close() error
}

// CleanupParams configures [Store.Cleanup]. A negative retention keeps those
// jobs forever.
type CleanupParams struct {
	// CompletedAfter is how long completed jobs are kept. Defaults to
	// DefaultCompletedRetention (24 h) when zero.
	CompletedAfter time.Duration
	// CancelledAfter is how long cancelled jobs are kept. Defaults to
	// DefaultCancelledRetention (24 h) when zero.
	CancelledAfter time.Duration
	// DiscardedAfter is how long discarded jobs are kept. Defaults to
	// DefaultDiscardedRetention (7 days) when zero.
	DiscardedAfter time.Duration
	// DeadDispatchersAfter is how long dead dispatchers are kept. Defaults
	// to DefaultDeadDispatcherRetention (24 h) when zero.
	DeadDispatchersAfter time.Duration
	// BatchSize is how many rows one delete statement removes. Defaults to
	// DefaultCleanupBatch (1000) when zero.
	BatchSize int
	// Now defaults to the store's clock.
	Now time.Time
}

// CleanupResult counts what [Store.Cleanup] deleted.
type CleanupResult struct {
	Jobs        int64
	Dispatchers int64
}

// TimeRange is a half-open interval [From, To); a zero bound is open.
type TimeRange struct {
	From time.Time
	To   time.Time
}

// JobFilter selects jobs. Empty fields select everything; list fields match
// any of their values.
type JobFilter struct {
	IDs        []string
	States     []State
	Queues     []string
	Kinds      []string
	WorkflowID string
	// Dispatcher matches AttemptedBy.
	Dispatcher string
	// Agent matches AttemptedAgent.
	Agent     string
	Created   TimeRange
	Scheduled TimeRange
	Attempted TimeRange
	Finalized TimeRange
}

// Order is how ListJobs sorts.
type Order int

const (
	// OrderNewest: CreatedAt then ID, newest first (the default; the only
	// order that pages with Cursor).
	OrderNewest Order = iota
	// OrderClaim: the order Claim takes jobs in (priority, ScheduledAt).
	OrderClaim
	// OrderFinalized: FinalizedAt newest first (jobs not final last).
	OrderFinalized
)

// ListJobsParams selects and pages jobs for [Store.ListJobs].
type ListJobsParams struct {
	// Filter selects jobs. Defaults to all.
	Filter JobFilter
	// Order of the results. Defaults to OrderNewest.
	Order Order
	// Limit is the page size. Defaults to DefaultListLimit (100) when zero;
	// at most MaxListLimit (10000).
	Limit int
	// Cursor continues after a previous page (JobPage.Next). Only with
	// OrderNewest. Defaults to the first page.
	Cursor string
}

// JobPage is one page of jobs.
type JobPage struct {
	Jobs []*Job
	// Next is the cursor of the next page; empty when this is the last.
	Next string
}

// QueueStats summarises one queue.
type QueueStats struct {
	Queue string `json:"queue"`
	// Counts by state; states with no job are absent.
	Counts map[State]int64 `json:"counts"`
	// OldestWaiting is the smallest ScheduledAt of the jobs that are
	// available, or scheduled or retryable and due; zero when none.
	OldestWaiting time.Time `json:"oldest_waiting,omitzero"`
	// OldestRunning is the smallest AttemptedAt of running jobs; zero when
	// none.
	OldestRunning time.Time `json:"oldest_running,omitzero"`
}

// MigrateOpts configures [Store.MigrateUp] and [Store.MigrateDown].
type MigrateOpts struct {
	// TargetVersion to migrate to. Defaults to the latest (up) or one step
	// down (down) when nil.
	TargetVersion *int
}

// Migration is one schema migration.
type Migration struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
}

// MigrationStatus is a migration and whether it is applied.
type MigrationStatus struct {
	Migration
	// AppliedAt is zero when the migration is not applied.
	AppliedAt time.Time `json:"applied_at,omitzero"`
}

// SchemaStatus describes a database's schema.
type SchemaStatus struct {
	// Current is the database's version (0: no schema).
	Current int `json:"current"`
	// Latest is the newest version this code knows.
	Latest int `json:"latest"`
	// Migrations lists every migration this code knows, oldest first.
	Migrations []MigrationStatus `json:"migrations"`
}

// Defaults used when a field is zero.
const (
	DefaultDeadAfter               = 30 * time.Second
	DefaultHeartbeatInterval       = 5 * time.Second
	DefaultPollInterval            = 1 * time.Second
	DefaultCompletedRetention      = 24 * time.Hour
	DefaultCancelledRetention      = 24 * time.Hour
	DefaultDiscardedRetention      = 7 * 24 * time.Hour
	DefaultDeadDispatcherRetention = 24 * time.Hour
	DefaultCleanupBatch            = 1000
	DefaultListLimit               = 100
	MaxListLimit                   = 10000
)

// Errors.
var (
	// ErrNotFound: no such job.
	ErrNotFound = errors.New("not found")
	// ErrDispatcherNotFound: the dispatcher is not registered.
	ErrDispatcherNotFound = errors.New("dispatcher not registered")
	// ErrDispatcherDead: the dispatcher was marked dead; *DispatcherDeadError
	// matches it with errors.Is.
	ErrDispatcherDead = errors.New("dispatcher marked dead")
	// ErrUnsupportedTx: InsertTx got a transaction type the driver cannot
	// use.
	ErrUnsupportedTx = errors.New("unsupported transaction type")
	// ErrSchemaVersion: *SchemaVersionError matches it with errors.Is.
	ErrSchemaVersion = errors.New("schema version mismatch")
	// ErrClosed: the store was closed. Every method of a closed store
	// (Name aside) returns an error wrapping it.
	ErrClosed = errors.New("store closed")
	// ErrJobExists: Insert got a job ID that is already stored.
	ErrJobExists = errors.New("job id already exists")
)

// ClaimAfterFinishError is FinishClaim's error when its outcomes were
// stored (its notHeld is valid) but the claim that followed failed: a
// caller must not store those outcomes again.
type ClaimAfterFinishError struct {
	Err error
}

func (e *ClaimAfterFinishError) Error() string {
	return "the outcomes were stored, then claiming failed: " + e.Err.Error()
}

func (e *ClaimAfterFinishError) Unwrap() error { return e.Err }

// DispatcherDeadError says a dispatcher was marked dead by another.
type DispatcherDeadError struct {
	ID     string
	DeadAt time.Time
	DeadBy string
}

func (e *DispatcherDeadError) Error() string {
	by := e.DeadBy
	if by == "" {
		by = "(unknown)"
	}
	return fmt.Sprintf("dispatcher %s was marked dead at %s by %s (heartbeats missed: clock skew, a long pause or a too short dead-after time?); its running jobs were rescued, register again",
		e.ID, e.DeadAt.UTC().Format(time.RFC3339Nano), by)
}

// Is matches ErrDispatcherDead.
func (e *DispatcherDeadError) Is(target error) bool { return target == ErrDispatcherDead }

// SchemaVersionError says the database schema is not the version this code
// expects.
type SchemaVersionError struct {
	// Database is the version found in the database (0: no schema).
	Database int
	// Code is the version this code expects.
	Code int
}

func (e *SchemaVersionError) Error() string {
	switch {
	case e.Database == 0:
		return fmt.Sprintf("database has no skein schema (version 0), this skein needs version %d: run `skein migrate up`", e.Code)
	case e.Database < e.Code:
		return fmt.Sprintf("database schema is version %d, older than version %d that this skein needs: run `skein migrate up`", e.Database, e.Code)
	default:
		return fmt.Sprintf("database schema is version %d, newer than version %d that this skein knows: upgrade skein, or run `skein migrate down` with the newer one", e.Database, e.Code)
	}
}

// Is matches ErrSchemaVersion.
func (e *SchemaVersionError) Is(target error) bool { return target == ErrSchemaVersion }
