package action

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a [Logger]. A nil *Options means every default.
type Options struct {
	// Also lists further destinations that receive every message, after the
	// first one given to [New]. Defaults to none.
	Also []io.Writer

	// Fields are written at the end of every message, e.g. the process and
	// host ([ProcessFields]). Like Eliot's add_global_fields they come last,
	// so a reader that keeps the last of duplicate keys sees them. Defaults
	// to none.
	Fields []slog.Attr

	// MaxValueBytes is the longest string value written whole; a longer one
	// is cut at that length and marked "…[truncated: N bytes in all]". A
	// negative value means no limit. Defaults to 64 KiB (65536).
	MaxValueBytes int

	// ErrorOutput receives the one-line report of the first write error of
	// each destination when no other destination can carry an
	// eliot:destination_failure message. Defaults to os.Stderr.
	ErrorOutput io.Writer

	// Now returns the time of each message. Defaults to time.Now. When set,
	// it also replaces the (non-zero) time of records written by the
	// [Handler]. Tests set it to get fixed timestamps.
	Now func() time.Time

	// NewTaskUUID returns the uuid of each new task in its canonical text
	// form. Defaults to a random (version 4) UUID. Tests set it to get fixed
	// ids.
	NewTaskUUID func() string
}

const defaultMaxValueBytes = 64 << 10

// A Logger writes Eliot messages, one JSON line each, to its destinations.
// It is safe for concurrent use. Each message reaches each destination in a
// single Write call; a destination that is not an *os.File is additionally
// guarded by a mutex, so it need not be safe for concurrent use itself.
//
// A Logger never returns an error to the code that logs: a failing write is
// counted ([Logger.WriteErrors]) and the first failure of each destination
// is reported once, as an eliot:destination_failure message on the other
// destinations or, when there is none, as a line on Options.ErrorOutput.
type Logger struct {
	dests       []*destination
	fields      []byte // pre-encoded global fields, each with a leading comma
	enc         encoder
	errorOutput io.Writer
	now         func() time.Time
	newUUID     func() string
	writeErrors atomic.Uint64
}

type destination struct {
	w        io.Writer
	mu       *sync.Mutex // nil when w is safe for concurrent use
	reported atomic.Bool
}

// New returns a Logger that writes to w (and to opts.Also).
func New(w io.Writer, opts *Options) *Logger {
	if opts == nil {
		opts = &Options{}
	}
	l := &Logger{
		enc:         encoder{maxString: opts.MaxValueBytes},
		errorOutput: opts.ErrorOutput,
		now:         opts.Now,
		newUUID:     opts.NewTaskUUID,
	}
	if l.enc.maxString == 0 {
		l.enc.maxString = defaultMaxValueBytes
	}
	if l.errorOutput == nil {
		l.errorOutput = os.Stderr
	}
	for _, w := range append([]io.Writer{w}, opts.Also...) {
		if w == nil {
			continue
		}
		d := &destination{w: w}
		switch w.(type) {
		case *os.File:
			// One write(2) per message; the kernel keeps appends whole.
		default:
			if w != io.Discard {
				d.mu = new(sync.Mutex)
			}
		}
		l.dests = append(l.dests, d)
	}
	l.fields = l.enc.appendAttrs(nil, opts.Fields)
	return l
}

// WriteErrors reports how many writes to any destination have failed.
func (l *Logger) WriteErrors() uint64 { return l.writeErrors.Load() }

func (l *Logger) timestamp() time.Time {
	if l.now != nil {
		return l.now()
	}
	return time.Now()
}

// write sends one complete message (ending in a newline) to every
// destination.
func (l *Logger) write(msg []byte) {
	for i, d := range l.dests {
		var err error
		if d.mu != nil {
			d.mu.Lock()
			_, err = d.w.Write(msg)
			d.mu.Unlock()
		} else {
			_, err = d.w.Write(msg)
		}
		if err != nil {
			l.writeErrors.Add(1)
			if d.reported.CompareAndSwap(false, true) {
				l.reportFailure(i, d, err, msg)
			}
		}
	}
}

// reportFailure tells about the first failed write to dests[i]: as an
// eliot:destination_failure message (a task of its own) on the other
// destinations, or as a line on ErrorOutput when there are none.
func (l *Logger) reportFailure(i int, failed *destination, err error, msg []byte) {
	reason := fmt.Sprintf("writing to destination %d (%T): %v; further errors are counted, not reported", i, failed.w, err)
	var others []*destination
	for _, d := range l.dests {
		if d != failed {
			others = append(others, d)
		}
	}
	if len(others) == 0 {
		fmt.Fprintf(l.errorOutput, "skein/action: %s\n", reason)
		return
	}
	if len(msg) > 0 && msg[len(msg)-1] == '\n' {
		msg = msg[:len(msg)-1]
	}
	buf := getBuffer()
	defer putBuffer(buf)
	b := l.beginTask(*buf, "", l.timestamp())
	b = append(b, `,"message_type":"eliot:destination_failure","exception":`...)
	b = appendString(b, exceptionName(err))
	b = append(b, `,"reason":`...)
	b = appendString(b, reason)
	b = append(b, `,"message":`...)
	b = l.enc.appendStringValue(b, string(msg))
	b = l.end(b)
	*buf = b
	for _, d := range others {
		if d.mu != nil {
			d.mu.Lock()
			_, err = d.w.Write(b)
			d.mu.Unlock()
		} else {
			_, err = d.w.Write(b)
		}
		if err != nil {
			l.writeErrors.Add(1)
		}
	}
}

// beginTask starts a message that is a task of its own (level [1]).
func (l *Logger) beginTask(b []byte, workflow string, t time.Time) []byte {
	var id uuidText
	if l.newUUID != nil {
		copy(id[:], l.newUUID())
	} else {
		id = newUUID()
	}
	return beginMessage(b, &id, nil, 1, t, workflow)
}

// end appends the global fields and closes the message.
func (l *Logger) end(b []byte) []byte {
	b = append(b, l.fields...)
	return append(b, '}', '\n')
}

var defaultLogger atomic.Pointer[Logger]

func init() { defaultLogger.Store(New(os.Stderr, nil)) }

// Default returns the Logger used by actions whose context carries none
// (see [WithLogger]). It starts as a Logger writing to os.Stderr.
func Default() *Logger { return defaultLogger.Load() }

// SetDefault makes l the default Logger. It panics if l is nil.
func SetDefault(l *Logger) {
	if l == nil {
		panic("action: SetDefault(nil)")
	}
	defaultLogger.Store(l)
}

type loggerKey struct{}

// WithLogger returns a context whose new tasks write to l. Actions started
// inside an existing action keep writing where that action writes.
func WithLogger(ctx context.Context, l *Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// LoggerFrom returns the Logger that messages logged with ctx go to: the
// current action's, else the one set with [WithLogger], else [Default].
// Code that writes messages encoded elsewhere ([Logger.WriteMessage]) uses
// it to write beside the action.
func LoggerFrom(ctx context.Context) *Logger {
	if a := FromContext(ctx); a != nil {
		return a.logger
	}
	return loggerFor(ctx)
}

// loggerFor returns the Logger for a new task started in ctx.
func loggerFor(ctx context.Context) *Logger {
	if ctx != nil {
		if l, ok := ctx.Value(loggerKey{}).(*Logger); ok && l != nil {
			return l
		}
	}
	return Default()
}

// ProcessFields returns global fields that identify this process: "host"
// (the host name), "pid" and "process" (the executable's base name). Pass
// them as Options.Fields so that the messages of many processes can be told
// apart in one tree.
func ProcessFields() []slog.Attr {
	host, _ := os.Hostname()
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return []slog.Attr{
		slog.String("host", host),
		slog.Int("pid", os.Getpid()),
		slog.String("process", filepath.Base(exe)),
	}
}

// WriteMessage writes line, a message already encoded by someone else (a
// child process that logs Eliot JSON itself, a log being replayed), to the
// Logger's destinations as it is: one JSON object, to which a newline is
// added if it has none. Global fields are not added. It returns an error,
// and writes nothing, if line is not a single JSON object with "task_uuid"
// and "task_level"; write errors are handled as for every message.
func (l *Logger) WriteMessage(line []byte) error {
	line = bytes.TrimRight(line, "\r\n")
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return fmt.Errorf("action: writing a message: not one JSON object: %.80q", line)
	}
	var probe struct {
		TaskUUID  *string `json:"task_uuid"`
		TaskLevel []int   `json:"task_level"`
	}
	if err := json.Unmarshal(trimmed, &probe); err != nil || probe.TaskUUID == nil || len(probe.TaskLevel) == 0 {
		return fmt.Errorf("action: writing a message: no task_uuid and task_level: %.80q", line)
	}
	buf := getBuffer()
	b := append(append((*buf)[:0], trimmed...), '\n')
	l.write(b)
	*buf = b
	putBuffer(buf)
	return nil
}
