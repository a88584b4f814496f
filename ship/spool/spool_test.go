package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func entry(i int) []byte {
	return fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, i, strings.Repeat("x", i%50))
}

func readAll(t *testing.T, s *Spool, tk *Ticket, batch int) []string {
	t.Helper()
	var got []string
	for {
		n, err := s.Read(tk, batch, 1<<20, func(p []byte) { got = append(got, string(p)) })
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if n == 0 {
			return got
		}
	}
}

func TestAppendReadAckAcrossSegments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(dir, Options{SegmentBytes: 1024, MaxBytes: 1 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		if lost, err := s.Append(entry(i)); err != nil || lost != 0 {
			t.Fatalf("Append(%d) = %d, %v", i, lost, err)
		}
	}
	var tk Ticket
	got := readAll(t, s, &tk, 7)
	if len(got) != n || tk.Len() != n {
		t.Fatalf("read %d entries, ticket %d, want %d", len(got), tk.Len(), n)
	}
	for i, g := range got {
		if g != string(entry(i)) {
			t.Fatalf("entry %d = %s", i, g)
		}
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) < 5 {
		t.Fatalf("only %d segments for %d entries of 1 KiB segments", len(segs), n)
	}
	s.Ack(&tk)
	segs, _ = filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Errorf("after Ack, segments %v, want only the active one", segs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ = filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 0 {
		t.Errorf("after Close, segments %v, want none", segs)
	}
}

func TestReopenReplaysUnacked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(dir, Options{SegmentBytes: 1024, MaxBytes: 1 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}, nil); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second Open of a spool in use = %v", err)
	}
	for i := range 100 {
		_, _ = s.Append(entry(i))
	}
	var tk Ticket
	_, _ = s.Read(&tk, 10, 1<<20, func([]byte) {})
	if kept := s.Release(&tk); kept != 10 {
		t.Errorf("Release kept %d, want 10", kept)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{SegmentBytes: 1024, MaxBytes: 1 << 20}, func(e *CorruptError) { t.Errorf("corrupt: %v", e) })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if unread, _, _, _ := s.Stats(); unread != 100 {
		t.Errorf("reopened with %d unread, want 100", unread)
	}
	if got := readAll(t, s, &tk, 1000); len(got) != 100 || got[99] != string(entry(99)) {
		t.Errorf("replayed %d entries", len(got))
	}
}

func TestCapDropsOldestSegment(t *testing.T) {
	t.Parallel()
	s, err := Open(t.TempDir(), Options{SegmentBytes: 1024, MaxBytes: 4096}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lost := 0
	for i := range 500 {
		l, err := s.Append(entry(i))
		if err != nil {
			t.Fatal(err)
		}
		lost += l
	}
	unread, total, appended, consumed := s.Stats()
	if total > 4096 {
		t.Errorf("spool holds %d bytes over its 4096 cap", total)
	}
	if lost == 0 || uint64(unread+lost) != appended || consumed != uint64(lost) {
		t.Errorf("lost %d, unread %d, appended %d, consumed %d", lost, unread, appended, consumed)
	}
	var tk Ticket
	got := readAll(t, s, &tk, 50)
	if got[len(got)-1] != string(entry(499)) {
		t.Errorf("newest entry missing after the cap")
	}
	if _, err := s.Append(make([]byte, 4096)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Append(too large) = %v", err)
	}
}

func TestTornTailAndDamage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(dir, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		_, _ = s.Append(entry(i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	data, _ := os.ReadFile(segs[0])
	// Damage entry 10's checksum and tear the last entry in half.
	off := len(fileHeader)
	for range 10 {
		n, _ := checkEntry(data[off:])
		off += n
	}
	data[off+9] ^= 0xff
	data = data[:len(data)-5]
	if err := os.WriteFile(segs[0], data, 0o644); err != nil {
		t.Fatal(err)
	}
	var reports []*CorruptError
	s, err = Open(dir, Options{}, func(e *CorruptError) { reports = append(reports, e) })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(reports) != 2 || reports[0].Offset != int64(off) || reports[0].Reason != "checksum mismatch" ||
		!strings.Contains(reports[1].Reason, "truncated") || !strings.Contains(reports[0].Error(), segs[0]) {
		t.Errorf("reports %v", reports)
	}
	var tk Ticket
	got := readAll(t, s, &tk, 16)
	if len(got) != 48 || got[9] != string(entry(9)) || got[10] != string(entry(11)) {
		t.Errorf("read %d entries around the damage", len(got))
	}
}

func FuzzOpen(f *testing.F) {
	good := func(payloads ...string) []byte {
		b := []byte(fileHeader)
		for _, p := range payloads {
			dir := f.TempDir()
			s, _ := Open(dir, Options{}, nil)
			_, _ = s.Append([]byte(p))
			_ = s.Flush()
			seg := s.segs[len(s.segs)-1].path
			data, _ := os.ReadFile(seg)
			_ = s.Close()
			b = append(b, data[len(fileHeader):]...)
		}
		return b
	}
	f.Add(good(`{"a":1}`, `{"b":2}`))
	f.Add([]byte(fileHeader + entryMagic + "\xff\xff\xff\x7f"))
	f.Add([]byte("not a spool"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "00000000000000000001.seg"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, Options{}, func(*CorruptError) {})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		unread, _, _, _ := s.Stats()
		var tk Ticket
		n := 0
		for {
			k, err := s.Read(&tk, 3, 1<<20, func([]byte) {})
			if err != nil {
				t.Fatal(err)
			}
			if k == 0 {
				break
			}
			n += k
		}
		if n != unread {
			t.Errorf("read %d entries, Open counted %d", n, unread)
		}
	})
}
