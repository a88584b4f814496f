package tree_test

// Tests of the page HTMLRenderer writes, in a real headless Chromium: what a
// user sees (title, tasks, failures in red, text that came from the log shown
// as text) and does (the three header buttons). They skip when Chromium is
// not installed, unless CI=true, where a missing Chromium is a failure.
//
// SKEIN_BROWSER_SHOTS=DIR keeps the screenshots in DIR for a look.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/skeinhq/skein/tree"
)

// Viewport of every tab, and so the size of every screenshot.
const (
	viewW = 1280
	viewH = 900
)

// failRed is the colour of failed actions, #d00 in html.go's style sheet.
const failRed = "rgb(221, 0, 0)"

// chromiumPath returns the Chromium to drive, skipping the test when there is
// none (failing it under CI=true, where CI installs Chromium).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	msg := "no Chromium (/usr/bin/chromium or chromium on PATH): the HTML page is NOT tested in a browser; " +
		"install it with: apt-get install -y --no-install-recommends chromium"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPING: " + msg)
	return ""
}

// startBrowser starts a headless Chromium for the test and stops it, child
// processes and all, when the test ends. The allocator gives it a fresh
// temporary --user-data-dir and removes it once every Chromium process using
// it has gone.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		// Close the browser and wait, at most this long, for it to exit;
		// then cancelling the allocator kills what is left and removes the
		// profile directory.
		ctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Cancel(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("stopping Chromium: %v", err)
		}
		bcancel()
		acancel()
	})
	// Start the browser now, so a broken installation fails here, clearly.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting Chromium %s: %v", path, err)
	}
	return bctx
}

// watch records what a tab does besides drawing the page: every request,
// console call, uncaught exception and browser log entry.
type watch struct {
	mu       sync.Mutex
	requests []string
	problems []string
}

func (w *watch) add(list *[]string, s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	*list = append(*list, s)
}

func (w *watch) snapshot() (requests, problems []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.requests), slices.Clone(w.problems)
}

// openTab opens a new tab of the browser, closed when the test ends, with a
// deadline for everything done in it.
func openTab(t *testing.T, browser context.Context, timeout time.Duration) (context.Context, *watch) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(func() {
		if err := chromedp.Cancel(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("closing tab: %v", err)
		}
		cancel()
	})
	w := &watch{}
	if err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			w.add(&w.requests, ev.Request.URL)
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value))
			}
			w.add(&w.problems, fmt.Sprintf("console.%s(%s)", ev.Type, strings.Join(args, ", ")))
		case *runtime.EventExceptionThrown:
			w.add(&w.problems, "uncaught exception: "+ev.ExceptionDetails.Text)
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning {
				w.add(&w.problems, fmt.Sprintf("browser log %s: %s (%s)", ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
			}
		}
	}); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	// The deadline is set after the tab exists: a deadline on the context
	// that creates a tab would close the tab when it expires.
	dctx, dcancel := context.WithTimeout(ctx, timeout)
	t.Cleanup(dcancel)
	if err := chromedp.Do(dctx, chromedp.EmulateViewport(viewW, viewH)); err != nil {
		t.Fatalf("setting the viewport: %v", err)
	}
	return dctx, w
}

// renderPage renders the logs, read in order as one stream, as the page
// `skein tree -o html` writes; it returns the page and the tasks in the order
// they were written.
func renderPage(t testing.TB, cfg *tree.HTMLConfig, files ...string) ([]byte, []*tree.Task) {
	t.Helper()
	var out bytes.Buffer
	r := tree.NewHTMLRenderer(&out, cfg)
	b := tree.NewBuilder(nil)
	var tasks []*tree.Task
	render := func(task *tree.Task) {
		tasks = append(tasks, task)
		if err := r.Render(task); err != nil {
			t.Fatalf("rendering task %s: %v", task.UUID, err)
		}
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		rd, err := tree.NewReader(f, &tree.ReaderConfig{Name: name})
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
				render(task)
			}
		}
		if err := rd.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, task := range b.Flush() {
		render(task)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), tasks
}

// pageWant is what the page must show, worked out from the task trees.
type pageWant struct {
	uuids        []string // task roots, in order
	failedTasks  []string // tasks that contain a failed action
	incomplete   []string // tasks never completed
	failed       []string // keys (see jsKey) of failed actions
	showFailures []string // keys of the <details> "show failures" leaves open, sorted
}

// nodeKey names an action as jsKey names its <details>: task UUID, then the
// label's type and level as the page shows them.
func nodeKey(uuid string, m *tree.Message) string {
	if m == nil {
		return uuid + " <unnamed>"
	}
	return uuid + " " + m.ActionType + m.Level.String()
}

func expect(tasks []*tree.Task) pageWant {
	var w pageWant
	open := map[string]bool{}
	for _, task := range tasks {
		w.uuids = append(w.uuids, task.UUID)
		if task.HasFailure() {
			w.failedTasks = append(w.failedTasks, task.UUID)
		}
		if !task.Complete {
			w.incomplete = append(w.incomplete, task.UUID)
		}
		var walk func(n *tree.Node, path []string)
		walk = func(n *tree.Node, path []string) {
			if !n.IsAction() {
				return
			}
			key := nodeKey(task.UUID, n.Start)
			path = append(path[:len(path):len(path)], key)
			if n.Failed() {
				// The failed action, every <details> around it, and its end
				// message, which says why it failed.
				w.failed = append(w.failed, key)
				for _, k := range path {
					open[k] = true
				}
				open[nodeKey(task.UUID, n.End)] = true
			}
			for _, c := range n.Children {
				walk(c, path)
			}
		}
		walk(task.Root, []string{task.UUID})
	}
	for k := range open {
		w.showFailures = append(w.showFailures, k)
	}
	slices.Sort(w.showFailures)
	slices.Sort(w.failed)
	return w
}

// jsPrelude defines, in the page, sum(d): the <summary> of a <details>, and
// key(d): a name for a <details> made of what the user reads in it: the task
// UUID, then the type and level of the action or message ("field NAME" for a
// field holding a dict or list).
const jsPrelude = `
const sum = d => d.querySelector(':scope > summary');
const key = d => {
	const task = d.closest('details.task');
	const uuid = sum(task).textContent;
	if (d === task) return uuid;
	const s = sum(d);
	const t = s.querySelector(':scope > .t');
	if (t) return uuid + ' ' + t.textContent + s.querySelector(':scope > .lv').textContent;
	const k = s.querySelector(':scope > .k');
	if (k) return uuid + ' field ' + k.textContent;
	return uuid + ' ' + s.textContent;
};
const shown = e => e.checkVisibility() && e.getBoundingClientRect().width > 0;
`

// eval evaluates a JavaScript function body, run after jsPrelude, into a
// value of type T.
func eval[T any](t *testing.T, ctx context.Context, body string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T]("(() => {"+jsPrelude+body+"})()"))
	if err != nil {
		t.Fatalf("evaluating in the page: %v\n%s", err, body)
	}
	return v
}

// state is what the <details> of the page look like.
type state struct {
	Details int      `json:"details"`
	Open    []string `json:"open"` // keys of the open ones, sorted
	// VisibleSummaries counts the <summary> lines on screen (or scrolled
	// to): not inside a closed <details>.
	VisibleSummaries int `json:"visibleSummaries"`
}

const jsState = `
const all = [...document.querySelectorAll('details')];
return {
	details: all.length,
	open: all.filter(d => d.open).map(key).sort(),
	visibleSummaries: [...document.querySelectorAll('summary')].filter(shown).length,
};`

// click presses a header button as a user does (a real mouse click on it)
// and waits, at most a minute, until the page satisfies cond, a JavaScript
// expression. The checks that follow say what is wrong if it never does.
func click(t *testing.T, ctx context.Context, button, cond string) {
	t.Helper()
	sel := chromedp.Search(fmt.Sprintf("//header/button[normalize-space()=%q]", button))
	if err := chromedp.Do(ctx, chromedp.Click(sel)); err != nil {
		t.Fatalf("clicking %q: %v", button, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(time.Minute))); err != nil {
		t.Errorf("after clicking %q, waiting for %s: %v", button, cond, err)
	}
}

// failMark is how a failed action's line looks.
type failMark struct {
	Key     string `json:"key"`
	Color   string `json:"color"`
	Weight  string `json:"weight"`
	Visible bool   `json:"visible"`
}

const jsFailMarks = `
return [...document.querySelectorAll('details.failed:not(.task)')].map(d => {
	const s = sum(d), st = getComputedStyle(s);
	return {key: key(d), color: st.color, weight: st.fontWeight, visible: shown(s)};
}).sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);`

// checkPage checks the loaded page against want and drives its buttons.
// It leaves the page showing failures only.
func checkPage(t *testing.T, ctx context.Context, want pageWant, title string) {
	t.Helper()
	if got, err := chromedp.Run(ctx, chromedp.Title()); err != nil {
		t.Fatal(err)
	} else if got != title {
		t.Errorf("title: got %q, want %q", got, title)
	}
	if got := eval[string](t, ctx, `return document.characterSet;`); got != "UTF-8" {
		t.Errorf("character set: got %q, want UTF-8", got)
	}

	// One task root per task, in order, and nothing else in <main>.
	roots := eval[[]string](t, ctx, `return [...document.querySelectorAll('main > details.task > summary')].map(s => s.textContent);`)
	if !slices.Equal(roots, want.uuids) {
		t.Errorf("task roots: got %d, want %d; %s", len(roots), len(want.uuids), diff(roots, want.uuids))
	}
	if n := eval[int](t, ctx, `return document.querySelector('main').children.length;`); n != len(want.uuids) {
		t.Errorf("<main> has %d children, want %d (one per task)", n, len(want.uuids))
	}
	failedTasks := eval[[]string](t, ctx, `return [...document.querySelectorAll('details.task.failed')].map(d => sum(d).textContent);`)
	if !slices.Equal(failedTasks, want.failedTasks) {
		t.Errorf("tasks marked failed: got %q, want %q", failedTasks, want.failedTasks)
	}
	if got := eval[[]string](t, ctx, `return [...document.querySelectorAll('details.task')].filter(d => sum(d).checkVisibility() && getComputedStyle(sum(d)).color !== '`+failRed+`' && d.classList.contains('failed')).map(d => sum(d).textContent);`); len(got) > 0 {
		t.Errorf("failed tasks whose line is not red: %q", got)
	}
	incomplete := eval[[]string](t, ctx, `return [...document.querySelectorAll('details.task')].filter(d => getComputedStyle(sum(d), '::after').content.includes('(incomplete)')).map(d => sum(d).textContent);`)
	if !slices.Equal(incomplete, want.incomplete) {
		t.Errorf("tasks showing (incomplete): got %q, want %q", incomplete, want.incomplete)
	}

	// As loaded, everything is open.
	initial := eval[state](t, ctx, jsState)
	if len(initial.Open) != initial.Details {
		t.Errorf("as loaded, %d of %d <details> are open, want all", len(initial.Open), initial.Details)
	}

	// Failed actions: marked, red, bold, on screen.
	marks := eval[[]failMark](t, ctx, jsFailMarks)
	var keys []string
	for _, m := range marks {
		keys = append(keys, m.Key)
		if m.Color != failRed || m.Weight != "700" || !m.Visible {
			t.Errorf("failed action %s: colour %s, weight %s, visible %v; want %s, 700, true", m.Key, m.Color, m.Weight, m.Visible, failRed)
		}
	}
	if d := diff(keys, want.failed); d != "" {
		t.Errorf("actions marked failed differ: %s", d)
	}

	click(t, ctx, "collapse all", `document.querySelectorAll('details[open]').length === 0`)
	collapsed := eval[state](t, ctx, jsState)
	if len(collapsed.Open) != 0 || collapsed.VisibleSummaries != len(want.uuids) {
		t.Errorf("after collapse all: %d open <details>, %d lines visible; want 0 open and only the %d task lines",
			len(collapsed.Open), collapsed.VisibleSummaries, len(want.uuids))
	}

	click(t, ctx, "expand all", `document.querySelectorAll('details:not([open])').length === 0`)
	expanded := eval[state](t, ctx, jsState)
	if len(expanded.Open) != expanded.Details || expanded.VisibleSummaries != expanded.Details {
		t.Errorf("after expand all: %d of %d <details> open, %d lines visible; want all", len(expanded.Open), expanded.Details, expanded.VisibleSummaries)
	}
	for _, m := range eval[[]failMark](t, ctx, jsFailMarks) {
		if !m.Visible || m.Color != failRed {
			t.Errorf("after expand all, failed action %s: visible %v, colour %s", m.Key, m.Visible, m.Color)
		}
	}

	// Show failures: exactly the failed actions, what encloses them and
	// their end messages (the reason) are open.
	click(t, ctx, "show failures", fmt.Sprintf(`document.querySelectorAll('details[open]').length === %d`, len(want.showFailures)))
	failures := eval[state](t, ctx, jsState)
	if d := diff(failures.Open, want.showFailures); d != "" {
		t.Errorf("after show failures, the open <details> differ: %s", d)
	}
	if !eval[bool](t, ctx, `const m = document.querySelectorAll('main'); return m.length === 1 && document.querySelector('header').nextElementSibling === m[0];`) {
		t.Error("after the buttons, <main> is not once, right after the header")
	}
	for _, m := range eval[[]failMark](t, ctx, jsFailMarks) {
		if !m.Visible || m.Color != failRed {
			t.Errorf("after show failures, failed action %s: visible %v, colour %s", m.Key, m.Visible, m.Color)
		}
	}
}

// diff describes how got differs from want, both sorted the same way: the
// first few items missing and unexpected, "" when equal.
func diff(got, want []string) string {
	if slices.Equal(got, want) {
		return ""
	}
	count := func(l []string) map[string]int {
		m := map[string]int{}
		for _, s := range l {
			m[s]++
		}
		return m
	}
	g, w := count(got), count(want)
	var missing, extra []string
	for _, s := range want {
		if g[s] < w[s] && !slices.Contains(missing, s) {
			missing = append(missing, s)
		}
	}
	for _, s := range got {
		if w[s] < g[s] && !slices.Contains(extra, s) {
			extra = append(extra, s)
		}
	}
	first := func(l []string) string {
		if len(l) > 10 {
			return fmt.Sprintf("%q and %d more", l[:10], len(l)-10)
		}
		return fmt.Sprintf("%q", l)
	}
	if len(missing) == 0 && len(extra) == 0 {
		return fmt.Sprintf("same items, in another order: got %s", first(got))
	}
	return fmt.Sprintf("missing %s; unexpected %s", first(missing), first(extra))
}

// checkQuiet checks that the tab made no request but for the page and
// reported no error.
func checkQuiet(t *testing.T, w *watch, pageURL string) {
	t.Helper()
	requests, problems := w.snapshot()
	if !slices.Equal(requests, []string{pageURL}) {
		t.Errorf("requests: got %q, want only the page %q", requests, pageURL)
	}
	for _, p := range problems {
		t.Errorf("browser reported: %s", p)
	}
}

// screenshot captures the viewport, checks it is a PNG of the viewport's size
// and returns it, writing it to the test's temporary directory (and to
// $SKEIN_BROWSER_SHOTS, if set).
func screenshot(t *testing.T, ctx context.Context, name string) image.Image {
	t.Helper()
	data, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("taking a screenshot: %v", err)
	}
	dirs := []string{t.TempDir()}
	if d := os.Getenv("SKEIN_BROWSER_SHOTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, dir := range dirs {
		if err := os.WriteFile(filepath.Join(dir, name+".png"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(data) == 0 {
		t.Fatalf("screenshot %s is empty", name)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	if b := img.Bounds(); b.Dx() != viewW || b.Dy() != viewH {
		t.Errorf("screenshot %s is %dx%d, want %dx%d", name, b.Dx(), b.Dy(), viewW, viewH)
	}
	return img
}

// pixels counts the pixels for which match holds and the distinct colours.
func pixels(img image.Image, match func(r, g, b uint32) bool) (n, colours int) {
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			seen[[3]uint32{r, g, bl}] = true
			if match(r, g, bl) {
				n++
			}
		}
	}
	return n, len(seen)
}

func isRed(r, g, b uint32) bool { return r > 170 && g < 80 && b < 80 }

// servePage serves page at / on 127.0.0.1 and records every request it gets.
func servePage(t *testing.T, page []byte) (srv *httptest.Server, hits func() []string) {
	t.Helper()
	var mu sync.Mutex
	var paths []string
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(paths)
	}
}

// The built input, testdata/browser-web.log then testdata/browser-worker.log:
// a checkout task begun by the web process and continued by a worker (one
// task over both files), in which a card authorisation fails three actions
// deep while the checkout itself succeeds; a task with markup in a key, a
// value and the type of a field; a task whose UUID is a <script> element;
// a task that never completes; Unicode (accents, CJK, Cyrillic, emoji, a
// control character, a right-to-left override) throughout.
const builtTitle = `skein tree — Zoë's <b>checkout</b> & 東京`

// checkBuiltInput checks that the built input still holds what the browser
// test relies on.
func checkBuiltInput(t *testing.T, tasks []*tree.Task) {
	t.Helper()
	spread, nested := false, false
	for _, task := range tasks {
		files := map[string]bool{}
		task.Walk(func(m *tree.Message) bool {
			files[filepath.Base(m.Source.File)] = true
			return true
		})
		spread = spread || len(files) == 2
		var walk func(n *tree.Node, parentFailed bool)
		walk = func(n *tree.Node, parentFailed bool) {
			if n.Failed() && !parentFailed && n != task.Root {
				nested = true
			}
			for _, c := range n.Children {
				walk(c, n.Failed())
			}
		}
		for _, c := range task.Root.Children {
			walk(c, false)
		}
	}
	if !spread || !nested {
		t.Fatalf("the built input lacks a task over both files (%v) or a nested failure under a success (%v)", spread, nested)
	}
}

// Strings of the built input (testdata/browser-*.log) that must reach the
// screen as text.
var builtTexts = []string{
	`<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">`,
	`<img src=x onerror=window.__pwned=3>: a key with markup`,
	`title: <svg onload="window.__pwned=4">`,
	`<script>window.__pwned=5</script>`,
	`reason: declined </li></ul></details><b id="injected">bold</b>`,
	`customer: Zoë Ünïcødé 🦊 東京`,
	"こんにちは, мир! 👋",
	"card: •••• 4242",
	"sql: SELECT * FROM t WHERE a < 3 && b > 2",
	"bell ␇ and",
}

// checkBuilt checks what is particular to the built input: its awkward text
// is shown as text and runs nothing.
func checkBuilt(t *testing.T, ctx context.Context) {
	t.Helper()
	type xss struct {
		Pwned    bool `json:"pwned"`
		Scripts  int  `json:"scripts"`
		Injected int  `json:"injected"`
	}
	got := eval[xss](t, ctx, `return {
		pwned: typeof window.__pwned !== 'undefined',
		scripts: document.scripts.length,
		injected: document.querySelectorAll('main img, main svg, main script, main b, #injected').length,
	};`)
	if got != (xss{}) {
		t.Errorf("markup from the log took effect: %+v", got)
	}
	// innerText is the text as rendered, what the user can read, so open
	// everything first.
	click(t, ctx, "expand all", `document.querySelectorAll('details:not([open])').length === 0`)
	text := eval[string](t, ctx, `return document.querySelector('main').innerText;`)
	for _, s := range builtTexts {
		if !strings.Contains(text, s) {
			t.Errorf("page does not show %q", s)
		}
	}
}

// TestBrowserPage loads rendered logs in headless Chromium, over HTTP from
// 127.0.0.1 and from a file:// URL, and checks what a user sees and what
// the header buttons do.
func TestBrowserPage(t *testing.T) {
	browser := startBrowser(t)
	for _, tt := range []struct {
		name  string
		files []string
		title string // "" = the default
		built bool   // the built input of testdata/browser-*.log
	}{
		{"built", []string{"browser-web.log", "browser-worker.log"}, builtTitle, true},
		{"nested", []string{"nested.log"}, "", false},
		{"threads", []string{"threads.log"}, "", false},
		{"client-then-server", []string{"client.log", "server.log"}, "", false},
		{"edge", []string{"edge.log"}, "", false},
		{"missing_start", []string{"missing_start.log"}, "", false},
	} {
		var files []string
		for _, f := range tt.files {
			files = append(files, filepath.Join("testdata", f))
		}
		page, tasks := renderPage(t, &tree.HTMLConfig{Title: tt.title}, files...)
		want := expect(tasks)
		title := tt.title
		if title == "" {
			title = "skein tree"
		}
		if tt.built {
			checkBuiltInput(t, tasks)
		}
		t.Run(tt.name+"/http", func(t *testing.T) {
			srv, hits := servePage(t, page)
			ctx, w := openTab(t, browser, 2*time.Minute)
			if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
				t.Fatalf("loading %s: %v", srv.URL, err)
			}
			checkPage(t, ctx, want, title)
			if tt.built {
				checkBuilt(t, ctx)
			}
			img := screenshot(t, ctx, tt.name+"-failures")
			if n, colours := pixels(img, isRed); colours < 3 || (len(want.failed) > 0 && n == 0) {
				t.Errorf("screenshot with failures shown: %d red pixels, %d colours; want some red, not a blank page", n, colours)
			}
			checkQuiet(t, w, srv.URL+"/")
			if got := hits(); !slices.Equal(got, []string{"/"}) {
				t.Errorf("the server got requests for %q, want only /", got)
			}
		})
		t.Run(tt.name+"/file", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tree.html")
			if err := os.WriteFile(path, page, 0o644); err != nil {
				t.Fatal(err)
			}
			u := (&url.URL{Scheme: "file", Path: path}).String()
			ctx, w := openTab(t, browser, 2*time.Minute)
			if err := chromedp.Do(ctx, chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
				t.Fatalf("loading %s: %v", u, err)
			}
			checkPage(t, ctx, want, title)
			if tt.built {
				checkBuilt(t, ctx)
			}
			checkQuiet(t, w, u)
		})
	}
}

// TestBrowserDarkScheme checks the page under prefers-color-scheme: dark:
// dark background, light text, failures still red.
func TestBrowserDarkScheme(t *testing.T) {
	browser := startBrowser(t)
	page, tasks := renderPage(t, &tree.HTMLConfig{Title: builtTitle},
		filepath.Join("testdata", "browser-web.log"), filepath.Join("testdata", "browser-worker.log"))
	want := expect(tasks)
	srv, _ := servePage(t, page)
	ctx, w := openTab(t, browser, 2*time.Minute)
	dark := emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}
	if err := chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, dark)
			return err
		}),
		chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
		t.Fatalf("loading %s in dark mode: %v", srv.URL, err)
	}
	type colours struct {
		Background string `json:"background"`
		Text       string `json:"text"`
	}
	got := eval[colours](t, ctx, `const s = getComputedStyle(document.body); return {background: s.backgroundColor, text: s.color};`)
	if want := (colours{"rgb(22, 22, 22)", "rgb(221, 221, 221)"}); got != want {
		t.Errorf("dark scheme colours: got %+v, want %+v", got, want)
	}
	checkPage(t, ctx, want, builtTitle)
	img := screenshot(t, ctx, "built-dark-failures")
	if n, _ := pixels(img, isRed); n == 0 {
		t.Error("dark screenshot with failures shown has no red pixels")
	}
	if n, _ := pixels(img, func(r, g, b uint32) bool { return r == 22 && g == 22 && b == 22 }); n < viewW*viewH/2 {
		t.Errorf("dark screenshot: %d of %d pixels have the dark background", n, viewW*viewH)
	}
	checkQuiet(t, w, srv.URL+"/")
}

// writeLargeLog writes tasks tasks of 10 messages each, eight at a time
// interleaved line by line as concurrent threads write them; every fifth
// task fails two levels down.
func writeLargeLog(t *testing.T, path string, tasks int) {
	t.Helper()
	var lines [][]string
	ts := 1795357700.0
	for i := range tasks {
		uuid := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
		fail := i%5 == 0
		end := "succeeded"
		if fail {
			end = "failed"
		}
		var task []string
		msg := func(level string, body string) {
			ts += 0.0001
			task = append(task, fmt.Sprintf(`{%s, "timestamp": %.4f, "task_uuid": %q, "task_level": %s}`, body, ts, uuid, level))
		}
		msg("[1]", fmt.Sprintf(`"action_type": "job:run", "action_status": "started", "job_id": "job_%d", "args": {"n": %d, "tags": ["a", "b"]}`, i, i))
		msg("[2]", `"message_type": "job:begin", "attempt": 1`)
		msg("[3, 1]", `"action_type": "db:query", "action_status": "started", "sql": "SELECT * FROM jobs WHERE id = $1"`)
		msg("[3, 2]", `"message_type": "db:row", "id": 7`)
		msg("[3, 3]", `"action_type": "db:query", "action_status": "succeeded", "rows": 1`)
		msg("[4, 1]", `"action_type": "http:call", "action_status": "started", "url": "http://127.0.0.1/api"`)
		msg("[4, 2, 1]", `"action_type": "http:retry", "action_status": "started", "attempt": 2`)
		if fail {
			msg("[4, 2, 2]", `"action_type": "http:retry", "action_status": "failed", "exception": "builtins.TimeoutError", "reason": "timed out"`)
		} else {
			msg("[4, 2, 2]", `"action_type": "http:retry", "action_status": "succeeded", "status": 200`)
		}
		msg("[4, 3]", `"action_type": "http:call", "action_status": "`+end+`"`)
		msg("[5]", `"action_type": "job:run", "action_status": "`+end+`"`)
		lines = append(lines, task)
	}
	var out bytes.Buffer
	for g := 0; g < len(lines); g += 8 {
		group := lines[g:min(g+8, len(lines))]
		for j := range 10 {
			for _, task := range group {
				out.WriteString(task[j])
				out.WriteByte('\n')
			}
		}
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserLargePage loads a page of 20,000 messages and drives its
// buttons; it checks that everything works, not how fast (see bench/).
func TestBrowserLargePage(t *testing.T) {
	if testing.Short() {
		t.Skip("large page: not in -short mode")
	}
	browser := startBrowser(t)
	log := filepath.Join(t.TempDir(), "large.log")
	const tasks = 2000
	writeLargeLog(t, log, tasks)
	page, got := renderPage(t, nil, log)
	want := expect(got)
	if len(want.uuids) != tasks || len(want.failed) != 3*tasks/5 {
		t.Fatalf("large log: %d tasks, %d failed actions; want %d and %d", len(want.uuids), len(want.failed), tasks, 3*tasks/5)
	}
	srv, hits := servePage(t, page)
	ctx, w := openTab(t, browser, 5*time.Minute)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
		t.Fatalf("loading %s (%d bytes): %v", srv.URL, len(page), err)
	}
	checkPage(t, ctx, want, "skein tree")
	screenshot(t, ctx, "large-failures")
	checkQuiet(t, w, srv.URL+"/")
	if got := hits(); !slices.Equal(got, []string{"/"}) {
		t.Errorf("the server got requests for %q, want only /", got)
	}
}
