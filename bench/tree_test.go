package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/skeinhq/skein/bench/treegen"
	"github.com/skeinhq/skein/tree"
)

// treeLogFile writes the generated reference log (about 200,000 messages,
// 6,000 tasks, 46 MB) to a file and returns its name and size. The
// benchmarks read the file as the CLI does rather than keeping the log in
// the Go heap, where it would make collections rarer than in real use.
func treeLogFile(b *testing.B) (string, int64) {
	name := filepath.Join(b.TempDir(), "big.log")
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	st, err := treegen.Generate(f, treegen.Config{})
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
	return name, st.Bytes
}

// renderLog runs the whole library pipeline on one goroutine: parse, build,
// render.
func renderLog(b *testing.B, name string, cfg *tree.TextConfig) {
	r, err := tree.NewTextRenderer(io.Discard, cfg)
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rd, err := tree.NewReader(f, nil)
	if err != nil {
		b.Fatal(err)
	}
	bl := tree.NewBuilder(nil)
	for {
		m, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		t, err := bl.Add(m)
		if err != nil {
			b.Fatal(err)
		}
		if t != nil {
			if err := r.Render(t); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, t := range bl.Flush() {
		if err := r.Render(t); err != nil {
			b.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkTree measures parse+build+render of the reference log on one
// goroutine (run with -cpu 1 for the one-core figure), for skein's default
// style and for the byte-for-byte eliot-tree style, with the garbage
// collector target that skein tree sets (200%).
func BenchmarkTree(b *testing.B) {
	name, size := treeLogFile(b)
	defer debug.SetGCPercent(debug.SetGCPercent(200))
	for _, bc := range []struct {
		name string
		cfg  *tree.TextConfig
	}{
		{"style=default", &tree.TextConfig{}},
		{"style=eliot-tree", &tree.TextConfig{Style: tree.StyleEliotTree}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				renderLog(b, name, bc.cfg)
			}
			reportCPU(b, size, cpuTime()-start)
		})
	}
}

// BenchmarkTreeParse compares skein's message parser with encoding/json
// decoding every line into a map, the Go counterpart of Python's json.loads
// baseline (eliot.md §8: 0.7 s for the reference log).
func BenchmarkTreeParse(b *testing.B) {
	name, size := treeLogFile(b)
	b.Run("lib=skein", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		start := cpuTime()
		defer func() { reportCPU(b, size, cpuTime()-start) }()
		for b.Loop() {
			f, err := os.Open(name)
			if err != nil {
				b.Fatal(err)
			}
			rd, _ := tree.NewReader(f, nil)
			for {
				if _, err := rd.Next(); err != nil {
					break
				}
			}
			f.Close()
		}
	})
	b.Run("lib=encoding-json", func(b *testing.B) {
		data, err := os.ReadFile(name)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(size)
		b.ReportAllocs()
		start := cpuTime()
		defer func() { reportCPU(b, size, cpuTime()-start) }()
		for b.Loop() {
			for line := range bytes.Lines(data) {
				var m map[string]any
				if err := json.Unmarshal(line, &m); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkTreeCLI runs the skein binary on the reference log written to
// files, output to /dev/null, and reports the peak resident memory of the
// process (peak-RSS-MB, sampled). cores=1 limits the process to one core
// (GOMAXPROCS=1); files=4 splits the log into four files by task so that
// several cores can parse.
func BenchmarkTreeCLI(b *testing.B) {
	one, size := treeLogFile(b)
	data, err := os.ReadFile(one)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "skein")
	build := exec.Command("go", "build", "-o", bin, "./cmd/skein")
	build.Dir = ".." // the main module, with its own go.sum
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building skein: %v\n%s", err, out)
	}
	four := splitByTask(b, dir, data, 4)
	data = nil
	for _, bc := range []struct {
		name  string
		files []string
		env   []string
	}{
		{"files=1/cores=1", []string{one}, []string{"GOMAXPROCS=1"}},
		{"files=1", []string{one}, nil},
		{"files=4/cores=1", four, []string{"GOMAXPROCS=1"}},
		{"files=4", four, nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			var peak int64
			var cpu time.Duration
			for b.Loop() {
				cmd := exec.Command(bin, append([]string{"tree"}, bc.files...)...)
				cmd.Env = append(os.Environ(), bc.env...)
				devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
				if err != nil {
					b.Fatal(err)
				}
				cmd.Stdout = devnull
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				hwm := watchPeakRSS(cmd.Process.Pid)
				err = cmd.Wait()
				devnull.Close()
				if err != nil {
					b.Fatalf("skein tree: %v\n%s", err, stderr.Bytes())
				}
				if kb := hwm(); kb > peak {
					peak = kb
				}
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			b.ReportMetric(float64(peak)/1024, "peak-RSS-MB")
			reportCPU(b, size, cpu)
		})
	}
}

// cpuTime returns the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports throughput per second of CPU time (all threads: the
// garbage collector's work counts), which the other loads of a shared
// machine disturb far less than wall-clock MB/s.
func reportCPU(b *testing.B, size int64, cpu time.Duration) {
	if cpu > 0 {
		b.ReportMetric(float64(size)*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
	}
}

// watchPeakRSS samples the high-water mark of the resident memory of a
// running process (VmHWM in /proc/PID/status, Linux) until the returned
// function is called after the process ended; it returns KiB. (The rusage
// of a child is no use here: its maximum includes the benchmark process
// that forked it.)
func watchPeakRSS(pid int) func() int64 {
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	go func() {
		defer close(done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if data, err := os.ReadFile(path); err == nil {
				if i := bytes.Index(data, []byte("VmHWM:")); i >= 0 {
					f := bytes.Fields(data[i+6:])
					if len(f) > 0 {
						if kb, err := strconv.ParseInt(string(f[0]), 10, 64); err == nil && kb > peak.Load() {
							peak.Store(kb)
						}
					}
				}
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		<-done
		return peak.Load()
	}
}

// splitByTask writes the log as n files, each task wholly in one file.
func splitByTask(b *testing.B, dir string, data []byte, n int) []string {
	bufs := make([]bytes.Buffer, n)
	for line := range bytes.Lines(data) {
		i := bytes.Index(line, []byte(`"task_uuid": "`))
		h := 0
		for _, c := range line[i+14 : i+22] {
			h = h*31 + int(c)
		}
		bufs[(h%n+n)%n].Write(line)
	}
	names := make([]string, n)
	for i := range bufs {
		names[i] = filepath.Join(dir, "part"+string(rune('0'+i))+".log")
		if err := os.WriteFile(names[i], bufs[i].Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return names
}
