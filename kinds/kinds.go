package kinds

import (
	"errors"
	"fmt"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
)

// Kind names of the built-in job kinds.
const (
	KindExec = "exec"
	KindHTTP = "http"
)

// Names lists the built-in kinds, sorted.
var Names = []string{KindExec, KindHTTP}

// Config configures the built-in kinds [Register] adds. A nil *Config means
// every default: both kinds enabled, with the defaults of [ExecConfig] and
// [HTTPConfig].
type Config struct {
	// DisableExec leaves the exec kind out. Defaults to false.
	DisableExec bool
	// DisableHTTP leaves the http kind out. Defaults to false.
	DisableHTTP bool
	// Exec configures the exec kind. Defaults to the zero ExecConfig (every
	// default).
	Exec ExecConfig
	// HTTP configures the http kind. Defaults to the zero HTTPConfig (every
	// default).
	HTTP HTTPConfig
	// Logger, when not nil, is used as Exec.Logger where that is nil.
	// Defaults to nil.
	Logger *action.Logger
}

// Register adds the handlers of the enabled built-in kinds to h. It fails
// if h is nil, a kind already has a handler, or a field of cfg is invalid.
func Register(h *skein.Handlers, cfg *Config) error {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if h == nil {
		return errors.New("registering built-in job kinds: Handlers is nil")
	}
	if c.Exec.Logger == nil {
		c.Exec.Logger = c.Logger
	}
	if !c.DisableExec {
		e, err := NewExec(&c.Exec)
		if err != nil {
			return fmt.Errorf("registering job kind %s: %w", KindExec, err)
		}
		if err := skein.AddHandlerSafely(h, e.Run); err != nil {
			return fmt.Errorf("registering built-in job kinds: %w", err)
		}
	}
	if !c.DisableHTTP {
		hk, err := NewHTTP(&c.HTTP)
		if err != nil {
			return fmt.Errorf("registering job kind %s: %w", KindHTTP, err)
		}
		if err := skein.AddHandlerSafely(h, hk.Run); err != nil {
			return fmt.Errorf("registering built-in job kinds: %w", err)
		}
	}
	return nil
}

// tail keeps the last max bytes written to it, cut at a line start when
// it overflowed.
type tail struct {
	max  int
	buf  []byte
	lost bool
}

func (t *tail) add(p []byte) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.lost = true
	}
}

// String returns the tail, starting at a line boundary when bytes were
// lost, and marked with a leading "…".
func (t *tail) String() string {
	b := t.buf
	if t.lost {
		for i, c := range b {
			if c == '\n' && i+1 < len(b) {
				b = b[i+1:]
				break
			}
		}
		return "…" + string(b)
	}
	return string(b)
}
