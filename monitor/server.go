package monitor

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// Defaults of ServerConfig.
const (
	DefaultAddr           = "127.0.0.1:8701"
	DefaultSocketMode     = 0o600
	DefaultMaxLineBytes   = 4096
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultWriteTimeout   = 10 * time.Second
	DefaultCommandTimeout = 30 * time.Second
	DefaultMaxConns       = 64
)

// ServerConfig configures a [Server].
type ServerConfig struct {
	// Addr is the TCP address to listen on. Defaults to "127.0.0.1:8701"
	// when Socket is empty too; with Socket set and Addr empty there is no
	// TCP listener. Port 0 picks a free port ([Server.Addr] tells which).
	// A non-loopback address needs Token.
	Addr string
	// Socket is the path of a unix socket to listen on. Defaults to none.
	// A stale socket file left by a dead process is replaced.
	Socket string
	// SocketMode is the permission of the socket file: who may connect.
	// Defaults to 0600 (the owner only).
	SocketMode os.FileMode
	// Token, when set, is the secret a client that is not on loopback (or
	// the unix socket) must send as its first line. Loopback clients may
	// send it too. Defaults to none: only loopback and unix-socket clients
	// are served.
	Token string
	// MaxLineBytes is the longest command line accepted; a client sending
	// a longer one gets an error and is disconnected. Defaults to 4096.
	MaxLineBytes int
	// IdleTimeout is how long the server waits for a client's next line
	// before disconnecting it. Defaults to 5 minutes.
	IdleTimeout time.Duration
	// WriteTimeout bounds the writing of one answer, so that a client that
	// does not read cannot hold the server. Defaults to 10 s.
	WriteTimeout time.Duration
	// CommandTimeout bounds the running of one command (asyncdb tools read
	// the store). Defaults to 30 s.
	CommandTimeout time.Duration
	// MaxConns is how many clients are served at once; more are told so
	// and disconnected. Defaults to 64.
	MaxConns int
	// Logger receives the server's own messages (listening, refused
	// clients). Defaults to discarding them.
	Logger *slog.Logger
}

func (c *ServerConfig) withDefaults() (ServerConfig, error) {
	var o ServerConfig
	if c != nil {
		o = *c
	}
	if o.Addr == "" && o.Socket == "" {
		o.Addr = DefaultAddr
	}
	if o.SocketMode == 0 {
		o.SocketMode = DefaultSocketMode
	}
	if o.MaxLineBytes == 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.CommandTimeout == 0 {
		o.CommandTimeout = DefaultCommandTimeout
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.MaxLineBytes < 16:
		return o, fmt.Errorf("field MaxLineBytes is %d, want at least 16", o.MaxLineBytes)
	case o.IdleTimeout < 0:
		return o, fmt.Errorf("field IdleTimeout is negative (%s)", o.IdleTimeout)
	case o.WriteTimeout < 0:
		return o, fmt.Errorf("field WriteTimeout is negative (%s)", o.WriteTimeout)
	case o.CommandTimeout < 0:
		return o, fmt.Errorf("field CommandTimeout is negative (%s)", o.CommandTimeout)
	case o.MaxConns < 0:
		return o, fmt.Errorf("field MaxConns is %d, want at least 1", o.MaxConns)
	case strings.ContainsAny(o.Token, "\r\n"):
		return o, errors.New("field Token contains a line break")
	}
	return o, nil
}

// Server serves a [Monitor] over a line protocol on TCP and unix sockets,
// as zc.monitor does: a client sends one command line and gets its answer,
// then the connection closes (so `echo 'async status' | nc 127.0.0.1 8701`
// works); "interactive" keeps the connection open for more commands until
// "quit", an empty line repeating the last command.
//
// Create it with [NewServer], then Start and Stop it.
//
// # Goroutines
//
// Start starts one accepting goroutine per listener; each client gets a
// goroutine of its own. Stop closes the listeners and every connection and
// waits for all of them.
type Server struct {
	m   *Monitor
	cfg ServerConfig

	mu       sync.Mutex
	started  bool
	stopped  bool
	lns      []net.Listener
	conns    map[net.Conn]struct{}
	tcpAddr  net.Addr
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	sem      chan struct{}
	stopDone chan struct{}
}

// NewServer returns a server for m configured by cfg (nil means the
// defaults). It listens only when started.
func NewServer(m *Monitor, cfg *ServerConfig) (*Server, error) {
	if m == nil {
		return nil, errors.New("creating monitor server: monitor is nil")
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("creating monitor server: %w", err)
	}
	return &Server{m: m, cfg: c, conns: map[net.Conn]struct{}{}, sem: make(chan struct{}, c.MaxConns), stopDone: make(chan struct{})}, nil
}

// Start listens on the configured TCP address and unix socket and serves
// in the background. ctx bounds the start-up only. A non-loopback TCP
// address without a Token is refused.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.stopped {
		return errors.New("starting monitor server: already started")
	}
	var lns []net.Listener
	fail := func(err error) error {
		for _, ln := range lns {
			_ = ln.Close()
		}
		return fmt.Errorf("starting monitor server: %w", err)
	}
	var lc net.ListenConfig
	if s.cfg.Addr != "" {
		host, _, err := net.SplitHostPort(s.cfg.Addr)
		if err != nil {
			return fail(fmt.Errorf("address %q: %w", s.cfg.Addr, err))
		}
		if !loopbackHost(host) && s.cfg.Token == "" {
			return fail(fmt.Errorf("address %q is not loopback: set a Token (clients send it as their first line) or listen on 127.0.0.1 or a unix socket", s.cfg.Addr))
		}
		ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
		if err != nil {
			return fail(fmt.Errorf("listening on %s: %w", s.cfg.Addr, err))
		}
		lns = append(lns, ln)
		s.tcpAddr = ln.Addr()
	}
	if s.cfg.Socket != "" {
		ln, err := listenUnix(ctx, s.cfg.Socket, s.cfg.SocketMode)
		if err != nil {
			return fail(err)
		}
		lns = append(lns, ln)
	}
	s.lns = lns
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, ln := range lns {
		s.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "skein:monitor:listening", slog.String("addr", ln.Addr().String()))
		s.wg.Add(1)
		go s.accept(ln)
	}
	return nil
}

// listenUnix listens on path, replacing a stale socket file (one nobody
// answers on) but never another kind of file or a live socket.
func listenUnix(ctx context.Context, path string, mode os.FileMode) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("socket path %s exists and is not a socket", path)
		}
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, derr := d.DialContext(dctx, "unix", path)
		cancel()
		if derr == nil {
			_ = c.Close()
			return nil, fmt.Errorf("socket %s is in use by another process", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing stale socket %s: %w", path, err)
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on unix socket %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("setting the mode of socket %s: %w", path, err)
	}
	return ln, nil
}

func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Addr returns the TCP address the server listens on, or nil before Start
// or without TCP.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tcpAddr
}

// Stop closes the listeners and every client connection and waits for
// their goroutines, or for ctx. It is safe before Start and more than once.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	first := !s.stopped
	s.stopped = true
	if first {
		if s.cancel != nil {
			s.cancel()
		}
		for _, ln := range s.lns {
			_ = ln.Close()
		}
		for c := range s.conns {
			_ = c.Close()
		}
		go func() {
			s.wg.Wait()
			close(s.stopDone)
		}()
	}
	s.mu.Unlock()
	select {
	case <-s.stopDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping monitor server: %w", ctx.Err())
	}
}

func (s *Server) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.cfg.Logger.LogAttrs(context.Background(), slog.LevelError, "skein:monitor:accept_failed",
				slog.String("addr", ln.Addr().String()), slog.String("error", err.Error()))
			return
		}
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// conn is one client connection.
type conn struct {
	s    *Server
	c    net.Conn
	r    *bufio.Reader
	last string // last command, repeated by an empty line
}

func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	cc := &conn{s: s, c: c, r: bufio.NewReaderSize(c, s.cfg.MaxLineBytes+2)}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		cc.write(fmt.Sprintf("error: too many monitor connections (limit %d); try again later", s.cfg.MaxConns))
		cc.finish()
		return
	}
	cc.serve()
}

// errLine is a client problem that ends the connection.
type errLine struct{ msg string }

func (e *errLine) Error() string { return e.msg }

// readLine reads one line without its line ending.
func (cc *conn) readLine() (string, error) {
	if cc.s.cfg.IdleTimeout > 0 {
		_ = cc.c.SetReadDeadline(time.Now().Add(cc.s.cfg.IdleTimeout))
	}
	line, err := cc.r.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull) || len(bytes.TrimRight(line, "\r\n")) > cc.s.cfg.MaxLineBytes:
		return "", &errLine{fmt.Sprintf("line longer than %d bytes; closing", cc.s.cfg.MaxLineBytes)}
	case err == nil:
	case errors.Is(err, io.EOF) && len(line) > 0:
		// The last line without a line ending.
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "", &errLine{fmt.Sprintf("no command for %s; closing", cc.s.cfg.IdleTimeout)}
		}
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// write sends text and a newline, bounded by WriteTimeout.
func (cc *conn) write(text string) bool {
	if cc.s.cfg.WriteTimeout > 0 {
		_ = cc.c.SetWriteDeadline(time.Now().Add(cc.s.cfg.WriteTimeout))
	}
	_, err := io.WriteString(cc.c, text+"\n")
	return err == nil
}

// finish half-closes the connection and reads what the client still sends
// (briefly), so that the answer is not lost to a reset.
func (cc *conn) finish() {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := cc.c.(closeWriter); ok {
		_ = cw.CloseWrite()
	}
	_ = cc.c.SetReadDeadline(time.Now().Add(min(time.Second, max(cc.s.cfg.IdleTimeout, time.Millisecond))))
	_, _ = io.Copy(io.Discard, io.LimitReader(cc.c, 1<<20))
}

// trusted reports whether the client may run commands without the token.
func (cc *conn) trusted() bool {
	switch a := cc.c.RemoteAddr().(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return cc.c.LocalAddr().Network() == "unix"
}

func (cc *conn) serve() {
	line, err := cc.readLine()
	if err != nil {
		cc.fail(err)
		return
	}
	if tok := cc.s.cfg.Token; tok != "" && subtle.ConstantTimeCompare([]byte(line), []byte(tok)) == 1 {
		if line, err = cc.readLine(); err != nil {
			cc.fail(err)
			return
		}
	} else if !cc.trusted() {
		cc.s.cfg.Logger.LogAttrs(context.Background(), slog.LevelWarn, "skein:monitor:refused",
			slog.String("remote", cc.c.RemoteAddr().String()))
		cc.write("error: access denied: send the monitor token as the first line")
		cc.finish()
		return
	}
	switch strings.TrimSpace(line) {
	case "interactive":
		if cc.write(`Interactive mode on.  Use "quit" To exit.`) {
			cc.interactive()
		}
		return
	case "quit":
		cc.write("Goodbye.")
		cc.finish()
		return
	}
	cc.run(line)
	cc.finish()
}

func (cc *conn) interactive() {
	for {
		line, err := cc.readLine()
		if err != nil {
			cc.fail(err)
			return
		}
		cmd := strings.TrimSpace(line)
		switch cmd {
		case "quit":
			cc.write("Goodbye.")
			cc.finish()
			return
		case "interactive":
			if !cc.write("Interactive mode is already on.") {
				return
			}
			continue
		case "":
			if cc.last == "" {
				continue
			}
			cmd = cc.last
		}
		cc.last = cmd
		if !cc.run(cmd) {
			return
		}
	}
}

// run executes one command and writes its answer or its error.
func (cc *conn) run(line string) bool {
	if strings.TrimSpace(line) == "" {
		return cc.write("error: empty command (try 'help')")
	}
	ctx, cancel := context.WithTimeout(cc.s.ctx, cc.s.cfg.CommandTimeout)
	out, err := cc.s.m.Exec(ctx, line)
	cancel()
	if err != nil {
		return cc.write("error: " + oneLine(err.Error()))
	}
	return cc.write(out)
}

// fail tells the client why it is being disconnected, if it is still
// there to hear it.
func (cc *conn) fail(err error) {
	var el *errLine
	if errors.As(err, &el) {
		cc.write("error: " + el.msg)
		cc.finish()
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
