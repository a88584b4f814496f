package action

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
)

// A TaskID is a position in a task: the task's uuid and a level. In its text
// form, which Eliot calls a serialized task id, it reads
// "<task uuid>@/<level>/<level>…", e.g.
// "1c1defcd-38e9-4a99-9c6c-95bc6da3dc61@/2/2".
type TaskID struct {
	UUID  string
	Level []int
}

// String returns the text form "<uuid>@/1/2".
func (id TaskID) String() string {
	b := make([]byte, 0, len(id.UUID)+1+3*len(id.Level))
	b = append(b, id.UUID...)
	b = append(b, '@')
	for _, l := range id.Level {
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(l), 10)
	}
	return string(b)
}

// Child returns the position of slot n inside the action at id.
func (id TaskID) Child(n int) TaskID {
	level := make([]int, len(id.Level)+1)
	copy(level, id.Level)
	level[len(id.Level)] = n
	return TaskID{UUID: id.UUID, Level: level}
}

// MaxLevelDepth is the deepest level [ParseTaskID] accepts.
const MaxLevelDepth = 256

// ParseTaskID parses a serialized task id ("<uuid>@/1/2"). The uuid must be
// in canonical 8-4-4-4-12 hex form and the level must have at least one
// part, each a positive decimal integer below 2^31; empty parts ("@/2//3",
// a trailing "/") are ignored, as Eliot does. The error says what is wrong.
func ParseTaskID(s string) (TaskID, error) {
	uuid, levelText, ok := strings.Cut(s, "@")
	if !ok {
		return TaskID{}, fmt.Errorf("task id %q: no '@' between the task uuid and the level", clip(s))
	}
	if !validUUID(uuid) {
		return TaskID{}, fmt.Errorf("task id %q: task uuid %q is not a UUID (want 8-4-4-4-12 hex digits)", clip(s), clip(uuid))
	}
	var level []int
	for part := range strings.SplitSeq(levelText, "/") {
		if part == "" {
			continue
		}
		n, err := strconv.ParseInt(part, 10, 32)
		if err != nil || n < 1 || part[0] == '+' {
			return TaskID{}, fmt.Errorf("task id %q: level part %q is not a positive integer", clip(s), clip(part))
		}
		if len(level) == MaxLevelDepth {
			return TaskID{}, fmt.Errorf("task id %q: level is deeper than %d", clip(s), MaxLevelDepth)
		}
		level = append(level, int(n))
	}
	if len(level) == 0 {
		return TaskID{}, fmt.Errorf("task id %q: empty level after '@' (want e.g. @/1)", clip(s))
	}
	return TaskID{UUID: strings.ToLower(uuid), Level: level}, nil
}

// clip shortens untrusted text quoted in an error.
func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// SerializeTaskID takes the action's next slot and returns its position as
// text, to be continued elsewhere (another process, another goroutine) with
// [Continue]. Each id must be continued exactly once: an id continued twice
// writes the same levels twice, and an id never continued leaves a gap that
// keeps the action from ever looking complete.
func (a *Action) SerializeTaskID() string {
	return TaskID{UUID: string(a.uuid[:]), Level: append(append([]int(nil), a.level...), int(a.next.Add(1)))}.String()
}

// SerializeTaskID serializes the position of the current action of ctx
// (see [Action.SerializeTaskID]); it returns "" when ctx has no action.
func SerializeTaskID(ctx context.Context) string {
	if a := FromContext(ctx); a != nil {
		return a.SerializeTaskID()
	}
	return ""
}

// RemoteTask is the action type [Continue] uses when given none.
const RemoteTask = "eliot:remote_task"

// Continue continues the task position taskID (made by
// [Action.SerializeTaskID], here or in another process) as an action of
// type actionType ([RemoteTask] when empty) with attrs as start fields, as
// Eliot's continue_task does: its start message is at the id's level + [1].
// The new action writes to the Logger of ctx (see [WithLogger]) and carries
// ctx's workflow id. A malformed id is an error and starts nothing.
func Continue(ctx context.Context, taskID string, actionType string, attrs ...slog.Attr) (context.Context, *Action, error) {
	id, err := ParseTaskID(taskID)
	if err != nil {
		return ctx, nil, err
	}
	ctx, a := ContinueAt(ctx, id, actionType, attrs...)
	return ctx, a, nil
}

// ContinueAt is [Continue] for a parsed id.
func ContinueAt(ctx context.Context, id TaskID, actionType string, attrs ...slog.Attr) (context.Context, *Action) {
	a := resume(ctx, id, actionType, 0)
	a.logStart(attrs)
	return a, a
}

// Resume returns a handle for an action of type actionType at position id
// that was started elsewhere and has already used slots 1 to used (its start
// message, messages, children): the handle's next message takes slot
// used+1. It logs nothing itself. The job system uses it to add attempts
// to a job's action and to end that action in whichever process runs the
// job last.
func Resume(ctx context.Context, id TaskID, actionType string, used int) (context.Context, *Action) {
	a := resume(ctx, id, actionType, used)
	return a, a
}

func resume(ctx context.Context, id TaskID, actionType string, used int) *Action {
	if ctx == nil {
		ctx = context.Background()
	}
	if actionType == "" {
		actionType = RemoteTask
	}
	a := &Action{ctx: ctx, actionType: actionType}
	if parent := FromContext(ctx); parent != nil {
		a.logger = parent.logger
	} else {
		a.logger = loggerFor(ctx)
	}
	copy(a.uuid[:], id.UUID)
	a.level = append(a.inline[:0], id.Level...)
	a.next.Store(int64(used))
	a.workflow = Workflow(ctx)
	return a
}

// Preserve prepares f to run later, typically in another goroutine that may
// outlive the current action of ctx, like Eliot's preserve_context. The
// position is taken now, so the order of slots follows the order of Preserve
// calls. The returned function runs f inside an [RemoteTask] action at that
// position, with a context that carries ctx's values but not its
// cancellation, and ends the action with f's outcome (a panic in f is
// recorded, then goes on).
//
// The returned function must be called at most once; later calls do
// nothing and report false. When ctx has no action, it runs f with ctx's
// values and no action of its own.
func Preserve(ctx context.Context, f func(ctx context.Context) error) func() (called bool) {
	base := context.WithoutCancel(ctx)
	var used atomic.Bool
	a := FromContext(ctx)
	if a == nil {
		return func() bool {
			if used.Swap(true) {
				return false
			}
			_ = f(base)
			return true
		}
	}
	id := TaskID{UUID: string(a.uuid[:]), Level: append(append([]int(nil), a.level...), int(a.next.Add(1)))}
	return func() bool {
		if used.Swap(true) {
			return false
		}
		_ = runAt(base, id, f)
		return true
	}
}

// Go runs f in a new goroutine inside a [RemoteTask] action at the next slot
// of ctx's current action (see [Preserve]). The returned channel receives
// f's error once the action has ended, then is closed; it may be ignored.
func Go(ctx context.Context, f func(ctx context.Context) error) <-chan error {
	done := make(chan error, 1)
	var err error
	run := Preserve(ctx, func(ctx context.Context) error {
		err = f(ctx)
		return err
	})
	go func() {
		defer close(done)
		run()
		done <- err
	}()
	return done
}

// runAt runs f inside a continued action at id.
func runAt(ctx context.Context, id TaskID, f func(ctx context.Context) error) (err error) {
	ctx, a := ContinueAt(ctx, id, RemoteTask)
	defer func() {
		if r := recover(); r != nil {
			a.failPanic(r, debug.Stack())
			panic(r)
		}
		a.Finish(err)
	}()
	return f(ctx)
}
