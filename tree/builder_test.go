package tree

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// msg builds a message line: kind is "s" (start), "ok", "fail" (end) or
// "m" (plain message).
func msg(t testing.TB, uuid, kind, typ string, level ...int) *Message {
	t.Helper()
	lv := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(level)), ", "), "[]")
	var line string
	switch kind {
	case "s":
		line = fmt.Sprintf(`{"action_status": "started", "timestamp": 1, "task_uuid": %q, "action_type": %q, "task_level": [%s]}`, uuid, typ, lv)
	case "ok", "fail":
		st := map[string]string{"ok": "succeeded", "fail": "failed"}[kind]
		line = fmt.Sprintf(`{"action_status": %q, "timestamp": 2, "task_uuid": %q, "action_type": %q, "task_level": [%s]}`, st, uuid, typ, lv)
	default:
		line = fmt.Sprintf(`{"timestamp": 1.5, "task_uuid": %q, "task_level": [%s], "message_type": %q}`, uuid, lv, typ)
	}
	m, err := ParseMessage([]byte(line))
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return m
}

// feed adds the messages and returns the UUIDs of the tasks completed, in
// order, then "|", then those Flush returns.
func feed(t *testing.T, b *Builder, ms ...*Message) string {
	t.Helper()
	var out []string
	for _, m := range ms {
		task, err := b.Add(m)
		if err != nil {
			t.Fatalf("Add %s %s: %v", m.TaskUUID, m.Level, err)
		}
		if task != nil {
			out = append(out, task.UUID)
		}
	}
	out = append(out, "|")
	for _, task := range b.Flush() {
		out = append(out, task.UUID)
	}
	return strings.Join(out, " ")
}

func TestBuilderCompleteness(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		msgs func(t testing.TB) []*Message
		want string
	}{
		{"lone message is a whole task", func(t testing.TB) []*Message {
			return []*Message{msg(t, "a", "m", "x", 1)}
		}, "a |"},
		{"action completes at its end", func(t testing.TB) []*Message {
			return []*Message{msg(t, "a", "s", "x", 1), msg(t, "a", "m", "y", 2), msg(t, "a", "ok", "x", 3)}
		}, "a |"},
		{"end before middle: completes with the middle", func(t testing.TB) []*Message {
			return []*Message{msg(t, "a", "s", "x", 1), msg(t, "a", "ok", "x", 3), msg(t, "a", "m", "y", 2)}
		}, "a |"},
		{"missing middle stays open", func(t testing.TB) []*Message {
			return []*Message{msg(t, "a", "s", "x", 1), msg(t, "a", "ok", "x", 3)}
		}, "| a"},
		{"child action must complete too", func(t testing.TB) []*Message {
			return []*Message{msg(t, "a", "s", "x", 1), msg(t, "a", "s", "c", 2, 1), msg(t, "a", "ok", "x", 3)}
		}, "| a"},
		{"child completing last completes the task", func(t testing.TB) []*Message {
			return []*Message{msg(t, "a", "s", "x", 1), msg(t, "a", "s", "c", 2, 1), msg(t, "a", "ok", "x", 3), msg(t, "a", "fail", "c", 2, 2)}
		}, "a |"},
		{"missing start stays open", func(t testing.TB) []*Message {
			return []*Message{msg(t, "a", "m", "y", 2), msg(t, "a", "ok", "x", 3)}
		}, "| a"},
		{"incomplete tasks in first-seen order, after complete ones", func(t testing.TB) []*Message {
			return []*Message{msg(t, "c", "s", "x", 1), msg(t, "a", "s", "x", 1), msg(t, "b", "m", "x", 1), msg(t, "z", "s", "x", 1), msg(t, "c", "m", "y", 3)}
		}, "b | c a z"},
		{"a task seen again after completing starts anew", func(t testing.TB) []*Message {
			return []*Message{msg(t, "a", "m", "x", 1), msg(t, "a", "s", "x", 2, 1)}
		}, "a | a"},
		{"duplicate message is counted once", func(t testing.TB) []*Message {
			return []*Message{msg(t, "a", "s", "x", 1), msg(t, "a", "m", "y", 2), msg(t, "a", "m", "y", 2), msg(t, "a", "ok", "x", 3)}
		}, "a |"},
		{"remote task continued in another file", func(t testing.TB) []*Message {
			return []*Message{msg(t, "a", "s", "x", 1), msg(t, "a", "s", "h", 2, 1), msg(t, "a", "ok", "h", 2, 3), msg(t, "a", "ok", "x", 3),
				msg(t, "a", "s", "eliot:remote_task", 2, 2, 1), msg(t, "a", "ok", "eliot:remote_task", 2, 2, 2)}
		}, "a |"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := NewBuilder(nil)
			if got := feed(t, b, tt.msgs(t)...); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if b.Open() != 0 {
				t.Errorf("Open() = %d after Flush", b.Open())
			}
		})
	}
}

func TestBuilderRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		prior []*Message
		bad   *Message
		field string
	}{
		{"start not in slot 1", nil, msg(t, "a", "s", "x", 2, 2), "task_level"},
		{"end of another type", []*Message{msg(t, "a", "s", "x", 1)}, msg(t, "a", "ok", "y", 2), "action_type"},
		{"bad status", nil, func() *Message {
			m, _ := ParseMessage([]byte(`{"action_status": "paused", "task_uuid": "a", "action_type": "x", "task_level": [2]}`))
			return m
		}(), "action_status"},
		{"inside a message", []*Message{msg(t, "a", "s", "x", 1), msg(t, "a", "m", "y", 2)}, msg(t, "a", "m", "z", 2, 1), "task_level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := NewBuilder(nil)
			for _, m := range tt.prior {
				if _, err := b.Add(m); err != nil {
					t.Fatal(err)
				}
			}
			var before bytes.Buffer
			snapshot := func(w *bytes.Buffer) {
				r := NewJSONRenderer(w)
				for _, task := range b.tasks {
					r.Render(task)
				}
				r.Flush()
			}
			snapshot(&before)
			_, err := b.Add(tt.bad)
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("got %v, want a FormatError on %s", err, tt.field)
			}
			var after bytes.Buffer
			snapshot(&after)
			if before.String() != after.String() {
				t.Errorf("a rejected message changed the tree:\nbefore %s\nafter  %s", before.String(), after.String())
			}
		})
	}
}

func TestBuilderAnyOrderSameTree(t *testing.T) {
	t.Parallel()
	base := renderAll(t, &TextConfig{Style: StyleEliotTree}, "testdata/nested.log")
	for _, f := range []string{"testdata/shuffled.log", "testdata/reversed.log", "testdata/compact.log", "testdata/nested.log.gz"} {
		got := renderAll(t, &TextConfig{Style: StyleEliotTree}, f)
		g, w := blocks(got), blocks(base)
		if len(g) != len(w) {
			t.Fatalf("%s: %d tasks, want %d", f, len(g), len(w))
		}
		for _, blk := range w {
			found := false
			for _, x := range g {
				if x == blk {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: task missing or different:\n%s", f, blk)
			}
		}
	}
}

func TestBuilderExpire(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	b := NewBuilder(&BuilderConfig{TrackIdle: true, Now: func() time.Time { return now }})
	mustAdd := func(m *Message) {
		if _, err := b.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	mustAdd(msg(t, "old", "s", "x", 1))
	now = now.Add(10 * time.Second)
	mustAdd(msg(t, "new", "s", "x", 1))
	if got := b.Expire(time.Minute); len(got) != 0 {
		t.Fatalf("expired %d tasks too early", len(got))
	}
	now = now.Add(55 * time.Second)
	got := b.Expire(time.Minute)
	if len(got) != 1 || got[0].UUID != "old" || got[0].Complete {
		t.Fatalf("Expire = %v, want the incomplete task old", got)
	}
	if b.Open() != 1 {
		t.Errorf("Open() = %d, want 1", b.Open())
	}
}

func TestTaskHelpers(t *testing.T) {
	t.Parallel()
	b := NewBuilder(nil)
	var done *Task
	for _, m := range []*Message{msg(t, "a", "s", "x", 1), msg(t, "a", "s", "c", 2, 1), msg(t, "a", "fail", "c", 2, 2), msg(t, "a", "ok", "x", 3)} {
		task, err := b.Add(m)
		if err != nil {
			t.Fatal(err)
		}
		done = task
	}
	if done == nil || !done.Complete || done.Messages() != 4 || !done.HasFailure() {
		t.Fatalf("task %+v: want complete, 4 messages, a failure", done)
	}
	c := done.Root.Children[0]
	if c.ActionType() != "c" || c.Status() != "failed" || !c.Failed() {
		t.Errorf("child %s %s", c.ActionType(), c.Status())
	}
	if d, ok := done.Root.Duration(); !ok || d != time.Second {
		t.Errorf("duration %v %v, want 1s", d, ok)
	}
}
