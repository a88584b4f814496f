package skein

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/store"
)

// JobArgs are the arguments of one kind of job. They are stored as JSON
// (encoding/json), so their exported fields are what a handler gets back.
//
//	type SendEmail struct {
//		To      string `json:"to"`
//		Subject string `json:"subject"`
//	}
//
//	func (SendEmail) Kind() string { return "send_email" }
type JobArgs interface {
	// Kind names the job's handler. It must not change for stored jobs.
	Kind() string
}

// JobArgsWithOpts is JobArgs that carry default options for their kind;
// options given to Enqueue override them field by field.
type JobArgsWithOpts interface {
	JobArgs
	EnqueueOpts() EnqueueOpts
}

// JobRow is a stored job as the store returns it: state, attempts, errors,
// workflow id and causal position.
type JobRow = store.Job

// Job is a job given to a handler: the stored row and its decoded args.
type Job[T JobArgs] struct {
	*JobRow
	// Args are the job's arguments, decoded from JobRow.Args.
	Args T
}

// EnqueueOpts are the options of one enqueued job. The zero value means the
// defaults: the client's queue, priority 0, now, the client's MaxAttempts
// and Timeout, no unique key, no metadata.
type EnqueueOpts struct {
	// Queue to enqueue into. Defaults to ClientConfig.Queue ("default").
	Queue string
	// Priority orders claims: smaller first; any int. Defaults to 0.
	Priority int
	// RunAt is when the job may first run. Defaults to now. Takes
	// precedence over RunIn.
	RunAt time.Time
	// RunIn delays the job's first run by this long. Defaults to 0.
	RunIn time.Duration
	// MaxAttempts is how many attempts the job gets. Defaults to
	// ClientConfig.MaxAttempts (25).
	MaxAttempts int
	// Timeout of one attempt: the handler's context deadline. Defaults to
	// ClientConfig.Timeout (none). A negative value means none even when
	// the client has one.
	Timeout time.Duration
	// UniqueKey, when not empty, keeps a second job with the same key from
	// being enqueued while one is scheduled, available, running or
	// retryable: Enqueue returns that job with Duplicate set. Defaults to
	// empty: no uniqueness.
	UniqueKey string
	// Metadata is free data kept with the job, marshalled to JSON (a
	// json.RawMessage is used as is). Defaults to none ("{}").
	Metadata any
}

// merge returns o with its zero fields taken from d.
func (o EnqueueOpts) merge(d EnqueueOpts) EnqueueOpts {
	if o.Queue == "" {
		o.Queue = d.Queue
	}
	if o.Priority == 0 {
		o.Priority = d.Priority
	}
	if o.RunAt.IsZero() && o.RunIn == 0 {
		o.RunAt, o.RunIn = d.RunAt, d.RunIn
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = d.MaxAttempts
	}
	if o.Timeout == 0 {
		o.Timeout = d.Timeout
	}
	if o.UniqueKey == "" {
		o.UniqueKey = d.UniqueKey
	}
	if o.Metadata == nil {
		o.Metadata = d.Metadata
	}
	return o
}

// EnqueueParams is one job of a batch given to [Client.EnqueueMany].
type EnqueueParams struct {
	Args JobArgs
	// Opts may be nil: the defaults.
	Opts *EnqueueOpts
}

// EnqueueResult is what enqueueing one job did.
type EnqueueResult struct {
	// Job is the stored job or, when Duplicate, the job already holding
	// the unique key.
	Job *JobRow
	// Duplicate is set when the job was not enqueued because another job
	// holds its UniqueKey.
	Duplicate bool
}

// marshalMetadata turns EnqueueOpts.Metadata into JSON.
func marshalMetadata(m any) (json.RawMessage, error) {
	switch v := m.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		return v, nil
	case []byte:
		return json.RawMessage(v), nil
	default:
		return json.Marshal(v)
	}
}

// EndJobAction logs the end of the "skein:job" action of job, which has
// just reached the final state (completed, cancelled or discarded), through
// the Logger of ctx ([action.WithLogger]): succeeded for completed, failed
// with err (or the state's name) otherwise, with "state" and "attempts"
// fields. It writes at the job's task id + [job.Slot+2], the slot after its
// last run.
//
// Dispatchers call it for the jobs they finish or rescue; code that moves a
// job to a final state by other means (a "cancel" command) calls it once,
// after the store applied the change. Code that moves a final job back to
// a runnable state must increment its Slot, so that its next run does not
// reuse the position of this end message.
func EndJobAction(ctx context.Context, job *JobRow, state store.State, err error) {
	if job == nil || job.TaskID == "" {
		return
	}
	tid, perr := parseJobTaskID(job.TaskID)
	if perr != nil {
		return // its attempts were logged as tasks of their own
	}
	if job.WorkflowID != "" {
		ctx = action.WithWorkflow(ctx, job.WorkflowID)
	}
	_, ja := action.Resume(ctx, tid, "skein:job", int(job.Slot)+1)
	attrs := []slog.Attr{slog.String("state", string(state)), slog.Int("attempts", job.Attempt)}
	if state == store.StateCompleted {
		ja.End(attrs...)
		return
	}
	if err == nil {
		err = errors.New(string(state))
	}
	ja.Fail(err, attrs...)
}
