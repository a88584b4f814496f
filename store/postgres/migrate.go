package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/internal/shared"
)

// migrateLock is the advisory lock key that serialises migrations.
const migrateLock = 0x736b65696e // "skein"

const migrationsTable = `CREATE TABLE IF NOT EXISTS skein_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// applied returns the applied versions; the table may not exist yet.
func applied(ctx context.Context, q querier) (int, map[int]time.Time, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('skein_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, nil, fmt.Errorf("reading the schema version: %w", err)
	}
	out := map[int]time.Time{}
	if !exists {
		return 0, out, nil
	}
	rows, err := q.Query(ctx, `SELECT version, applied_at FROM skein_migrations`)
	if err != nil {
		return 0, nil, fmt.Errorf("reading the schema version: %w", err)
	}
	current := 0
	var (
		v  int
		at time.Time
	)
	if _, err := pgx.ForEachRow(rows, []any{&v, &at}, func() error {
		out[v] = at.UTC()
		current = max(current, v)
		return nil
	}); err != nil {
		return 0, nil, fmt.Errorf("reading the schema version: %w", err)
	}
	return current, out, nil
}

func (s *Store) migrate(ctx context.Context, up bool, opts *store.MigrateOpts) ([]store.Migration, error) {
	var done []store.Migration
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
			return fmt.Errorf("migrate: taking the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, migrationsTable); err != nil {
			return fmt.Errorf("migrate: creating the migrations table: %w", err)
		}
		var err error
		done, err = shared.Migrate(migrations, up, opts, shared.MigrationTx{
			Current: func() (int, error) {
				current, _, err := applied(ctx, tx)
				return current, err
			},
			Run: func(body string) error {
				_, err := tx.Exec(ctx, body)
				return err
			},
			Record: func(m shared.MigrationFile, up bool) error {
				var err error
				if up {
					_, err = tx.Exec(ctx, `INSERT INTO skein_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
				} else {
					_, err = tx.Exec(ctx, `DELETE FROM skein_migrations WHERE version = $1`, m.Version)
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
	current, at, err := applied(ctx, s.pool)
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
	current, _, err := applied(ctx, s.pool)
	if err != nil {
		return err
	}
	if current != SchemaVersion {
		return fmt.Errorf("postgres store: %w", &store.SchemaVersionError{Database: current, Code: SchemaVersion})
	}
	return nil
}

// setSchemaVersion records v as applied without running anything (tests).
func setSchemaVersion(ctx context.Context, s *Store, v int) error {
	if _, err := s.pool.Exec(ctx, migrationsTable); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO skein_migrations (version, name) VALUES ($1, 'test') ON CONFLICT (version) DO NOTHING`, v)
	return err
}
