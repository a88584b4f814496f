package action

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"testing/slogtest"
)

// TestSlogtest runs the standard library's conformance suite for handlers,
// reading our Eliot output back with slog's key names.
func TestSlogtest(t *testing.T) {
	var out bytes.Buffer
	newHandler := func(*testing.T) slog.Handler {
		out.Reset()
		return New(&out, nil).Handler(&HandlerOptions{Level: slog.LevelDebug})
	}
	result := func(t *testing.T) map[string]any {
		line := bytes.TrimSpace(out.Bytes())
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("invalid JSON %q: %v", line, err)
		}
		for _, k := range []string{"task_uuid", "task_level", "message_type", "log_level", "timestamp"} {
			if _, ok := m[k]; !ok && k != "timestamp" {
				t.Errorf("missing Eliot field %q in %s", k, line)
			}
		}
		rename := map[string]string{"message_type": slog.MessageKey, "log_level": slog.LevelKey, "timestamp": slog.TimeKey}
		for from, to := range rename {
			if v, ok := m[from]; ok {
				m[to] = v
				delete(m, from)
			}
		}
		delete(m, "task_uuid")
		delete(m, "task_level")
		return m
	}
	slogtest.Run(t, newHandler, result)
}

func TestHandlerInsideAction(t *testing.T) {
	ctx, l, out := newTestLogger(t)
	log := slog.New(l.Handler(&HandlerOptions{AddSource: true}))
	ctx, a := Start(ctx, "a")
	log.DebugContext(ctx, "hidden below Info")
	log.With("user", "u1").WithGroup("req").InfoContext(ctx, "hello", "path", "/x")
	a.End()
	msgs := decode(t, out.String())
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3:\n%s", len(msgs), out)
	}
	m := msgs[1]
	if got := m.levelKey(); !strings.HasSuffix(got, " /2") {
		t.Errorf("record at %s, want /2", got)
	}
	if m["message_type"] != "hello" || m["log_level"] != "INFO" || m["user"] != "u1" {
		t.Errorf("record %v", m)
	}
	if req, _ := m["req"].(map[string]any); req["path"] != "/x" {
		t.Errorf("group req = %v", m["req"])
	}
	if src, _ := m["source"].(map[string]any); !strings.HasSuffix(src["file"].(string), "handler_test.go") {
		t.Errorf("source = %v", m["source"])
	}
}

// TestWrapAddsCausalFields wraps slog's own JSONHandler, with and without
// groups.
func TestWrapAddsCausalFields(t *testing.T) {
	ctx, _, _ := newTestLogger(t)
	ctx = WithWorkflow(ctx, "wf")
	var out bytes.Buffer
	log := slog.New(Wrap(slog.NewJSONHandler(&out, nil)))
	ctx, a := Start(ctx, "a") // writes to the test logger, not to out
	log.InfoContext(ctx, "plain")
	log.WithGroup("g").With("x", 1).InfoContext(ctx, "grouped", "y", 2)
	log.Info("no context")
	a.End()
	msgs := decode(t, out.String())
	if len(msgs) != 3 {
		t.Fatalf("%d records:\n%s", len(msgs), out.String())
	}
	for i, want := range []string{"/2", "/3"} {
		if got := msgs[i].levelKey(); got != a.TaskUUID()+" "+want {
			t.Errorf("record %d at %q, want %s", i, got, want)
		}
		if msgs[i]["workflow_id"] != "wf" {
			t.Errorf("record %d lacks workflow_id: %v", i, msgs[i])
		}
	}
	if g, _ := msgs[1]["g"].(map[string]any); g["x"] != 1.0 || g["y"] != 2.0 {
		t.Errorf("group lost: %v", msgs[1])
	}
	if _, ok := msgs[2]["task_uuid"]; ok {
		t.Errorf("record outside any action got a task: %v", msgs[2])
	}
	var text bytes.Buffer
	slog.New(Wrap(slog.NewTextHandler(&text, nil))).InfoContext(ctx, "text")
	if !strings.Contains(text.String(), "task_level=/5") {
		t.Errorf("text handler output %q lacks task_level=/5 (after the end at /4)", text.String())
	}
}
