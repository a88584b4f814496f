package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/internal/shared"
)

const migrationsTable = `CREATE TABLE IF NOT EXISTS skein_migrations (
	version    INTEGER PRIMARY KEY NOT NULL,
	name       TEXT NOT NULL,
	applied_at INTEGER NOT NULL
) STRICT`

// applied returns the applied versions; the table may not exist yet.
func applied(ctx context.Context, q execer) (int, map[int]time.Time, error) {
	var exists int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'skein_migrations'`).Scan(&exists); err != nil {
		return 0, nil, fmt.Errorf("reading the schema version: %w", err)
	}
	out := map[int]time.Time{}
	if exists == 0 {
		return 0, out, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT version, applied_at FROM skein_migrations`)
	if err != nil {
		return 0, nil, fmt.Errorf("reading the schema version: %w", err)
	}
	defer rows.Close()
	current := 0
	for rows.Next() {
		var v int
		var at int64
		if err := rows.Scan(&v, &at); err != nil {
			return 0, nil, fmt.Errorf("reading the schema version: %w", err)
		}
		out[v] = time.UnixMicro(at).UTC()
		current = max(current, v)
	}
	return current, out, rows.Err()
}

func (s *Store) migrate(ctx context.Context, up bool, opts *store.MigrateOpts) ([]store.Migration, error) {
	var done []store.Migration
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, migrationsTable); err != nil {
			return fmt.Errorf("migrate: creating the migrations table: %w", err)
		}
		var err error
		done, err = shared.Migrate(migrations, up, opts, shared.MigrationTx{
			Current: func() (int, error) {
				current, _, err := applied(ctx, tx)
				return current, err
			},
			Run: func(body string) error {
				_, err := tx.ExecContext(ctx, body)
				return err
			},
			Record: func(m shared.MigrationFile, up bool) error {
				var err error
				if up {
					_, err = tx.ExecContext(ctx, `INSERT INTO skein_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
						m.Version, m.Name, time.Now().UnixMicro())
				} else {
					_, err = tx.ExecContext(ctx, `DELETE FROM skein_migrations WHERE version = ?`, m.Version)
				}
				return err
			},
		})
		return err
	})
	return done, err
}

// MigrateUp implements store.Store.
func (s *Store) MigrateUp(ctx context.Context, opts *store.MigrateOpts) ([]store.Migration, error) {
	if err := s.checkOpen("migrate up"); err != nil {
		return nil, err
	}
	return s.migrate(ctx, true, opts)
}

// MigrateDown implements store.Store.
func (s *Store) MigrateDown(ctx context.Context, opts *store.MigrateOpts) ([]store.Migration, error) {
	if err := s.checkOpen("migrate down"); err != nil {
		return nil, err
	}
	return s.migrate(ctx, false, opts)
}

// SchemaStatus implements store.Store.
func (s *Store) SchemaStatus(ctx context.Context) (*store.SchemaStatus, error) {
	if err := s.checkOpen("reading the schema status"); err != nil {
		return nil, err
	}
	current, at, err := applied(ctx, s.reader)
	if err != nil {
		return nil, err
	}
	return shared.Status(migrations, current, at), nil
}

// CheckSchema implements store.Store.
func (s *Store) CheckSchema(ctx context.Context) error {
	if err := s.checkOpen("checking the schema"); err != nil {
		return err
	}
	current, _, err := applied(ctx, s.reader)
	if err != nil {
		return err
	}
	if current != SchemaVersion {
		return fmt.Errorf("sqlite store %s: %w", s.path, &store.SchemaVersionError{Database: current, Code: SchemaVersion})
	}
	return nil
}

// setSchemaVersion records v as the newest applied version without running
// anything, to simulate a database migrated by a newer skein (tests).
func setSchemaVersion(ctx context.Context, s *Store, v int) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, migrationsTable); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO skein_migrations (version, name, applied_at) VALUES (?, 'test', ?)`, v, time.Now().UnixMicro())
		return err
	})
}
