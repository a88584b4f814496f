package actionhttp

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/skeinhq/skein/action"
)

// Transport is an [http.RoundTripper] that logs each request as an action
// (default type "http:client", with "method" and "url" — credentials and
// query redacted — and, at its end, "status" and "duration") in the current
// action of the request's context, and sends the task header (the position
// the server continues at), the workflow header (when the context has a
// workflow id) and a W3C traceparent along with it. A 5xx response or a
// transport error ends the action as failed. The action ends when the
// response headers arrive.
//
// A zero Transport is ready to use:
//
//	client := &http.Client{Transport: &actionhttp.Transport{}}
type Transport struct {
	// ActionType is the type of each request's action. Defaults to
	// "http:client".
	ActionType string

	// Base makes the requests. Defaults to http.DefaultTransport.
	Base http.RoundTripper

	// DisableTraceparent stops sending the W3C traceparent header. Defaults
	// to false.
	DisableTraceparent bool

	// TaskHeader names the task header. Defaults to "X-Skein-Task-Id".
	TaskHeader string

	// WorkflowHeader names the workflow header. Defaults to "X-Request-ID".
	WorkflowHeader string
}

var _ http.RoundTripper = (*Transport)(nil)

// RoundTrip makes the request inside an action. It does not modify req.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	actionType := t.ActionType
	if actionType == "" {
		actionType = "http:client"
	}
	taskHeader, workflowHeader := headerNames(t.TaskHeader, t.WorkflowHeader)

	u := *req.URL
	u.RawQuery = ""
	ctx, a := action.Start(req.Context(), actionType, slog.String("method", req.Method), slog.String("url", u.Redacted()))
	out := req.Clone(ctx)
	taskID := a.SerializeTaskID()
	out.Header.Set(taskHeader, taskID)
	if workflow := action.Workflow(ctx); workflow != "" && out.Header.Get(workflowHeader) == "" {
		out.Header.Set(workflowHeader, workflow)
	}
	if !t.DisableTraceparent {
		if id, err := action.ParseTaskID(taskID); err == nil {
			out.Header.Set(TraceparentHeader, traceparent(id))
		}
	}

	resp, err := base.RoundTrip(out)
	duration := slog.Float64("duration", time.Since(start).Seconds())
	switch {
	case err != nil:
		a.Fail(err, duration)
	case resp.StatusCode >= 500:
		a.Fail(&StatusError{Code: resp.StatusCode}, slog.Int("status", resp.StatusCode), duration)
	default:
		a.End(slog.Int("status", resp.StatusCode), duration)
	}
	return resp, err
}
