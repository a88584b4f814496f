package ship

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const childEnv = "SKEIN_SHIP_TEST_CHILD"

// childMain is the test binary re-executed as a shipping process that the
// parent kills with SIGKILL. It ships records 0..N-1 into a spool, printing
// "persisted K" each time records 0..K-1 are on disk, then waits to be
// killed.
func childMain() {
	n, _ := strconv.Atoi(os.Getenv("SKEIN_SHIP_N"))
	s, err := New(Config{
		URL:    os.Getenv("SKEIN_SHIP_URL"),
		Spool:  SpoolConfig{Dir: os.Getenv("SKEIN_SHIP_DIR"), SegmentBytes: 64 << 10, MaxBytes: 64 << 20},
		Retry:  RetryConfig{InitialWait: time.Millisecond, MaxWait: 10 * time.Millisecond},
		Logger: nil,
	})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	for i := range n {
		_, _ = s.Write(record(i))
		if (i+1)%500 == 0 {
			if err := s.Persist(context.Background()); err != nil {
				fmt.Println("error", err)
				os.Exit(2)
			}
			fmt.Println("persisted", i+1)
		}
	}
	select {} // until killed
}

// TestSpoolSurvivesKill9 kills a real shipping process (this test binary,
// re-executed) while its endpoint is down, then starts a new shipper on the
// same spool with the endpoint up: every record the child had persisted
// arrives, duplicates allowed, none missing.
func TestSpoolSurvivesKill9(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		n      int
		killAt int // kill once this many are persisted
	}{
		{"idle child", 2000, 2000},
		{"child still writing", 1_000_000, 3000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			down, _ := hangingSink(t) // accepts connections, never answers
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"=1", "SKEIN_SHIP_N="+strconv.Itoa(tc.n),
				"SKEIN_SHIP_DIR="+dir, "SKEIN_SHIP_URL="+down.srv.URL)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			persisted := 0
			sc := bufio.NewScanner(out)
			for persisted < tc.killAt && sc.Scan() {
				line := sc.Text()
				if k, ok := strings.CutPrefix(line, "persisted "); ok {
					persisted, _ = strconv.Atoi(k)
					continue
				}
				t.Fatalf("child: %s", line)
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			if persisted < tc.killAt {
				t.Fatalf("child persisted only %d records", persisted)
			}

			sk := newSink(t, nil)
			logger, logs := testLogger()
			s := mustNew(t, Config{URL: sk.srv.URL, Logger: logger, Spool: SpoolConfig{Dir: dir, SegmentBytes: 64 << 10, MaxBytes: 64 << 20}})
			if st := s.Stats(); st.Received < uint64(persisted) || st.Spooled < int64(persisted) {
				t.Errorf("reopened spool: %s, want at least %d spooled", st, persisted)
			}
			if err := closeWithin(t, s, 30*time.Second); err != nil {
				t.Fatalf("Close: %v", err)
			}
			st := s.Stats()
			checkBalanced(t, st)
			if _, missing := sk.unique(persisted); len(missing) > 0 {
				t.Errorf("%d persisted records missing after kill -9, first %v\nlogs:\n%s", len(missing), missing[:min(10, len(missing))], logs)
			}
			if st.Pending() != 0 {
				t.Errorf("got %s, want nothing pending", st)
			}
			// Delivered segments are gone.
			segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
			if len(segs) != 0 {
				t.Errorf("segments left after delivery: %v", segs)
			}
		})
	}
}

// TestSpoolKeepsRecordsWhileSinkDown: with a spool, retries never give up,
// and Close leaves what is undelivered on disk for the next start.
func TestSpoolKeepsRecordsWhileSinkDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	failing := newSink(t, func(w http.ResponseWriter, _ *http.Request, _ int, _ []byte) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	s := mustNew(t, Config{URL: failing.srv.URL, Spool: SpoolConfig{Dir: dir},
		Retry: RetryConfig{InitialWait: time.Millisecond, MaxWait: 2 * time.Millisecond, MaxAttempts: 2}})
	write(t, s, 0, 1000)
	if err := s.Persist(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := closeWithin(t, s, 200*time.Millisecond)
	if err == nil {
		t.Error("Close drained although the sink is down")
	}
	st := s.Stats()
	checkBalanced(t, st)
	if st.DroppedTotal() != 0 || st.Spooled != 1000 {
		t.Errorf("got %s, want all 1000 kept in the spool", st)
	}

	sk := newSink(t, nil)
	s2 := mustNew(t, Config{URL: sk.srv.URL, Spool: SpoolConfig{Dir: dir}})
	if err := closeWithin(t, s2, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, missing := sk.unique(1000); len(missing) > 0 {
		t.Errorf("missing %d records", len(missing))
	}
	checkBalanced(t, s2.Stats())
}

func TestSpoolDeadLetter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sk := newSink(t, func(w http.ResponseWriter, _ *http.Request, _ int, _ []byte) bool {
		http.Error(w, "no such bucket", http.StatusNotFound)
		return true
	})
	s := mustNew(t, Config{URL: sk.srv.URL, Spool: SpoolConfig{Dir: dir}})
	write(t, s, 0, 10)
	if err := closeWithin(t, s, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	checkBalanced(t, st)
	if st.Dropped[DropRejected] != 10 || st.DeadLettered != 10 {
		t.Errorf("got %s, want 10 rejected and dead-lettered", st)
	}
	data, err := os.ReadFile(filepath.Join(dir, "dead-letter.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 11 || !strings.Contains(lines[0], "no such bucket") || !strings.Contains(lines[0], "404") {
		t.Errorf("dead-letter file:\n%s", data)
	}
}

// TestSpoolCorruptFile damages a segment between two runs: the error names
// the file and offset, and the good records around the damage arrive.
func TestSpoolCorruptFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	down, _ := hangingSink(t)
	s := mustNew(t, Config{URL: down.srv.URL, RequestTimeout: time.Hour, Spool: SpoolConfig{Dir: dir}})
	write(t, s, 0, 100)
	if err := s.Persist(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = closeWithin(t, s, 50*time.Millisecond)

	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments %v, want 1", segs)
	}
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	off := len(data) / 2
	copy(data[off:], "GARBAGE GARBAGE GARBAGE")
	if err := os.WriteFile(segs[0], data, 0o644); err != nil {
		t.Fatal(err)
	}

	sk := newSink(t, nil)
	logger, logs := testLogger()
	s2 := mustNew(t, Config{URL: sk.srv.URL, Logger: logger, Spool: SpoolConfig{Dir: dir}})
	if err := closeWithin(t, s2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	st := s2.Stats()
	checkBalanced(t, st)
	if st.CorruptRegions != 1 {
		t.Errorf("got %d corrupt regions, want 1", st.CorruptRegions)
	}
	if !strings.Contains(logs.String(), filepath.Base(segs[0])) || !strings.Contains(logs.String(), "offset ") {
		t.Errorf("report does not name the file and offset:\n%s", logs)
	}
	distinct, _ := sk.unique(100)
	if distinct < 97 || distinct == 100 {
		t.Errorf("got %d of 100 records, want all but the one or two damaged", distinct)
	}
	sk.mu.Lock()
	first, last := sk.got[0], sk.got[99]
	sk.mu.Unlock()
	if first == 0 || last == 0 {
		t.Error("records before or after the damage were lost")
	}
}

func TestSpoolCap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	down, _ := hangingSink(t)
	s := mustNew(t, Config{URL: down.srv.URL, RequestTimeout: time.Hour,
		Spool: SpoolConfig{Dir: dir, SegmentBytes: 16 << 10, MaxBytes: 64 << 10}})
	write(t, s, 0, 3000) // ~300 KB through a 64 KiB spool
	if err := s.Persist(context.Background()); err != nil {
		t.Fatal(err)
	}
	var total int64
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	for _, seg := range segs {
		fi, err := os.Stat(seg)
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
	}
	if total > 64<<10 {
		t.Errorf("spool holds %d bytes, cap is %d", total, 64<<10)
	}
	_ = closeWithin(t, s, 50*time.Millisecond)
	st := s.Stats()
	checkBalanced(t, st)
	if st.Dropped[DropSpoolFull] == 0 {
		t.Errorf("got %s, want spool_full drops", st)
	}
}
