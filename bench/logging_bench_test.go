package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"reflect"
	"testing"
)

// BenchmarkLogging compares skein's action logging with zerolog, zap and
// slog's JSONHandler on the same work (see loggingWork): one action of three
// JSON lines to io.Discard, per op.
func BenchmarkLogging(b *testing.B) {
	ctx := context.Background()
	for _, l := range loggers {
		b.Run(l.name, func(b *testing.B) {
			work := l.work(io.Discard)
			b.ReportAllocs()
			for b.Loop() {
				work(ctx)
			}
		})
		b.Run(l.name+"/parallel", func(b *testing.B) {
			work := l.work(io.Discard)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					work(ctx)
				}
			})
		})
	}
}

// TestLoggingWorkIsTheSame checks that every logger of BenchmarkLogging
// writes the same three messages: same keys, same values, apart from the task
// uuid and the timestamps.
func TestLoggingWorkIsTheSame(t *testing.T) {
	var want []map[string]any
	for _, l := range loggers {
		var out bytes.Buffer
		l.work(&out)(context.Background())
		var got []map[string]any
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s wrote invalid JSON %q: %v", l.name, sc.Text(), err)
			}
			if _, ok := m["timestamp"].(float64); !ok {
				t.Errorf("%s: timestamp %v is not a number", l.name, m["timestamp"])
			}
			if u, _ := m["task_uuid"].(string); len(u) != 36 {
				t.Errorf("%s: task_uuid %q is not a UUID", l.name, u)
			}
			delete(m, "timestamp")
			m["task_uuid"] = "X"
			got = append(got, m)
		}
		if len(got) != 3 {
			t.Fatalf("%s wrote %d lines, want 3:\n%s", l.name, len(got), out.String())
		}
		if want == nil {
			want = got
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s wrote\n%v\nwant (as skein)\n%v", l.name, got, want)
		}
	}
}
