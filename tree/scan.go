package tree

import (
	"errors"
	"fmt"
	"unsafe"
)

// SyntaxError reports a line that is not valid JSON (Python's json module
// is the reference: NaN, Infinity and -Infinity are accepted).
type SyntaxError struct {
	// Offset is the byte offset in the line where the error was found.
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// FormatError reports valid JSON that is not an Eliot message, or a message
// that cannot join its task tree.
type FormatError struct {
	// Field names the field at fault ("" for the message as a whole).
	Field string
	Msg   string
}

func (e *FormatError) Error() string {
	if e.Field == "" {
		return "not an Eliot message: " + e.Msg
	}
	return "not an Eliot message: field " + e.Field + ": " + e.Msg
}

// maxDepth bounds nesting like Python's recursion limit does.
const maxDepth = 1000

// ParseMessage parses one JSON line into a Message. The line is copied, so
// the caller may reuse it. Errors are *SyntaxError or *FormatError.
func ParseMessage(line []byte) (*Message, error) {
	var p parser
	return p.parse(line)
}

type parser struct {
	b       []byte
	i       int
	depth   int
	lastObj *Message // the object parsed, even when not a message
}

func (p *parser) fail(msg string) error {
	return &SyntaxError{Offset: p.i, Msg: msg}
}

// msgAlloc holds a message with room for its fields and level, so that a
// typical message costs one allocation besides its line. Nothing is shared
// between messages: a task left open keeps only its own messages alive.
type msgAlloc struct {
	m      Message
	fields [8]Field
	lvl    [4]int
}

func (p *parser) parse(line []byte) (*Message, error) {
	return p.parseObject(line)
}

func (p *parser) parseObject(line []byte) (*Message, error) {
	buf := make([]byte, len(line))
	copy(buf, line)
	p.b, p.i, p.depth, p.lastObj = buf, 0, 0, nil
	a := new(msgAlloc)
	fields := a.fields[:0] // append moves to the heap past 8 fields
	p.ws()
	if p.i >= len(p.b) {
		return nil, p.fail("empty line")
	}
	if p.b[p.i] != '{' {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		if err := p.end(); err != nil {
			return nil, err
		}
		return nil, &FormatError{Msg: "a JSON " + v.kind.String() + ", not an object"}
	}
	p.i++
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
	} else {
		for {
			if p.i >= len(p.b) {
				return nil, p.fail("unexpected end of line in object")
			}
			if p.b[p.i] != '"' {
				return nil, p.fail("expected a string key")
			}
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			p.ws()
			if p.i >= len(p.b) || p.b[p.i] != ':' {
				return nil, p.fail("expected ':' after key")
			}
			p.i++
			p.ws()
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			key := k.raw[1 : len(k.raw)-1]
			if k.esc {
				key = string(unescape(nil, key))
			}
			fields = append(fields, Field{Key: key, Value: v})
			p.ws()
			if p.i >= len(p.b) {
				return nil, p.fail("unexpected end of line in object")
			}
			if p.b[p.i] == ',' {
				p.i++
				p.ws()
				continue
			}
			if p.b[p.i] == '}' {
				p.i++
				break
			}
			return nil, p.fail("expected ',' or '}' in object")
		}
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	m := &a.m
	m.line = buf
	m.Fields = fields[:len(fields):len(fields)]
	m.lvlBuf = &a.lvl
	p.lastObj = m
	if err := m.decodeStandard(p); err != nil {
		return nil, err
	}
	return m, nil
}

func (p *parser) end() error {
	p.ws()
	if p.i != len(p.b) {
		return p.fail("extra data after the JSON value")
	}
	return nil
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) sub(start int, k Kind) Value {
	return Value{raw: unsafe.String(&p.b[start], p.i-start), kind: k}
}

var lit = [...]struct {
	text string
	kind Kind
}{
	{"true", Bool}, {"false", Bool}, {"null", Null}, {"NaN", Number}, {"Infinity", Number}, {"-Infinity", Number},
}

func (p *parser) value() (Value, error) {
	if p.i >= len(p.b) {
		return Value{}, p.fail("unexpected end of line, expected a value")
	}
	start := p.i
	switch c := p.b[p.i]; c {
	case '"':
		return p.str()
	case '{', '[':
		if p.depth++; p.depth > maxDepth {
			return Value{}, p.fail("nested too deeply")
		}
		err := p.container(c)
		p.depth--
		if err != nil {
			return Value{}, err
		}
		k := Object
		if c == '[' {
			k = Array
		}
		return p.sub(start, k), nil
	case 't', 'f', 'n', 'N', 'I':
		return p.literal(start)
	case '-':
		if p.i+1 < len(p.b) && p.b[p.i+1] == 'I' {
			return p.literal(start)
		}
		return p.number(start)
	default:
		if c >= '0' && c <= '9' {
			return p.number(start)
		}
		return Value{}, p.fail(fmt.Sprintf("unexpected character %q", c))
	}
}

func (p *parser) literal(start int) (Value, error) {
	rest := p.b[p.i:]
	for _, l := range lit {
		if len(rest) >= len(l.text) && string(rest[:len(l.text)]) == l.text {
			p.i += len(l.text)
			return p.sub(start, l.kind), nil
		}
	}
	return Value{}, p.fail("invalid literal")
}

func (p *parser) number(start int) (Value, error) {
	b := p.b
	i := p.i
	if b[i] == '-' {
		i++
	}
	if i >= len(b) || b[i] < '0' || b[i] > '9' {
		p.i = i
		return Value{}, p.fail("invalid number")
	}
	if b[i] == '0' {
		i++
	} else {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && b[i] == '.' {
		j := i + 1
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j > i+1 { // Python leaves "1." as "1" followed by garbage
			i = j
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		j := i + 1
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := j
		for k < len(b) && b[k] >= '0' && b[k] <= '9' {
			k++
		}
		if k > j {
			i = k
		}
	}
	p.i = i
	return p.sub(start, Number), nil
}

// strTable marks bytes that end the fast path of a string scan.
var strTable = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'] = true
	t['\\'] = true
	return t
}()

func (p *parser) str() (Value, error) {
	start := p.i
	b := p.b
	i := p.i + 1
	esc := false
	for {
		for i < len(b) && !strTable[b[i]] {
			i++
		}
		if i >= len(b) {
			p.i = i
			return Value{}, p.fail("unterminated string")
		}
		switch c := b[i]; {
		case c == '"':
			i++
			p.i = i
			v := p.sub(start, String)
			v.esc = esc
			return v, nil
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				p.i = i
				return Value{}, p.fail("unterminated string")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					p.i = i
					return Value{}, p.fail("invalid \\u escape")
				}
				i += 6
			default:
				p.i = i
				return Value{}, p.fail("invalid escape")
			}
		default:
			p.i = i
			return Value{}, p.fail("control character in string")
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (p *parser) container(open byte) error {
	p.i++
	p.ws()
	closer := byte(']')
	if open == '{' {
		closer = '}'
	}
	if p.i < len(p.b) && p.b[p.i] == closer {
		p.i++
		return nil
	}
	for {
		if open == '{' {
			if p.i >= len(p.b) || p.b[p.i] != '"' {
				return p.fail("expected a string key")
			}
			if _, err := p.str(); err != nil {
				return err
			}
			p.ws()
			if p.i >= len(p.b) || p.b[p.i] != ':' {
				return p.fail("expected ':' after key")
			}
			p.i++
			p.ws()
		}
		if _, err := p.value(); err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.b) {
			return p.fail("unexpected end of line in " + map[bool]string{true: "object", false: "array"}[open == '{'])
		}
		if p.b[p.i] == ',' {
			p.i++
			p.ws()
			continue
		}
		if p.b[p.i] == closer {
			p.i++
			return nil
		}
		return p.fail(fmt.Sprintf("expected ',' or '%c'", closer))
	}
}

var errNoUUID = &FormatError{Field: "task_uuid", Msg: "missing"}

// decodeStandard fills the typed standard fields; later duplicates win.
func (m *Message) decodeStandard(p *parser) error {
	var haveUUID, haveLevel bool
	for i := range m.Fields {
		f := &m.Fields[i]
		switch f.Key {
		case "task_uuid":
			if f.Value.kind != String {
				return &FormatError{Field: "task_uuid", Msg: "not a string"}
			}
			m.TaskUUID, haveUUID = f.Value.Str(), true
		case "task_level":
			if err := m.decodeLevel(p, f.Value); err != nil {
				return err
			}
			haveLevel = true
		case "timestamp":
			m.HasTimestamp = f.Value.kind == Number
			if m.HasTimestamp {
				m.Timestamp = parseNumber(f.Value.raw)
			}
		case "action_type":
			switch f.Value.kind {
			case Null:
				m.IsAction, m.ActionType = false, ""
			case String:
				m.IsAction, m.ActionType = true, f.Value.Str()
			default:
				return &FormatError{Field: "action_type", Msg: "not a string"}
			}
		case "action_status":
			m.ActionStatus = f.Value.Str()
		case "message_type":
			m.HasMessageType = true
			if f.Value.kind == String {
				m.MessageType = f.Value.Str()
			} else {
				m.MessageType = f.Value.raw
			}
		}
	}
	if !haveUUID {
		return errNoUUID
	}
	if !haveLevel {
		return &FormatError{Field: "task_level", Msg: "missing"}
	}
	if m.IsAction {
		if _, ok := m.Get("action_status"); !ok {
			return &FormatError{Field: "action_status", Msg: "missing in an action message"}
		}
		if len(m.Level) == 0 {
			return &FormatError{Field: "task_level", Msg: "empty in an action message"}
		}
	}
	if len(m.Level) == 0 {
		return &FormatError{Field: "task_level", Msg: "empty"}
	}
	return nil
}

var errLevel = &FormatError{Field: "task_level", Msg: "not a list of positive integers"}

func (m *Message) decodeLevel(p *parser, v Value) error {
	if v.kind != Array {
		return errLevel
	}
	var tmp [16]int
	lv := tmp[:0]
	s := v.raw
	n, in := 0, false
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if n > 1<<40 {
				return errLevel
			}
			n = n*10 + int(c-'0')
			in = true
		case c == ',' || c == ']':
			if !in {
				if c == ']' && len(lv) == 0 {
					continue
				}
				return errLevel
			}
			if n < 1 {
				return errLevel
			}
			lv = append(lv, n)
			n, in = 0, false
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default:
			return errLevel
		}
	}
	if len(lv) <= len(m.lvlBuf) && m.lvlBuf != nil {
		m.Level = Level(m.lvlBuf[:len(lv):len(lv)])
		copy(m.Level, lv)
	} else {
		m.Level = append(Level(nil), lv...)
	}
	return nil
}

// IsFormatError reports whether err is (or wraps) a *FormatError.
func IsFormatError(err error) bool {
	var fe *FormatError
	return errors.As(err, &fe)
}

// ParseLoose parses a JSON object line into a Message without requiring
// the Eliot standard fields (for reporting a line that is not a message).
func ParseLoose(line []byte) (*Message, error) {
	var p parser
	m, err := p.parse(line)
	var fe *FormatError
	if errors.As(err, &fe) && p.lastObj != nil {
		return p.lastObj, nil
	}
	return m, err
}
