package tree

import (
	"fmt"
	"slices"
	"time"
)

// Node is one node of a task tree: an action (Start and/or End set, or
// neither for a placeholder of an action whose messages are missing) or a
// plain message (Message set).
type Node struct {
	// Level is the action's own level (its start message's level minus the
	// last slot) or the message's level.
	Level Level
	// Start and End are the action's start and end messages, nil when
	// missing.
	Start, End *Message
	// Message is set for a plain message node.
	Message *Message
	// Children holds the action's child messages and actions, ordered by
	// level; the start and end messages are not children.
	Children []*Node

	complete bool
}

// IsAction reports whether n is an action (possibly a placeholder).
func (n *Node) IsAction() bool { return n.Message == nil }

// ActionType returns the action's type, from its start message or else its
// end message.
func (n *Node) ActionType() string {
	switch {
	case n.Start != nil:
		return n.Start.ActionType
	case n.End != nil:
		return n.End.ActionType
	}
	return ""
}

// Status returns "started", "succeeded" or "failed" for an action ("" for a
// placeholder or a message).
func (n *Node) Status() string {
	switch {
	case n.End != nil:
		return n.End.ActionStatus
	case n.Start != nil:
		return n.Start.ActionStatus
	}
	return ""
}

// Failed reports whether n is an action that ended with status "failed".
func (n *Node) Failed() bool { return n.End != nil && n.End.ActionStatus == "failed" }

// Duration returns the time between the action's start and end messages.
func (n *Node) Duration() (time.Duration, bool) {
	if n.Start == nil || n.End == nil || !n.Start.HasTimestamp || !n.End.HasTimestamp {
		return 0, false
	}
	return time.Duration((n.End.Timestamp - n.Start.Timestamp) * float64(time.Second)), true
}

func (n *Node) key() int { return n.Level[len(n.Level)-1] }

// child returns the child with last slot k and its index, or the index
// where it would be inserted.
func (n *Node) child(k int) (*Node, int) {
	c := n.Children
	if l := len(c); l == 0 || c[l-1].key() < k {
		return nil, l
	}
	i, found := slices.BinarySearchFunc(c, k, func(x *Node, k int) int { return x.key() - k })
	if found {
		return c[i], i
	}
	return nil, i
}

// Task is the tree of every message with one task_uuid.
type Task struct {
	UUID string
	// Root is the action at level [] or, for a task of one plain message at
	// [1], that message. It is never nil.
	Root *Node
	// Complete reports whether every message of the task was seen
	// (eliot.parse's rule: every action has its start and end and as many
	// children as its end message's slot implies).
	Complete bool

	seq  uint64
	last time.Time
	msgs int
}

// Messages returns the number of messages in the task.
func (t *Task) Messages() int { return t.msgs }

// Walk calls f for every message of the task in tree order (an action's
// start, its children, its end) until f returns false.
func (t *Task) Walk(f func(*Message) bool) {
	walkNode(t.Root, f)
}

func walkNode(n *Node, f func(*Message) bool) bool {
	if n.Message != nil {
		return f(n.Message)
	}
	if n.Start != nil && !f(n.Start) {
		return false
	}
	for _, c := range n.Children {
		if !walkNode(c, f) {
			return false
		}
	}
	if n.End != nil && !f(n.End) {
		return false
	}
	return true
}

// Builder rebuilds task trees from messages arriving in any order, from any
// number of files. It hands each task back as soon as it is complete and
// forgets it, so memory is bounded by the tasks still open. Builder is not
// safe for concurrent use.
type Builder struct {
	tasks     map[string]*Task
	seq       uint64
	path      []*Node
	now       func() time.Time
	trackIdle bool
}

// BuilderConfig configures a [Builder]. The zero value is ready to use.
type BuilderConfig struct {
	// TrackIdle records when each task last received a message, which
	// [Builder.Expire] needs. Defaults to false.
	TrackIdle bool
	// Now returns the current time when TrackIdle is set. Defaults to
	// time.Now.
	Now func() time.Time
}

// NewBuilder returns an empty Builder. cfg may be nil.
func NewBuilder(cfg *BuilderConfig) *Builder {
	b := &Builder{tasks: make(map[string]*Task)}
	b.now = time.Now
	if cfg != nil {
		b.trackIdle = cfg.TrackIdle
		if cfg.Now != nil {
			b.now = cfg.Now
		}
	}
	return b
}

// Open returns the number of incomplete tasks held.
func (b *Builder) Open() int { return len(b.tasks) }

// Add adds a message to its task. If that completes the task, the task is
// returned and forgotten (a later message with the same task_uuid starts a
// new task). A message that cannot join its tree (a start message not in
// slot 1, an end message whose action_type or status is wrong, a slot taken
// by a message and an action) gives a *FormatError and changes nothing.
func (b *Builder) Add(m *Message) (*Task, error) {
	if len(m.Level) == 0 {
		return nil, &FormatError{Field: "task_level", Msg: "empty"}
	}
	t := b.tasks[m.TaskUUID]
	if t == nil {
		b.seq++
		t = &Task{UUID: m.TaskUUID, seq: b.seq}
	}
	if err := b.add(t, m); err != nil {
		return nil, err
	}
	t.msgs++
	if t.Complete {
		delete(b.tasks, m.TaskUUID)
		return t, nil
	}
	if b.trackIdle {
		t.last = b.now()
	}
	b.tasks[m.TaskUUID] = t
	return nil, nil
}

func (b *Builder) add(t *Task, m *Message) error {
	lv := m.Level
	if !m.IsAction && len(lv) == 1 && lv[0] == 1 {
		// A plain message at [1] is the whole task.
		t.Root = &Node{Level: lv, Message: m}
		t.Complete = true
		return nil
	}
	// The action to update, or the parent of a message.
	target := lv[:len(lv)-1]
	// Validate before changing anything.
	existing, err := b.find(t, target)
	if err != nil {
		return err
	}
	if m.IsAction {
		if m.ActionStatus == "started" {
			if lv[len(lv)-1] != 1 {
				return &FormatError{Field: "task_level", Msg: fmt.Sprintf("start message of %q at %s, not in slot 1", m.ActionType, lv)}
			}
		} else {
			if existing != nil {
				if at := existing.ActionType(); (existing.Start != nil || existing.End != nil) && at != m.ActionType {
					return &FormatError{Field: "action_type", Msg: fmt.Sprintf("end message %q at %s for an action of type %q", m.ActionType, lv, at)}
				}
			}
			if m.ActionStatus != "succeeded" && m.ActionStatus != "failed" {
				return &FormatError{Field: "action_status", Msg: fmt.Sprintf("%q, want started, succeeded or failed", m.ActionStatus)}
			}
		}
	} else if existing != nil {
		if c, _ := existing.child(lv[len(lv)-1]); c != nil && c.IsAction() && len(c.Children) > 0 {
			return &FormatError{Field: "task_level", Msg: fmt.Sprintf("message at %s where an action has children", lv)}
		}
	}
	node := b.ensure(t, target)
	if m.IsAction {
		if m.ActionStatus == "started" {
			node.Start = m
		} else {
			node.End = m
		}
	} else {
		k := lv[len(lv)-1]
		c, i := node.child(k)
		mn := &Node{Level: lv, Message: m}
		if c != nil {
			node.Children[i] = mn
		} else {
			node.Children = slices.Insert(node.Children, i, mn)
		}
	}
	// Re-evaluate completeness from the changed action up to the root.
	for i := len(b.path) - 1; i >= 0; i-- {
		n := b.path[i]
		if !n.complete && n.Start != nil && n.End != nil && len(n.Children) == n.End.Level[len(n.End.Level)-1]-2 {
			done := true
			for _, c := range n.Children {
				if c.Message == nil && !c.complete {
					done = false
					break
				}
			}
			n.complete = done
		}
	}
	t.Complete = t.Root.complete
	return nil
}

// find returns the action node at level, nil if absent; an error if the
// path runs through a message.
func (b *Builder) find(t *Task, level Level) (*Node, error) {
	n := t.Root
	if n == nil {
		return nil, nil
	}
	for i, k := range level {
		if n.Message != nil {
			return nil, &FormatError{Field: "task_level", Msg: fmt.Sprintf("%s is inside message %s", level, level[:i])}
		}
		n, _ = n.child(k)
		if n == nil {
			return nil, nil
		}
	}
	if n.Message != nil {
		return nil, &FormatError{Field: "task_level", Msg: fmt.Sprintf("%s is a message, not an action", level)}
	}
	return n, nil
}

// ensure returns the action node at level, creating placeholders on the
// way; b.path holds the nodes from the root to it.
func (b *Builder) ensure(t *Task, level Level) *Node {
	b.path = b.path[:0]
	if t.Root == nil {
		t.Root = &Node{Level: Level{}}
	}
	n := t.Root
	b.path = append(b.path, n)
	for i, k := range level {
		c, j := n.child(k)
		if c == nil || c.Message != nil {
			c = &Node{Level: level[: i+1 : i+1]}
			if j < len(n.Children) && n.Children[j].key() == k {
				n.Children[j] = c
			} else {
				n.Children = slices.Insert(n.Children, j, c)
			}
		}
		n = c
		b.path = append(b.path, n)
	}
	return n
}

// Flush returns every incomplete task in the order their first message
// arrived and empties the Builder.
func (b *Builder) Flush() []*Task {
	out := make([]*Task, 0, len(b.tasks))
	for _, t := range b.tasks {
		out = append(out, t)
	}
	slices.SortFunc(out, func(x, y *Task) int { return cmpU64(x.seq, y.seq) })
	clear(b.tasks)
	return out
}

// Expire returns, in first-seen order, the incomplete tasks that received no
// message for at least idle, and forgets them. It needs
// BuilderConfig.TrackIdle; without it every open task counts as idle.
func (b *Builder) Expire(idle time.Duration) []*Task {
	now := b.now()
	var out []*Task
	for id, t := range b.tasks {
		if now.Sub(t.last) >= idle {
			out = append(out, t)
			delete(b.tasks, id)
		}
	}
	slices.SortFunc(out, func(x, y *Task) int { return cmpU64(x.seq, y.seq) })
	return out
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
