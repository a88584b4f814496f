// Package open turns a store DSN into a [store.Store], so that every skein
// command (and applications) name their store the same way:
//
//	./skein.db, /var/lib/skein.db      SQLite file (a plain path)
//	sqlite://./skein.db                SQLite, relative path
//	sqlite:///var/lib/skein.db         SQLite, absolute path
//	postgres://user:pass@host/db?...   PostgreSQL (also postgresql://)
//
// The empty DSN means [DefaultDSN].
package open

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/postgres"
	"github.com/skeinhq/skein/store/sqlite"
)

// DefaultDSN is the store used when none is given: a SQLite file in the
// working directory.
const DefaultDSN = "./skein.db"

// EnvStore is the environment variable the CLI reads when --store is not
// given.
const EnvStore = "SKEIN_STORE"

// Driver names.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Target is a parsed DSN.
type Target struct {
	// Driver is SQLite or Postgres.
	Driver string
	// Path of the SQLite file, or the PostgreSQL connection string.
	Path string
}

// String is the target with any password hidden, for messages.
func (t Target) String() string {
	if t.Driver == SQLite {
		return "sqlite " + t.Path
	}
	return "postgres " + Redact(t.Path)
}

// Parse parses a DSN (see the package doc).
func Parse(dsn string) (Target, error) {
	if dsn == "" {
		dsn = DefaultDSN
	}
	scheme, rest, hasScheme := strings.Cut(dsn, "://")
	if !hasScheme || strings.ContainsAny(scheme, `/\.`) {
		// A plain path (possibly with "://" further on, e.g. in a dir name).
		if strings.ContainsRune(dsn, '?') {
			return Target{}, fmt.Errorf("store %q: a SQLite path cannot contain '?'", dsn)
		}
		return Target{Driver: SQLite, Path: dsn}, nil
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3":
		if rest == "" {
			return Target{}, fmt.Errorf("store %q: no file path after sqlite://", dsn)
		}
		if strings.ContainsRune(rest, '?') {
			return Target{}, fmt.Errorf("store %q: sqlite:// takes no query parameters", dsn)
		}
		return Target{Driver: SQLite, Path: rest}, nil
	case "postgres", "postgresql":
		u, err := url.Parse(dsn)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // without the URL, which holds the password
			}
			return Target{}, fmt.Errorf("store %q: %w", Redact(dsn), err)
		}
		if u.Host == "" && u.Query().Get("host") == "" {
			return Target{}, fmt.Errorf("store %q: no host (want postgres://user@host:port/database)", Redact(dsn))
		}
		return Target{Driver: Postgres, Path: dsn}, nil
	default:
		return Target{}, fmt.Errorf("store %q: unknown scheme %q (want a SQLite path, sqlite://PATH or postgres://...)", Redact(dsn), scheme)
	}
}

// Redact hides the password of a URL-shaped DSN, even one that does not
// parse.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err == nil {
		if u.User == nil {
			return dsn
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.String()
	}
	_, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	start := len(dsn) - len(rest)
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return dsn
	}
	colon := strings.Index(authority[:at], ":")
	if colon < 0 {
		return dsn
	}
	return dsn[:start+colon+1] + "xxxxx" + dsn[start+at:]
}

// Opts configures [Open].
type Opts struct {
	// AutoMigrate applies pending migrations when opening. Defaults to
	// false.
	AutoMigrate bool
	// Logger receives the driver's background messages (PostgreSQL
	// listener reconnects). Defaults to discarding them.
	Logger *slog.Logger
}

// Open opens the store dsn names. A nil opts means the defaults.
func Open(ctx context.Context, dsn string, opts *Opts) (store.Store, error) {
	if opts == nil {
		opts = &Opts{}
	}
	t, err := Parse(dsn)
	if err != nil {
		return nil, err
	}
	switch t.Driver {
	case SQLite:
		return sqlite.Open(ctx, &sqlite.Config{Path: t.Path, AutoMigrate: opts.AutoMigrate})
	default:
		return postgres.Open(ctx, &postgres.Config{DSN: t.Path, AutoMigrate: opts.AutoMigrate, Logger: opts.Logger})
	}
}
