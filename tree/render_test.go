package tree

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestDefaultStyleValues(t *testing.T) {
	t.Parallel()
	got := renderAll(t, nil, "testdata/nested.log")
	for _, want := range []string{
		"    │   ├── a_big_int: 12345678901234567890\n",
		"    │   ├── a_false: false\n",
		"    │   ├── a_huge_float: 1e+16\n",
		"    │   ├── a_none: null\n",
		"    │   ├── a_true: true\n",
		"    │   ├── a_whole_float: 3.0\n",
		"    │       ├── cached: false\n",
		"    │   │   ├── 3: null\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("default style output lacks %q", want)
		}
	}
	for _, py := range []string{": True\n", ": False\n", ": None\n"} {
		if strings.Contains(got, py) {
			t.Errorf("default style printed the Python literal %q", py)
		}
	}
}

func TestTextRendererOptions(t *testing.T) {
	t.Parallel()
	line := `{"v": "a\nb", "x": 1, "timestamp": 1795357700.5, "task_uuid": "u", "task_level": [1], "message_type": "m"}`
	m, err := ParseMessage([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	task, _ := NewBuilder(nil).Add(m)
	tests := []struct {
		name string
		cfg  TextConfig
		want string
	}{
		{"default", TextConfig{}, "u\n└── m/1 2026-11-22 14:28:20Z\n    ├── v: a…\n    └── x: 1\n\n"},
		{"no limit keeps newlines", TextConfig{FieldLimit: -1}, "u\n└── m/1 2026-11-22 14:28:20Z\n    ├── v: a⏎\n    │   b\n    └── x: 1\n\n"},
		{"hidden replaced", TextConfig{HiddenFields: []string{"x"}}, "u\n└── m/1 2026-11-22 14:28:20Z\n    ├── message_type: m\n    └── v: a…\n\n"},
		{"raw", TextConfig{Raw: true}, "u\n└── m/1 1795357700.5\n    ├── v: a…\n    └── x: 1\n\n"},
		{"ascii", TextConfig{ASCII: true, FieldLimit: -1}, "u\n+-- m/1 2026-11-22 14:28:20Z\n    |-- v: a\n\n    |   b\n    +-- x: 1\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			r, err := NewTextRenderer(&out, &tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Render(task); err != nil {
				t.Fatal(err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", out.String(), tt.want)
			}
		})
	}
}

func TestThemeValidate(t *testing.T) {
	t.Parallel()
	th := DarkTheme()
	th.Root.FG = "no_such_colour"
	if err := th.Validate(); err == nil || !strings.Contains(err.Error(), "root") {
		t.Errorf("Validate = %v, want an error naming slot root", err)
	}
	if _, err := NewTextRenderer(nil, &TextConfig{Color: true, Theme: th}); err == nil {
		t.Error("NewTextRenderer accepted an unknown colour")
	}
	th = LightTheme()
	th.Parent = Color{FG: "202", BG: "grey_0", Attrs: []string{"underlined"}}
	if err := th.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestJSONRenderer(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	r := NewJSONRenderer(&out)
	b := NewBuilder(nil)
	for _, name := range []string{"testdata/edge.log", "testdata/missing_end.log"} {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		rd, _ := NewReader(f, nil)
		for {
			m, err := rd.Next()
			if err != nil {
				break
			}
			if task, err := b.Add(m); err == nil && task != nil {
				r.Render(task)
			}
		}
		f.Close()
	}
	for _, task := range b.Flush() {
		r.Render(task)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	type node struct {
		Kind       string          `json:"kind"`
		ActionType string          `json:"action_type"`
		TaskLevel  []int           `json:"task_level"`
		Status     string          `json:"status"`
		Failed     bool            `json:"failed"`
		Start      json.RawMessage `json:"start"`
		Message    map[string]any  `json:"message"`
		Children   []node          `json:"children"`
	}
	var complete, incomplete int
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	sawNaN := false
	for sc.Scan() {
		var task struct {
			UUID     string `json:"task_uuid"`
			Complete bool   `json:"complete"`
			Root     node   `json:"root"`
		}
		if err := json.Unmarshal(sc.Bytes(), &task); err != nil {
			t.Fatalf("invalid JSON line: %v\n%s", err, sc.Bytes())
		}
		if task.Complete {
			complete++
		} else {
			incomplete++
		}
		if task.Root.Kind == "" {
			t.Errorf("task %s: root without kind", task.UUID)
		}
		for _, c := range task.Root.Children {
			if c.Message != nil {
				if v, ok := c.Message["nan"]; ok && v == nil {
					sawNaN = true
				}
			}
		}
	}
	// edge.log: 4 tasks; missing_end.log: 9 tasks, two of them incomplete.
	if complete != 4+7 || incomplete != 2 {
		t.Errorf("%d complete and %d incomplete tasks, want 11 and 2", complete, incomplete)
	}
	if !sawNaN {
		t.Error("NaN was not written as null")
	}
}

func TestHTMLRenderer(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	r := NewHTMLRenderer(&out, &HTMLConfig{Title: "a <b> page"})
	b := NewBuilder(nil)
	for _, line := range []string{
		`{"action_status": "started", "timestamp": 1, "task_uuid": "u", "action_type": "pay<ment>", "task_level": [1]}`,
		`{"reason": "<script>alert(1)</script>", "action_status": "failed", "timestamp": 2, "task_uuid": "u", "action_type": "pay<ment>", "task_level": [2]}`,
	} {
		m, err := ParseMessage([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		if task, _ := b.Add(m); task != nil {
			r.Render(task)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	page := out.String()
	for _, want := range []string{"<!DOCTYPE html>", "<title>a &lt;b&gt; page</title>", `class="task failed"`,
		"pay&lt;ment&gt;", "&lt;script&gt;alert(1)&lt;/script&gt;", "</html>\n"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Error("page has unescaped input or an external resource")
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	s := NewStats()
	b := NewBuilder(nil)
	f, _ := os.Open("testdata/nested.log")
	defer f.Close()
	rd, _ := NewReader(f, nil)
	for {
		m, err := rd.Next()
		if err != nil {
			break
		}
		if task, _ := b.Add(m); task != nil {
			s.Add(task)
		}
	}
	for _, task := range b.Flush() {
		s.Add(task)
	}
	var charge *ActionStats
	sum := s.Summary()
	for i := range sum {
		if sum[i].ActionType == "payment:charge" {
			charge = &sum[i]
		}
	}
	if charge == nil || charge.Count != 2 || charge.Failed != 1 || charge.Timed != 2 || charge.P50 > charge.P95 || charge.P95 > charge.Max {
		t.Fatalf("payment:charge stats %+v", charge)
	}
	var text bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "payment:charge") || !strings.HasPrefix(strings.TrimSpace(text.String()), "action_type") {
		t.Errorf("text table:\n%s", text.String())
	}
	var js bytes.Buffer
	if err := s.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(js.Bytes()) {
		t.Errorf("invalid JSON: %s", js.String())
	}
}

func TestWorkflowMatcher(t *testing.T) {
	t.Parallel()
	const job = "wf-1_0f8fad5b-d9cb-469f-a165-70867728950e"
	tests := []struct {
		id, line string
		want     bool
	}{
		{"wf-1", `{"workflow_id": "wf-1", "task_uuid": "u", "task_level": [1]}`, true},
		{"wf-1", `{"workflow_id": "wf-10", "task_uuid": "u", "task_level": [1]}`, false},
		{"wf-1", `{"job_id": "` + job + `", "task_uuid": "u", "task_level": [1]}`, true},
		{job, `{"workflow_id": "wf-1", "task_uuid": "u", "task_level": [1]}`, true},
		{job, `{"job_id": "` + job + `", "task_uuid": "u", "task_level": [1]}`, true},
		{"wf-1", `{"task_uuid": "u", "task_level": [1]}`, false},
	}
	for _, tt := range tests {
		m, err := ParseMessage([]byte(tt.line))
		if err != nil {
			t.Fatal(err)
		}
		if got := WorkflowMatcher(tt.id)(m); got != tt.want {
			t.Errorf("WorkflowMatcher(%q) on %s = %v, want %v", tt.id, tt.line, got, tt.want)
		}
	}
}

func TestQuery(t *testing.T) {
	t.Parallel()
	m, _ := ParseMessage([]byte(`{"n": 0, "s": "", "l": [1], "task_uuid": "u", "task_level": [1], "action_type": "a", "action_status": "failed"}`))
	for expr, want := range map[string]bool{
		"action_status == `\"failed\"`": true,
		"n":                             false, // Python: bool(0) is False
		"s":                             false,
		"l":                             true,
		"missing":                       false,
		"task_level[0] == `1`":          true,
		"action_type == `a`":            true, // a legacy literal, read as a string
		"action_type == ` a`":           true,
		"action_type == 'a'":            true,
		"action_type == `\"b\"`":        false,
	} {
		q, err := CompileQuery(expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := q.Match(m); got != want {
			t.Errorf("%s: got %v, want %v", expr, got, want)
		}
	}
	if _, err := CompileQuery("a ==="); err == nil || !strings.Contains(err.Error(), "a ===") {
		t.Errorf("bad query: %v", err)
	}
}

// TestBidiControlsVisible: an invisible right-to-left override in a value,
// key or type would reverse what follows it on screen, so skein's style
// shows it (and its kin) as "<U+202E>"; eliot-tree's style keeps it, as
// eliot-tree does.
func TestBidiControlsVisible(t *testing.T) {
	t.Parallel()
	line := "{\"v\": \"pay \u202Eoiv.exe\u202C ok\", \"k\u2066\": \"\u200F\", \"timestamp\": 1795357700.5, \"task_uuid\": \"u\", \"task_level\": [1], \"message_type\": \"m\u202E\"}"
	m, err := ParseMessage([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	task, _ := NewBuilder(nil).Add(m)
	render := func(cfg *TextConfig) string {
		var out bytes.Buffer
		r, err := NewTextRenderer(&out, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Render(task); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	got := render(&TextConfig{})
	for _, want := range []string{"m<U+202E>/1", "v: pay <U+202E>oiv.exe<U+202C> ok", "k<U+2066>: <U+200F>"} {
		if !strings.Contains(got, want) {
			t.Errorf("skein style lacks %q:\n%s", want, got)
		}
	}
	if strings.ContainsAny(got, "\u202E\u202C\u2066\u200F") {
		t.Errorf("skein style kept a bidirectional control:\n%q", got)
	}
	if got := render(&TextConfig{Style: StyleEliotTree}); !strings.Contains(got, "pay \u202Eoiv.exe\u202C ok") {
		t.Errorf("eliot-tree style changed the value:\n%q", got)
	}
	var page bytes.Buffer
	h := NewHTMLRenderer(&page, nil)
	if err := h.Render(task); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(page.String(), "\u202E\u202C") || !strings.Contains(page.String(), "&lt;U+202E&gt;") {
		t.Errorf("the HTML page does not show the override as text")
	}
}
