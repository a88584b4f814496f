package tree

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/skeinhq/skein/internal/jsonstr"
)

// Renderer writes tasks in one output format.
type Renderer interface {
	// Render writes one task (possibly into a buffer).
	Render(*Task) error
	// Flush writes buffered output.
	Flush() error
	// Close writes any trailer the format needs and flushes.
	Close() error
}

var (
	_ Renderer = (*TextRenderer)(nil)
	_ Renderer = (*JSONRenderer)(nil)
	_ Renderer = (*HTMLRenderer)(nil)
)

// Close flushes; text output has no trailer.
func (r *TextRenderer) Close() error { return r.Flush() }

// JSONRenderer writes each task as one line of JSON (JSON Lines):
//
//	{"task_uuid": "…", "complete": true, "root": NODE}
//
// An action NODE is {"kind": "action", "action_type", "task_level" (the
// action's level), "status", "failed", "duration" (seconds, when both
// timestamps exist), "start" and "end" (the messages, absent when
// missing), "children": [NODE…]}; a message NODE is {"kind": "message",
// "task_level", "message": MESSAGE}. Messages are written with every field
// as logged; NaN and ±Infinity, which are not JSON, become null.
type JSONRenderer struct {
	w   io.Writer
	buf []byte
	err error
}

// NewJSONRenderer returns a renderer writing to w.
func NewJSONRenderer(w io.Writer) *JSONRenderer {
	return &JSONRenderer{w: w, buf: make([]byte, 0, 64<<10)}
}

// Render writes one task as one line.
func (r *JSONRenderer) Render(t *Task) error {
	if r.err != nil {
		return r.err
	}
	r.buf = append(r.buf, `{"task_uuid":`...)
	r.buf = appendJSONString(r.buf, t.UUID)
	r.buf = append(r.buf, `,"complete":`...)
	r.buf = strconv.AppendBool(r.buf, t.Complete)
	r.buf = append(r.buf, `,"root":`...)
	r.buf = appendJSONNode(r.buf, t.Root)
	r.buf = append(r.buf, "}\n"...)
	if len(r.buf) >= 32<<10 {
		return r.Flush()
	}
	return nil
}

// Flush writes buffered output.
func (r *JSONRenderer) Flush() error {
	if r.err == nil && len(r.buf) > 0 {
		if _, err := r.w.Write(r.buf); err != nil {
			r.err = fmt.Errorf("writing JSON tree: %w", err)
		}
		r.buf = r.buf[:0]
	}
	return r.err
}

// Close flushes.
func (r *JSONRenderer) Close() error { return r.Flush() }

func appendJSONLevel(b []byte, l Level) []byte {
	b = append(b, '[')
	for i, n := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return append(b, ']')
}

func appendJSONNode(b []byte, n *Node) []byte {
	if n.Message != nil {
		b = append(b, `{"kind":"message","task_level":`...)
		b = appendJSONLevel(b, n.Level)
		b = append(b, `,"message":`...)
		b = appendJSONMessage(b, n.Message)
		return append(b, '}')
	}
	b = append(b, `{"kind":"action","action_type":`...)
	b = appendJSONString(b, n.ActionType())
	b = append(b, `,"task_level":`...)
	b = appendJSONLevel(b, n.Level)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, n.Status())
	b = append(b, `,"failed":`...)
	b = strconv.AppendBool(b, n.Failed())
	if n.Start != nil && n.End != nil && n.Start.HasTimestamp && n.End.HasTimestamp {
		if d := n.End.Timestamp - n.Start.Timestamp; d == d && d-d == 0 {
			b = append(b, `,"duration":`...)
			b = strconv.AppendFloat(b, d, 'g', -1, 64)
		}
	}
	if n.Start != nil {
		b = append(b, `,"start":`...)
		b = appendJSONMessage(b, n.Start)
	}
	if n.End != nil {
		b = append(b, `,"end":`...)
		b = appendJSONMessage(b, n.End)
	}
	b = append(b, `,"children":[`...)
	for i, c := range n.Children {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONNode(b, c)
	}
	return append(b, "]}"...)
}

// appendJSONMessage writes the message's members, the last of duplicated
// keys only, values as logged.
func appendJSONMessage(b []byte, m *Message) []byte {
	b = append(b, '{')
	first := true
	for i, f := range m.Fields {
		dup := false
		for _, g := range m.Fields[i+1:] {
			if g.Key == f.Key {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, f.Key)
		b = append(b, ':')
		b = appendJSONValue(b, f.Value)
	}
	return append(b, '}')
}

// appendJSONValue writes v as valid JSON: as logged, compacted, with NaN
// and ±Infinity as null.
func appendJSONValue(b []byte, v Value) []byte {
	switch v.kind {
	case Number:
		if c := v.raw[len(v.raw)-1]; c == 'N' || c == 'y' {
			return append(b, "null"...)
		}
		return append(b, v.raw...)
	case Object:
		if !strings.Contains(v.raw, "NaN") && !strings.Contains(v.raw, "Infinity") && !hasSpaceOutsideStrings(v.raw) {
			return append(b, v.raw...)
		}
		b = append(b, '{')
		first := true
		v.Members(func(k string, e Value) bool {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONValue(b, e)
			return true
		})
		return append(b, '}')
	case Array:
		if !strings.Contains(v.raw, "NaN") && !strings.Contains(v.raw, "Infinity") && !hasSpaceOutsideStrings(v.raw) {
			return append(b, v.raw...)
		}
		b = append(b, '[')
		v.Elements(func(i int, e Value) bool {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONValue(b, e)
			return true
		})
		return append(b, ']')
	case String:
		if !v.esc && utf8.ValidString(v.raw) {
			return append(b, v.raw...)
		}
		return appendJSONString(b, v.Str())
	}
	return append(b, v.raw...)
}

func hasSpaceOutsideStrings(s string) bool {
	in := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case in && c == '\\':
			i++
		case c == '"':
			in = !in
		case !in && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return true
		}
	}
	return false
}

// appendJSONString appends s as a JSON string (see [jsonstr.Append]).
func appendJSONString(b []byte, s string) []byte { return jsonstr.Append(b, s) }
