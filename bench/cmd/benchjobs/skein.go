package main

import (
	"context"
	"fmt"
)

// newSkein measures skein's job system on PostgreSQL (dsn postgres://…) or
// SQLite (a file path).
func newSkein(ctx context.Context, name, dsn string) (system, error) {
	return nil, fmt.Errorf("%s: not wired yet", name)
}
