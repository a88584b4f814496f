package tree

import (
	"strconv"
)

// Level is a message's position in its task tree (Eliot's task_level): the
// path of slot numbers from the task root, e.g. [3 1] for the start message
// of the action in slot 3.
type Level []int

// String returns the Eliot text form of l, "/" followed by the slots joined
// with "/", e.g. "/3/1".
func (l Level) String() string { return string(l.Append(nil)) }

// Append appends the text form of l to b.
func (l Level) Append(b []byte) []byte {
	if len(l) == 0 {
		return append(b, '/')
	}
	for _, n := range l {
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return b
}

// Compare orders levels as Python orders lists: slot by slot, a prefix first.
func (l Level) Compare(o Level) int {
	for i := 0; i < len(l) && i < len(o); i++ {
		if l[i] != o[i] {
			if l[i] < o[i] {
				return -1
			}
			return 1
		}
	}
	return len(l) - len(o)
}

// Field is one top-level member of a message.
type Field struct {
	Key   string
	Value Value
}

// Source names where a message was read: the file as given (or "<stdin>")
// and its 1-based line number.
type Source struct {
	File string
	Line int
}

func (s Source) String() string { return s.File + ":" + strconv.Itoa(s.Line) }

// Message is one Eliot log message. The standard fields are decoded into the
// typed fields; Fields holds every member of the JSON object in written
// order, standard ones included, each value as written.
type Message struct {
	// TaskUUID is the task_uuid field.
	TaskUUID string
	// Level is the task_level field.
	Level Level
	// Timestamp is the timestamp field in seconds since the Unix epoch;
	// HasTimestamp is false when the field is missing or not a number.
	Timestamp    float64
	HasTimestamp bool
	// IsAction reports whether action_type is present and not null, which
	// makes this the start or end message of an action.
	IsAction bool
	// ActionType is the action_type field, MessageType the message_type
	// field and ActionStatus the action_status field ("" when absent).
	ActionType   string
	ActionStatus string
	MessageType  string
	// HasMessageType reports whether a message_type member is present.
	HasMessageType bool
	// Fields holds every member in written order.
	Fields []Field
	// Source is where the message was read from, when known.
	Source Source

	line   []byte
	lvlBuf *[4]int // room for Level in the message's own allocation
}

// Line returns the JSON text of the message as read (without the newline).
func (m *Message) Line() []byte { return m.line }

// Get returns the value of the last member named key.
func (m *Message) Get(key string) (Value, bool) {
	for i := len(m.Fields) - 1; i >= 0; i-- {
		if m.Fields[i].Key == key {
			return m.Fields[i].Value, true
		}
	}
	return Value{}, false
}

// Failed reports whether m ends an action that failed.
func (m *Message) Failed() bool { return m.IsAction && m.ActionStatus == "failed" }

// TimestampRaw returns the timestamp as written ("" when missing or not a
// number).
func (m *Message) TimestampRaw() string {
	if !m.HasTimestamp {
		return ""
	}
	v, _ := m.Get("timestamp")
	return v.raw
}

func (m *Message) timestampIsInt() bool {
	v, _ := m.Get("timestamp")
	return v.IsInt()
}
