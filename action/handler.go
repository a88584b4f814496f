package action

import (
	"context"
	"encoding/json"
	"log/slog"
	"runtime"
	"strconv"
)

// HandlerOptions configures a [Handler]. A nil *HandlerOptions means every
// default.
type HandlerOptions struct {
	// Level is the minimum level of records written. Defaults to
	// slog.LevelInfo.
	Level slog.Leveler

	// AddSource adds a "source" field {"function", "file", "line"} naming
	// the code that logged. Defaults to false.
	AddSource bool
}

// A Handler is a [slog.Handler] that writes each record as an Eliot
// message through a [Logger]:
//
//   - a record logged with a context inside an action becomes a message in
//     that action, at its next slot; outside any action it becomes a task
//     of its own (level [1]);
//   - the record's message is the "message_type", its level the
//     "log_level" (slog's names: DEBUG, INFO, WARN, ERROR), its time the
//     "timestamp" (omitted for the zero time, as slog asks);
//   - attributes are fields, groups nested objects; the context's workflow
//     id is "workflow_id".
//
// Use the *Context logging methods (slog.InfoContext and the like) so that
// the handler sees the action.
type Handler struct {
	l         *Logger
	level     slog.Leveler
	addSource bool
	pre       []byte   // pre-encoded attributes of WithAttrs, inside opened groups
	groups    []string // every group of WithGroup
	opened    int      // how many of groups pre has opened
}

var _ slog.Handler = (*Handler)(nil)

// Handler returns a slog handler writing through l.
func (l *Logger) Handler(opts *HandlerOptions) *Handler {
	h := &Handler{l: l, level: slog.LevelInfo}
	if opts != nil {
		if opts.Level != nil {
			h.level = opts.Level
		}
		h.addSource = opts.AddSource
	}
	return h
}

// Enabled reports whether records of level are written.
func (h *Handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

// Handle writes r as an Eliot message. It never returns an error: write
// errors are the Logger's to count and report.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	l := h.l
	t := r.Time
	if l.now != nil && !t.IsZero() {
		t = l.now()
	}
	buf := getBuffer()
	b := *buf
	a := FromContext(ctx)
	if a != nil && !a.finished.Load() {
		b = beginMessage(b, &a.uuid, a.level, a.next.Add(1), t, Workflow(ctx))
	} else {
		b = l.beginTask(b, Workflow(ctx), t)
	}
	b = append(b, `,"message_type":`...)
	b = appendString(b, r.Message)
	if a != nil && a.finished.Load() {
		b = append(b, `,"`+ParentTask+`":`...)
		b = appendString(b, a.TaskID().String())
	}
	b = append(b, `,"log_level":`...)
	b = appendString(b, r.Level.String())
	if h.addSource && r.PC != 0 {
		f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		b = append(b, `,"source":{"function":`...)
		b = appendString(b, f.Function)
		b = append(b, `,"file":`...)
		b = appendString(b, f.File)
		b = append(b, `,"line":`...)
		b = strconv.AppendInt(b, int64(f.Line), 10)
		b = append(b, '}')
	}
	b = append(b, h.pre...)
	open := h.opened
	if r.NumAttrs() > 0 {
		mark := len(b)
		b = h.openGroups(b)
		groupsEnd := len(b)
		r.Attrs(func(a slog.Attr) bool {
			b = h.appendAttr(b, a, len(h.groups) == 0)
			return true
		})
		if len(b) == groupsEnd {
			b = b[:mark] // only empty attributes: open no group
		} else {
			open = len(h.groups)
		}
	}
	for range open {
		b = append(b, '}')
	}
	b = l.end(b)
	l.write(b)
	*buf = b
	putBuffer(buf)
	return nil
}

// openGroups opens the groups that pre has not opened yet.
func (h *Handler) openGroups(b []byte) []byte {
	for _, g := range h.groups[h.opened:] {
		b = append(b, ',')
		b = appendKey(b, g)
		b = append(b, '{')
	}
	return b
}

// appendAttr appends one attribute; at top level, standard field names are
// protected (see appendUserAttr). The first member of a freshly opened group
// must not start with a comma.
func (h *Handler) appendAttr(b []byte, a slog.Attr, top bool) []byte {
	start := len(b)
	if top {
		b = h.l.enc.appendUserAttr(b, a)
	} else {
		b = h.l.enc.appendAttr(b, a)
	}
	if len(b) > start && start > 0 && b[start-1] == '{' && b[start] == ',' {
		b = append(b[:start], b[start+1:]...)
	}
	return b
}

// WithAttrs returns a handler whose records carry attrs, in the groups
// opened so far.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	b := append([]byte(nil), h.pre...)
	b = h.openGroups(b)
	groupsEnd := len(b)
	for _, a := range attrs {
		b = h.appendAttr(b, a, len(h.groups) == 0)
	}
	if len(b) == groupsEnd {
		return h // only empty attributes
	}
	h2.pre = b
	h2.opened = len(h.groups)
	return &h2
}

// WithGroup returns a handler that nests later attributes under name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.groups = append(h.groups[:len(h.groups):len(h.groups)], name)
	return &h2
}

// Wrap returns a handler that adds the causal position to the records of h,
// for teams that keep their own handler: inside an action each record takes
// the action's next slot and gets "task_uuid" and "task_level" (a JSON
// array with a JSON handler, "/1/2" with a text handler); under a workflow it
// gets "workflow_id". The fields are added at the top level, outside any
// group of h.
func Wrap(h slog.Handler) slog.Handler {
	return &wrapped{base: h, h: h}
}

type wrapped struct {
	base    slog.Handler // h before any WithAttrs/WithGroup
	h       slog.Handler
	ops     []wrapOp // the WithAttrs/WithGroup calls that made h from base
	grouped bool
}

type wrapOp struct {
	attrs []slog.Attr
	group string
}

func (w *wrapped) Enabled(ctx context.Context, level slog.Level) bool {
	return w.h.Enabled(ctx, level)
}

func (w *wrapped) Handle(ctx context.Context, r slog.Record) error {
	a := FromContext(ctx)
	workflow := Workflow(ctx)
	if a == nil && workflow == "" {
		return w.h.Handle(ctx, r)
	}
	attrs := make([]slog.Attr, 0, 3)
	if a != nil {
		level := make(levelValue, len(a.level)+1)
		copy(level, a.level)
		level[len(a.level)] = int(a.next.Add(1))
		attrs = append(attrs, slog.String("task_uuid", string(a.uuid[:])), slog.Any("task_level", level))
	}
	if workflow != "" {
		attrs = append(attrs, slog.String("workflow_id", workflow))
	}
	if !w.grouped {
		r = r.Clone()
		r.AddAttrs(attrs...)
		return w.h.Handle(ctx, r)
	}
	h := w.base.WithAttrs(attrs)
	for _, op := range w.ops {
		if op.group != "" {
			h = h.WithGroup(op.group)
		} else {
			h = h.WithAttrs(op.attrs)
		}
	}
	return h.Handle(ctx, r)
}

func (w *wrapped) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return w
	}
	return &wrapped{base: w.base, h: w.h.WithAttrs(attrs), ops: append(w.ops[:len(w.ops):len(w.ops)], wrapOp{attrs: attrs}), grouped: w.grouped}
}

func (w *wrapped) WithGroup(name string) slog.Handler {
	if name == "" {
		return w
	}
	return &wrapped{base: w.base, h: w.h.WithGroup(name), ops: append(w.ops[:len(w.ops):len(w.ops)], wrapOp{group: name}), grouped: true}
}

// levelValue is a task level that a JSON handler writes as an array and a
// text handler as "/1/2".
type levelValue []int

func (l levelValue) MarshalJSON() ([]byte, error) { return json.Marshal([]int(l)) }

func (l levelValue) String() string { return TaskID{Level: l}.String()[1:] }
