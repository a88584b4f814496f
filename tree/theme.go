package tree

import (
	"fmt"
	"strconv"
	"strings"
)

// Color is one theme slot: a foreground and background colour (xterm
// names such as "magenta" or "dark_gray", or codes "0"–"255"; "" for none)
// and attributes ("bold", "dim", "underlined", "blink", "reverse",
// "hidden", "reset" or a numeric SGR code).
type Color struct {
	FG, BG string
	Attrs  []string
}

// Theme holds the colours of each part of the text output, as in
// eliot-tree's themes.
type Theme struct {
	Root          Color // the task UUID line
	Parent        Color // action and message type names
	TaskLevel     Color // the "/1/2" level after a type name
	StatusSuccess Color // "succeeded" and the start status of an action that succeeded
	StatusFailure Color // "failed" and the start status of an action that failed
	Timestamp     Color
	PropKey       Color // field names
	PropValue     Color // field values
	Duration      Color
	TreeFailed    Color // tree lines under a failed action
	TreeColor0    Color // tree lines, cycled by depth
	TreeColor1    Color
	TreeColor2    Color
	Error         Color // the formatting-exception summary
}

// DarkTheme is eliot-tree's theme for dark terminal backgrounds.
func DarkTheme() *Theme {
	return &Theme{
		Root:          Color{FG: "white", Attrs: []string{"bold"}},
		Parent:        Color{FG: "magenta"},
		StatusSuccess: Color{FG: "green"},
		StatusFailure: Color{FG: "red"},
		PropKey:       Color{FG: "blue"},
		Error:         Color{FG: "red", Attrs: []string{"bold"}},
		Timestamp:     Color{FG: "white", Attrs: []string{"dim"}},
		Duration:      Color{FG: "blue", Attrs: []string{"dim"}},
		TreeFailed:    Color{FG: "red"},
		TreeColor0:    Color{FG: "white", Attrs: []string{"dim"}},
		TreeColor1:    Color{FG: "blue", Attrs: []string{"dim"}},
		TreeColor2:    Color{FG: "magenta", Attrs: []string{"dim"}},
	}
}

// LightTheme is eliot-tree's theme for light terminal backgrounds.
func LightTheme() *Theme {
	t := DarkTheme()
	t.Root = Color{FG: "dark_gray", Attrs: []string{"bold"}}
	t.Timestamp = Color{FG: "dark_gray"}
	t.TreeColor0 = Color{FG: "dark_gray", Attrs: []string{"dim"}}
	return t
}

// ThemeKeys are the theme slot names of eliot-tree's config file
// ("theme_overrides"), in the order of the Theme fields.
var ThemeKeys = []string{"root", "parent", "task_level", "status_success", "status_failure", "timestamp",
	"prop_key", "prop_value", "duration", "tree_failed", "tree_color0", "tree_color1", "tree_color2", "error"}

// Slot returns the Color of the slot named key (see ThemeKeys).
func (t *Theme) Slot(key string) (*Color, bool) {
	switch key {
	case "root":
		return &t.Root, true
	case "parent":
		return &t.Parent, true
	case "task_level":
		return &t.TaskLevel, true
	case "status_success":
		return &t.StatusSuccess, true
	case "status_failure":
		return &t.StatusFailure, true
	case "timestamp":
		return &t.Timestamp, true
	case "prop_key":
		return &t.PropKey, true
	case "prop_value":
		return &t.PropValue, true
	case "duration":
		return &t.Duration, true
	case "tree_failed":
		return &t.TreeFailed, true
	case "tree_color0":
		return &t.TreeColor0, true
	case "tree_color1":
		return &t.TreeColor1, true
	case "tree_color2":
		return &t.TreeColor2, true
	case "error":
		return &t.Error, true
	}
	return nil, false
}

var attrCodes = map[string]int{
	"bold": 1, "dim": 2, "underlined": 4, "blink": 5, "reverse": 7, "hidden": 8, "reset": 0,
	"res_bold": 21, "res_dim": 22, "res_underlined": 24, "res_blink": 25, "res_reverse": 27, "res_hidden": 28,
}

func colorCode(name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 && n < 256 {
		return n, nil
	}
	l := strings.ToLower(name)
	for i, n := range colorNames {
		if n == l {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown colour %q", name)
}

// paint is a compiled Color: the escapes before and after the text.
type paint struct{ pre, post string }

// compile renders c as the exact bytes eliot-tree writes: colour codes,
// the text, the attribute codes and a reset.
func (c Color) compile() (paint, error) {
	var pre, post strings.Builder
	if c.FG != "" {
		n, err := colorCode(c.FG)
		if err != nil {
			return paint{}, err
		}
		fmt.Fprintf(&pre, "\x1b[38;5;%dm", n)
	}
	if c.BG != "" {
		n, err := colorCode(c.BG)
		if err != nil {
			return paint{}, err
		}
		fmt.Fprintf(&pre, "\x1b[48;5;%dm", n)
	}
	for _, a := range c.Attrs {
		n, ok := attrCodes[a]
		if !ok {
			var err error
			if n, err = strconv.Atoi(a); err != nil {
				return paint{}, fmt.Errorf("unknown attribute %q", a)
			}
		}
		fmt.Fprintf(&post, "\x1b[%dm", n)
	}
	post.WriteString("\x1b[0m")
	return paint{pre.String(), post.String()}, nil
}

// Validate reports the first slot whose colour or attribute is unknown.
func (t *Theme) Validate() error {
	for _, k := range ThemeKeys {
		c, _ := t.Slot(k)
		if _, err := c.compile(); err != nil {
			return fmt.Errorf("theme slot %s: %w", k, err)
		}
	}
	return nil
}
