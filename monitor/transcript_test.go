package monitor

import (
	"context"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the expected outputs of testdata/transcripts")

// seedStart is the time of the zc.async monitor transcript.
var seedStart = time.Date(2006, 8, 10, 15, 44, 22, 211000, time.UTC)

const seedUUID = "d10f43dc-ffdf-11dc-abd4-0017f2c49bdd"

// startServer serves m on an ephemeral loopback port until the test ends.
func startServer(t *testing.T, m *Monitor, cfg *ServerConfig) *Server {
	t.Helper()
	c := ServerConfig{Addr: "127.0.0.1:0"}
	if cfg != nil {
		c = *cfg
	}
	s, err := NewServer(m, &c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}

// oneShot sends one command on a new connection and returns everything
// the server wrote before closing.
func oneShot(t *testing.T, network, addr, cmd string) string {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", cmd, err)
	}
	return string(out)
}

// TestTranscripts replays testdata/transcripts/*.txt: "! action" lines
// drive a fake dispatcher on a fake clock; "> command" lines are sent to a
// real server over TCP, one connection each, and the answer must be the
// lines that follow, up to "-> CLOSE".
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/transcripts/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			clock := &fakeClock{now: seedStart}
			d := newFakeDispatcher(clock, seedUUID, 5*time.Second)
			m, err := New(&Config{Dispatchers: []Dispatcher{d}, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			srv := startServer(t, m, nil)
			addr := srv.Addr().String()
			lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
			var out []string
			for i := 0; i < len(lines); i++ {
				line := lines[i]
				switch {
				case strings.HasPrefix(line, "! "):
					if err := d.do(line[2:]); err != nil {
						t.Fatalf("%s:%d: %v", file, i+1, err)
					}
					out = append(out, line)
				case strings.HasPrefix(line, "> "):
					start := i + 1
					end := start
					for end < len(lines) && lines[end] != "-> CLOSE" {
						end++
					}
					if end == len(lines) {
						t.Fatalf("%s:%d: command %q has no closing '-> CLOSE' line", file, i+1, line)
					}
					want := strings.Join(lines[start:end], "\n") + "\n"
					got := oneShot(t, "tcp", addr, line[2:])
					if got != want && !*update {
						t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, i+1, line, got, want)
					}
					out = append(out, line, strings.TrimSuffix(got, "\n"), "-> CLOSE")
					i = end
				default:
					out = append(out, line)
				}
			}
			if *update {
				if err := os.WriteFile(file, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
