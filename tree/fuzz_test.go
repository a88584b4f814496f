package tree

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

func addSeedLines(f *testing.F, files ...string) {
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for l := range bytes.Lines(data) {
			f.Add(bytes.TrimRight(l, "\n"))
		}
	}
}

// FuzzParseMessage checks that the parser never panics, accepts exactly
// the JSON that encoding/json accepts (apart from Python's NaN and
// Infinity), and that every renderer copes with what it accepts.
func FuzzParseMessage(f *testing.F) {
	addSeedLines(f, "testdata/nested.log", "testdata/edge.log", "testdata/compact.log", "testdata/invalid_json.log", "testdata/not_eliot.log")
	for _, s := range []string{``, `{}`, `[1]`, `{"a": "\ud800"}`, "{\"a\":\"\xff\"}", `{"task_uuid": "u", "task_level": [1], "x": -Infinity}`, `{"a": 1e999}`, `{"a": 0.}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := ParseMessage(line)
		var se *SyntaxError
		isSyntax := errors.As(err, &se)
		if err != nil && !isSyntax && !IsFormatError(err) {
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
		pythonOnly := bytes.Contains(line, []byte("NaN")) || bytes.Contains(line, []byte("Infinity"))
		deep := bytes.Count(line, []byte("["))+bytes.Count(line, []byte("{")) > 900
		if !pythonOnly && !deep && isSyntax == json.Valid(line) {
			t.Fatalf("syntax error %v but encoding/json says valid=%v for %q", err, json.Valid(line), line)
		}
		if err != nil {
			return
		}
		for _, f := range m.Fields {
			_ = f.Value.Decode()
			_ = f.Value.Str()
		}
		var out bytes.Buffer
		jr := NewJSONRenderer(&out)
		task := &Task{UUID: m.TaskUUID, Root: &Node{Level: m.Level, Message: m}, Complete: true}
		if err := jr.Render(task); err != nil {
			t.Fatal(err)
		}
		jr.Close()
		if !json.Valid(out.Bytes()) {
			t.Fatalf("JSON output is not valid JSON: %s", out.Bytes())
		}
		for _, cfg := range []*TextConfig{{}, {Style: StyleEliotTree, FieldLimit: -1}, {ASCII: true, Raw: true, Color: true}} {
			tr, err := NewTextRenderer(io.Discard, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.Render(task); err != nil {
				t.Fatal(err)
			}
		}
		_ = PyFormat(m)
		if err := NewHTMLRenderer(io.Discard, nil).Render(task); err != nil {
			t.Fatal(err)
		}
	})
}

// fuzzMessages turns bytes into messages of four tasks with levels up to
// four deep: every four bytes are task, kind, and a level.
func fuzzMessages(data []byte) []string {
	var lines []string
	for i := 0; i+3 < len(data); i += 4 {
		uuid := string(rune('a' + data[i]%4))
		depth := int(data[i+2]%4) + 1
		lv := make([]string, depth)
		x := int(data[i+3]) | int(data[i+2])<<8
		for d := range lv {
			lv[d] = fmt.Sprint(x%4 + 1)
			x /= 4
		}
		level := strings.Join(lv, ", ")
		switch data[i+1] % 6 {
		case 0, 1:
			lines = append(lines, fmt.Sprintf(`{"timestamp": %d, "task_uuid": %q, "task_level": [%s], "message_type": "m%d"}`, i, uuid, level, data[i+1]))
		case 2, 3:
			lines = append(lines, fmt.Sprintf(`{"action_status": "started", "timestamp": %d, "task_uuid": %q, "action_type": "a%d", "task_level": [%s]}`, i, uuid, data[i+1]%3, level))
		case 4:
			lines = append(lines, fmt.Sprintf(`{"action_status": "succeeded", "timestamp": %d, "task_uuid": %q, "action_type": "a%d", "task_level": [%s]}`, i, uuid, data[i+1]%3, level))
		default:
			lines = append(lines, fmt.Sprintf(`{"action_status": "failed", "timestamp": %d, "task_uuid": %q, "action_type": "a%d", "task_level": [%s]}`, i, uuid, data[i+1]%3, level))
		}
	}
	return lines
}

// FuzzBuilder feeds arbitrary message sequences (gaps, duplicates, any
// order, wrong types) and checks that the builder never panics, rejects
// only with a FormatError, accounts for every accepted message, holds no
// more open tasks than there are task ids, and forgets everything on Flush.
func FuzzBuilder(f *testing.F) {
	f.Add([]byte{0, 2, 0, 0, 0, 0, 0, 1, 0, 4, 0, 2})
	f.Add([]byte{1, 2, 1, 0, 1, 4, 1, 1, 1, 2, 0, 0, 1, 4, 0, 2, 2, 0, 0, 0})
	f.Add(bytes.Repeat([]byte{3, 1, 2, 7, 3, 2, 0, 0, 3, 5, 0, 1}, 8))
	// The real logs, as seeds of the same shape.
	for _, name := range []string{"testdata/nested.log", "testdata/threads.log"} {
		fd, err := os.Open(name)
		if err != nil {
			f.Fatal(err)
		}
		var seed []byte
		sc := bufio.NewScanner(fd)
		for sc.Scan() {
			m, err := ParseMessage(sc.Bytes())
			if err != nil {
				continue
			}
			kind := byte(0)
			if m.IsAction {
				kind = map[string]byte{"started": 2, "succeeded": 4, "failed": 5}[m.ActionStatus]
			}
			seed = append(seed, m.TaskUUID[0]%4, kind, byte(len(m.Level)-1), byte(m.Level[0]-1))
		}
		fd.Close()
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b := NewBuilder(nil)
		accepted, counted := 0, 0
		var tasks []*Task
		for _, l := range fuzzMessages(data) {
			m, err := ParseMessage([]byte(l))
			if err != nil {
				t.Fatalf("generated line rejected: %v: %s", err, l)
			}
			task, err := b.Add(m)
			if err != nil {
				if !IsFormatError(err) {
					t.Fatalf("Add: %T %v", err, err)
				}
				continue
			}
			accepted++
			if b.Open() > 4 {
				t.Fatalf("%d open tasks from 4 task ids", b.Open())
			}
			if task != nil {
				if !task.Complete {
					t.Fatal("Add returned an incomplete task")
				}
				tasks = append(tasks, task)
			}
		}
		tasks = append(tasks, b.Flush()...)
		if b.Open() != 0 {
			t.Fatalf("Open() = %d after Flush", b.Open())
		}
		tr, _ := NewTextRenderer(io.Discard, &TextConfig{Style: StyleEliotTree})
		for _, task := range tasks {
			counted += task.Messages()
			if task.Root == nil {
				t.Fatal("task without root")
			}
			if err := tr.Render(task); err != nil {
				t.Fatal(err)
			}
			n := 0
			task.Walk(func(*Message) bool { n++; return true })
			if n > task.Messages() {
				t.Fatalf("tree holds %d messages, %d were added", n, task.Messages())
			}
		}
		if counted != accepted {
			t.Fatalf("tasks account for %d messages, %d accepted", counted, accepted)
		}
	})
}
