package monitor

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestQuery(t *testing.T) {
	m, _ := newSeedMonitor(t)
	sock := filepath.Join(t.TempDir(), "m.sock")
	srv := startServer(t, m, &ServerConfig{Addr: "127.0.0.1:0", Socket: sock, Token: "tok"})
	ctx := context.Background()
	for _, cfg := range []*ClientConfig{
		{Addr: srv.Addr().String()},
		{Addr: srv.Addr().String(), Token: "tok"},
		{Socket: sock},
	} {
		got, err := Query(ctx, cfg, "async UUID")
		if err != nil || got != seedUUID {
			t.Errorf("Query(%+v) = %q, %v", cfg, got, err)
		}
	}
	_, err := Query(ctx, &ClientConfig{Addr: srv.Addr().String()}, "async nosuch")
	var ce *CommandError
	if !errors.As(err, &ce) || !strings.Contains(ce.Msg, `unknown async tool "nosuch"`) {
		t.Errorf("unknown tool: %v", err)
	}
	if _, err := Query(ctx, &ClientConfig{Addr: srv.Addr().String()}, "a\nb"); err == nil {
		t.Error("a command with a line break was sent")
	}
	if _, err := Query(ctx, &ClientConfig{Socket: filepath.Join(t.TempDir(), "none.sock")}, "help"); err == nil || !strings.Contains(err.Error(), "connecting to the monitor") {
		t.Errorf("no server: %v", err)
	}
}
