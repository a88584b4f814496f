// Package actionhttp carries causal logging across HTTP: server middleware
// that continues the caller's task (or starts one per request) and a client
// [http.RoundTripper] that sends the current position along.
//
// Three headers travel with a request:
//
//   - the task header (default "X-Skein-Task-Id") holds a serialized task id
//     ("<task uuid>@/2/2", see [action.Action.SerializeTaskID]); the server
//     continues the task there, so the client's and the server's messages
//     form one tree;
//   - the workflow header (default "X-Request-ID") holds the workflow id
//     that groups everything one request caused; the server generates one
//     when it is absent and echoes it in the response;
//   - W3C "traceparent", read and written alongside, so an OpenTelemetry
//     peer joins the same trace: the trace id is the task uuid without its
//     hyphens, the parent (span) id a hash of the position.
package actionhttp

import (
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/skeinhq/skein/action"
)

// Default header names.
const (
	DefaultTaskHeader     = "X-Skein-Task-Id"
	DefaultWorkflowHeader = "X-Request-ID"
	TraceparentHeader     = "Traceparent"
)

// MaxWorkflowIDLen is the longest workflow id accepted from a request
// header; a longer one, or one with characters outside printable ASCII, is
// replaced by a generated id (and the bad one logged as a field).
const MaxWorkflowIDLen = 200

// StatusError is the error of an HTTP exchange that ended with a 5xx status:
// the server's and the client's actions for it end as failed with it.
type StatusError struct {
	Code int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%d %s", e.Code, http.StatusText(e.Code))
}

// headerNames fills in defaults.
func headerNames(task, workflow string) (string, string) {
	if task == "" {
		task = DefaultTaskHeader
	}
	if workflow == "" {
		workflow = DefaultWorkflowHeader
	}
	return task, workflow
}

// validWorkflowID reports whether a workflow id from a header is usable.
func validWorkflowID(s string) bool {
	if s == "" || len(s) > MaxWorkflowIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// traceparent returns the W3C traceparent value for a position: version 00,
// the task uuid as trace id, a hash of the level as parent id, sampled.
func traceparent(id action.TaskID) string {
	traceID := strings.ReplaceAll(strings.ToLower(id.UUID), "-", "")
	h := fnv.New64a()
	_, _ = h.Write([]byte(id.String()))
	span := h.Sum64()
	if span == 0 {
		span = 1
	}
	var spanHex [16]byte
	const digits = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		spanHex[i] = digits[span&0xf]
		span >>= 4
	}
	return "00-" + traceID + "-" + string(spanHex[:]) + "-01"
}

// parseTraceparent returns the trace id (as a UUID) and the parent id of a
// W3C traceparent value, or ok=false if it is malformed.
func parseTraceparent(v string) (taskUUID, parentID string, ok bool) {
	v = strings.TrimSpace(v)
	parts := strings.Split(v, "-")
	if len(parts) < 4 || len(parts[0]) != 2 || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		return "", "", false
	}
	if parts[0] == "ff" || (parts[0] == "00" && len(parts) != 4) {
		return "", "", false
	}
	for _, p := range parts[:4] {
		if _, err := hex.DecodeString(p); err != nil || strings.ToLower(p) != p {
			return "", "", false
		}
	}
	if strings.Trim(parts[1], "0") == "" || strings.Trim(parts[2], "0") == "" {
		return "", "", false
	}
	t := parts[1]
	return t[:8] + "-" + t[8:12] + "-" + t[12:16] + "-" + t[16:20] + "-" + t[20:], parts[2], true
}

// traceLevel picks the level under which a request that came with only a
// traceparent is logged in the task named by its trace id. It is random and
// high, so that two requests of one trace, or a trace that started as one
// of our own tasks, never share a level.
func traceLevel() int { return 1<<20 + rand.IntN(1<<31-1<<20) }
