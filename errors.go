package skein

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by the package.
var (
	// ErrNoHandler: a job's kind has no handler in the [Handlers] it was
	// given to. The job is retried (another dispatcher may know the kind).
	ErrNoHandler = errors.New("no handler registered for job kind")
	// ErrStopped is the cause of a job context cancelled because its
	// dispatcher is stopping ([Dispatcher.StopAndCancel], or [Dispatcher.Stop]
	// past its deadline). The job is put back, its attempt not counted.
	ErrStopped = errors.New("dispatcher stopping")
	// ErrReassigned is the cause of a job context cancelled because the
	// dispatcher learned it had been judged dead: its jobs were rescued and
	// may already run elsewhere.
	ErrReassigned = errors.New("job reassigned: dispatcher was judged dead")
)

// JobCancel returns an error that, returned by a handler, ends the job as
// cancelled: no more attempts. err says why; nil means "job cancelled".
func JobCancel(err error) error {
	if err == nil {
		err = errors.New("job cancelled")
	}
	return &CancelError{Err: err}
}

// CancelError is the error [JobCancel] returns.
type CancelError struct{ Err error }

func (e *CancelError) Error() string { return "job cancelled: " + e.Err.Error() }

// Unwrap returns the reason.
func (e *CancelError) Unwrap() error { return e.Err }

// JobDiscard returns an error that, returned by a handler, fails the job
// permanently: it is discarded with err, whatever attempts it has left.
// nil means "job discarded".
func JobDiscard(err error) error {
	if err == nil {
		err = errors.New("job discarded")
	}
	return &DiscardError{Err: err}
}

// DiscardError is the error [JobDiscard] returns.
type DiscardError struct{ Err error }

func (e *DiscardError) Error() string { return "job discarded: " + e.Err.Error() }

// Unwrap returns the reason.
func (e *DiscardError) Unwrap() error { return e.Err }

// JobSnooze returns an error that, returned by a handler, runs the job again
// after d without spending an attempt. The attempt's action ends as
// succeeded, with a "snoozed" field. A negative d counts as 0.
func JobSnooze(d time.Duration) error {
	return &SnoozeError{Duration: max(d, 0)}
}

// SnoozeError is the error [JobSnooze] returns.
type SnoozeError struct{ Duration time.Duration }

func (e *SnoozeError) Error() string { return fmt.Sprintf("job snoozed for %s", e.Duration) }

// PanicError is the error of an attempt whose handler panicked: the value
// and the goroutine's stack. The attempt counts as failed and is retried
// like any other error.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("handler panicked: %v", e.Value) }

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// TimeoutError is the error of an attempt that ran past its job's timeout
// (its context's deadline) and returned an error.
type TimeoutError struct {
	Timeout time.Duration
	Err     error
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("job timed out after %s: %v", e.Timeout, e.Err)
}

// Unwrap returns the handler's error.
func (e *TimeoutError) Unwrap() error { return e.Err }
