package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// newSeedMonitor returns a monitor on a fake dispatcher that has polled
// once, and the fake.
func newSeedMonitor(t *testing.T) (*Monitor, *fakeDispatcher) {
	t.Helper()
	clock := &fakeClock{now: seedStart}
	d := newFakeDispatcher(clock, seedUUID, 5*time.Second)
	d.addAgent("main", 3)
	d.start()
	d.poll()
	clock.Advance(time.Second)
	m, err := New(&Config{Dispatchers: []Dispatcher{d}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return m, d
}

// session is an interactive client.
type session struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialSession(t *testing.T, network, addr string) *session {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &session{t: t, c: c, r: bufio.NewReader(c)}
}

func (s *session) send(line string) {
	s.t.Helper()
	if _, err := io.WriteString(s.c, line+"\n"); err != nil {
		s.t.Fatal(err)
	}
}

// readUntil reads lines until one equals last (included).
func (s *session) readUntil(last string) string {
	s.t.Helper()
	var b strings.Builder
	for {
		line, err := s.r.ReadString('\n')
		b.WriteString(line)
		if strings.TrimSuffix(line, "\n") == last {
			return b.String()
		}
		if err != nil {
			s.t.Fatalf("reading until %q: %v; got %q", last, err, b.String())
		}
	}
}

func (s *session) readLine() string {
	s.t.Helper()
	line, err := s.r.ReadString('\n')
	if err != nil {
		s.t.Fatalf("reading a line: %v (got %q)", err, line)
	}
	return strings.TrimSuffix(line, "\n")
}

func (s *session) expectEOF() {
	s.t.Helper()
	rest, err := io.ReadAll(s.r)
	if err != nil {
		s.t.Fatalf("waiting for the server to close: %v", err)
	}
	if len(rest) != 0 {
		s.t.Fatalf("after the last answer: %q, want the connection closed", rest)
	}
}

func TestInteractive(t *testing.T) {
	m, d := newSeedMonitor(t)
	srv := startServer(t, m, nil)
	s := dialSession(t, "tcp", srv.Addr().String())
	s.send("interactive")
	if got, want := s.readLine(), `Interactive mode on.  Use "quit" To exit.`; got != want {
		t.Fatalf("greeting %q, want %q", got, want)
	}
	s.send("async UUID")
	if got := s.readLine(); got != seedUUID {
		t.Errorf("async UUID = %q, want %q", got, seedUUID)
	}
	s.send("async utcnow")
	if got, want := s.readLine(), "2006-08-10T15:44:23.000211Z"; got != want {
		t.Errorf("async utcnow = %q, want %q", got, want)
	}
	// An empty line repeats the last command, which sees the clock move.
	d.clock.Advance(time.Second)
	s.send("")
	if got, want := s.readLine(), "2006-08-10T15:44:24.000211Z"; got != want {
		t.Errorf("repeated async utcnow = %q, want %q", got, want)
	}
	// Errors keep the session open.
	s.send("async nosuch")
	if got := s.readLine(); !strings.HasPrefix(got, `error: unknown async tool "nosuch"`) {
		t.Errorf("error line %q", got)
	}
	s.send("async status")
	if got := s.readUntil("}"); !strings.Contains(got, `"status": "RUNNING"`) {
		t.Errorf("async status after an error:\n%s", got)
	}
	s.send("interactive")
	if got, want := s.readLine(), "Interactive mode is already on."; got != want {
		t.Errorf("second interactive: %q, want %q", got, want)
	}
	s.send("quit")
	if got, want := s.readLine(), "Goodbye."; got != want {
		t.Errorf("quit: %q, want %q", got, want)
	}
	s.expectEOF()
}

func TestOneShotForms(t *testing.T) {
	m, _ := newSeedMonitor(t)
	srv := startServer(t, m, nil)
	addr := srv.Addr().String()
	tests := []struct {
		name string
		send string
		want string
	}{
		{"newline", "async UUID\n", seedUUID + "\n"},
		{"crlf", "async UUID\r\n", seedUUID + "\n"},
		{"no newline then EOF", "async UUID", seedUUID + "\n"},
		{"extra spaces", "  async   UUID  \n", seedUUID + "\n"},
		{"more lines than one", "async UUID\nasync utcnow\nasync status\n", seedUUID + "\n"},
		{"quit", "quit\n", "Goodbye.\n"},
		{"empty line", "\n", "error: empty command (try 'help')\n"},
		{"garbage", "\x00\xff\xfe garbage \x1b[31m\n", "error: unknown command \"\\x00\\xff\\xfe\" (try 'help')\n"},
		{"nothing", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, tt.send); err != nil {
				t.Fatal(err)
			}
			_ = c.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("sent %q: got %q, want %q", tt.send, got, tt.want)
			}
		})
	}
}

func TestUnixSocket(t *testing.T) {
	m, _ := newSeedMonitor(t)
	path := filepath.Join(t.TempDir(), "monitor.sock")
	// A stale socket file from a dead process is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	startServer(t, m, &ServerConfig{Socket: path})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("socket mode %o, want 600", got)
	}
	if got := oneShot(t, "unix", path, "async UUID"); got != seedUUID+"\n" {
		t.Errorf("over the socket: %q", got)
	}
	// A live socket is not taken over.
	s2, err := NewServer(m, &ServerConfig{Socket: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second server on a live socket: %v, want an 'in use' error", err)
		_ = s2.Stop(context.Background())
	}
	// Nor is a regular file.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s3, _ := NewServer(m, &ServerConfig{Socket: file})
	if err := s3.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("socket on a regular file: %v, want a 'not a socket' error", err)
		_ = s3.Stop(context.Background())
	}
}

func TestHugeLine(t *testing.T) {
	m, _ := newSeedMonitor(t)
	srv := startServer(t, m, &ServerConfig{Addr: "127.0.0.1:0", MaxLineBytes: 64})
	addr := srv.Addr().String()
	for _, tt := range []struct{ name, first string }{
		{"one-shot", ""},
		{"interactive", "interactive\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			// The writer may fail once the server closes: that is fine.
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = io.WriteString(c, tt.first+strings.Repeat("x", 1<<20)+"\n")
			}()
			got, _ := io.ReadAll(c)
			<-done
			if !strings.Contains(string(got), "error: line longer than 64 bytes; closing\n") {
				t.Errorf("got %q, want the line-too-long error", got)
			}
		})
	}
	// The server still serves others.
	if got := oneShot(t, "tcp", addr, "async UUID"); got != seedUUID+"\n" {
		t.Errorf("after a huge line: %q", got)
	}
}

func TestIdleClientIsCutOffOthersServed(t *testing.T) {
	m, _ := newSeedMonitor(t)
	srv := startServer(t, m, &ServerConfig{Addr: "127.0.0.1:0", IdleTimeout: 200 * time.Millisecond, MaxConns: 2})
	addr := srv.Addr().String()
	// A client that connects and says nothing.
	idle := dialSession(t, "tcp", addr)
	// Others are served meanwhile.
	if got := oneShot(t, "tcp", addr, "async UUID"); got != seedUUID+"\n" {
		t.Errorf("while a client idles: %q", got)
	}
	if got, want := idle.readLine(), "error: no command for 200ms; closing"; got != want {
		t.Errorf("idle client got %q, want %q", got, want)
	}
	idle.expectEOF()
}

func TestTooManyConnections(t *testing.T) {
	m, _ := newSeedMonitor(t)
	srv := startServer(t, m, &ServerConfig{Addr: "127.0.0.1:0", MaxConns: 1})
	addr := srv.Addr().String()
	first := dialSession(t, "tcp", addr)
	first.send("interactive")
	first.readLine() // the server now holds the only slot
	if got := oneShot(t, "tcp", addr, "async UUID"); !strings.HasPrefix(got, "error: too many monitor connections (limit 1)") {
		t.Errorf("second client: %q", got)
	}
	first.send("quit")
	first.readLine()
	first.expectEOF()
}

// TestSlowReader: a client that sends commands but never reads its
// answers is cut off by the write timeout; others are served.
func TestSlowReader(t *testing.T) {
	m, _ := newSeedMonitor(t)
	srv := startServer(t, m, &ServerConfig{Addr: "127.0.0.1:0", WriteTimeout: 100 * time.Millisecond})
	addr := srv.Addr().String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(1024)
	// Enough commands for answers to fill both socket buffers.
	cmds := "interactive\n" + strings.Repeat("async help jobstats\n", 20000)
	werr := make(chan error, 1)
	go func() {
		_, err := io.WriteString(c, cmds)
		werr <- err
	}()
	// The server gives up on the writer: our writes fail (reset) or
	// complete and the connection is closed on their side.
	select {
	case <-werr:
	case <-time.After(30 * time.Second):
		t.Fatal("the server never gave up on a client that does not read")
	}
	if got := oneShot(t, "tcp", addr, "async UUID"); got != seedUUID+"\n" {
		t.Errorf("while a client does not read: %q", got)
	}
}

func TestConcurrentClients(t *testing.T) {
	m, d := newSeedMonitor(t)
	srv := startServer(t, m, nil)
	addr := srv.Addr().String()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		wg.Go(func() {
			cmd := []string{"async status", "async polls", "async jobstats", "help async"}[i%4]
			want, err := m.Exec(context.Background(), cmd)
			if err != nil {
				errs <- err
				return
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.WriteString(c, cmd+"\n"); err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(c)
			if err != nil {
				errs <- err
				return
			}
			// Polls happen meanwhile: help must be exact, the rest valid JSON.
			if strings.HasPrefix(cmd, "help") && string(got) != want+"\n" {
				errs <- fmt.Errorf("%s: got %q, want %q", cmd, got, want)
			}
			if !strings.HasPrefix(cmd, "help") && !json.Valid(got) {
				errs <- fmt.Errorf("%s: got %q, not JSON", cmd, got)
			}
		})
		// Meanwhile the dispatcher keeps polling.
		if i%8 == 0 {
			d.poll()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestToken(t *testing.T) {
	m, _ := newSeedMonitor(t)
	if _, err := NewServer(m, &ServerConfig{Addr: "127.0.0.1:0", Token: "a\nb"}); err == nil {
		t.Error("a token with a line break was accepted")
	}
	// A non-loopback address without a token is refused.
	s, err := NewServer(m, &ServerConfig{Addr: "0.0.0.0:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "Token") {
		t.Errorf("0.0.0.0 without a token: %v, want an error naming Token", err)
		_ = s.Stop(context.Background())
	}
	srv := startServer(t, m, &ServerConfig{Addr: "127.0.0.1:0", Token: "s3cret"})
	addr := srv.Addr().String()
	// Loopback clients may send the token, or not.
	if got := oneShot(t, "tcp", addr, "s3cret\nasync UUID"); got != seedUUID+"\n" {
		t.Errorf("with the token: %q", got)
	}
	if got := oneShot(t, "tcp", addr, "async UUID"); got != seedUUID+"\n" {
		t.Errorf("loopback without the token: %q", got)
	}
}

// TestNonLoopbackNeedsToken drives the access check of a connection whose
// peer is not on loopback, over an in-memory pipe with such addresses.
func TestNonLoopbackNeedsToken(t *testing.T) {
	m, _ := newSeedMonitor(t)
	srv, err := NewServer(m, &ServerConfig{Addr: "127.0.0.1:0", Token: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(context.Background())
	for _, tt := range []struct{ name, send, want string }{
		{"no token", "async UUID\n", "error: access denied: send the monitor token as the first line\n"},
		{"wrong token", "guess\nasync UUID\n", "error: access denied: send the monitor token as the first line\n"},
		{"token", "s3cret\nasync UUID\n", seedUUID + "\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client, server := net.Pipe()
			remote := &addrConn{Conn: server, remote: &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 40000}}
			srv.mu.Lock()
			srv.conns[remote] = struct{}{}
			srv.wg.Add(1)
			srv.mu.Unlock()
			go srv.serveConn(remote)
			go func() { _, _ = io.WriteString(client, tt.send) }()
			_ = client.SetDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(client)
			if err != nil && !errors.Is(err, io.ErrClosedPipe) {
				t.Fatal(err)
			}
			client.Close()
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

func TestStopClosesClients(t *testing.T) {
	m, _ := newSeedMonitor(t)
	srv, err := NewServer(m, &ServerConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(context.Background()); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	srv, _ = NewServer(m, &ServerConfig{Addr: "127.0.0.1:0"})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := dialSession(t, "tcp", srv.Addr().String())
	s.send("interactive")
	s.readLine()
	if err := srv.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	s.expectEOF()
	if err := srv.Start(context.Background()); err == nil {
		t.Error("Start after Stop succeeded")
	}
}

// FuzzServeConn feeds any bytes to a connection: the server answers with
// whole lines and ends the connection, whatever it got.
func FuzzServeConn(f *testing.F) {
	for _, s := range []string{
		"async status\n", "interactive\nasync UUID\n\nquit\n", "s3cret\nasync UUID\n", "\n", "",
		"interactive\n" + strings.Repeat("x", 100) + "\n", "async polls at:5M before:1M\r\n", "\x00\xff\n",
	} {
		f.Add([]byte(s))
	}
	clock := &fakeClock{now: seedStart}
	d := newFakeDispatcher(clock, seedUUID, 5*time.Second)
	d.addAgent("main", 3)
	d.start()
	d.poll()
	m, err := New(&Config{Dispatchers: []Dispatcher{d}, Now: clock.Now})
	if err != nil {
		f.Fatal(err)
	}
	srv, err := NewServer(m, &ServerConfig{Addr: "127.0.0.1:0", Token: "s3cret", MaxLineBytes: 64, IdleTimeout: 20 * time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		f.Fatal(err)
	}
	defer srv.Stop(context.Background())
	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := net.Pipe()
		defer client.Close()
		srv.mu.Lock()
		srv.conns[server] = struct{}{}
		srv.wg.Add(1)
		srv.mu.Unlock()
		go srv.serveConn(server)
		go func() {
			_, _ = client.Write(in)
			// The pipe has no half-close: the server ends on its own (one
			// command, an error, or the idle timeout).
		}()
		_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
		out, err := io.ReadAll(client)
		if err != nil && !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("%q: reading: %v", in, err)
		}
		if len(out) > 0 && out[len(out)-1] != '\n' {
			t.Fatalf("%q: answer does not end with a newline: %q", in, out)
		}
	})
}
