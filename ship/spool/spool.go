// Package spool is the shipper's disk queue: an append-only log of records
// in checksummed segment files in one directory, read back in order, with a
// hard size cap.
//
// Each segment file (00000000000000000001.seg, ...) starts with an 8-byte
// header and holds entries of
//
//	magic (4 bytes) | length (uint32 LE) | CRC-32C of the payload (uint32 LE) | payload
//
// The magic lets a reader find the next good entry after a damaged one, so a
// corrupt region costs only the entries inside it: [Open] reports each one
// (file and offset) and the entries around it are still read.
//
// Entries are removed a segment at a time, once every entry in it has been
// acknowledged ([Spool.Ack]). Segments left by a previous process are read
// again from their start when the spool is opened: delivery is at least
// once. When the spool would grow past its cap, its oldest segment is
// deleted and the entries in it not yet handed out are reported as lost.
package spool

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

const (
	fileHeader  = "SKSPOOL1"
	entryMagic  = "\xf5SK\x1e"
	entryHeader = 12
	segSuffix   = ".seg"
	// MaxEntry is the largest payload an entry may hold.
	MaxEntry = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options configures a spool. Zero fields take the documented defaults.
type Options struct {
	// MaxBytes caps the bytes of all segment files. Defaults to 256 MiB.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file is started.
	// Defaults to 8 MiB.
	SegmentBytes int64
}

// CorruptError reports a damaged region of a segment file.
type CorruptError struct {
	File   string // path of the segment file
	Offset int64  // byte offset where the damage starts
	Length int64  // bytes skipped
	Reason string
	Lost   int // entries known lost (damage found while reading; 0 when found at Open)
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("spool: %s: offset %d: %s (%d bytes skipped)", e.File, e.Offset, e.Reason, e.Length)
}

type segment struct {
	id      uint64
	path    string
	size    int64      // bytes on disk, header included (and buffered, for the active one)
	records int        // entries written or found
	read    int        // entries handed out by Read
	done    int        // entries acknowledged or released
	readOff int64      // next offset to read
	skips   [][2]int64 // damaged regions: [from, to)
	sealed  bool
	deleted bool
}

// Spool is a disk queue. Its methods are safe for concurrent use.
type Spool struct {
	mu      sync.Mutex
	dir     string
	opts    Options
	segs    []*segment // oldest first; the last one is active
	total   int64      // bytes of all live segments
	nextID  uint64
	w       *os.File
	bw      *bufio.Writer
	flushed int64 // bytes of the active segment that reached the file
	readF   *os.File
	readSeg *segment
	chunk   []byte
	closed  bool

	appended uint64 // entries appended or found at open, ever
	consumed uint64 // entries handed out or lost to the cap, ever
	unread   int    // entries not yet handed out
	lock     *os.File
}

// Ticket stands for the entries one Read handed out; give it back to Ack or
// Release.
type Ticket struct {
	parts []ticketPart
}

type ticketPart struct {
	seg *segment
	n   int
}

// Len is the number of entries the ticket stands for.
func (t *Ticket) Len() int {
	n := 0
	for _, p := range t.parts {
		n += p.n
	}
	return n
}

// Reset empties the ticket for reuse.
func (t *Ticket) Reset() { t.parts = t.parts[:0] }

// Open opens (creating it if needed) the spool in dir. Segments found there
// are scanned and queued for reading; damaged regions are passed to
// onCorrupt, which may be nil.
func Open(dir string, opts Options, onCorrupt func(*CorruptError)) (*Spool, error) {
	if opts.MaxBytes == 0 {
		opts.MaxBytes = 256 << 20
	}
	if opts.SegmentBytes == 0 {
		opts.SegmentBytes = 8 << 20
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("spool: creating %s: %w", dir, err)
	}
	s := &Spool{dir: dir, opts: opts}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	names, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		s.unlock()
		return nil, fmt.Errorf("spool: listing %s: %w", dir, err)
	}
	var ids []uint64
	for _, name := range names {
		id, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(name), segSuffix), 10, 64)
		if err != nil {
			continue // not ours
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		seg := &segment{id: id, path: s.segPath(id), sealed: true}
		if err := scanSegment(seg, onCorrupt); err != nil {
			s.unlock()
			return nil, err
		}
		s.nextID = id
		if seg.records == 0 {
			_ = os.Remove(seg.path)
			continue
		}
		s.segs = append(s.segs, seg)
		s.total += seg.size
		s.appended += uint64(seg.records)
		s.unread += seg.records
	}
	if err := s.startSegment(); err != nil {
		s.unlock()
		return nil, err
	}
	return s, nil
}

func (s *Spool) segPath(id uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", id, segSuffix))
}

// scanSegment counts a segment's good entries and notes its damaged regions.
func scanSegment(seg *segment, onCorrupt func(*CorruptError)) error {
	data, err := os.ReadFile(seg.path)
	if err != nil {
		return fmt.Errorf("spool: reading %s: %w", seg.path, err)
	}
	seg.size = int64(len(data))
	report := func(off, length int64, reason string) {
		seg.skips = append(seg.skips, [2]int64{off, off + length})
		if onCorrupt != nil {
			onCorrupt(&CorruptError{File: seg.path, Offset: off, Length: length, Reason: reason})
		}
	}
	if len(data) < len(fileHeader) || string(data[:len(fileHeader)]) != fileHeader {
		report(0, int64(len(data)), "not a spool segment (bad file header)")
		seg.readOff = seg.size
		return nil
	}
	off := int64(len(fileHeader))
	seg.readOff = off
	for off < seg.size {
		n, reason := checkEntry(data[off:])
		if reason == "" {
			seg.records++
			off += int64(n)
			continue
		}
		// Find the next entry that checks out.
		next := off + 1
		for next < seg.size {
			i := bytes.Index(data[next:], []byte(entryMagic))
			if i < 0 {
				next = seg.size
				break
			}
			next += int64(i)
			if _, r := checkEntry(data[next:]); r == "" {
				break
			}
			next++
		}
		report(off, next-off, reason)
		off = next
	}
	return nil
}

// checkEntry validates the entry at the start of b and returns its full size,
// or why it is bad.
func checkEntry(b []byte) (int, string) {
	if len(b) < entryHeader {
		return 0, "truncated entry header"
	}
	if string(b[:4]) != entryMagic {
		return 0, "bad entry marker"
	}
	n := binary.LittleEndian.Uint32(b[4:8])
	if n > MaxEntry {
		return 0, fmt.Sprintf("entry length %d is too large", n)
	}
	if len(b) < entryHeader+int(n) {
		return 0, fmt.Sprintf("truncated entry (%d of %d bytes)", len(b)-entryHeader, n)
	}
	if crc32.Checksum(b[entryHeader:entryHeader+int(n)], castagnoli) != binary.LittleEndian.Uint32(b[8:12]) {
		return 0, "checksum mismatch"
	}
	return entryHeader + int(n), ""
}

func (s *Spool) startSegment() error {
	s.nextID++
	seg := &segment{id: s.nextID, path: s.segPath(s.nextID)}
	f, err := os.OpenFile(seg.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("spool: creating segment: %w", err)
	}
	if _, err := f.WriteString(fileHeader); err != nil {
		f.Close()
		return fmt.Errorf("spool: writing %s: %w", seg.path, err)
	}
	seg.size = int64(len(fileHeader))
	seg.readOff = seg.size
	s.total += seg.size
	s.segs = append(s.segs, seg)
	s.w = f
	s.flushed = seg.size
	if s.bw == nil {
		s.bw = bufio.NewWriterSize(f, 256<<10)
	} else {
		s.bw.Reset(f)
	}
	return nil
}

// ErrTooLarge is returned by Append for an entry larger than the cap allows.
var ErrTooLarge = errors.New("spool: entry larger than the spool allows")

// Append adds one entry. It returns how many unread entries were lost to
// make room under the cap.
func (s *Spool) Append(p []byte) (lost int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errors.New("spool: closed")
	}
	size := int64(entryHeader + len(p))
	if len(p) > MaxEntry || size+int64(len(fileHeader)) > s.opts.MaxBytes/2 {
		return 0, ErrTooLarge
	}
	active := s.segs[len(s.segs)-1]
	if active.size+size > s.opts.SegmentBytes && active.records > 0 {
		if err := s.sealActive(); err != nil {
			return 0, err
		}
		active = s.segs[len(s.segs)-1]
	}
	for s.total+size > s.opts.MaxBytes && len(s.segs) > 1 {
		lost += s.dropOldest()
	}
	var hdr [entryHeader]byte
	copy(hdr[:4], entryMagic)
	binary.LittleEndian.PutUint32(hdr[4:8], uint32(len(p)))
	binary.LittleEndian.PutUint32(hdr[8:12], crc32.Checksum(p, castagnoli))
	if _, err := s.bw.Write(hdr[:]); err != nil {
		return lost, fmt.Errorf("spool: writing %s: %w", active.path, err)
	}
	if _, err := s.bw.Write(p); err != nil {
		return lost, fmt.Errorf("spool: writing %s: %w", active.path, err)
	}
	active.size += size
	active.records++
	s.total += size
	s.appended++
	s.unread++
	return lost, nil
}

func (s *Spool) sealActive() error {
	active := s.segs[len(s.segs)-1]
	if err := s.bw.Flush(); err != nil {
		return fmt.Errorf("spool: writing %s: %w", active.path, err)
	}
	if err := s.w.Sync(); err != nil {
		return fmt.Errorf("spool: syncing %s: %w", active.path, err)
	}
	if err := s.w.Close(); err != nil {
		return fmt.Errorf("spool: closing %s: %w", active.path, err)
	}
	active.sealed = true
	if err := s.startSegment(); err != nil {
		return err
	}
	s.removeFinished()
	return nil
}

// dropOldest deletes the oldest segment and returns its unread entries.
func (s *Spool) dropOldest() int {
	seg := s.segs[0]
	s.segs = s.segs[1:]
	s.total -= seg.size
	seg.deleted = true
	lost := seg.records - seg.read
	s.unread -= lost
	s.consumed += uint64(lost)
	if s.readSeg == seg {
		s.readF.Close()
		s.readF, s.readSeg = nil, nil
	}
	_ = os.Remove(seg.path)
	return lost
}

// Flush hands buffered entries to the operating system: they then survive
// the process being killed.
func (s *Spool) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked()
}

func (s *Spool) flushLocked() error {
	if s.closed || s.bw.Buffered() == 0 {
		return nil
	}
	if err := s.bw.Flush(); err != nil {
		return fmt.Errorf("spool: writing %s: %w", s.segs[len(s.segs)-1].path, err)
	}
	s.flushed = s.segs[len(s.segs)-1].size
	return nil
}

// Sync flushes and fsyncs the active segment: its entries then survive a
// machine crash.
func (s *Spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if err := s.flushLocked(); err != nil {
		return err
	}
	if err := s.w.Sync(); err != nil {
		return fmt.Errorf("spool: syncing %s: %w", s.segs[len(s.segs)-1].path, err)
	}
	return nil
}

// Read hands out up to maxEntries entries totalling at most maxBytes (at
// least one entry when any is unread), calling fn with each payload (valid
// only during the call), and adds them to t.
func (s *Spool) Read(t *Ticket, maxEntries, maxBytes int, fn func([]byte)) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errors.New("spool: closed")
	}
	got, gotBytes := 0, 0
	defer func() {
		s.unread -= got
		s.consumed += uint64(got)
	}()
	for _, seg := range s.segs {
		if got >= maxEntries {
			break
		}
		if seg.read == seg.records {
			continue
		}
		if !seg.sealed {
			if err := s.flushLocked(); err != nil {
				return got, err
			}
		}
		n, b, err := s.readSegment(seg, maxEntries-got, maxBytes-gotBytes, got == 0, fn)
		if n > 0 {
			t.add(seg, n)
		}
		got += n
		gotBytes += b
		if err != nil {
			return got, err
		}
		if n == 0 || (seg.read < seg.records) {
			break // out of room in this batch
		}
	}
	return got, nil
}

func (t *Ticket) add(seg *segment, n int) {
	if k := len(t.parts); k > 0 && t.parts[k-1].seg == seg {
		t.parts[k-1].n += n
		return
	}
	t.parts = append(t.parts, ticketPart{seg, n})
}

func (s *Spool) readSegment(seg *segment, maxEntries, maxBytes int, first bool, fn func([]byte)) (n, nbytes int, err error) {
	if s.readSeg != seg {
		if s.readF != nil {
			s.readF.Close()
		}
		s.readF, err = os.Open(seg.path)
		if err != nil {
			s.readF = nil
			return 0, 0, fmt.Errorf("spool: opening %s: %w", seg.path, err)
		}
		s.readSeg = seg
	}
	limit := seg.size
	if !seg.sealed {
		limit = s.flushed
	}
	for n < maxEntries && seg.read < seg.records && seg.readOff < limit {
		for _, sk := range seg.skips {
			if seg.readOff >= sk[0] && seg.readOff < sk[1] {
				seg.readOff = sk[1]
			}
		}
		if seg.readOff >= limit {
			break
		}
		want := limit - seg.readOff
		if want > int64(maxBytes-nbytes)+entryHeader && !(first && n == 0) {
			want = int64(maxBytes-nbytes) + entryHeader
		}
		if want > 1<<20 {
			want = 1 << 20
		}
		if want < entryHeader {
			break
		}
		if cap(s.chunk) < int(want) {
			s.chunk = make([]byte, want)
		}
		buf := s.chunk[:want]
		if _, err := s.readF.ReadAt(buf, seg.readOff); err != nil && err != io.EOF {
			return n, nbytes, fmt.Errorf("spool: reading %s at %d: %w", seg.path, seg.readOff, err)
		}
		pos := 0
		progressed := false
		for pos+entryHeader <= len(buf) && n < maxEntries && seg.read < seg.records {
			plen := int(binary.LittleEndian.Uint32(buf[pos+4 : pos+8]))
			if string(buf[pos:pos+4]) != entryMagic || plen > MaxEntry {
				// Damaged since it was written or scanned: give up on the
				// rest of this segment.
				lost := seg.records - seg.read
				err := &CorruptError{File: seg.path, Offset: seg.readOff, Length: limit - seg.readOff, Reason: "bad entry marker while reading", Lost: lost}
				seg.read, seg.done, seg.readOff = seg.records, seg.done+lost, limit
				s.unread -= lost
				s.consumed += uint64(lost)
				return n, nbytes, err
			}
			if pos+entryHeader+plen > len(buf) {
				if pos == 0 {
					// One entry larger than the chunk: read it alone.
					big := make([]byte, entryHeader+plen)
					if _, err := s.readF.ReadAt(big, seg.readOff); err != nil && err != io.EOF {
						return n, nbytes, fmt.Errorf("spool: reading %s at %d: %w", seg.path, seg.readOff, err)
					}
					buf, pos = big, 0
					continue
				}
				break
			}
			if n > 0 && nbytes+plen > maxBytes {
				return n, nbytes, nil
			}
			fn(buf[pos+entryHeader : pos+entryHeader+plen])
			pos += entryHeader + plen
			seg.readOff += int64(entryHeader + plen)
			seg.read++
			n++
			nbytes += plen
			progressed = true
			if skipped := s.skipAt(seg); skipped {
				break
			}
		}
		if !progressed {
			break
		}
	}
	return n, nbytes, nil
}

// skipAt reports whether the read offset sits at a damaged region (the
// chunk must then be re-read past it).
func (s *Spool) skipAt(seg *segment) bool {
	for _, sk := range seg.skips {
		if seg.readOff == sk[0] {
			return true
		}
	}
	return false
}

// Ack marks a ticket's entries delivered (or dealt with for good); segments
// whose every entry is done are deleted.
func (s *Spool) Ack(t *Ticket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range t.parts {
		p.seg.done += p.n
	}
	t.Reset()
	s.removeFinished()
}

// Release gives back a ticket whose entries were not delivered: they stay on
// disk and are read again when the spool is next opened. It returns how many
// of them are still on disk; the others were lost to the cap.
func (s *Spool) Release(t *Ticket) (kept int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range t.parts {
		if !p.seg.deleted {
			kept += p.n
		}
	}
	t.Reset()
	return kept
}

func (s *Spool) removeFinished() {
	for len(s.segs) > 1 {
		seg := s.segs[0]
		if !seg.sealed || seg.done < seg.records {
			return
		}
		s.segs = s.segs[1:]
		s.total -= seg.size
		seg.deleted = true
		if s.readSeg == seg {
			s.readF.Close()
			s.readF, s.readSeg = nil, nil
		}
		_ = os.Remove(seg.path)
	}
}

// Stats reports entries not yet handed out, the bytes on disk, and the
// monotonic counts of entries appended and consumed (handed out or lost).
func (s *Spool) Stats() (unread int, bytes int64, appended, consumed uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unread, s.total, s.appended, s.consumed
}

// Close syncs and closes the spool. Entries not acknowledged stay on disk.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	var errs []error
	if err := s.bw.Flush(); err != nil {
		errs = append(errs, fmt.Errorf("spool: writing: %w", err))
	}
	if err := s.w.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("spool: syncing: %w", err))
	}
	errs = append(errs, s.w.Close())
	if s.readF != nil {
		s.readF.Close()
	}
	// An active segment with nothing in it is not worth keeping.
	if active := s.segs[len(s.segs)-1]; active.records == 0 || active.done == active.records {
		_ = os.Remove(active.path)
	}
	s.closed = true
	s.unlock()
	return errors.Join(errs...)
}

func (s *Spool) unlock() {
	if s.lock != nil {
		unlockDir(s.lock)
		s.lock = nil
	}
}
