package action

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// An Action is one step of a task: a piece of work with a start, the
// messages and child actions that happen inside it, and an end that says
// whether it succeeded or failed.
//
// An *Action is also the [context.Context] it was started in, with itself
// as the current action: [Start] returns it twice, as ctx and as the action,
// at the cost of one allocation. Pass the context on to callees so that what
// they log lands inside the action.
//
// All methods are safe for concurrent use: any number of goroutines may log
// under one action at once, and each message still takes its own slot.
type Action struct {
	ctx        context.Context
	logger     *Logger
	uuid       uuidText
	level      []int // the action's own level; its messages are level+[n]
	inline     [6]int
	actionType string
	workflow   string
	next       atomic.Int64 // the last slot handed out
	finished   atomic.Bool

	mu      sync.Mutex
	success []slog.Attr // written with a successful end
}

type actionKey struct{}

// Deadline, Done, Err and Value make an Action the context it was started
// in, with the action as the current one.

// Deadline returns the deadline of the context the action was started in.
func (a *Action) Deadline() (time.Time, bool) { return a.ctx.Deadline() }

// Done returns the done channel of the context the action was started in.
func (a *Action) Done() <-chan struct{} { return a.ctx.Done() }

// Err returns the error of the context the action was started in.
func (a *Action) Err() error { return a.ctx.Err() }

// Value returns the action for its own key and otherwise looks key up in
// the context the action was started in.
func (a *Action) Value(key any) any {
	switch key.(type) {
	case actionKey:
		return a
	case workflowKey:
		if a.workflow != "" {
			return a.workflow
		}
	}
	return a.ctx.Value(key)
}

// String describes the action for debugging, as context types do.
func (a *Action) String() string {
	return fmt.Sprintf("action.Action(%s %s)", a.actionType, a.TaskID())
}

// FromContext returns the current action of ctx, or nil if there is none.
func FromContext(ctx context.Context) *Action {
	if ctx == nil {
		return nil
	}
	if a, ok := ctx.(*Action); ok {
		return a
	}
	a, _ := ctx.Value(actionKey{}).(*Action)
	return a
}

// Start starts an action of the given type (by convention
// "app:subsystem:verb") as a child of the current action of ctx, or as a new
// task when ctx has none, and logs its start message with attrs as fields.
// End the action with [Action.End], [Action.Fail] or [Action.Finish].
//
// The returned context is the action itself; use it for everything done as
// part of the action.
func Start(ctx context.Context, actionType string, attrs ...slog.Attr) (context.Context, *Action) {
	if ctx == nil {
		ctx = context.Background()
	}
	a := &Action{ctx: ctx, actionType: actionType}
	parent := FromContext(ctx)
	switch {
	case parent == nil:
		a.logger = loggerFor(ctx)
		a.newTask()
	case parent.finished.Load():
		a.logger = parent.logger
		a.newTask()
		a.workflow = Workflow(ctx)
		a.logStart(append(attrs[:len(attrs):len(attrs)], parent.parentTaskAttr()))
		return a, a
	default:
		a.logger = parent.logger
		a.uuid = parent.uuid
		a.level = append(append(a.inline[:0], parent.level...), int(parent.next.Add(1)))
	}
	a.workflow = Workflow(ctx)
	a.logStart(attrs)
	return a, a
}

// ParentTask is the field that links a task to the action it came from when
// that action had already ended: a message logged, or an action started, in
// an ended action becomes a task of its own (so that the ended action's tree
// stays complete) with ParentTask set to the ended action's position,
// "<uuid>@/<level>".
const ParentTask = "parent_task"

func (a *Action) parentTaskAttr() slog.Attr {
	return slog.String(ParentTask, a.TaskID().String())
}

// StartTask starts an action as a new task, whatever the current action of
// ctx is. The new task writes where the current action writes (or to the
// context's Logger) and keeps the context's workflow id.
func StartTask(ctx context.Context, actionType string, attrs ...slog.Attr) (context.Context, *Action) {
	if ctx == nil {
		ctx = context.Background()
	}
	a := &Action{ctx: ctx, actionType: actionType}
	if parent := FromContext(ctx); parent != nil {
		a.logger = parent.logger
	} else {
		a.logger = loggerFor(ctx)
	}
	a.newTask()
	a.workflow = Workflow(ctx)
	a.logStart(attrs)
	return a, a
}

func (a *Action) newTask() {
	if a.logger.newUUID != nil {
		copy(a.uuid[:], a.logger.newUUID())
	} else {
		a.uuid = newUUID()
	}
	a.level = a.inline[:0]
}

func (a *Action) logStart(attrs []slog.Attr) {
	buf := getBuffer()
	b := a.begin(*buf)
	b = append(b, `,"action_type":`...)
	b = appendString(b, a.actionType)
	b = append(b, `,"action_status":"started"`...)
	b = a.logger.enc.appendUserAttrs(b, attrs)
	a.send(buf, b)
}

// begin starts the next message of the action: its standard fields.
func (a *Action) begin(b []byte) []byte {
	return beginMessage(b, &a.uuid, a.level, a.next.Add(1), a.logger.timestamp(), a.workflow)
}

// send finishes the message b (held in buf) and writes it.
func (a *Action) send(buf *buffer, b []byte) {
	b = a.logger.end(b)
	a.logger.write(b)
	*buf = b
	putBuffer(buf)
}

// beginMessage appends the standard fields that open every message.
func beginMessage(b []byte, uuid *uuidText, level []int, slot int64, t time.Time, workflow string) []byte {
	b = append(b, `{"task_uuid":"`...)
	b = append(b, uuid[:]...)
	b = append(b, `","task_level":[`...)
	for _, l := range level {
		b = strconv.AppendInt(b, int64(l), 10)
		b = append(b, ',')
	}
	b = strconv.AppendInt(b, slot, 10)
	b = append(b, ']')
	if !t.IsZero() {
		b = append(b, `,"timestamp":`...)
		b = appendTimestamp(b, t)
	}
	if workflow != "" {
		b = append(b, `,"workflow_id":`...)
		b = appendString(b, workflow)
	}
	return b
}

// Log logs a message of the given type inside the action, in its next slot.
//
// A message logged after the action has ended is written as a task of its
// own with a [ParentTask] field, so that the ended action's tree stays
// complete.
func (a *Action) Log(messageType string, attrs ...slog.Attr) {
	if a.finished.Load() {
		a.logger.logTask(a.workflow, messageType, append(attrs[:len(attrs):len(attrs)], a.parentTaskAttr()))
		return
	}
	buf := getBuffer()
	b := a.begin(*buf)
	b = append(b, `,"message_type":`...)
	b = appendString(b, messageType)
	b = a.logger.enc.appendUserAttrs(b, attrs)
	a.send(buf, b)
}

// Log logs a message of the given type inside the current action of ctx,
// or as a task of its own (level [1]) when there is none.
func Log(ctx context.Context, messageType string, attrs ...slog.Attr) {
	if a := FromContext(ctx); a != nil {
		a.Log(messageType, attrs...)
		return
	}
	loggerFor(ctx).logTask(Workflow(ctx), messageType, attrs)
}

// logTask writes a message that is a task of its own.
func (l *Logger) logTask(workflow, messageType string, attrs []slog.Attr) {
	buf := getBuffer()
	b := l.beginTask(*buf, workflow, l.timestamp())
	b = append(b, `,"message_type":`...)
	b = appendString(b, messageType)
	b = l.enc.appendUserAttrs(b, attrs)
	b = l.end(b)
	l.write(b)
	*buf = b
	putBuffer(buf)
}

// AddSuccessFields adds fields to the end message of the action, written
// only if it succeeds.
func (a *Action) AddSuccessFields(attrs ...slog.Attr) {
	a.mu.Lock()
	a.success = append(a.success, attrs...)
	a.mu.Unlock()
}

// End ends the action as succeeded, with attrs (and any fields added with
// [Action.AddSuccessFields]) in its end message. Only the first of End,
// Fail and Finish logs anything; later calls do nothing.
func (a *Action) End(attrs ...slog.Attr) {
	if !a.finished.CompareAndSwap(false, true) {
		return
	}
	buf := getBuffer()
	b := a.begin(*buf)
	b = append(b, `,"action_type":`...)
	b = appendString(b, a.actionType)
	b = append(b, `,"action_status":"succeeded"`...)
	a.mu.Lock()
	b = a.logger.enc.appendUserAttrs(b, a.success)
	a.mu.Unlock()
	b = a.logger.enc.appendUserAttrs(b, attrs)
	a.send(buf, b)
}

// Fail ends the action as failed because of err: its end message has
// "exception" (the error's type, see below), "reason" (err.Error()) and
// attrs. If err (or the error that names its type) implements
// [slog.LogValuer], the attributes of its value are added as fields, as
// Eliot's exception extractors do. A nil err ends the action as succeeded.
//
// The exception is the first error in err's chain that is not a plain
// wrapper made by fmt.Errorf, written as "import/path.TypeName" (pointer
// types without the star), e.g. "io/fs.PathError" for
// fmt.Errorf("loading config: %w", err) around an *fs.PathError.
//
// Only the first of End, Fail and Finish logs anything.
func (a *Action) Fail(err error, attrs ...slog.Attr) {
	if err == nil {
		a.End(attrs...)
		return
	}
	if !a.finished.CompareAndSwap(false, true) {
		return
	}
	buf := getBuffer()
	b := a.begin(*buf)
	b = append(b, `,"action_type":`...)
	b = appendString(b, a.actionType)
	b = append(b, `,"action_status":"failed","exception":`...)
	b = appendString(b, exceptionName(err))
	b = append(b, `,"reason":`...)
	b = a.logger.enc.appendStringValue(b, err.Error())
	b = a.logger.enc.appendErrorFields(b, err)
	b = a.logger.enc.appendUserAttrs(b, attrs)
	a.send(buf, b)
}

// Finish ends the action: as succeeded when err is nil, else as failed
// (see [Action.Fail]). It suits a deferred call:
//
//	func charge(ctx context.Context) (err error) {
//		ctx, a := action.Start(ctx, "payment:charge")
//		defer func() { a.Finish(err) }()
//		...
//	}
func (a *Action) Finish(err error) { a.Fail(err) }

// Finished reports whether the action has ended.
func (a *Action) Finished() bool { return a.finished.Load() }

// Type returns the action's type.
func (a *Action) Type() string { return a.actionType }

// TaskUUID returns the uuid of the task the action belongs to.
func (a *Action) TaskUUID() string { return string(a.uuid[:]) }

// TaskID returns the action's own position: its task uuid and level. Unlike
// [Action.SerializeTaskID] it takes no slot.
func (a *Action) TaskID() TaskID {
	return TaskID{UUID: string(a.uuid[:]), Level: append([]int(nil), a.level...)}
}

// Workflow returns the workflow id the action was started under, or "".
func (a *Action) Workflow() string { return a.workflow }

// Run runs f inside a new action (see [Start]) and ends the action with
// f's result. If f panics, the action logs an eliot:traceback message with
// the stack, ends as failed, and the panic goes on.
func Run(ctx context.Context, actionType string, f func(ctx context.Context) error, attrs ...slog.Attr) (err error) {
	ctx, a := Start(ctx, actionType, attrs...)
	defer func() {
		if r := recover(); r != nil {
			a.failPanic(r, debug.Stack())
			panic(r)
		}
		a.Finish(err)
	}()
	return f(ctx)
}

// failPanic ends the action as failed because of a panic with value r.
func (a *Action) failPanic(r any, stack []byte) {
	exception := panicName(r)
	reason := fmt.Sprint(r)
	a.Log("eliot:traceback",
		slog.String("exception", exception),
		slog.String("reason", reason),
		slog.String("traceback", string(stack)))
	err, ok := r.(error)
	if !ok {
		err = panicError{value: r, name: exception}
	}
	a.Fail(err, slog.Bool("panic", true))
}

// LogPanic logs a recovered panic value as an eliot:traceback message in
// the current action of ctx (or as a task of its own), with the given
// stack. It is the building block of crash handlers; [Run] does it itself.
func LogPanic(ctx context.Context, r any, stack []byte) {
	Log(ctx, "eliot:traceback",
		slog.String("exception", panicName(r)),
		slog.String("reason", fmt.Sprint(r)),
		slog.String("traceback", string(stack)))
}

// panicError carries a panic value that is not an error.
type panicError struct {
	value any
	name  string
}

func (p panicError) Error() string { return fmt.Sprint(p.value) }
