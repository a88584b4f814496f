// Package treegen writes a realistic, reproducible Eliot log for the tree
// benchmarks: many tasks from several threads interleaved line by line,
// actions nested a few levels deep, the field mix of a web service (ids,
// SQL, URLs, floats, booleans, small dicts and lists, the odd multi-line
// traceback and failure), in the exact form Python Eliot 1.13 writes (", "
// separators, its key order, shortest-repr float timestamps).
//
// The defaults match the log measured in the eliot-tree reference: about
// 200,000 messages in about 6,200 tasks from 8 threads, at most 5 levels
// deep, about 43 MB.
package treegen

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
)

// Config configures Generate. The zero value gives the reference log.
type Config struct {
	// Messages is the number of messages to write (the last tasks are
	// finished, so a few more may be written). Defaults to 200,000.
	Messages int
	// Threads is the number of interleaved writers. Defaults to 8.
	Threads int
	// MaxDepth is the deepest action nesting below a task's root action.
	// Defaults to 4.
	MaxDepth int
	// Seed makes the output reproducible. Defaults to 1.
	Seed uint64
	// Start is the first timestamp, in seconds since the Unix epoch.
	// Defaults to 1795357700.
	Start float64
}

func (c Config) withDefaults() Config {
	if c.Messages <= 0 {
		c.Messages = 200_000
	}
	if c.Threads <= 0 {
		c.Threads = 8
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = 4
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Start == 0 {
		c.Start = 1795357700
	}
	return c
}

// Stats describes what Generate wrote.
type Stats struct {
	Messages, Tasks, Failed int
	Bytes                   int64
}

// frame is an open action on a thread's stack.
type frame struct {
	level    []int // the action's level
	next     int   // next slot
	atype    string
	children int // children still to write before the end message
	depth    int
}

type thread struct {
	uuid  string
	stack []*frame
}

type gen struct {
	cfg   Config
	rnd   *rand.Rand
	w     *bufio.Writer
	ts    float64
	stats Stats
	buf   []byte
}

// Generate writes the log to w.
func Generate(w io.Writer, cfg Config) (Stats, error) {
	c := cfg.withDefaults()
	g := &gen{cfg: c, rnd: rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15)), w: bufio.NewWriterSize(w, 1<<20), ts: c.Start}
	threads := make([]*thread, c.Threads)
	for i := range threads {
		threads[i] = &thread{}
	}
	active := c.Threads
	for active > 0 {
		th := threads[g.rnd.IntN(len(threads))]
		if th == nil {
			continue
		}
		if len(th.stack) == 0 {
			if g.stats.Messages >= c.Messages {
				for i, t := range threads {
					if t == th {
						threads[i] = nil
					}
				}
				active--
				continue
			}
			g.startTask(th)
			continue
		}
		g.step(th)
	}
	if err := g.w.Flush(); err != nil {
		return g.stats, fmt.Errorf("writing generated log: %w", err)
	}
	return g.stats, nil
}

var (
	services = []string{"http:request", "db:query", "cache:get", "queue:enqueue", "payment:charge", "email:send", "auth:check", "render:template", "s3:put", "search:index"}
	messages = []string{"http:headers", "db:rows", "cache:miss", "cache:hit", "auth:token_checked", "payment:gateway_response", "retry:scheduled", "metrics:timing", "user:loaded", "eliot:traceback"}
	paths    = []string{"/api/message/", "/api/user/42/settings", "/api/orders?limit=50&offset=100", "/healthz", "/api/search?q=caf%C3%A9", "/static/app.9f3c1e.js"}
	sqls     = []string{"SELECT * FROM users WHERE id = $1", "UPDATE orders SET status = $1, updated_at = now() WHERE id = $2 AND version = $3", "INSERT INTO events (workflow_id, kind, payload) VALUES ($1, $2, $3) RETURNING id", "SELECT count(*) FROM jobs WHERE state = 'available' AND queue = ANY($1)"}
	words    = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima", "mike", "november"}
	excs     = []string{"builtins.KeyError", "builtins.ValueError", "builtins.TimeoutError", "urllib.error.HTTPError", "psycopg2.errors.SerializationFailure"}
)

func (g *gen) uuid() string {
	const hexd = "0123456789abcdef"
	var b [36]byte
	for i := range b {
		switch i {
		case 8, 13, 18, 23:
			b[i] = '-'
		case 14:
			b[i] = '4'
		case 19:
			b[i] = "89ab"[g.rnd.IntN(4)]
		default:
			b[i] = hexd[g.rnd.IntN(16)]
		}
	}
	return string(b[:])
}

func (g *gen) tick() float64 {
	g.ts += g.rnd.Float64() * 0.002
	return g.ts
}

func (g *gen) startTask(th *thread) {
	th.uuid = g.uuid()
	g.stats.Tasks++
	root := &frame{level: []int{}, next: 1, atype: "worker:" + words[g.rnd.IntN(len(words))], children: 4 + g.rnd.IntN(8), depth: 0}
	th.stack = append(th.stack, root)
	g.writeStart(th, root)
}

// step writes the next message of the thread's innermost action.
func (g *gen) step(th *thread) {
	top := th.stack[len(th.stack)-1]
	if top.children == 0 {
		g.writeEnd(th, top)
		th.stack = th.stack[:len(th.stack)-1]
		return
	}
	top.children--
	if top.depth < g.cfg.MaxDepth && g.rnd.IntN(100) < 45-top.depth*8 {
		child := &frame{level: append(append([]int{}, top.level...), top.next), next: 1,
			atype: services[g.rnd.IntN(len(services))], children: g.rnd.IntN(5), depth: top.depth + 1}
		top.next++
		th.stack = append(th.stack, child)
		g.writeStart(th, child)
		return
	}
	lvl := append(append([]int{}, top.level...), top.next)
	top.next++
	g.writeMessage(th, lvl)
}

func (g *gen) slot(f *frame) []int {
	l := append(append([]int{}, f.level...), f.next)
	f.next++
	return l
}

func (g *gen) writeStart(th *thread, f *frame) {
	b := g.buf[:0]
	b = append(b, '{')
	b = g.fields(b, 1+g.rnd.IntN(2))
	b = append(b, `"action_status": "started", "timestamp": `...)
	b = strconv.AppendFloat(b, g.tick(), 'f', -1, 64)
	b = append(b, `, "task_uuid": "`...)
	b = append(b, th.uuid...)
	b = append(b, `", "action_type": "`...)
	b = append(b, f.atype...)
	b = append(b, `", "task_level": `...)
	b = appendLevel(b, g.slot(f))
	g.emit(append(b, "}\n"...))
}

func (g *gen) writeEnd(th *thread, f *frame) {
	b := g.buf[:0]
	b = append(b, '{')
	status := "succeeded"
	if g.rnd.IntN(100) < 3 {
		status = "failed"
		g.stats.Failed++
		b = append(b, `"exception": "`...)
		b = append(b, excs[g.rnd.IntN(len(excs))]...)
		b = append(b, `", "reason": "`...)
		b = append(b, words[g.rnd.IntN(len(words))]...)
		b = append(b, ` went wrong after `...)
		b = strconv.AppendInt(b, int64(g.rnd.IntN(30)), 10)
		b = append(b, ` attempts", `...)
	} else {
		b = g.fields(b, g.rnd.IntN(3))
	}
	b = append(b, `"action_status": "`...)
	b = append(b, status...)
	b = append(b, `", "timestamp": `...)
	b = strconv.AppendFloat(b, g.tick(), 'f', -1, 64)
	b = append(b, `, "task_uuid": "`...)
	b = append(b, th.uuid...)
	b = append(b, `", "action_type": "`...)
	b = append(b, f.atype...)
	b = append(b, `", "task_level": `...)
	b = appendLevel(b, g.slot(f))
	g.emit(append(b, "}\n"...))
}

func (g *gen) writeMessage(th *thread, lvl []int) {
	b := g.buf[:0]
	b = append(b, '{')
	mt := messages[g.rnd.IntN(len(messages))]
	if mt == "eliot:traceback" {
		b = append(b, `"reason": "connection reset by peer", "traceback": "Traceback (most recent call last):\n  File \"/srv/app/handlers.py\", line 212, in send\n  File \"/srv/app/client.py\", line 88, in post\nConnectionResetError: connection reset by peer\n", "exception": "builtins.ConnectionResetError", `...)
	} else {
		b = g.fields(b, 1+g.rnd.IntN(3))
	}
	b = append(b, `"timestamp": `...)
	b = strconv.AppendFloat(b, g.tick(), 'f', -1, 64)
	b = append(b, `, "task_uuid": "`...)
	b = append(b, th.uuid...)
	b = append(b, `", "task_level": `...)
	b = appendLevel(b, lvl)
	b = append(b, `, "message_type": "`...)
	b = append(b, mt...)
	g.emit(append(b, "\"}\n"...))
}

// fields appends n user fields, each followed by ", ".
func (g *gen) fields(b []byte, n int) []byte {
	for i := 0; i < n; i++ {
		switch g.rnd.IntN(12) {
		case 0:
			b = append(b, `"user_id": `...)
			b = strconv.AppendInt(b, int64(g.rnd.IntN(1_000_000)), 10)
		case 1:
			b = append(b, `"path": "`...)
			b = append(b, paths[g.rnd.IntN(len(paths))]...)
			b = append(b, '"')
		case 2:
			b = append(b, `"sql": "`...)
			b = append(b, sqls[g.rnd.IntN(len(sqls))]...)
			b = append(b, '"')
		case 3:
			b = append(b, `"elapsed": `...)
			b = strconv.AppendFloat(b, g.rnd.Float64()*3, 'g', -1, 64)
		case 4:
			b = append(b, `"cached": `...)
			b = strconv.AppendBool(b, g.rnd.IntN(2) == 0)
		case 5:
			b = append(b, `"headers": {"content-type": "application/json", "x-request-id": "`...)
			b = append(b, g.uuid()...)
			b = append(b, `", "content-length": `...)
			b = strconv.AppendInt(b, int64(g.rnd.IntN(100_000)), 10)
			b = append(b, '}')
		case 6:
			b = append(b, `"tags": ["`...)
			b = append(b, words[g.rnd.IntN(len(words))]...)
			b = append(b, `", "`...)
			b = append(b, words[g.rnd.IntN(len(words))]...)
			b = append(b, `"]`...)
		case 7:
			b = append(b, `"status": `...)
			b = strconv.AppendInt(b, int64([]int{200, 201, 204, 302, 404, 500}[g.rnd.IntN(6)]), 10)
		case 8:
			b = append(b, `"note": "`...)
			b = append(b, words[g.rnd.IntN(len(words))]...)
			b = append(b, ` caf\u00e9 `...)
			b = append(b, words[g.rnd.IntN(len(words))]...)
			b = append(b, '"')
		default:
			b = append(b, `"workflow_id": "wf-`...)
			b = strconv.AppendInt(b, int64(g.rnd.IntN(5000)), 10)
			b = append(b, '"')
		}
		b = append(b, ", "...)
	}
	return b
}

func appendLevel(b []byte, l []int) []byte {
	b = append(b, '[')
	for i, n := range l {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return append(b, ']')
}

func (g *gen) emit(line []byte) {
	g.buf = line[:0]
	g.stats.Messages++
	g.stats.Bytes += int64(len(line))
	_, _ = g.w.Write(line)
}
