package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// treeData is the tree package's test data: real Eliot logs and the output
// of the real eliot-tree for them (see tree/testdata/README.md).
var treeData = filepath.Join("..", "..", "..", "tree", "testdata")

func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, IO{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return out.String(), errb.String(), code
}

type goldenCase struct {
	name, env string
	args      []string
	ordered   bool
}

func readManifest(t *testing.T) []goldenCase {
	t.Helper()
	f, err := os.Open(filepath.Join(treeData, "golden", "MANIFEST.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []goldenCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		parts := strings.Split(line, "\t")
		if len(parts) != 4 {
			t.Fatalf("MANIFEST.tsv: bad line %q", line)
		}
		c := goldenCase{name: parts[0], ordered: parts[3] == "ordered"}
		if parts[1] != "-" {
			c.env = parts[1]
		}
		for _, a := range strings.Fields(parts[2]) {
			a = strings.ReplaceAll(a, "%20", " ")
			if _, err := os.Stat(filepath.Join(treeData, a)); err == nil && !strings.HasPrefix(a, "-") {
				a = filepath.Join(treeData, a)
			}
			c.args = append(c.args, a)
		}
		cases = append(cases, c)
	}
	return cases
}

func taskBlocks(s string) []string {
	parts := strings.SplitAfter(s, "\n\n")
	if parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts
}

// TestTreeEliotTreeGoldens runs every case of the manifest with --style
// eliot-tree and compares with what the real eliot-tree printed: stdout byte
// for byte (the order of incomplete tasks, hash-dependent in eliot-tree, is
// ignored for "unordered" cases), the exit status, and the first paragraph
// of standard error.
func TestTreeEliotTreeGoldens(t *testing.T) {
	t.Setenv("HOME", t.TempDir()) // no ~/.config/eliot-tree/config.json
	for _, c := range readManifest(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("COLORFGBG", "")
			if c.env != "" {
				k, v, _ := strings.Cut(c.env, "=")
				if k == "TZ" {
					if _, err := time.LoadLocation(v); err != nil {
						t.Skipf("no time zone data for %s: %v", v, err)
					}
				}
				t.Setenv(k, v)
			}
			args := append([]string{"tree", "--style", "eliot-tree", "--strict"}, c.args...)
			stdout, stderr, code := runCLI(t, "", args...)
			golden := filepath.Join(treeData, "golden", c.name)
			want, err := os.ReadFile(golden + ".txt")
			if err != nil {
				t.Fatal(err)
			}
			wantCode := 0
			if b, err := os.ReadFile(golden + ".code"); err == nil {
				wantCode, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			}
			if code != wantCode {
				t.Errorf("exit status %d, want %d (stderr %q)", code, wantCode, stderr)
			}
			got, w := stdout, string(want)
			if !c.ordered {
				g, ww := taskBlocks(got), taskBlocks(w)
				slices.Sort(g)
				slices.Sort(ww)
				got, w = strings.Join(g, ""), strings.Join(ww, "")
			}
			if got != w {
				t.Errorf("stdout differs from eliot-tree's:\n%s", firstDiff(w, got))
			}
			if errWant, err := os.ReadFile(golden + ".err"); err == nil {
				first, _, _ := strings.Cut(string(errWant), "\n\n")
				if i := strings.Index(first, "\nTraceback"); i >= 0 {
					first = first[:i+1] // Python's traceback itself is not reproduced
				}
				first = strings.ReplaceAll(first, "file ", "file "+treeData+string(filepath.Separator))
				if !strings.HasPrefix(stderr, first) {
					t.Errorf("stderr starts %q, want %q", stderr[:min(len(stderr), len(first)+40)], first)
				}
			}
		})
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	n := 0
	for i := 0; i < max(len(w), len(g)) && n < 6; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want " + strconv.Quote(wl) + "\n  got  " + strconv.Quote(gl) + "\n")
			n++
		}
	}
	return b.String()
}

func treeFile(name string) string { return filepath.Join(treeData, name) }

func TestTreeExtras(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	wf := `{"workflow_id": "wf-7", "action_status": "started", "timestamp": 1, "task_uuid": "t-wf", "action_type": "job:run", "task_level": [1]}
{"action_status": "succeeded", "timestamp": 2, "task_uuid": "t-wf", "action_type": "job:run", "task_level": [2]}
{"job_id": "wf-7_0f8fad5b-d9cb-469f-a165-70867728950e", "timestamp": 3, "task_uuid": "t-job", "task_level": [1], "message_type": "job:note"}
{"workflow_id": "wf-8", "timestamp": 4, "task_uuid": "t-other", "task_level": [1], "message_type": "x"}
`
	tests := []struct {
		name       string
		stdin      string
		args       []string
		code       int
		outHas     []string
		outLacks   []string
		errHas     []string
		errEmpty   bool
		validJSONL bool
	}{
		{name: "workflow keeps whole tasks", stdin: wf, args: []string{"tree", "--workflow", "wf-7"},
			outHas: []string{"t-wf\n", "job:run/2 ⇒ succeeded", "t-job\n"}, outLacks: []string{"t-other"}, errEmpty: true},
		{name: "workflow in skein's own logs", args: []string{"tree", "--workflow", "req-42", treeFile("skein-checkout.log"), treeFile("skein-remote.log")},
			outHas: []string{"00000000-0000-4000-8000-000000000001\n", "payment:charge/4/1"}, outLacks: []string{"started/1"}, errEmpty: true},
		{name: "task query keeps whole tasks", args: []string{"tree", "--task", "action_type == `\"payment:charge\"`", treeFile("nested.log")},
			outHas: []string{"3ea0fd34-9fba-4f1f-a1de-f84932889493\n", "shop:cart_loaded/2", "shop:checkout/11 ⇒ succeeded"}, outLacks: []string{"worker:batch"}},
		{name: "failed", args: []string{"tree", "--failed", treeFile("nested.log")},
			outHas: []string{"c501bd44", "657c8f1d", "3ea0fd34"}, outLacks: []string{"b16ea891", "app:startup"}},
		{name: "json", args: []string{"tree", "--output", "json", treeFile("nested.log")}, validJSONL: true, outHas: []string{`"kind":"action"`}},
		{name: "html", args: []string{"tree", "-o", "html", "--failed", treeFile("nested.log")}, outHas: []string{"<!DOCTYPE html>", `class="task failed"`, "</html>"}},
		{name: "stats", args: []string{"tree", "--stats", treeFile("nested.log")}, outHas: []string{"action_type", "payment:charge", "2       1"}},
		{name: "stats json", args: []string{"tree", "--stats", "-o", "json", treeFile("nested.log")}, outHas: []string{`"action_type": "payment:charge"`, `"failed": 1`}},
		{name: "bad lines skipped and counted", args: []string{"tree", treeFile("invalid_json.log"), treeFile("not_eliot.log")},
			outHas: []string{"3ea0fd34-9fba-4f1f-a1de-f84932889493"},
			errHas: []string{"skipped 2 bad lines", "invalid_json.log:26: invalid JSON at byte", "not_eliot.log:4: not an Eliot message: field task_uuid: missing"}},
		{name: "strict stops at the first bad line", args: []string{"tree", "--strict", treeFile("invalid_json.log")}, code: 1,
			errHas: []string{"JSON parse error, file " + treeFile("invalid_json.log") + ", line 26:\n{\"task_uuid\": \"cut-off\", \"task_level\": [1\n\n"}},
		{name: "stdin by dash and gzip by content", stdin: "", args: []string{"tree", "--style", "eliot-tree", treeFile("nested.log.gz")},
			outHas: []string{"a_true: True"}, errEmpty: true},
		{name: "stdin when no file", stdin: wf, args: []string{"tree", "-"}, outHas: []string{"t-other"}},
		{name: "bad flag value", args: []string{"tree", "--color", "sometimes"}, code: 2, errHas: []string{"--color"}},
		{name: "bad query", args: []string{"tree", "--select", "a ==="}, code: 2, errHas: []string{"--select"}},
		{name: "bad date", args: []string{"tree", "--start", "yesterday"}, code: 2, errHas: []string{"--start", "ISO 8601"}},
		{name: "idle without follow", args: []string{"tree", "--idle", "1s"}, code: 2, errHas: []string{"--idle"}},
		{name: "missing file", args: []string{"tree", treeFile("nope.log")}, code: 1, errHas: []string{"nope.log"}},
		{name: "stats with strict stops cleanly", args: []string{"tree", "--stats", "--strict", treeFile("not_eliot.log")}, code: 1,
			errHas: []string{"Eliot message parse error, file " + treeFile("not_eliot.log") + ", line 4:\n{'hello': 'world', 'n': 1}\n\n"}},
		{name: "html strict", args: []string{"tree", "-o", "html", "--strict", treeFile("invalid_json.log")}, code: 1, outHas: []string{"<!DOCTYPE html>"}, errHas: []string{"JSON parse error"}},
		{name: "progress never on a pipe", args: []string{"tree", "--progress", "auto", treeFile("nested.log")}, errEmpty: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errs, code := runCLI(t, tt.stdin, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, errs)
			}
			for _, s := range tt.outHas {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tt.outLacks {
				if strings.Contains(out, s) {
					t.Errorf("stdout has %q", s)
				}
			}
			for _, s := range tt.errHas {
				if !strings.Contains(errs, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errs)
				}
			}
			if tt.errEmpty && errs != "" {
				t.Errorf("stderr not empty: %s", errs)
			}
			if tt.validJSONL {
				for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
					if !json.Valid([]byte(l)) {
						t.Errorf("invalid JSON line %s", l)
					}
				}
			}
		})
	}
}

func TestTreeProgress(t *testing.T) {
	t.Parallel()
	name := filepath.Join(t.TempDir(), "many.log")
	var b strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&b, `{"timestamp": 1, "task_uuid": "t%d", "task_level": [1], "message_type": "m"}`+"\n", i)
	}
	if err := os.WriteFile(name, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, code := runCLI(t, "", "tree", "--progress", "always", name)
	if code != 0 || !strings.Contains(errs, "reading logs") {
		t.Errorf("--progress always: exit %d, stderr %q", code, errs)
	}
	_, errs, _ = runCLI(t, "", "tree", name)
	if errs != "" {
		t.Errorf("progress shown on a pipe: %q", errs)
	}
}

func TestTreeConfigFile(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	dir := filepath.Join(home, ".config", "eliot-tree")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"field_limit": 7, "ascii": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := runCLI(t, "", "tree", treeFile("nested.log"))
	if code != 0 || !strings.Contains(out, "+-- app:startup/1 2026-11…") {
		t.Errorf("the default config file was not applied (exit %d):\n%s", code, out[:min(len(out), 300)])
	}
	out, _, _ = runCLI(t, "", "tree", "-l", "0", "--show-current-config")
	if !strings.Contains(out, `"field_limit": 0`) || !strings.Contains(out, `"ascii": true`) {
		t.Errorf("flags should override the config file:\n%s", out)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"theme_overrides": {"rooot": ["red"]}}`), 0o644)
	_, errs, code := runCLI(t, "", "tree", "--config", bad, "--color", "always", treeFile("nested.log"))
	if code != 2 || !strings.Contains(errs, "rooot") {
		t.Errorf("unknown theme key: exit %d, stderr %s", code, errs)
	}
}

func TestParseISO(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
	}{
		{"2026-11-22", "2026-11-22T00:00:00Z"},
		{"2026-11-22T14:28:20", "2026-11-22T14:28:20Z"},
		{"2026-11-22 14:28:20.1234567", "2026-11-22T14:28:20.123456Z"},
		{"20261122T1428", "2026-11-22T14:28:00Z"},
		{"2026-11-22T19:58:20+05:30", "2026-11-22T14:28:20Z"},
		{"2026-11-22T14:28:20-0100", "2026-11-22T15:28:20Z"},
	}
	for _, tt := range tests {
		got, err := parseISO(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if g := got.UTC().Format(time.RFC3339Nano); g != tt.want {
			t.Errorf("%s: got %s, want %s", tt.in, g, tt.want)
		}
	}
	for _, bad := range []string{"", "2026-13-01", "2026-02-30", "noon"} {
		if _, err := parseISO(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// signalWriter collects output and wakes waiters on every write.
type signalWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor blocks until the output contains s.
func (w *signalWriter) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(w.String(), s) {
		select {
		case <-w.wrote:
		case <-deadline:
			t.Fatalf("output never showed %q; got:\n%s", s, w.String())
		}
	}
}

func TestTreeFollow(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	name := filepath.Join(dir, "app.log")
	write := func(lines ...string) {
		t.Helper()
		f, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			f.WriteString(l + "\n")
		}
		f.Close()
	}
	start := func(id string) string {
		return `{"action_status": "started", "timestamp": 1, "task_uuid": "` + id + `", "action_type": "a", "task_level": [1]}`
	}
	end := func(id string) string {
		return `{"action_status": "succeeded", "timestamp": 2, "task_uuid": "` + id + `", "action_type": "a", "task_level": [2]}`
	}
	write(start("done-1"), end("done-1"), start("idle-1"))

	out := &signalWriter{wrote: make(chan struct{}, 1)}
	var errs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan int)
	go func() {
		result <- Run(ctx, []string{"tree", "--follow", "--poll", "5ms", "--idle", "200ms", name}, IO{Out: out, Err: &errs})
	}()
	out.waitFor(t, "done-1\n")
	out.waitFor(t, "idle-1\n└── a/1 ⇒ started") // printed once quiet for --idle
	write(start("done-2"), "not json", end("done-2"))
	out.waitFor(t, "done-2\n")
	if err := os.Rename(name, name+".1"); err != nil {
		t.Fatal(err)
	}
	write(start("after-rotation"), end("after-rotation"), start("open-at-exit"))
	out.waitFor(t, "after-rotation\n")
	cancel()
	if code := <-result; code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "open-at-exit\n") {
		t.Errorf("the task still open at exit was not printed:\n%s", out.String())
	}
	if !strings.Contains(errs.String(), "app.log:5: invalid JSON") {
		t.Errorf("bad line not reported: %q", errs.String())
	}
}
