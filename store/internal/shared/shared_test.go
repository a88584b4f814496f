package shared

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"

	"github.com/skeinhq/skein/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []Cursor{
		{time.Date(2026, 11, 22, 16, 0, 0, 123456000, time.UTC), "wf_abc"},
		{time.Unix(0, 0).UTC(), "x|y"},
		{time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), "ünïcode"},
	} {
		got, err := DecodeCursor(EncodeCursor(c))
		if err != nil || !got.CreatedAt.Equal(c.CreatedAt) || got.ID != c.ID {
			t.Errorf("round trip of %+v = %+v, %v", c, got, err)
		}
	}
}

func TestDecodeCursorErrors(t *testing.T) {
	for _, s := range []string{"%%", "bm9waXBl" /* nopipe */, "eHx5" /* x|y */, "MTJ8" /* 12| */} {
		if _, err := DecodeCursor(s); err == nil || !strings.Contains(err.Error(), "field Cursor") {
			t.Errorf("DecodeCursor(%q) = %v, want an error naming field Cursor", s, err)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeCursor(Cursor{time.Now(), "wf_1"}))
	f.Add("")
	f.Add("MTJ8eA")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeCursor(s)
		if err != nil {
			return
		}
		if c.ID == "" {
			t.Fatalf("DecodeCursor(%q): empty id accepted", s)
		}
		again, err := DecodeCursor(EncodeCursor(c))
		if err != nil || again != c {
			t.Fatalf("re-encoding %+v gave %+v, %v", c, again, err)
		}
	})
}

func TestLoadMigrations(t *testing.T) {
	good := fstest.MapFS{
		"m/001_init.up.sql":   {Data: []byte("up1")},
		"m/001_init.down.sql": {Data: []byte("down1")},
		"m/002_more.up.sql":   {Data: []byte("up2")},
		"m/002_more.down.sql": {Data: []byte("down2")},
	}
	ms, err := LoadMigrations(good, "m")
	if err != nil || len(ms) != 2 || ms[0].Name != "init" || ms[1].Up != "up2" || ms[1].Down != "down2" {
		t.Fatalf("LoadMigrations = %+v, %v", ms, err)
	}
	for _, tc := range []struct {
		name  string
		files fstest.MapFS
		want  string
	}{
		{"bad name", fstest.MapFS{"m/1_init.up.sql": {}}, "1_init.up.sql: name is not"},
		{"gap", fstest.MapFS{"m/002_x.up.sql": {Data: []byte("x")}, "m/002_x.down.sql": {Data: []byte("x")}}, "version 1 missing"},
		{"no down", fstest.MapFS{"m/001_x.up.sql": {Data: []byte("x")}}, "needs both"},
		{"two names", fstest.MapFS{"m/001_x.up.sql": {Data: []byte("x")}, "m/001_y.down.sql": {Data: []byte("x")}}, "two names"},
		{"no dir", fstest.MapFS{}, "reading migrations"},
	} {
		if _, err := LoadMigrations(tc.files, "m"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: LoadMigrations = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestPlan(t *testing.T) {
	all := []MigrationFile{{Migration: store.Migration{Version: 1}}, {Migration: store.Migration{Version: 2}}, {Migration: store.Migration{Version: 3}}}
	v := func(n int) *store.MigrateOpts { return &store.MigrateOpts{TargetVersion: &n} }
	for _, tc := range []struct {
		name    string
		current int
		up      bool
		opts    *store.MigrateOpts
		want    []int
		wantErr string
	}{
		{"up all", 0, true, nil, []int{1, 2, 3}, ""},
		{"up from 1", 1, true, nil, []int{2, 3}, ""},
		{"up to 2", 0, true, v(2), []int{1, 2}, ""},
		{"up nothing", 3, true, nil, nil, ""},
		{"down one", 3, false, nil, []int{3}, ""},
		{"down to 0", 3, false, v(0), []int{3, 2, 1}, ""},
		{"down at 0", 0, false, nil, nil, ""},
		{"up below current", 2, true, v(1), nil, "below the current"},
		{"down above current", 1, false, v(2), nil, "above the current"},
		{"out of range", 0, true, v(9), nil, "out of range"},
		{"newer database", 5, true, nil, nil, "newer than version 3"},
	} {
		got, err := Plan(all, tc.current, tc.up, tc.opts)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: Plan = %v, want an error containing %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		var vs []int
		for _, m := range got {
			vs = append(vs, m.Version)
		}
		if err != nil || len(vs) != len(tc.want) || (len(vs) > 0 && !equal(vs, tc.want)) {
			t.Errorf("%s: Plan = %v, %v, want %v", tc.name, vs, err, tc.want)
		}
	}
}

func equal(a, b []int) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

func TestHub(t *testing.T) {
	h := NewHub()
	a, all := h.Subscribe([]string{"a"}), h.Subscribe(nil)
	h.Notify("b")
	select {
	case q := <-a.C():
		t.Fatalf("subscription to a got %q", q)
	default:
	}
	if q := <-all.C(); q != "b" {
		t.Fatalf("subscription to all got %q, want b", q)
	}
	// Hints coalesce: many notifications never block and never exceed the buffer.
	for range 10 * SubBuffer {
		h.Notify("a")
	}
	if n := len(a.C()); n != SubBuffer {
		t.Errorf("%d hints buffered, want %d", n, SubBuffer)
	}
	h.Notify("") // wakes everyone, whatever their queues
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if h.Len() != 1 {
		t.Errorf("%d subscriptions after one closed, want 1", h.Len())
	}
	h.Close()
	for range all.C() {
	}
	if _, ok := <-h.Subscribe(nil).C(); ok {
		t.Errorf("a subscription to a closed hub is open")
	}
	if err := all.Close(); err != nil {
		t.Errorf("Close after the hub closed: %v", err)
	}
}
