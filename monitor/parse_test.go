package monitor

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseInterval(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"5M", 5 * time.Minute, ""},
		{"20S", 20 * time.Second, ""},
		{"1H30M", 90 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"2D", 48 * time.Hour, ""},
		{"1D2H3M4S", 26*time.Hour + 3*time.Minute + 4*time.Second, ""},
		{"0S", 0, ""},
		{"", 0, "empty"},
		{"5", 0, "has no unit"},
		{"M", 0, "expected a number"},
		{"5X", 0, `unexpected "X"`},
		{"30M1H", 0, `unexpected "H"`},
		{"1M1M", 0, `unexpected "M"`},
		{"1H 2M", 0, `expected a number`},
		{"99999999999999999999S", 0, "too large"},
		{"40000D", 0, "longer than 100 years"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseInterval(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), `"`+tt.in+`"`) {
					t.Fatalf("ParseInterval(%q) error %v, want one containing %q and the input", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseInterval(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParsePoint(t *testing.T) {
	tests := []struct {
		in      string
		want    Point
		wantErr bool
	}{
		{"1155224673000211000", Point{Key: 1155224673000211000, IsKey: true}, false},
		{"5M", Point{Ago: 5 * time.Minute}, false},
		{"-3", Point{Key: -3, IsKey: true}, false},
		{"", Point{}, true},
		{"5Q", Point{}, true},
	}
	for _, tt := range tests {
		got, err := ParsePoint("at:", tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParsePoint(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), `"at:"`) {
			t.Errorf("ParsePoint(%q) error %q does not name the modifier", tt.in, err)
		}
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		words   []string
		pos     []string
		named   map[string]string
		wantErr string
	}{
		{nil, nil, map[string]string{}, ""},
		{[]string{"a", "b"}, []string{"a", "b"}, map[string]string{}, ""},
		{[]string{"a", "queue:", "agent:main"}, []string{"a"}, map[string]string{"queue": "", "agent": "main"}, ""},
		{[]string{"end:since1H,before5M"}, nil, map[string]string{"end": "since1H,before5M"}, ""},
		{[]string{"url:http://x"}, nil, map[string]string{"url": "http://x"}, ""},
		{[]string{"queue:a", "b"}, nil, nil, `positional word "b" comes after modifier "queue:a"`},
		{[]string{":x"}, nil, nil, `modifier ":x" has no name`},
		{[]string{"a:1", "a:2"}, nil, nil, `modifier "a:" given twice`},
	}
	for _, tt := range tests {
		got, err := ParseArgs(tt.words)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseArgs(%q) error %v, want %q", tt.words, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got.Pos, tt.pos) || !reflect.DeepEqual(got.Named, tt.named) {
			t.Errorf("ParseArgs(%q) = %+v, %v; want %v %v", tt.words, got, err, tt.pos, tt.named)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, `{"seconds":0.0}`},
		{5 * time.Second, `{"seconds":5.0}`},
		{1500 * time.Millisecond, `{"seconds":1.5}`},
		{211 * time.Microsecond, `{"seconds":0.000211}`},
		{time.Minute, `{"minutes":1}`},
		{26*time.Hour + 3*time.Minute + 4*time.Second, `{"days":1,"hours":2,"minutes":3,"seconds":4.0}`},
		{-time.Second, `{"seconds":0.0}`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(Duration(tt.d))
		if err != nil || string(got) != tt.want {
			t.Errorf("Duration(%v) = %s, %v; want %s", tt.d, got, err, tt.want)
		}
	}
}

func TestTimeJSON(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, `null`},
		{seedStart, `"2006-08-10T15:44:22.000211Z"`},
		{time.Date(2006, 8, 10, 16, 44, 22, 0, paris), `"2006-08-10T15:44:22.000000Z"`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(Time(tt.t))
		if err != nil || string(got) != tt.want {
			t.Errorf("Time(%v) = %s, %v; want %s", tt.t, got, err, tt.want)
		}
	}
}

func TestRenderSortsAndIndents(t *testing.T) {
	got, err := Render(map[string]any{"b": 1, "a": map[string]any{"z": nil, "y": Duration(time.Second)}, "c": "<&>"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{
    "a": {
        "y": {
            "seconds": 1.0
        },
        "z": null
    },
    "b": 1,
    "c": "<&>"
}`
	if got != want {
		t.Errorf("Render:\n%s\nwant:\n%s", got, want)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{DeadAfter: -1}, "DeadAfter"},
		{Config{StuckGrace: -1}, "StuckGrace"},
		{Config{MaxResultChars: -1}, "MaxResultChars"},
		{Config{ScanLimit: -1}, "ScanLimit"},
		{Config{Dispatchers: []Dispatcher{nil}}, "Dispatchers[0]"},
	} {
		if _, err := New(&tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) error %v, want one naming %s", tt.cfg, err, tt.want)
		}
	}
	for _, tt := range []struct {
		cfg  ServerConfig
		want string
	}{
		{ServerConfig{MaxLineBytes: 3}, "MaxLineBytes"},
		{ServerConfig{IdleTimeout: -1}, "IdleTimeout"},
		{ServerConfig{WriteTimeout: -1}, "WriteTimeout"},
		{ServerConfig{CommandTimeout: -1}, "CommandTimeout"},
		{ServerConfig{MaxConns: -1}, "MaxConns"},
	} {
		m, _ := New(nil)
		if _, err := NewServer(m, &tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewServer(%+v) error %v, want one naming %s", tt.cfg, err, tt.want)
		}
	}
}

func TestNoDispatcher(t *testing.T) {
	m, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"async status", "async UUID", "async jobs", "async polls"} {
		if _, err := m.Exec(context.Background(), cmd); err == nil || !strings.Contains(err.Error(), "no dispatcher runs in this process") {
			t.Errorf("%s without a dispatcher: %v", cmd, err)
		}
	}
	if out, err := m.Exec(context.Background(), "async utcnow"); err != nil || !strings.HasSuffix(out, "Z") {
		t.Errorf("async utcnow = %q, %v", out, err)
	}
}

// FuzzExec runs any command line: it never panics, and an error is one
// line.
func FuzzExec(f *testing.F) {
	for _, s := range []string{
		"async status", "async polls since:10M before:5M", "async jobstats queue: agent:main since:1H",
		"async poll at:1155224673000211000", "help async", "async help polls", "asyncdb jobs pending kind:send_*",
		"async polls at:5M before:1M", "async jobs queue:a b", ":", "async polls count:-1", "async \x00 ::",
		"async polls since:99999999999999999999D", "async job j30",
	} {
		f.Add(s)
	}
	m, d := newSeedMonitorF(f)
	d.put("j30", "send", "default")
	d.poll()
	f.Fuzz(func(t *testing.T, line string) {
		out, err := m.Exec(context.Background(), line)
		if err != nil {
			if strings.Contains(oneLine(err.Error()), "\n") {
				t.Fatalf("error with a line break: %q", err)
			}
			return
		}
		if (strings.HasPrefix(out, "{") || strings.HasPrefix(out, "[")) && !json.Valid([]byte(out)) {
			t.Fatalf("%q: answer is not valid JSON:\n%s", line, out)
		}
	})
}

// FuzzParseInterval: any input parses or fails cleanly, and what parses
// is within bounds.
func FuzzParseInterval(f *testing.F) {
	for _, s := range []string{"5M", "1H30M", "1D2H3M4S", "", "5", "5X", "99999999999S", "0s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseInterval(s)
		if err == nil && (d < 0 || d > maxInterval) {
			t.Fatalf("ParseInterval(%q) = %v, out of bounds", s, d)
		}
	})
}

func newSeedMonitorF(f *testing.F) (*Monitor, *fakeDispatcher) {
	clock := &fakeClock{now: seedStart}
	d := newFakeDispatcher(clock, seedUUID, 5*time.Second)
	d.addAgent("main", 3)
	d.start()
	d.poll()
	m, err := New(&Config{Dispatchers: []Dispatcher{d}, Now: clock.Now})
	if err != nil {
		f.Fatal(err)
	}
	return m, d
}
