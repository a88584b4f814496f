package tree

import (
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// Style chooses how field values are written in text output.
type Style uint8

const (
	// StyleDefault writes scalar values as JSON literals (true, null, 3.0,
	// 1e+16 exactly as logged) and strings as their text.
	StyleDefault Style = iota
	// StyleEliotTree writes values as eliot-tree does, with Python's repr
	// (True, None, floats re-formatted), byte for byte.
	StyleEliotTree
)

// DefaultHiddenFields are the fields text output leaves out unless
// TextConfig.HiddenFields says otherwise. timestamp, task_uuid and
// task_level are never shown as fields.
var DefaultHiddenFields = []string{"action_status", "action_type", "task_level", "task_uuid", "message_type"}

// DefaultFieldLimit is the number of characters a value is cut to.
const DefaultFieldLimit = 100

// TextConfig configures a [TextRenderer]. The zero value renders like
// eliot-tree with no options, values as JSON literals.
type TextConfig struct {
	// Style chooses how values are written. Defaults to StyleDefault.
	Style Style
	// FieldLimit cuts values to this many characters or their first line,
	// whichever is shorter, and marks the cut with "…". Defaults to
	// DefaultFieldLimit (100) when 0; a negative value disables cutting.
	FieldLimit int
	// ASCII draws the tree with ASCII characters. Defaults to false
	// (Unicode box drawing).
	ASCII bool
	// Color writes terminal colour escapes. Defaults to false.
	Color bool
	// NoColorTree leaves the tree lines uncoloured when Color is set.
	// Defaults to false (lines coloured by depth, red under failures).
	NoColorTree bool
	// Theme gives the colours. Defaults to DarkTheme().
	Theme *Theme
	// Raw writes timestamps and durations as numbers instead of dates and
	// "0.016s". Defaults to false.
	Raw bool
	// Location writes timestamps in this time zone, without the "Z"
	// suffix. Defaults to nil: UTC with a "Z" suffix.
	Location *time.Location
	// HiddenFields are the fields not shown. Defaults to
	// DefaultHiddenFields when nil; a non-nil list replaces it, as
	// eliot-tree's -i does.
	HiddenFields []string
}

type glyphs struct {
	fork, last, vertical, space, newline, arrow, hourglass string
}

var (
	unicodeGlyphs = glyphs{"├── ", "└── ", "│   ", "    ", "⏎", "⇒", "⧖"}
	asciiGlyphs   = glyphs{"|-- ", "+-- ", "|   ", "    ", "\n", "=>", "|Y|"}
)

const (
	slotRoot = iota
	slotParent
	slotTaskLevel
	slotSuccess
	slotFailure
	slotTimestamp
	slotPropKey
	slotPropValue
	slotDuration
	slotTreeFailed
	slotTree0
	slotTree1
	slotTree2
	slotError
	numSlots
)

// item is one child in the rendered tree.
type item struct {
	node  *Node    // an action or message node
	msg   *Message // an end message shown as its own node
	key   string   // a field
	index int      // list index when isIdx
	isIdx bool
	val   Value
}

// TextRenderer writes tasks as text trees in eliot-tree's layout. It
// buffers output; call Flush when done. Not safe for concurrent use.
type TextRenderer struct {
	w          io.Writer
	cfg        TextConfig
	g          glyphs
	limit      int
	paints     [numSlots]paint
	color      bool
	colorTree  bool
	hidden     []string
	defHidden  bool
	buf        []byte
	stack      [][]item
	prefix     []byte
	tsSec      int64
	tsText     []byte
	tsValid    bool
	exceptions []string
	err        error
}

// NewTextRenderer returns a renderer writing to w. cfg may be nil. It
// fails only for an unknown theme colour.
func NewTextRenderer(w io.Writer, cfg *TextConfig) (*TextRenderer, error) {
	r := &TextRenderer{w: w}
	if cfg != nil {
		r.cfg = *cfg
	}
	r.g = unicodeGlyphs
	if r.cfg.ASCII {
		r.g = asciiGlyphs
	}
	switch {
	case r.cfg.FieldLimit == 0:
		r.limit = DefaultFieldLimit
	case r.cfg.FieldLimit < 0:
		r.limit = 0
	default:
		r.limit = r.cfg.FieldLimit
	}
	if r.cfg.HiddenFields == nil {
		r.defHidden = true
	} else {
		r.hidden = r.cfg.HiddenFields
	}
	r.color = r.cfg.Color
	r.colorTree = r.cfg.Color && !r.cfg.NoColorTree
	if r.color {
		th := r.cfg.Theme
		if th == nil {
			th = DarkTheme()
		}
		for i, k := range ThemeKeys {
			c, _ := th.Slot(k)
			p, err := c.compile()
			if err != nil {
				return nil, fmt.Errorf("compiling theme slot %s: %w", k, err)
			}
			r.paints[i] = p
		}
	}
	r.buf = make([]byte, 0, 64<<10)
	return r, nil
}

// Exceptions returns the formatting problems met so far (eliot-tree's
// "<node formatting exception>" cases: a message without a timestamp).
func (r *TextRenderer) Exceptions() []string { return r.exceptions }

// Flush writes buffered output.
func (r *TextRenderer) Flush() error {
	if r.err != nil {
		return r.err
	}
	if len(r.buf) > 0 {
		_, r.err = r.w.Write(r.buf)
		r.buf = r.buf[:0]
		if r.err != nil {
			r.err = fmt.Errorf("writing tree: %w", r.err)
		}
	}
	return r.err
}

// Render writes one task: its UUID, the tree, and an empty line.
func (r *TextRenderer) Render(t *Task) error {
	if r.err != nil {
		return r.err
	}
	r.paintStart(slotRoot)
	r.buf = r.esc(r.buf, t.UUID, false)
	r.paintEnd(slotRoot)
	r.buf = append(r.buf, '\n')
	r.prefix = r.prefix[:0]
	items := r.items(0)
	items = append(items, item{node: t.Root})
	r.stack[0] = items
	r.children(0, r.treePaint(nil, 0))
	r.buf = append(r.buf, '\n')
	if len(r.buf) >= 32<<10 {
		return r.Flush()
	}
	return nil
}

func (r *TextRenderer) items(depth int) []item {
	for len(r.stack) <= depth {
		r.stack = append(r.stack, make([]item, 0, 16))
	}
	return r.stack[depth][:0]
}

func (r *TextRenderer) paintStart(slot int) {
	if r.color {
		r.buf = append(r.buf, r.paints[slot].pre...)
	}
}

func (r *TextRenderer) paintEnd(slot int) {
	if r.color {
		r.buf = append(r.buf, r.paints[slot].post...)
	}
}

// treePaint returns the slot colouring the lines under n at depth, or -1.
func (r *TextRenderer) treePaint(n *Node, depth int) int {
	if !r.colorTree {
		return -1
	}
	if n != nil && n.Message == nil && n.Failed() {
		return slotTreeFailed
	}
	return slotTree0 + depth%3
}

func (r *TextRenderer) appendGlyph(b []byte, glyph string, slot int) []byte {
	if slot < 0 {
		return append(b, glyph...)
	}
	b = append(b, r.paints[slot].pre...)
	b = append(b, glyph...)
	return append(b, r.paints[slot].post...)
}

// children writes the items of r.stack[depth] under the current prefix.
func (r *TextRenderer) children(depth int, slot int) {
	items := r.stack[depth]
	base := len(r.prefix)
	for i := range items {
		it := items[i]
		last := i == len(items)-1
		r.buf = append(r.buf, r.prefix[:base]...)
		if last {
			r.buf = r.appendGlyph(r.buf, r.g.last, slot)
			r.prefix = append(r.prefix[:base], r.g.space...)
		} else {
			r.buf = r.appendGlyph(r.buf, r.g.fork, slot)
			r.prefix = r.appendGlyph(r.prefix[:base], r.g.vertical, slot)
		}
		start := len(r.buf)
		nl := r.label(it)
		if nl {
			r.fixNewlines(start)
		}
		r.buf = append(r.buf, '\n')
		// Children of this item.
		kids := r.items(depth + 1)
		var owner *Node
		switch {
		case it.node != nil && it.node.Message == nil:
			owner = it.node
			n := it.node
			if n.Start != nil {
				kids = r.appendFields(kids, n.Start)
			}
			for _, c := range n.Children {
				kids = append(kids, item{node: c})
			}
			if n.End != nil {
				kids = append(kids, item{msg: n.End})
			}
		case it.node != nil:
			kids = r.appendFields(kids, it.node.Message)
		case it.msg != nil:
			kids = r.appendFields(kids, it.msg)
		default:
			kids = appendContainer(kids, it.val)
		}
		r.stack[depth+1] = kids
		if len(kids) > 0 {
			r.children(depth+1, r.treePaint(owner, depth+1))
		}
		r.prefix = r.prefix[:base]
		items = r.stack[depth]
	}
}

// fixNewlines replaces each "\n" written since start with the newline
// marker, a newline and the child prefix.
func (r *TextRenderer) fixNewlines(start int) {
	tail := append([]byte(nil), r.buf[start:]...)
	r.buf = r.buf[:start]
	for _, c := range tail {
		if c == '\n' {
			r.buf = append(r.buf, r.g.newline...)
			r.buf = append(r.buf, '\n')
			r.buf = append(r.buf, r.prefix...)
			continue
		}
		r.buf = append(r.buf, c)
	}
}

func (r *TextRenderer) isHidden(k string) bool {
	switch k {
	case "timestamp", "task_uuid", "task_level":
		return true
	}
	if r.defHidden {
		switch k {
		case "action_status", "action_type", "message_type":
			return true
		}
		return false
	}
	for _, h := range r.hidden {
		if h == k {
			return true
		}
	}
	return false
}

// appendFields appends a message's shown fields, sorted by key, the last
// of duplicated keys winning.
func (r *TextRenderer) appendFields(kids []item, m *Message) []item {
	start := len(kids)
	for _, f := range m.Fields {
		if !r.isHidden(f.Key) {
			kids = append(kids, item{key: f.Key, val: f.Value})
		}
	}
	return sortItems(kids, start)
}

func appendContainer(kids []item, v Value) []item {
	switch v.kind {
	case Object:
		start := len(kids)
		v.Members(func(k string, val Value) bool {
			kids = append(kids, item{key: k, val: val})
			return true
		})
		return sortItems(kids, start)
	case Array:
		v.Elements(func(i int, val Value) bool {
			kids = append(kids, item{index: i, isIdx: true, val: val})
			return true
		})
	}
	return kids
}

// sortItems stably sorts kids[start:] by key and drops all but the last of
// equal keys.
func sortItems(kids []item, start int) []item {
	s := kids[start:]
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].key < s[j-1].key; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	out := start
	for i := range s {
		if i+1 < len(s) && s[i+1].key == s[i].key {
			continue
		}
		kids[out] = s[i]
		out++
	}
	return kids[:out]
}

func sortFields(f []Field) {
	for i := 1; i < len(f); i++ {
		for j := i; j > 0 && f[j].Key < f[j-1].Key; j-- {
			f[j], f[j-1] = f[j-1], f[j]
		}
	}
}

// label writes the text of one item; it reports whether the text holds a
// newline.
func (r *TextRenderer) label(it item) bool {
	switch {
	case it.node != nil && it.node.Message == nil:
		r.messageName(it.node.Start, it.node.End)
		return false
	case it.node != nil:
		r.messageName(it.node.Message, nil)
		return false
	case it.msg != nil:
		r.messageName(it.msg, nil)
		return false
	}
	r.paintStart(slotPropKey)
	if it.isIdx {
		r.buf = strconv.AppendInt(r.buf, int64(it.index), 10)
	} else {
		r.buf = r.esc(r.buf, it.key, false)
	}
	r.paintEnd(slotPropKey)
	r.buf = append(r.buf, ':', ' ')
	r.paintStart(slotPropValue)
	nl := r.value(it.val)
	r.paintEnd(slotPropValue)
	return nl
}

func (r *TextRenderer) value(v Value) bool {
	switch v.kind {
	case Object, Array:
		return false
	case String:
		if !v.esc {
			return r.appendText(v.raw[1 : len(v.raw)-1])
		}
		var tmp [256]byte
		return r.appendText(string(unescape(tmp[:0], v.raw[1:len(v.raw)-1])))
	}
	if r.cfg.Style == StyleEliotTree {
		var tmp [64]byte
		var b []byte
		switch v.kind {
		case Null:
			b = append(tmp[:0], "None"...)
		case Bool:
			if v.Bool() {
				b = append(tmp[:0], "True"...)
			} else {
				b = append(tmp[:0], "False"...)
			}
		default:
			b = appendPyNumber(tmp[:0], v.raw)
		}
		if r.limit == 0 || len(b) <= r.limit {
			r.buf = append(r.buf, b...)
			return false
		}
		return r.appendText(string(b))
	}
	if r.limit == 0 || len(v.raw) <= r.limit {
		r.buf = append(r.buf, v.raw...)
		return false
	}
	return r.appendText(v.raw)
}

// appendText writes s cut to the field limit with control characters
// replaced; a newline is kept (and reported) only when nothing is cut.
func (r *TextRenderer) appendText(s string) bool {
	cut := false
	if r.limit > 0 {
		for i := 0; i < len(s); i++ {
			if s[i] == '\n' {
				s, cut = s[:i], true
				break
			}
		}
		if len(s) > r.limit {
			n, i := 0, 0
			for i < len(s) && n < r.limit {
				if s[i] < utf8.RuneSelf {
					i++
				} else {
					_, sz := utf8.DecodeRuneInString(s[i:])
					i += sz
				}
				n++
			}
			if i < len(s) {
				s, cut = s[:i], true
			}
		}
	}
	start := len(r.buf)
	r.buf = r.esc(r.buf, s, true)
	if cut {
		r.buf = append(r.buf, "…"...)
	}
	if r.limit > 0 {
		return false
	}
	for _, c := range r.buf[start:] {
		if c == '\n' {
			return true
		}
	}
	return false
}

// appendEscaped appends s with control characters replaced by their
// Control Pictures (U+2400 + c, DEL as U+2421), invalid UTF-8 by U+FFFD and
// the bidirectional-text controls (which would reorder what follows them on
// screen) by "<U+202E>" and the like; "\n" is kept when keepNL.
func appendEscaped(b []byte, s string, keepNL bool) []byte {
	return appendEscapedBidi(b, s, keepNL, true)
}

// appendEscapedBidi is appendEscaped, with the bidirectional-text controls
// kept as they are unless visibleBidi (eliot-tree keeps them).
func appendEscapedBidi(b []byte, s string, keepNL, visibleBidi bool) []byte {
	i := 0
	for j := 0; j < len(s); {
		c := s[j]
		if c >= 0x20 && c < 0x7f {
			j++
			continue
		}
		if c >= utf8.RuneSelf {
			r, sz := utf8.DecodeRuneInString(s[j:])
			if visibleBidi && isBidiControl(r) {
				b = append(b, s[i:j]...)
				b = fmt.Appendf(b, "<U+%04X>", r)
				j += sz
				i = j
				continue
			}
			if r != utf8.RuneError || sz != 1 {
				j += sz
				continue
			}
			b = append(b, s[i:j]...)
			b = append(b, "\uFFFD"...)
			j++
			i = j
			continue
		}
		b = append(b, s[i:j]...)
		switch {
		case c == '\n' && keepNL:
			b = append(b, '\n')
		case c == 0x7f:
			b = append(b, "\u2421"...)
		default:
			b = utf8.AppendRune(b, rune(0x2400+int(c)))
		}
		j++
		i = j
	}
	return append(b, s[i:]...)
}

// isBidiControl reports whether r is one of the invisible characters that
// change the display order of text: the embeddings, overrides and isolates
// (U+202A–U+202E, U+2066–U+2069) and the marks (U+200E, U+200F, U+061C).
func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) || r == 0x200E || r == 0x200F || r == 0x061C
}

// esc appends s escaped for this renderer's style.
func (r *TextRenderer) esc(b []byte, s string, keepNL bool) []byte {
	return appendEscapedBidi(b, s, keepNL, r.cfg.Style != StyleEliotTree)
}

func appendRune(b []byte, r rune) []byte { return utf8.AppendRune(b, r) }

// messageName writes the label of an action (start message m, end message
// end) or of a message (end nil).
func (r *TextRenderer) messageName(m, end *Message) {
	if m == nil {
		r.buf = append(r.buf, "<unnamed>"...)
		return
	}
	if r.cfg.Style == StyleEliotTree && (!m.HasTimestamp || (end != nil && !end.HasTimestamp)) {
		r.exceptions = append(r.exceptions, fmt.Sprintf("%s: message at %s of task %s has no numeric timestamp", m.Source, m.Level, m.TaskUUID))
		r.buf = append(r.buf, "<node formatting exception>"...)
		return
	}
	switch {
	case m.IsAction:
		r.paintStart(slotParent)
		r.buf = r.esc(r.buf, m.ActionType, false)
		r.paintEnd(slotParent)
		r.paintStart(slotTaskLevel)
		r.buf = m.Level.Append(r.buf)
		r.paintEnd(slotTaskLevel)
		r.buf = append(r.buf, ' ')
		r.buf = append(r.buf, r.g.arrow...)
		r.buf = append(r.buf, ' ')
		status := m.ActionStatus
		if end != nil {
			status = end.ActionStatus
		}
		slot := -1
		switch status {
		case "succeeded":
			slot = slotSuccess
		case "failed":
			slot = slotFailure
		}
		if slot >= 0 {
			r.paintStart(slot)
		}
		r.buf = r.esc(r.buf, m.ActionStatus, false)
		if slot >= 0 {
			r.paintEnd(slot)
		}
		r.timestamp(m)
		if end != nil && end.HasTimestamp && m.HasTimestamp {
			r.buf = append(r.buf, ' ')
			r.buf = append(r.buf, r.g.hourglass...)
			r.buf = append(r.buf, ' ')
			r.paintStart(slotDuration)
			r.duration(m, end)
			r.paintEnd(slotDuration)
		}
	case m.HasMessageType:
		r.paintStart(slotParent)
		r.buf = r.esc(r.buf, m.MessageType, false)
		r.paintEnd(slotParent)
		r.paintStart(slotTaskLevel)
		r.buf = m.Level.Append(r.buf)
		r.paintEnd(slotTaskLevel)
		r.timestamp(m)
	default:
		r.buf = append(r.buf, "<unnamed>"...)
	}
}

// timestamp writes " " and the message's timestamp (nothing when missing).
func (r *TextRenderer) timestamp(m *Message) {
	if !m.HasTimestamp {
		return
	}
	r.buf = append(r.buf, ' ')
	r.paintStart(slotTimestamp)
	var tmp [64]byte
	var b []byte
	switch {
	case r.cfg.Raw && r.cfg.Style == StyleEliotTree:
		b = appendPyNumber(tmp[:0], m.TimestampRaw())
	case r.cfg.Raw:
		b = append(tmp[:0], m.TimestampRaw()...)
	default:
		sec := pySeconds(m.Timestamp)
		if !r.tsValid || sec != r.tsSec {
			r.tsText = appendDateTime(r.tsText[:0], sec, r.cfg.Location)
			if r.cfg.Location == nil {
				r.tsText = append(r.tsText, 'Z')
			}
			r.tsSec, r.tsValid = sec, true
		}
		b = r.tsText
	}
	if r.limit > 0 && len(b) > r.limit {
		r.appendText(string(b))
	} else {
		r.buf = append(r.buf, b...)
	}
	r.paintEnd(slotTimestamp)
}

func (r *TextRenderer) duration(start, end *Message) {
	var tmp [64]byte
	var b []byte
	if r.cfg.Raw {
		if start.timestampIsInt() && end.timestampIsInt() {
			if d, ok := intDiff(end.TimestampRaw(), start.TimestampRaw()); ok {
				b = append(tmp[:0], d...)
				goto out
			}
		}
		b = appendPyFloat(tmp[:0], end.Timestamp-start.Timestamp)
	} else {
		b = strconv.AppendFloat(tmp[:0], end.Timestamp-start.Timestamp, 'f', 3, 64)
		b = append(b, 's')
	}
out:
	if r.limit > 0 && len(b) > r.limit {
		r.appendText(string(b))
	} else {
		r.buf = append(r.buf, b...)
	}
}

func intDiff(a, b string) (string, bool) {
	x, err1 := strconv.ParseInt(a, 10, 64)
	y, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return "", false
	}
	return strconv.FormatInt(x-y, 10), true
}
