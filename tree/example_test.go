package tree_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/skeinhq/skein/tree"
)

// Rebuild the trees of a log and print them as eliot-tree does.
func Example() {
	log := strings.NewReader(`{"action_status": "started", "timestamp": 1795357700.1, "task_uuid": "8c6e", "action_type": "shop:checkout", "task_level": [1]}
{"items": 2, "paid": true, "timestamp": 1795357700.2, "task_uuid": "8c6e", "task_level": [2], "message_type": "shop:cart"}
{"action_status": "succeeded", "timestamp": 1795357700.35, "task_uuid": "8c6e", "action_type": "shop:checkout", "task_level": [3]}
`)
	rd, _ := tree.NewReader(log, &tree.ReaderConfig{Name: "shop.log"})
	out, _ := tree.NewTextRenderer(os.Stdout, nil)
	b := tree.NewBuilder(nil)
	for {
		m, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println("skipped:", err) // a *tree.LineError naming file:line
			continue
		}
		if task, err := b.Add(m); err == nil && task != nil {
			out.Render(task) // complete: print it now
		}
	}
	for _, task := range b.Flush() { // incomplete ones, first seen first
		out.Render(task)
	}
	out.Close()
	// Output:
	// 8c6e
	// └── shop:checkout/1 ⇒ started 2026-11-22 14:28:20Z ⧖ 0.250s
	//     ├── shop:cart/2 2026-11-22 14:28:20Z
	//     │   ├── items: 2
	//     │   └── paid: true
	//     └── shop:checkout/3 ⇒ succeeded 2026-11-22 14:28:20Z
}

// The eliot-tree style writes values as Python's repr, byte for byte.
func ExampleTextConfig_eliotTree() {
	m, _ := tree.ParseMessage([]byte(`{"ok": true, "n": null, "f": 1e16, "timestamp": 0, "task_uuid": "t", "task_level": [1], "message_type": "m"}`))
	task, _ := tree.NewBuilder(nil).Add(m)
	out, _ := tree.NewTextRenderer(os.Stdout, &tree.TextConfig{Style: tree.StyleEliotTree})
	out.Render(task)
	out.Close()
	// Output:
	// t
	// └── m/1 1970-01-01 00:00:00Z
	//     ├── f: 1e+16
	//     ├── n: None
	//     └── ok: True
}

// Each task as one line of JSON, for tools and web pages.
func ExampleJSONRenderer() {
	m, _ := tree.ParseMessage([]byte(`{"n": 1, "timestamp": 0, "task_uuid": "t", "task_level": [1], "message_type": "m"}`))
	task, _ := tree.NewBuilder(nil).Add(m)
	out := tree.NewJSONRenderer(os.Stdout)
	out.Render(task)
	out.Close()
	// Output:
	// {"task_uuid":"t","complete":true,"root":{"kind":"message","task_level":[1],"message":{"n":1,"timestamp":0,"task_uuid":"t","task_level":[1],"message_type":"m"}}}
}
