package open

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/skeinhq/skein/internal/pgtest"
	"github.com/skeinhq/skein/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Main(m)) }

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		dsn     string
		want    Target
		wantErr string
	}{
		{"", Target{SQLite, "./skein.db"}, ""},
		{"jobs.db", Target{SQLite, "jobs.db"}, ""},
		{"/var/lib/skein/jobs.db", Target{SQLite, "/var/lib/skein/jobs.db"}, ""},
		{"./odd://dir/x.db", Target{SQLite, "./odd://dir/x.db"}, ""},
		{"sqlite://./skein.db", Target{SQLite, "./skein.db"}, ""},
		{"sqlite:///var/lib/skein.db", Target{SQLite, "/var/lib/skein.db"}, ""},
		{"SQLITE://x.db", Target{SQLite, "x.db"}, ""},
		{"postgres://u:p@127.0.0.1:5432/db?sslmode=disable", Target{Postgres, "postgres://u:p@127.0.0.1:5432/db?sslmode=disable"}, ""},
		{"postgresql://localhost/db", Target{Postgres, "postgresql://localhost/db"}, ""},
		{"postgres:///db?host=/run/postgresql", Target{Postgres, "postgres:///db?host=/run/postgresql"}, ""},
		{"sqlite://", Target{}, "no file path"},
		{"sqlite://x.db?mode=ro", Target{}, "no query parameters"},
		{"x.db?cache=shared", Target{}, "cannot contain '?'"},
		{"mysql://u:secret@h/db", Target{}, `unknown scheme "mysql"`},
		{"postgres:///db", Target{}, "no host"},
		{"postgres://u:secret@h:bad/db", Target{}, "xxxxx"},
	} {
		got, err := Parse(tc.dsn)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Parse(%q) = %v, %v; want an error containing %q", tc.dsn, got, err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("Parse(%q): error %q shows the password", tc.dsn, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.dsn, got, err, tc.want)
		}
	}
}

func TestTargetString(t *testing.T) {
	for _, tc := range []struct {
		t    Target
		want string
	}{
		{Target{SQLite, "x.db"}, "sqlite x.db"},
		{Target{Postgres, "postgres://u:secret@h/db"}, "postgres postgres://u:xxxxx@h/db"},
		{Target{Postgres, "postgres://u@h/db"}, "postgres postgres://u@h/db"},
		{Target{Postgres, "postgres://u:secret@h:bad/db"}, "postgres postgres://u:xxxxx@h:bad/db"},
		{Target{Postgres, "postgres://u:se@cret@h:bad/db"}, "postgres postgres://u:xxxxx@h:bad/db"},
	} {
		if got := tc.t.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.t, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "x.db", "sqlite://x", "sqlite:///a/b", "postgres://u:p@h:1/d?x=y", "postgresql://h", "a://b", "://", "x?y", "postgres://%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		got, err := Parse(dsn)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("Parse(%q): empty error", dsn)
			}
			return
		}
		if got.Driver != SQLite && got.Driver != Postgres {
			t.Fatalf("Parse(%q): driver %q", dsn, got.Driver)
		}
		if got.Path == "" {
			t.Fatalf("Parse(%q): empty path", dsn)
		}
		if got.Driver == SQLite && strings.ContainsRune(got.Path, '?') {
			t.Fatalf("Parse(%q): SQLite path with '?': %q", dsn, got.Path)
		}
		if r := Redact(dsn); strings.Contains(dsn, "://") && strings.Count(r, "xxxxx") < strings.Count(dsn, "xxxxx") {
			t.Fatalf("Redact(%q) = %q lost text", dsn, r)
		}
		// Parsing is stable: a Postgres target's path parses to itself.
		if got.Driver == Postgres {
			again, err := Parse(got.Path)
			if err != nil || again != got {
				t.Fatalf("Parse(Parse(%q).Path) = %+v, %v; want %+v", dsn, again, err, got)
			}
		}
	})
}

func TestOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsns := map[string]string{
		"sqlite path": filepath.Join(t.TempDir(), "a.db"),
		"sqlite url":  "sqlite://" + filepath.Join(t.TempDir(), "b.db"),
	}
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		check(t, ctx, dsn, "postgres")
	})
	for name, dsn := range dsns {
		t.Run(name, func(t *testing.T) { check(t, ctx, dsn, "sqlite") })
	}
}

func check(t *testing.T, ctx context.Context, dsn, driver string) {
	s, err := Open(ctx, dsn, nil)
	if err != nil {
		t.Fatalf("Open(%q): %v", dsn, err)
	}
	defer s.Close()
	if s.Name() != driver {
		t.Errorf("driver %q, want %q", s.Name(), driver)
	}
	if err := s.CheckSchema(ctx); !errors.Is(err, store.ErrSchemaVersion) {
		t.Errorf("CheckSchema before migrating = %v, want ErrSchemaVersion", err)
	}
	s2, err := Open(ctx, dsn, &Opts{AutoMigrate: true})
	if err != nil {
		t.Fatalf("Open with AutoMigrate: %v", err)
	}
	defer s2.Close()
	if err := s.CheckSchema(ctx); err != nil {
		t.Errorf("CheckSchema after AutoMigrate: %v", err)
	}
}

func TestOpenBadDSN(t *testing.T) {
	if _, err := Open(context.Background(), "redis://h", nil); err == nil || !strings.Contains(err.Error(), "unknown scheme") {
		t.Errorf("Open(redis://h) = %v, want an unknown scheme error", err)
	}
}
