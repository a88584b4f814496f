package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// DefaultClientTimeout bounds one [Query] when its context has no
// deadline.
const DefaultClientTimeout = 30 * time.Second

// ClientConfig says where a monitor server listens, for [Query].
type ClientConfig struct {
	// Addr is the server's TCP address. Defaults to "127.0.0.1:8701" when
	// Socket is empty.
	Addr string
	// Socket is the path of the server's unix socket; it wins over Addr.
	// Defaults to none.
	Socket string
	// Token is sent as the first line when set. Defaults to none.
	Token string
	// Timeout bounds the whole exchange. Defaults to 30 s.
	Timeout time.Duration
}

// CommandError is an error line the server answered ("error: ...").
type CommandError struct {
	// Msg is the server's message, without the "error: " prefix.
	Msg string
}

func (e *CommandError) Error() string { return e.Msg }

// Query sends one command to a monitor server and returns its answer,
// without the trailing newline. An answer that is an error line is
// returned as a *CommandError.
func Query(ctx context.Context, cfg *ClientConfig, command string) (string, error) {
	var c ClientConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultClientTimeout
	}
	network, addr := "tcp", c.Addr
	if c.Socket != "" {
		network, addr = "unix", c.Socket
	} else if addr == "" {
		addr = DefaultAddr
	}
	if strings.ContainsAny(command, "\r\n") {
		return "", errors.New("querying the monitor: the command contains a line break")
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return "", fmt.Errorf("connecting to the monitor at %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	var msg strings.Builder
	if c.Token != "" {
		msg.WriteString(c.Token + "\n")
	}
	msg.WriteString(command + "\n")
	if _, err := io.WriteString(conn, msg.String()); err != nil {
		return "", fmt.Errorf("sending %q to the monitor at %s: %w", command, addr, err)
	}
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := conn.(closeWriter); ok {
		_ = cw.CloseWrite()
	}
	out, err := io.ReadAll(io.LimitReader(conn, 64<<20))
	if err != nil {
		return "", fmt.Errorf("reading the monitor's answer to %q from %s: %w", command, addr, err)
	}
	answer := strings.TrimSuffix(string(out), "\n")
	if msg, ok := strings.CutPrefix(answer, "error: "); ok && !strings.Contains(msg, "\n") {
		return "", &CommandError{Msg: msg}
	}
	return answer, nil
}
