package kinds

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzLineWriter checks that output split into arbitrary writes gives the
// same lines as splitting it whole, each cut to max bytes with the cut
// counted, and that the tail keeps the end of the output.
func FuzzLineWriter(f *testing.F) {
	f.Add([]byte("hello\nworld\n"), uint8(3), uint8(100))
	f.Add([]byte("no newline"), uint8(1), uint8(4))
	f.Add([]byte("a\r\nb\r\n\n\nlong line here\n"), uint8(2), uint8(5))
	f.Add([]byte(`{"task_uuid":"x","task_level":[1]}`+"\n"), uint8(7), uint8(10))
	f.Add([]byte(""), uint8(0), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk, maxb uint8) {
		maxLine := int(maxb)%64 + 1
		type got struct {
			line    string
			dropped int
		}
		var lines []got
		tl := &tail{max: 16}
		w := &lineWriter{max: maxLine, tail: tl, out: func(line []byte, dropped int) {
			lines = append(lines, got{string(line), dropped})
		}}
		step := int(chunk)%17 + 1
		for i := 0; i < len(data); i += step {
			end := min(i+step, len(data))
			if n, err := w.Write(data[i:end]); n != end-i || err != nil {
				t.Fatalf("Write returned %d, %v", n, err)
			}
		}
		w.flush()

		var want []got
		parts := strings.Split(string(data), "\n")
		if parts[len(parts)-1] == "" {
			parts = parts[:len(parts)-1]
		}
		for _, p := range parts {
			g := got{p, 0}
			if len(p) > maxLine {
				g = got{p[:maxLine], len(p) - maxLine}
			}
			g.line = strings.TrimRight(g.line, "\r")
			want = append(want, g)
		}
		if len(lines) != len(want) {
			t.Fatalf("got %d lines %+v, want %d %+v", len(lines), lines, len(want), want)
		}
		for i := range want {
			if lines[i] != want[i] {
				t.Errorf("line %d: got %+v, want %+v", i, lines[i], want[i])
			}
		}
		end := data[max(0, len(data)-16):]
		s := tl.String()
		if !tl.lost && s != string(data) {
			t.Errorf("tail %q, want %q", s, data)
		}
		if tl.lost && !bytes.HasSuffix(end, []byte(strings.TrimPrefix(s, "…"))) {
			t.Errorf("tail %q is not the end of %q", s, end)
		}
	})
}
