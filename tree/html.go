package tree

import (
	"fmt"
	"html"
	"io"
	"strconv"
	"time"
)

// HTMLConfig configures an [HTMLRenderer]. The zero value is ready to use.
type HTMLConfig struct {
	// Title is the page title. Defaults to "skein tree".
	Title string
	// Location shows timestamps in this time zone. Defaults to nil (UTC).
	Location *time.Location
	// HiddenFields are the fields not shown. Defaults to
	// DefaultHiddenFields when nil.
	HiddenFields []string
}

// HTMLRenderer writes one self-contained HTML page (no external resources):
// each task a collapsible tree, failed actions and their ancestors' markers
// in red. Close writes the end of the page. Not safe for concurrent use.
type HTMLRenderer struct {
	w       io.Writer
	cfg     HTMLConfig
	text    *TextRenderer // for value formatting and hidden fields
	buf     []byte
	started bool
	err     error
}

// NewHTMLRenderer returns a renderer writing a page to w. cfg may be nil.
func NewHTMLRenderer(w io.Writer, cfg *HTMLConfig) *HTMLRenderer {
	r := &HTMLRenderer{w: w}
	if cfg != nil {
		r.cfg = *cfg
	}
	if r.cfg.Title == "" {
		r.cfg.Title = "skein tree"
	}
	r.text, _ = NewTextRenderer(io.Discard, &TextConfig{FieldLimit: -1, HiddenFields: r.cfg.HiddenFields, Location: r.cfg.Location})
	return r
}

// htmlHead starts the page. "collapse all" and "show failures" take <main>
// out of the document while they set every <details>: closing a <details> in
// place costs Chromium a style update each time, seconds for a page of 20,000
// messages.
const htmlHead = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>%s</title>
<style>
:root { color-scheme: light dark; }
body { font: 14px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; margin: 1.5em; color: #222; background: #fff; }
@media (prefers-color-scheme: dark) { body { color: #ddd; background: #161616; } .k { color: #7aa7ff !important; } .ts, .lv { color: #999 !important; } }
header { margin-bottom: 1em; }
button { font: inherit; margin-right: .5em; }
details { margin-left: 1.2em; }
details > summary { cursor: pointer; list-style: none; }
details > summary::before { content: "▸ "; color: #888; }
details[open] > summary::before { content: "▾ "; }
ul { list-style: none; margin: 0 0 0 1.2em; padding: 0; border-left: 1px dotted #999; white-space: normal; }
li { padding-left: .5em; white-space: pre-wrap; }
.t, .k { unicode-bidi: isolate; }
.task { margin: 0 0 .8em 0; }
.task > summary { font-weight: bold; }
.t { color: #a2a; }
.lv, .ts { color: #777; }
.k { color: #24c; }
.ok { color: #080; }
.failed > summary, .failed > summary .t, .fail { color: #d00; font-weight: bold; }
.incomplete > summary::after { content: "  (incomplete)"; color: #b60; font-weight: normal; }
</style>
</head>
<body>
<header><button onclick="for (const d of document.querySelectorAll('details')) d.open = true">expand all</button><button onclick="const m = document.querySelector('main'), n = m.nextSibling; m.remove(); for (const d of m.querySelectorAll('details')) d.open = false; document.body.insertBefore(m, n)">collapse all</button><button onclick="const m = document.querySelector('main'), n = m.nextSibling; m.remove(); for (const d of m.querySelectorAll('details')) d.open = !!d.querySelector('.fail'); document.body.insertBefore(m, n)">show failures</button></header>
<main>
`

const htmlTail = `</main>
</body>
</html>
`

func (r *HTMLRenderer) start() {
	if !r.started {
		r.started = true
		r.buf = fmt.Appendf(r.buf, htmlHead, html.EscapeString(r.cfg.Title))
	}
}

// Render writes one task.
func (r *HTMLRenderer) Render(t *Task) error {
	if r.err != nil {
		return r.err
	}
	r.start()
	cls := "task"
	if t.HasFailure() {
		cls += " failed"
	}
	if !t.Complete {
		cls += " incomplete"
	}
	r.buf = append(r.buf, `<details class="`+cls+`" open><summary>`...)
	r.buf = appendHTML(r.buf, t.UUID)
	r.buf = append(r.buf, "</summary><ul>\n"...)
	r.node(t.Root)
	r.buf = append(r.buf, "</ul></details>\n"...)
	if len(r.buf) >= 32<<10 {
		return r.Flush()
	}
	return nil
}

func (r *HTMLRenderer) node(n *Node) {
	if n.Message != nil {
		r.message(n.Message)
		return
	}
	cls := ""
	if n.Failed() {
		cls = ` class="failed"`
	}
	r.buf = append(r.buf, "<li><details"+cls+" open><summary>"...)
	r.label(n.Start, n.End, n)
	r.buf = append(r.buf, "</summary><ul>\n"...)
	if n.Start != nil {
		r.fields(n.Start)
	}
	for _, c := range n.Children {
		r.node(c)
	}
	if n.End != nil {
		r.message(n.End)
	}
	r.buf = append(r.buf, "</ul></details></li>\n"...)
}

func (r *HTMLRenderer) message(m *Message) {
	r.buf = append(r.buf, "<li><details open><summary>"...)
	r.label(m, nil, nil)
	r.buf = append(r.buf, "</summary><ul>\n"...)
	r.fields(m)
	r.buf = append(r.buf, "</ul></details></li>\n"...)
}

func (r *HTMLRenderer) label(m, end *Message, action *Node) {
	if m == nil {
		r.buf = append(r.buf, "&lt;unnamed&gt;"...)
		return
	}
	name := m.MessageType
	if m.IsAction {
		name = m.ActionType
	}
	if !m.IsAction && !m.HasMessageType {
		r.buf = append(r.buf, "&lt;unnamed&gt;"...)
		return
	}
	r.buf = append(r.buf, `<span class="t">`...)
	r.buf = appendHTML(r.buf, name)
	r.buf = append(r.buf, `</span><span class="lv">`...)
	r.buf = m.Level.Append(r.buf)
	r.buf = append(r.buf, "</span>"...)
	if m.IsAction {
		status := m.ActionStatus
		if action != nil {
			status = action.Status()
		}
		cls := ""
		switch status {
		case "succeeded":
			cls = "ok"
		case "failed":
			cls = "fail"
		}
		r.buf = append(r.buf, ` ⇒ <span class="`+cls+`">`...)
		r.buf = appendHTML(r.buf, m.ActionStatus)
		r.buf = append(r.buf, "</span>"...)
	}
	if m.HasTimestamp {
		r.buf = append(r.buf, ` <span class="ts">`...)
		sec := pySeconds(m.Timestamp)
		r.buf = appendDateTime(r.buf, sec, r.cfg.Location)
		if r.cfg.Location == nil {
			r.buf = append(r.buf, 'Z')
		}
		r.buf = append(r.buf, "</span>"...)
	}
	if end != nil && end.HasTimestamp && m.HasTimestamp {
		r.buf = append(r.buf, ` <span class="ts">⧖ `...)
		r.buf = strconv.AppendFloat(r.buf, end.Timestamp-m.Timestamp, 'f', 3, 64)
		r.buf = append(r.buf, "s</span>"...)
	}
}

func (r *HTMLRenderer) fields(m *Message) {
	kids := r.text.appendFields(nil, m)
	r.items(kids)
}

func (r *HTMLRenderer) items(kids []item) {
	for _, it := range kids {
		key := it.key
		if it.isIdx {
			key = strconv.Itoa(it.index)
		}
		if it.val.kind == Object || it.val.kind == Array {
			r.buf = append(r.buf, `<li><details open><summary><span class="k">`...)
			r.buf = appendHTML(r.buf, key)
			r.buf = append(r.buf, "</span>:</summary><ul>\n"...)
			r.items(appendContainer(nil, it.val))
			r.buf = append(r.buf, "</ul></details></li>\n"...)
			continue
		}
		r.buf = append(r.buf, `<li><span class="k">`...)
		r.buf = appendHTML(r.buf, key)
		r.buf = append(r.buf, "</span>: "...)
		var v string
		if it.val.kind == String {
			v = it.val.Str()
		} else {
			v = it.val.raw
		}
		r.buf = appendHTML(r.buf, string(appendEscaped(nil, v, true)))
		r.buf = append(r.buf, "</li>\n"...)
	}
}

func appendHTML(b []byte, s string) []byte {
	return append(b, html.EscapeString(string(appendEscaped(nil, s, true)))...)
}

// Flush writes buffered output.
func (r *HTMLRenderer) Flush() error {
	if r.err == nil && len(r.buf) > 0 {
		if _, err := r.w.Write(r.buf); err != nil {
			r.err = fmt.Errorf("writing HTML tree: %w", err)
		}
		r.buf = r.buf[:0]
	}
	return r.err
}

// Close writes the end of the page and flushes.
func (r *HTMLRenderer) Close() error {
	if r.err != nil {
		return r.err
	}
	r.start()
	r.buf = append(r.buf, htmlTail...)
	return r.Flush()
}
