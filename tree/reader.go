package tree

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// LineError is a line that could not be read as an Eliot message. The
// [Reader] returns it and carries on with the next line.
type LineError struct {
	Source Source
	// Text is the line as read (without its newline), cut to 4 KiB.
	Text []byte
	// Err is a *SyntaxError, a *FormatError or ErrLineTooLong.
	Err error
}

func (e *LineError) Error() string {
	return fmt.Sprintf("%s: %v", e.Source, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// ErrLineTooLong reports a line longer than ReaderConfig.MaxLineBytes.
var ErrLineTooLong = errors.New("line too long")

// ReaderConfig configures a [Reader]. The zero value is ready to use.
type ReaderConfig struct {
	// Name is the file name given in Source and errors. Defaults to
	// "<stdin>".
	Name string
	// MaxLineBytes is the longest line accepted; longer lines are skipped
	// with ErrLineTooLong. Defaults to 64 MiB.
	MaxLineBytes int
	// BufferBytes is the size of the read buffer. Defaults to 256 KiB.
	BufferBytes int
	// SkipBlank skips lines holding only whitespace instead of reporting
	// them as bad JSON (Python's json and eliot-tree reject them).
	// Defaults to false.
	SkipBlank bool
}

func (c *ReaderConfig) withDefaults() ReaderConfig {
	var out ReaderConfig
	if c != nil {
		out = *c
	}
	if out.Name == "" {
		out.Name = "<stdin>"
	}
	if out.MaxLineBytes <= 0 {
		out.MaxLineBytes = 64 << 20
	}
	if out.BufferBytes <= 0 {
		out.BufferBytes = 256 << 10
	}
	return out
}

// Reader reads Eliot messages from JSON lines, one at a time. Input that
// starts with the gzip magic bytes is decompressed transparently. Reader is
// not safe for concurrent use.
type Reader struct {
	cfg    ReaderConfig
	src    io.Reader
	gz     *gzip.Reader
	buf    []byte
	start  int // start of unread data in buf
	end    int // end of data in buf
	eof    bool
	err    error
	line   int
	offset int64 // bytes of (decompressed) input consumed
	p      parser
}

// NewReader returns a Reader of r. It reads the first bytes of r to detect
// gzip.
func NewReader(r io.Reader, cfg *ReaderConfig) (*Reader, error) {
	c := cfg.withDefaults()
	br := bufio.NewReaderSize(r, 512)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reading gzip header of %s: %w", c.Name, err)
		}
		return &Reader{cfg: c, src: gz, gz: gz, buf: make([]byte, c.BufferBytes)}, nil
	}
	return &Reader{cfg: c, src: br, buf: make([]byte, c.BufferBytes)}, nil
}

// Line returns the number of lines read so far.
func (r *Reader) Line() int { return r.line }

// Offset returns the number of (decompressed) input bytes consumed so far.
func (r *Reader) Offset() int64 { return r.offset }

// Next returns the next message. At the end of input it returns io.EOF. A
// line that is not a message gives a *LineError; the next call continues
// with the following line. Other errors are read errors.
func (r *Reader) Next() (*Message, error) {
	for {
		line, tooLong, err := r.readLine()
		if err != nil {
			return nil, err
		}
		r.line++
		src := Source{File: r.cfg.Name, Line: r.line}
		if tooLong {
			return nil, &LineError{Source: src, Text: clip(line), Err: ErrLineTooLong}
		}
		if r.cfg.SkipBlank && len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		m, err := r.p.parse(line)
		if err != nil {
			return nil, &LineError{Source: src, Text: clip(line), Err: err}
		}
		m.Source = src
		return m, nil
	}
}

func clip(b []byte) []byte {
	if len(b) > 4096 {
		b = b[:4096]
	}
	return append([]byte(nil), b...)
}

// readLine returns the next line without its "\n" (and "\r"). The slice is
// valid until the next call.
func (r *Reader) readLine() (line []byte, tooLong bool, err error) {
	scanFrom := r.start
	for {
		if i := bytes.IndexByte(r.buf[scanFrom:r.end], '\n'); i >= 0 {
			nl := scanFrom + i
			line = r.buf[r.start:nl]
			r.offset += int64(nl + 1 - r.start)
			r.start = nl + 1
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return line, false, nil
		}
		if r.eof {
			if r.start < r.end {
				line = r.buf[r.start:r.end]
				r.offset += int64(r.end - r.start)
				r.start = r.end
				return line, false, nil
			}
			if r.err != nil {
				return nil, false, r.err
			}
			return nil, false, io.EOF
		}
		// Need more data: compact, grow if the line fills the buffer.
		scanFrom = r.end
		if r.start > 0 {
			n := copy(r.buf, r.buf[r.start:r.end])
			scanFrom -= r.start
			r.start, r.end = 0, n
		}
		if r.end == len(r.buf) {
			if len(r.buf) >= r.cfg.MaxLineBytes {
				return r.skipLongLine()
			}
			nb := make([]byte, min(2*len(r.buf), r.cfg.MaxLineBytes))
			copy(nb, r.buf[:r.end])
			r.buf = nb
		}
		n, err := r.src.Read(r.buf[r.end:])
		r.end += n
		if err != nil {
			r.eof = true
			if !errors.Is(err, io.EOF) {
				r.err = fmt.Errorf("reading %s: %w", r.cfg.Name, err)
			}
		}
	}
}

// skipLongLine discards the rest of an over-long line, keeping its start.
func (r *Reader) skipLongLine() ([]byte, bool, error) {
	head := append([]byte(nil), r.buf[:min(r.end, 4096)]...)
	r.offset += int64(r.end)
	r.start, r.end = 0, 0
	for {
		n, err := r.src.Read(r.buf)
		if i := bytes.IndexByte(r.buf[:n], '\n'); i >= 0 {
			r.offset += int64(i + 1)
			r.start, r.end = i+1, n
			if err != nil {
				r.eof = true
			}
			return head, true, nil
		}
		r.offset += int64(n)
		if err != nil {
			r.eof = true
			if !errors.Is(err, io.EOF) {
				r.err = fmt.Errorf("reading %s: %w", r.cfg.Name, err)
			}
			return head, true, nil
		}
	}
}

// Close releases the gzip decompressor, if any. It does not close the
// underlying reader.
func (r *Reader) Close() error {
	if r.gz != nil {
		return r.gz.Close()
	}
	return nil
}
