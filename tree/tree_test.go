package tree

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var update = flag.Bool("update", false, "rewrite the testdata/skein golden files")

// TestGoldenDefaultStyle pins skein's own style (JSON literals) on the same
// logs; run with -update after an intended change.
func TestGoldenDefaultStyle(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		cfg   *TextConfig
		files []string
	}{
		{"nested", nil, []string{"nested.log"}},
		{"edge", nil, []string{"edge.log"}},
		{"edge-l0-ascii", &TextConfig{FieldLimit: -1, ASCII: true}, []string{"edge.log"}},
		{"edge-raw", &TextConfig{Raw: true}, []string{"edge.log"}},
		{"skein-both", nil, []string{"skein-checkout.log", "skein-remote.log"}},
		{"client-then-server-color", &TextConfig{Color: true}, []string{"client.log", "server.log"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var files []string
			for _, f := range tt.files {
				files = append(files, filepath.Join("testdata", f))
			}
			got := renderAll(t, tt.cfg, files...)
			golden := filepath.Join("testdata", "skein", tt.name+".txt")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s\n%s", golden, lineDiff(string(want), got))
			}
		})
	}
}

// renderAll reads the files in order into one builder and renders every
// task as it completes, then the incomplete ones; bad lines fail the test.
func renderAll(t *testing.T, cfg *TextConfig, files ...string) string {
	t.Helper()
	var out bytes.Buffer
	r, err := NewTextRenderer(&out, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBuilder(nil)
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		rd, err := NewReader(f, &ReaderConfig{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		for {
			m, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("reading %s: %v", name, err)
			}
			task, err := b.Add(m)
			if err != nil {
				t.Fatalf("adding %s: %v", m.Source, err)
			}
			if task != nil {
				if err := r.Render(task); err != nil {
					t.Fatal(err)
				}
			}
		}
		f.Close()
	}
	for _, task := range b.Flush() {
		if err := r.Render(task); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// blocks splits text output into its task blocks.
func blocks(s string) []string {
	parts := strings.SplitAfter(s, "\n\n")
	if parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts
}

func TestGoldenEliotTree(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		files     []string
		golden    string
		unordered bool // eliot-tree's order of incomplete tasks is hash-dependent
	}{
		{name: "nested", files: []string{"nested.log"}, golden: "nested.default.txt"},
		{name: "threads", files: []string{"threads.log"}, golden: "threads.default.txt"},
		{name: "client", files: []string{"client.log"}, golden: "client.default.txt", unordered: true},
		{name: "server", files: []string{"server.log"}, golden: "server.default.txt", unordered: true},
		{name: "client-then-server", files: []string{"client.log", "server.log"}, golden: "client-then-server.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var files []string
			for _, f := range tt.files {
				files = append(files, filepath.Join("testdata", f))
			}
			got := renderAll(t, &TextConfig{Style: StyleEliotTree}, files...)
			wantB, err := os.ReadFile(filepath.Join("testdata", "golden", tt.golden))
			if err != nil {
				t.Fatal(err)
			}
			want := string(wantB)
			if tt.unordered {
				g, w := blocks(got), blocks(want)
				slices.Sort(g)
				slices.Sort(w)
				got, want = strings.Join(g, ""), strings.Join(w, "")
			}
			if got != want {
				t.Errorf("output differs from eliot-tree's\n%s", lineDiff(want, got))
			}
		})
	}
}

// lineDiff shows the first differing lines of want and got.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 8; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + itoa(i+1) + ":\n  want " + quote(wl) + "\n  got  " + quote(gl) + "\n")
			shown++
		}
	}
	return b.String()
}

func itoa(i int) string { return string(Level{i}.Append(nil))[1:] }

func quote(s string) string { return "«" + s + "»" }
