package skein

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Executor runs one attempt of a job. It is the seam between an agent and
// the code that does the work: [*Handlers] runs handlers in the agent's own
// goroutines; other executors may run jobs elsewhere (child processes).
//
// ctx is the attempt's context: its action (so that logging lands in the
// attempt), the job's workflow, and the job's timeout as deadline; it is
// cancelled when the dispatcher stops hard. Execute returns nil for
// success or the attempt's error, which may be one of [JobCancel],
// [JobSnooze] or [JobDiscard]. A panic in Execute is recovered by the agent
// and counts as a failed attempt.
type Executor interface {
	Execute(ctx context.Context, job *JobRow) error
}

// Handlers maps job kinds to handler functions. Register handlers with
// [AddHandler] before giving Handlers to a dispatcher. It is safe for
// concurrent use.
type Handlers struct {
	mu sync.RWMutex
	m  map[string]func(ctx context.Context, row *JobRow) error
}

// NewHandlers returns an empty registry.
func NewHandlers() *Handlers {
	return &Handlers{m: make(map[string]func(context.Context, *JobRow) error)}
}

var _ Executor = (*Handlers)(nil)

// AddHandler registers fn as the handler of jobs of kind T{}.Kind(). It
// panics if that kind already has a handler or is empty; [AddHandlerSafely]
// returns an error instead.
//
// fn's result decides what happens to the job: nil completes it; a plain
// error retries it after a backoff (or discards it when its attempts are
// spent); [JobCancel], [JobSnooze] and [JobDiscard] cancel, snooze and
// discard it. Args that do not decode into T discard the job at once.
func AddHandler[T JobArgs](h *Handlers, fn func(ctx context.Context, job *Job[T]) error) {
	if err := AddHandlerSafely(h, fn); err != nil {
		panic(err)
	}
}

// AddHandlerSafely is [AddHandler] returning an error instead of panicking.
func AddHandlerSafely[T JobArgs](h *Handlers, fn func(ctx context.Context, job *Job[T]) error) error {
	var zero T
	kind := zero.Kind()
	switch {
	case h == nil:
		return errors.New("adding handler: Handlers is nil (use NewHandlers)")
	case fn == nil:
		return fmt.Errorf("adding handler for kind %q: handler function is nil", kind)
	case kind == "":
		return fmt.Errorf("adding handler for args type %T: Kind() returned an empty string", zero)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = make(map[string]func(context.Context, *JobRow) error)
	}
	if _, ok := h.m[kind]; ok {
		return fmt.Errorf("adding handler for kind %q: a handler is already registered", kind)
	}
	h.m[kind] = func(ctx context.Context, row *JobRow) error {
		var args T
		if err := json.Unmarshal(row.Args, &args); err != nil {
			return JobDiscard(fmt.Errorf("decoding args of job %s (kind %s) into %T: %w", row.ID, row.Kind, args, err))
		}
		return fn(ctx, &Job[T]{JobRow: row, Args: args})
	}
	return nil
}

// Kinds returns the registered kinds, sorted.
func (h *Handlers) Kinds() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	kinds := make([]string, 0, len(h.m))
	for k := range h.m {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// Execute runs the handler of job's kind; a kind without one fails with
// an error wrapping [ErrNoHandler].
func (h *Handlers) Execute(ctx context.Context, job *JobRow) error {
	h.mu.RLock()
	fn := h.m[job.Kind]
	h.mu.RUnlock()
	if fn == nil {
		return fmt.Errorf("running job %s: %w %q", job.ID, ErrNoHandler, job.Kind)
	}
	return fn(ctx, job)
}

// runKey finds the running attempt in a handler's context.
type runKey struct{}

// RecordResult stores v, as JSON, as the result of the job whose handler
// ctx belongs to; it is kept with the job when the attempt completes. It
// fails outside a handler or when v does not encode.
func RecordResult(ctx context.Context, v any) error {
	r, _ := ctx.Value(runKey{}).(*run)
	if r == nil {
		return errors.New("recording job result: context is not a job handler's")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("recording result of job %s: %w", r.job.ID, err)
	}
	r.mu.Lock()
	r.result = b
	r.mu.Unlock()
	return nil
}

// JobFromContext returns the job whose handler ctx belongs to, or nil.
func JobFromContext(ctx context.Context) *JobRow {
	if r, _ := ctx.Value(runKey{}).(*run); r != nil {
		return r.job
	}
	return nil
}
