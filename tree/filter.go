package tree

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/jmespath-community/go-jmespath"
)

// Query is a compiled JMESPath expression evaluated against messages.
type Query struct {
	expr string
	q    jmespath.JMESPath
}

// CompileQuery compiles a JMESPath expression.
//
// As in Python's jmespath (which eliot-tree uses), a `literal` that is not
// valid JSON is read as a string: `foo` means `"foo"`.
func CompileQuery(expr string) (*Query, error) {
	q, err := jmespath.Compile(legacyLiterals(expr))
	if err != nil {
		return nil, fmt.Errorf("compiling JMESPath query %q: %w", expr, err)
	}
	return &Query{expr: expr, q: q}, nil
}

// String returns the expression.
func (q *Query) String() string { return q.expr }

// Match reports whether the query's result for m is truthy as Python sees
// it (eliot-tree's rule): not null, false, 0, "", [] or {}. A query that
// fails at run time (a type error) does not match.
func (q *Query) Match(m *Message) bool {
	res, err := q.q.Search(m.Decode())
	if err != nil {
		return false
	}
	return pyTruthy(res)
}

// legacyLiterals rewrites each backtick literal that is not valid JSON into
// a JSON string literal.
func legacyLiterals(expr string) string {
	if !strings.Contains(expr, "`") {
		return expr
	}
	var b strings.Builder
	inString := byte(0) // inside a 'raw string' or "identifier"
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case inString != 0:
			b.WriteByte(c)
			if c == '\\' && i+1 < len(expr) {
				i++
				b.WriteByte(expr[i])
			} else if c == inString {
				inString = 0
			}
		case c == '\'' || c == '"':
			inString = c
			b.WriteByte(c)
		case c == '`':
			j := i + 1
			var lit strings.Builder
			for j < len(expr) && expr[j] != '`' {
				if expr[j] == '\\' && j+1 < len(expr) && expr[j+1] == '`' {
					lit.WriteByte('`')
					j += 2
					continue
				}
				lit.WriteByte(expr[j])
				j++
			}
			if j >= len(expr) { // unterminated: let the parser report it
				b.WriteString(expr[i:])
				return b.String()
			}
			content := lit.String()
			if !json.Valid([]byte(strings.TrimSpace(content))) {
				q, _ := json.Marshal(strings.TrimLeft(content, " \t\n\r"))
				content = string(q)
			}
			b.WriteByte('`')
			b.WriteString(strings.ReplaceAll(content, "`", "\\`"))
			b.WriteByte('`')
			i = j
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func pyTruthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0
	case int:
		return x != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// Decode returns the message as Go values (map[string]any, []any, string,
// float64, bool, nil), the last of duplicated keys winning.
func (m *Message) Decode() map[string]any {
	out := make(map[string]any, len(m.Fields))
	for _, f := range m.Fields {
		out[f.Key] = f.Value.Decode()
	}
	return out
}

// Decode returns v as Go values (see Message.Decode); numbers are float64.
func (v Value) Decode() any {
	switch v.kind {
	case Null:
		return nil
	case Bool:
		return v.Bool()
	case Number:
		f, _ := v.Float()
		return f
	case String:
		return v.Str()
	case Array:
		out := []any{}
		v.Elements(func(_ int, e Value) bool {
			out = append(out, e.Decode())
			return true
		})
		return out
	case Object:
		out := map[string]any{}
		v.Members(func(k string, e Value) bool {
			out[k] = e.Decode()
			return true
		})
		return out
	}
	return nil
}

// HasFailure reports whether any action of the task ended with status
// "failed".
func (t *Task) HasFailure() bool {
	found := false
	t.Walk(func(m *Message) bool {
		found = m.Failed()
		return !found
	})
	return found
}

// Any reports whether f holds for some message of the task.
func (t *Task) Any(f func(*Message) bool) bool {
	found := false
	t.Walk(func(m *Message) bool {
		found = f(m)
		return !found
	})
	return found
}

// WorkflowMatcher returns a predicate for messages that belong to the
// workflow named by id: its workflow_id equals id, or its job_id is id or
// starts with id + "_" (job ids are "<workflow_id>_<uuid>"). When id itself
// is a job id, messages of its workflow match too.
func WorkflowMatcher(id string) func(*Message) bool {
	wf := ""
	if i := strings.LastIndexByte(id, '_'); i > 0 && isUUID(id[i+1:]) {
		wf = id[:i]
	}
	return func(m *Message) bool {
		if v, ok := m.Get("workflow_id"); ok && v.kind == String {
			if s := v.Str(); s == id || (wf != "" && s == wf) {
				return true
			}
		}
		if v, ok := m.Get("job_id"); ok && v.kind == String {
			s := v.Str()
			if s == id || strings.HasPrefix(s, id+"_") {
				return true
			}
		}
		return false
	}
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

// Micros returns the message timestamp in whole microseconds as Python's
// datetime.utcfromtimestamp rounds it (half to even), which is what
// eliot-tree's --start and --end compare.
func (m *Message) Micros() (int64, bool) {
	if !m.HasTimestamp || math.IsNaN(m.Timestamp) || math.IsInf(m.Timestamp, 0) {
		return 0, false
	}
	ip, fp := math.Modf(m.Timestamp)
	us := math.RoundToEven(fp * 1e6)
	return int64(ip)*1e6 + int64(us), true
}
