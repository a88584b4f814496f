package actionhttp

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/skeinhq/skein/action"
)

// MiddlewareConfig configures [Middleware]. A nil *MiddlewareConfig means
// every default.
type MiddlewareConfig struct {
	// ActionType is the type of the action of each request. Defaults to
	// "http:request".
	ActionType string

	// DisableTraceparent stops reading the W3C traceparent header. Defaults
	// to false: a request with a traceparent but no task header is logged in
	// the task whose uuid is its trace id.
	DisableTraceparent bool

	// Logger receives the messages of requests. Defaults to the Logger of
	// the request's context (see [action.WithLogger]), else
	// [action.Default].
	Logger *action.Logger

	// NewWorkflowID makes the workflow id of a request that came without a
	// usable one. Defaults to [action.NewID].
	NewWorkflowID func() string

	// TaskHeader names the header with the serialized task id to continue.
	// Defaults to "X-Skein-Task-Id".
	TaskHeader string

	// WorkflowHeader names the header with the workflow id; it is echoed in
	// the response. Defaults to "X-Request-ID".
	WorkflowHeader string
}

// Middleware wraps next so that each request runs inside an action:
//
//   - the workflow id comes from the workflow header (generated when absent
//     or unusable) and is echoed in the response header of the same name;
//   - with a task header, the request continues that task (its action is
//     at the serialized position); a malformed task header is not an error
//     for the client: the request starts a new task whose start message has
//     the bad id and why it was refused as "bad_task_id" and
//     "bad_task_id_error";
//   - with only a traceparent, the request joins the task named by its trace
//     id (see the package doc);
//   - else it starts a new task.
//
// The action's start message has "method" and "path", its end "status" and
// "duration" (seconds). A status of 500 or more ends it as failed with a
// [*StatusError]; a panic in next is logged as an eliot:traceback message,
// ends it as failed, and goes on to net/http.
func Middleware(next http.Handler, cfg *MiddlewareConfig) http.Handler {
	var c MiddlewareConfig
	if cfg != nil {
		c = *cfg
	}
	if c.ActionType == "" {
		c.ActionType = "http:request"
	}
	if c.NewWorkflowID == nil {
		c.NewWorkflowID = action.NewID
	}
	c.TaskHeader, c.WorkflowHeader = headerNames(c.TaskHeader, c.WorkflowHeader)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := r.Context()
		if c.Logger != nil {
			ctx = action.WithLogger(ctx, c.Logger)
		}
		attrs := make([]slog.Attr, 0, 6)
		attrs = append(attrs, slog.String("method", r.Method), slog.String("path", r.URL.Path))

		workflow := r.Header.Get(c.WorkflowHeader)
		if !validWorkflowID(workflow) {
			if workflow != "" {
				attrs = append(attrs, slog.String("bad_workflow_id", workflow))
			}
			workflow = c.NewWorkflowID()
		}
		ctx = action.WithWorkflow(ctx, workflow)
		w.Header().Set(c.WorkflowHeader, workflow)

		var a *action.Action
		if taskID := r.Header.Get(c.TaskHeader); taskID != "" {
			id, err := action.ParseTaskID(taskID)
			if err == nil {
				ctx, a = action.ContinueAt(ctx, id, c.ActionType, attrs...)
			} else {
				attrs = append(attrs, slog.String("bad_task_id", taskID), slog.String("bad_task_id_error", err.Error()))
			}
		}
		if a == nil && !c.DisableTraceparent {
			if tp := r.Header.Get(TraceparentHeader); tp != "" {
				if uuid, parent, ok := parseTraceparent(tp); ok {
					attrs = append(attrs, slog.String("trace_parent_id", parent))
					ctx, a = action.ContinueAt(ctx, action.TaskID{UUID: uuid, Level: []int{traceLevel()}}, c.ActionType, attrs...)
				}
			}
		}
		if a == nil {
			ctx, a = action.StartTask(ctx, c.ActionType, attrs...)
		}

		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			duration := slog.Float64("duration", time.Since(start).Seconds())
			if p := recover(); p != nil {
				action.LogPanic(ctx, p, debug.Stack())
				a.Fail(fmt.Errorf("panic serving %s %s: %v", r.Method, r.URL.Path, p), duration)
				panic(p)
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			if status >= 500 {
				a.Fail(&StatusError{Code: status}, slog.Int("status", status), duration)
				return
			}
			a.End(slog.Int("status", status), duration)
		}()
		next.ServeHTTP(rec, r.WithContext(ctx))
	})
}

// statusRecorder remembers the status written through it. Unwrap lets
// http.ResponseController reach the flusher, hijacker and deadlines of the
// underlying writer.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

// Flush supports streaming handlers that type-assert http.Flusher.
func (s *statusRecorder) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
