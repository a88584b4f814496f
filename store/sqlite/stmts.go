package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache holds statements prepared once on the writer, by SQL text, so
// that the hot statements (insert, claim, finish) are not parsed again in
// every write transaction: parsing was a sixth of the CPU time of running
// short jobs. The writer has a single connection, which a transaction holds:
// get must be called before the caller's own transaction begins.
type stmtCache struct {
	mu     sync.Mutex
	m      map[string]*sql.Stmt
	closed bool
}

// maxCachedStmts bounds the cache: claim statements differ by the number of
// queues and kinds an agent names, so a handful exist in practice.
const maxCachedStmts = 64

// get returns query prepared on db, or nil when it cannot be prepared now
// (the caller then prepares it in its transaction, where the error shows).
func (c *stmtCache) get(ctx context.Context, db *sql.DB, query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	if st, ok := c.m[query]; ok {
		return st
	}
	if len(c.m) >= maxCachedStmts {
		return nil
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = st
	return st
}

// close closes every cached statement; later gets return nil.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, st := range c.m {
		_ = st.Close()
	}
	clear(c.m)
}

// txStmt returns query for tx: cached bound to tx (no new parse, as tx runs
// on the connection cached was prepared on), or, when cached is nil,
// prepared in tx.
func txStmt(ctx context.Context, tx *sql.Tx, cached *sql.Stmt, query string) (*sql.Stmt, error) {
	if cached != nil {
		return tx.StmtContext(ctx, cached), nil
	}
	return tx.PrepareContext(ctx, query)
}
