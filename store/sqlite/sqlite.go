// Package sqlite is the embedded skein store: one SQLite file in WAL mode,
// through the pure-Go modernc.org/sqlite driver (no cgo).
//
// Several processes on one machine may share the file. Within a process all
// writes go through one connection (BEGIN IMMEDIATE), so claimers never
// fight over the write lock; between processes the busy timeout makes a
// writer wait for the other's transaction. Reads use a separate pool and do
// not wait for writers (WAL).
//
// Concurrent inserts of fewer than 64 jobs, claims and outcomes are
// combined: calls of one kind that arrive while a write transaction runs
// share the next one (each insert call under its own savepoint, so an error
// stays with its call). The statements of these hot paths are prepared once
// on the writer connection and reused.
//
// Checkpoints run in the background on a connection of their own
// ([Config.CheckpointInterval]), not inside a commit: SQLite's automatic
// checkpoint would make the write that crosses its mark, and every write
// queued behind it, wait for the copy.
//
// Notifications ([store.Store.Subscribe]) are an in-process signal shared by
// every Store on the same file in one process. Another process's inserts are
// not signalled: its jobs are seen at the next poll (default every 1 s).
//
// Transactional insert ([store.Store.InsertTx]) takes a *sql.Tx on the same
// file; open that database with [OpenDB] so that it has the same settings.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/internal/shared"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

var migrations = func() []shared.MigrationFile {
	m, err := shared.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		panic("store/sqlite: " + err.Error())
	}
	return m
}()

// SchemaVersion is the schema version this code expects.
var SchemaVersion = len(migrations)

// Config configures [Open].
type Config struct {
	// Path of the database file; created when missing. Required.
	Path string
	// BusyTimeout is how long a statement waits for another process's
	// write lock before failing with SQLITE_BUSY. Defaults to 10 s.
	BusyTimeout time.Duration
	// MaxReaders is the number of read connections. Defaults to 4.
	MaxReaders int
	// FullSync makes every commit durable against power loss
	// (synchronous=FULL). Defaults to false: synchronous=NORMAL, durable
	// against a crash of the process, as is usual with WAL.
	FullSync bool
	// AutoMigrate applies pending migrations in Open. Defaults to false:
	// run `skein migrate up` (or MigrateUp) first.
	AutoMigrate bool
	// CheckpointInterval is how long the store lets writes accumulate in
	// the write-ahead log before a background goroutine copies them into
	// the database file (a PASSIVE checkpoint, which never blocks writes),
	// so that no insert, claim or finish pays for a checkpoint inside its
	// commit. Defaults to 50 ms; negative leaves checkpoints to SQLite's
	// automatic ones (every 1000 WAL pages, inside the commit that crosses
	// the mark). Durability is the same either way.
	CheckpointInterval time.Duration
}

// Defaults of Config.
const (
	DefaultBusyTimeout        = 10 * time.Second
	DefaultMaxReaders         = 4
	DefaultCheckpointInterval = 50 * time.Millisecond
)

// Store is the SQLite store. Create it with [Open].
type Store struct {
	path   string
	writer *sql.DB
	reader *sql.DB
	hub    *hubRef

	// Concurrent small inserts and all outcomes are combined: calls that
	// arrive while a write transaction runs share the next one.
	gate     shared.Gate
	inserts  *shared.Combiner[insertCall]
	finishes *shared.Combiner[finishCall]
	claims   *shared.Combiner[claimCall]
	stmts    stmtCache
	// ckpt is the checkpointer's connection and checkpoint wakes it after
	// a write commit; both nil when CheckpointInterval is negative.
	ckpt       *sql.DB
	checkpoint chan struct{}
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file. It does not check the
// schema version unless AutoMigrate is set; callers use CheckSchema.
func Open(ctx context.Context, cfg *Config) (*Store, error) {
	if cfg == nil || cfg.Path == "" {
		return nil, errors.New("opening sqlite store: field Path is empty")
	}
	c := *cfg
	if c.BusyTimeout == 0 {
		c.BusyTimeout = DefaultBusyTimeout
	}
	if c.MaxReaders == 0 {
		c.MaxReaders = DefaultMaxReaders
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.BusyTimeout < 0 {
		return nil, fmt.Errorf("opening sqlite store: field BusyTimeout is negative (%s)", c.BusyTimeout)
	}
	if c.MaxReaders < 0 {
		return nil, fmt.Errorf("opening sqlite store: field MaxReaders is %d, want at least 1", c.MaxReaders)
	}
	abs, err := filepath.Abs(c.Path)
	if err != nil {
		return nil, fmt.Errorf("opening sqlite store %s: %w", c.Path, err)
	}
	writerDSN := dsn(abs, &c, false)
	if c.CheckpointInterval > 0 {
		writerDSN += "&_pragma=wal_autocheckpoint%280%29"
	}
	writer, err := sql.Open("sqlite", writerDSN)
	if err != nil {
		return nil, fmt.Errorf("opening sqlite store %s: %w", abs, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	if err := writer.PingContext(ctx); err != nil {
		_ = writer.Close()
		return nil, fmt.Errorf("opening sqlite store %s: %w", abs, err)
	}
	reader, err := sql.Open("sqlite", dsn(abs, &c, true))
	if err != nil {
		_ = writer.Close()
		return nil, fmt.Errorf("opening sqlite store %s: %w", abs, err)
	}
	reader.SetMaxOpenConns(c.MaxReaders)
	reader.SetMaxIdleConns(c.MaxReaders)
	s := &Store{path: abs, writer: writer, reader: reader, hub: acquireHub(abs)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if c.CheckpointInterval > 0 {
		ckpt, err := sql.Open("sqlite", dsn(abs, &c, false))
		if err != nil {
			s.cancel()
			releaseHub(s.hub)
			_ = reader.Close()
			_ = writer.Close()
			return nil, fmt.Errorf("opening sqlite store %s: %w", abs, err)
		}
		ckpt.SetMaxOpenConns(1)
		s.ckpt = ckpt
		s.checkpoint = make(chan struct{}, 1)
		s.wg.Go(func() { s.checkpointLoop(c.CheckpointInterval) })
	}
	s.inserts = &shared.Combiner[insertCall]{In: make(chan *insertCall), Max: maxCombined,
		Size: func(c *insertCall) int { return len(c.params) }, Run: s.runInserts}
	s.finishes = &shared.Combiner[finishCall]{In: make(chan *finishCall), Max: maxCombined,
		Size: func(c *finishCall) int { return len(c.outcomes) }, Run: s.runFinishes}
	s.claims = &shared.Combiner[claimCall]{In: make(chan *claimCall), Max: maxCombined,
		Size: func(c *claimCall) int { return c.p.Limit }, Run: s.runClaims}
	s.wg.Go(func() { s.inserts.Loop(s.ctx) })
	s.wg.Go(func() { s.finishes.Loop(s.ctx) })
	s.wg.Go(func() { s.claims.Loop(s.ctx) })
	if c.AutoMigrate {
		if _, err := s.MigrateUp(ctx, nil); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

func dsn(path string, c *Config, readOnly bool) string {
	sync := "NORMAL"
	if c.FullSync {
		sync = "FULL"
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(c.BusyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+sync+")")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// OpenDB opens a database/sql handle on the same file with the settings the
// store uses (WAL, busy timeout, BEGIN IMMEDIATE transactions), for the
// application's own transactions passed to InsertTx. A nil cfg means the
// defaults.
func OpenDB(path string, cfg *Config) (*sql.DB, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.BusyTimeout == 0 {
		c.BusyTimeout = DefaultBusyTimeout
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("opening sqlite database %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", dsn(abs, &c, false))
	if err != nil {
		return nil, fmt.Errorf("opening sqlite database %s: %w", abs, err)
	}
	return db, nil
}

// Name implements store.Store.
func (s *Store) Name() string { return "sqlite" }

// Path is the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Close implements store.Store.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.gate.Close() // waits for the calls in flight
		s.cancel()
		s.wg.Wait()
		releaseHub(s.hub)
		s.stmts.close()
		var ckptErr error
		if s.ckpt != nil {
			ckptErr = s.ckpt.Close()
		}
		s.closeErr = errors.Join(s.reader.Close(), ckptErr, s.writer.Close())
	})
	return s.closeErr
}

// ---- notifications -------------------------------------------------------

type hubRef struct {
	path string
	hub  *shared.Hub
	refs int
}

var (
	hubsMu sync.Mutex
	hubs   = map[string]*hubRef{}
)

func acquireHub(path string) *hubRef {
	hubsMu.Lock()
	defer hubsMu.Unlock()
	h := hubs[path]
	if h == nil {
		h = &hubRef{path: path, hub: shared.NewHub()}
		hubs[path] = h
	}
	h.refs++
	return h
}

func releaseHub(h *hubRef) {
	hubsMu.Lock()
	defer hubsMu.Unlock()
	h.refs--
	if h.refs == 0 {
		h.hub.Close()
		delete(hubs, h.path)
	}
}

// Subscribe implements store.Store. See the package doc for its reach.
func (s *Store) Subscribe(ctx context.Context, queues []string) (store.Subscription, error) {
	if err := s.checkOpen("subscribing"); err != nil {
		return nil, err
	}
	return s.hub.hub.Subscribe(queues), nil
}

func (s *Store) notify(queues map[string]bool) {
	for q := range queues {
		s.hub.hub.Notify(q)
	}
}

// ---- helpers -------------------------------------------------------------

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

func nowOr(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Truncate(time.Microsecond)
}

type scanner interface{ Scan(dest ...any) error }

func scanJob(r scanner) (*store.Job, error) {
	var (
		j                                    store.Job
		args, meta, errs                     string
		result, by, agent, unique            sql.NullString
		timeoutUS                            int64
		sched, created, attempted, finalized sql.NullInt64
		state                                string
	)
	if err := r.Scan(&j.ID, &j.Kind, &j.Queue, &j.Priority, &args, &meta, &state, &j.Attempt, &j.MaxAttempts, &timeoutUS,
		&sched, &created, &attempted, &finalized, &by, &agent, &j.WorkflowID, &j.TaskID, &j.Slot, &unique, &errs, &result); err != nil {
		return nil, err
	}
	j.Args = json.RawMessage(args)
	j.Metadata = json.RawMessage(meta)
	j.State = store.State(state)
	j.Timeout = time.Duration(timeoutUS) * time.Microsecond
	j.ScheduledAt = fromMicros(sched)
	j.CreatedAt = fromMicros(created)
	j.AttemptedAt = fromMicros(attempted)
	j.FinalizedAt = fromMicros(finalized)
	j.AttemptedBy = by.String
	j.AttemptedAgent = agent.String
	j.UniqueKey = unique.String
	if result.Valid {
		j.Result = json.RawMessage(result.String)
	}
	if errs != "" && errs != "[]" {
		if err := json.Unmarshal([]byte(errs), &j.Errors); err != nil {
			return nil, fmt.Errorf("job %s: decoding column errors: %w", j.ID, err)
		}
	}
	return &j, nil
}

func scanJobs(rows *sql.Rows) ([]*store.Job, error) {
	defer rows.Close()
	var out []*store.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

func isConstraint(err error, code int) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == code
}

// execer is what both *sql.DB/*sql.Tx offer.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs f in a write transaction (BEGIN IMMEDIATE) and commits.
func (s *Store) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning a write transaction on %s: %w", s.path, err)
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing on %s: %w", s.path, err)
	}
	if s.checkpoint != nil {
		select {
		case s.checkpoint <- struct{}{}:
		default:
		}
	}
	return nil
}

// ---- insert --------------------------------------------------------------

const insertSQL = `INSERT INTO skein_jobs (id, kind, queue, priority, args, metadata, state, max_attempts, timeout_us,
	scheduled_at, created_at, workflow_id, task_id, unique_key)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ` + shared.PendingStates + ` DO NOTHING`

// Insert implements store.Store.
func (s *Store) Insert(ctx context.Context, params []*store.InsertParams) ([]store.InsertResult, error) {
	if err := s.checkOpen("inserting jobs"); err != nil {
		return nil, err
	}
	if err := validateInsert(params); err != nil {
		return nil, err
	}
	if len(params) == 0 {
		return nil, nil
	}
	var (
		res    []store.InsertResult
		queues map[string]bool
		err    error
	)
	if len(params) < combineBelow {
		c := &insertCall{params: params, done: make(chan struct{})}
		if err := shared.Submit(ctx, &s.gate, s.inserts, c, c.done); err != nil {
			return nil, fmt.Errorf("inserting jobs: %w", err)
		}
		res, queues, err = c.res, c.queues, c.err
	} else {
		cached := s.stmts.get(ctx, s.writer, insertSQL)
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			var err error
			res, queues, err = insert(ctx, tx, cached, params)
			return err
		})
	}
	if err != nil {
		return nil, err
	}
	s.notify(queues)
	return res, nil
}

// Inserts of fewer jobs than combineBelow, and all outcomes, are combined
// into write transactions of up to maxCombined rows.
const (
	combineBelow = 64
	maxCombined  = 1000
)

type insertCall struct {
	params []*store.InsertParams
	res    []store.InsertResult
	queues map[string]bool
	err    error
	done   chan struct{}
}

// runInserts inserts every call in one transaction, each under a savepoint
// so that one call's error (a duplicate id) undoes only its own rows.
func (s *Store) runInserts(ctx context.Context, calls []*insertCall) {
	cached := s.stmts.get(ctx, s.writer, insertSQL)
	savepoint := s.stmts.get(ctx, s.writer, "SAVEPOINT call")
	rollback := s.stmts.get(ctx, s.writer, "ROLLBACK TO call")
	release := s.stmts.get(ctx, s.writer, "RELEASE call")
	exec := func(tx *sql.Tx, cached *sql.Stmt, query string) error {
		st, err := txStmt(ctx, tx, cached, query)
		if err != nil {
			return err
		}
		_, err = st.ExecContext(ctx)
		return err
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, c := range calls {
			if err := exec(tx, savepoint, "SAVEPOINT call"); err != nil {
				return err
			}
			c.res, c.queues, c.err = insert(ctx, tx, cached, c.params)
			if c.err != nil {
				if err := exec(tx, rollback, "ROLLBACK TO call"); err != nil {
					return err
				}
			}
			if err := exec(tx, release, "RELEASE call"); err != nil {
				return err
			}
		}
		return nil
	})
	for _, c := range calls {
		if err != nil {
			c.res, c.queues, c.err = nil, nil, fmt.Errorf("inserting jobs: %w", err)
		}
		close(c.done)
	}
}

// InsertTx implements store.Store: tx must be a *sql.Tx on the same file.
func (s *Store) InsertTx(ctx context.Context, tx any, params []*store.InsertParams) ([]store.InsertResult, error) {
	if err := s.checkOpen("inserting jobs"); err != nil {
		return nil, err
	}
	sqlTx, ok := tx.(*sql.Tx)
	if !ok {
		return nil, fmt.Errorf("inserting jobs: %T: %w (store/sqlite takes a *sql.Tx)", tx, store.ErrUnsupportedTx)
	}
	if err := validateInsert(params); err != nil {
		return nil, err
	}
	if len(params) == 0 {
		return nil, nil
	}
	res, queues, err := insert(ctx, sqlTx, nil, params)
	if err != nil {
		return nil, err
	}
	// The signal goes out before the caller commits: a waiter that comes
	// too early finds nothing and sees the jobs at its next poll.
	s.notify(queues)
	return res, nil
}

func validateInsert(params []*store.InsertParams) error {
	for i, p := range params {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("inserting jobs: params[%d]: %w", i, err)
		}
	}
	return nil
}

// insert inserts params in tx through cached (prepared on the store's writer,
// see stmtCache; nil for another connection's transaction).
func insert(ctx context.Context, tx *sql.Tx, cached *sql.Stmt, params []*store.InsertParams) ([]store.InsertResult, map[string]bool, error) {
	stmt, err := txStmt(ctx, tx, cached, insertSQL)
	if err != nil {
		return nil, nil, fmt.Errorf("inserting jobs: preparing: %w", err)
	}
	defer stmt.Close()
	now := nowOr(time.Time{})
	res := make([]store.InsertResult, len(params))
	queues := map[string]bool{}
	for i, p := range params {
		j := store.NewJob(p, now)
		var unique any
		if p.UniqueKey != "" {
			unique = p.UniqueKey
		}
		r, err := stmt.ExecContext(ctx, j.ID, j.Kind, j.Queue, j.Priority, string(j.Args), string(j.Metadata), string(j.State),
			j.MaxAttempts, j.Timeout.Microseconds(), micros(j.ScheduledAt), micros(j.CreatedAt), j.WorkflowID, j.TaskID, unique)
		if err != nil {
			if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
				return nil, nil, fmt.Errorf("inserting job %s: %w", p.ID, store.ErrJobExists)
			}
			return nil, nil, fmt.Errorf("inserting job %s: %w", p.ID, err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			row := tx.QueryRowContext(ctx, `SELECT `+shared.JobColumns+` FROM skein_jobs
				WHERE unique_key = ? AND state IN `+shared.PendingStates, p.UniqueKey)
			held, err := scanJob(row)
			if err != nil {
				return nil, nil, fmt.Errorf("inserting job %s: reading the job holding unique key %q: %w", p.ID, p.UniqueKey, err)
			}
			res[i] = store.InsertResult{Job: held, Duplicate: true}
			continue
		}
		res[i] = store.InsertResult{Job: j}
		if j.State == store.StateAvailable {
			queues[j.Queue] = true
		}
	}
	return res, queues, nil
}

// ---- claim and finish ----------------------------------------------------

// Claim implements store.Store.
func (s *Store) Claim(ctx context.Context, p *store.ClaimParams) ([]*store.Job, error) {
	if err := s.checkOpen("claiming jobs"); err != nil {
		return nil, err
	}
	if err := shared.ValidateClaim(p); err != nil {
		return nil, err
	}
	c := &claimCall{p: p, done: make(chan struct{})}
	if err := shared.Submit(ctx, &s.gate, s.claims, c, c.done); err != nil {
		return nil, fmt.Errorf("claiming jobs: %w", err)
	}
	if c.err != nil {
		return nil, c.err
	}
	slices.SortFunc(c.jobs, func(a, b *store.Job) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), a.ScheduledAt.Compare(b.ScheduledAt), strings.Compare(a.ID, b.ID))
	})
	return c.jobs, nil
}

type claimCall struct {
	p    *store.ClaimParams
	jobs []*store.Job
	err  error
	done chan struct{}
}

// runClaims runs concurrent claims in one write transaction, one after the
// other; a dispatcher that is not alive fails only its own call.
func (s *Store) runClaims(ctx context.Context, calls []*claimCall) {
	// Statements are taken from the cache before the transaction holds
	// the writer's only connection.
	alive := s.stmts.get(ctx, s.writer, aliveSQL)
	queries := make([]string, len(calls))
	args := make([][]any, len(calls))
	cached := make([]*sql.Stmt, len(calls))
	for i, c := range calls {
		queries[i], args[i] = claimQuery(c.p)
		cached[i] = s.stmts.get(ctx, s.writer, queries[i])
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		checked := map[string]error{}
		for i, c := range calls {
			c.jobs, c.err = nil, nil
			dead, ok := checked[c.p.Dispatcher]
			if !ok {
				st, err := txStmt(ctx, tx, alive, aliveSQL)
				if err != nil {
					return fmt.Errorf("claiming jobs: preparing: %w", err)
				}
				dead = scanAlive(st.QueryRowContext(ctx, c.p.Dispatcher), c.p.Dispatcher)
				checked[c.p.Dispatcher] = dead
			}
			if dead != nil {
				c.err = fmt.Errorf("claiming jobs: %w", dead)
				continue
			}
			st, err := txStmt(ctx, tx, cached[i], queries[i])
			if err != nil {
				return fmt.Errorf("claiming jobs: preparing: %w", err)
			}
			if c.jobs, err = claimIn(ctx, st, args[i]); err != nil {
				return err
			}
		}
		return nil
	})
	for _, c := range calls {
		if err != nil {
			c.jobs, c.err = nil, err
		}
		close(c.done)
	}
}

// claimQuery returns the claim statement for p and its arguments. Its text
// depends only on how many queues and kinds p names, so that few distinct
// statements are prepared (see stmtCache).
func claimQuery(p *store.ClaimParams) (string, []any) {
	now := nowOr(p.Now)
	b := shared.Builder{Time: func(t time.Time) any { return micros(t) }}
	b.Cond("state IN ('available', 'scheduled', 'retryable')")
	b.Cond("(state = 'available' OR scheduled_at <= " + b.Arg(micros(now)) + ")")
	b.In("queue", p.Queues)
	b.In("kind", p.Kinds)
	sub := `SELECT id FROM skein_jobs` + b.Where() + ` ORDER BY priority, scheduled_at LIMIT ` + b.Arg(p.Limit)
	args := append([]any{micros(now), p.Dispatcher, p.Agent}, b.Args...)
	return `UPDATE skein_jobs SET state = 'running', attempt = attempt + 1, slot = slot + 1,
		attempted_at = ?, attempted_by = ?, attempted_agent = ?
		WHERE id IN (` + sub + `) RETURNING ` + shared.JobColumns, args
}

// claimIn runs a claim statement (claimQuery's, bound to the transaction).
func claimIn(ctx context.Context, st *sql.Stmt, args []any) ([]*store.Job, error) {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("claiming jobs: %w", err)
	}
	jobs, err := scanJobs(rows)
	if err != nil {
		return nil, fmt.Errorf("claiming jobs: %w", err)
	}
	return jobs, nil
}

const aliveSQL = `SELECT dead_at, dead_by FROM skein_dispatchers WHERE id = ?`

func checkAlive(ctx context.Context, q execer, id string) error {
	return scanAlive(q.QueryRowContext(ctx, aliveSQL, id), id)
}

// scanAlive reads aliveSQL's row for dispatcher id.
func scanAlive(row *sql.Row, id string) error {
	var deadAt sql.NullInt64
	var deadBy sql.NullString
	err := row.Scan(&deadAt, &deadBy)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("dispatcher %s: %w", id, store.ErrDispatcherNotFound)
	}
	if err != nil {
		return fmt.Errorf("reading dispatcher %s: %w", id, err)
	}
	if deadAt.Valid {
		return &store.DispatcherDeadError{ID: id, DeadAt: fromMicros(deadAt), DeadBy: deadBy.String}
	}
	return nil
}

const finishSQL = `UPDATE skein_jobs SET
	state = ?1,
	finalized_at = ?2,
	scheduled_at = coalesce(?3, scheduled_at),
	attempt = attempt - ?4,
	result = coalesce(?5, result),
	errors = CASE WHEN ?6 IS NULL THEN errors ELSE json_insert(errors, '$[#]', json_set(json(?6), '$.attempt', attempt)) END
WHERE id = ?7 AND state = 'running' AND attempted_by = ?8 AND slot = ?9
RETURNING queue`

// Finish implements store.Store.
func (s *Store) Finish(ctx context.Context, outcomes []*store.Outcome) ([]string, error) {
	if err := s.checkOpen("finishing jobs"); err != nil {
		return nil, err
	}
	for i, o := range outcomes {
		if err := o.Validate(); err != nil {
			return nil, fmt.Errorf("finishing jobs: outcomes[%d]: %w", i, err)
		}
	}
	if len(outcomes) == 0 {
		return nil, nil
	}
	c := &finishCall{outcomes: outcomes, done: make(chan struct{})}
	if err := shared.Submit(ctx, &s.gate, s.finishes, c, c.done); err != nil {
		return nil, fmt.Errorf("finishing jobs: %w", err)
	}
	if c.err != nil {
		return nil, c.err
	}
	s.notify(c.queues)
	return c.notHeld, nil
}

type finishCall struct {
	outcomes []*store.Outcome
	notHeld  []string
	queues   map[string]bool
	err      error
	done     chan struct{}
}

// runFinishes applies every call's outcomes in one transaction, call after
// call: two outcomes for one run apply once, the second is not held.
func (s *Store) runFinishes(ctx context.Context, calls []*finishCall) {
	now := nowOr(time.Time{})
	cached := s.stmts.get(ctx, s.writer, finishSQL)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := txStmt(ctx, tx, cached, finishSQL)
		if err != nil {
			return fmt.Errorf("finishing jobs: preparing: %w", err)
		}
		defer stmt.Close()
		for _, c := range calls {
			c.notHeld, c.queues = nil, map[string]bool{}
			if err := finishIn(ctx, stmt, c, now); err != nil {
				return err
			}
		}
		return nil
	})
	for _, c := range calls {
		if err != nil {
			c.notHeld, c.queues, c.err = nil, nil, err
		}
		close(c.done)
	}
}

func finishIn(ctx context.Context, stmt *sql.Stmt, c *finishCall, now time.Time) error {
	for _, o := range c.outcomes {
		var finalized, sched, result, errJSON any
		if o.State.Final() {
			finalized = micros(now)
		}
		at := now
		if !o.At.IsZero() {
			at = nowOr(o.At)
		}
		if o.State == store.StateRetryable || o.State == store.StateScheduled {
			sched = micros(at)
		}
		if o.Result != nil {
			result = string(o.Result)
		}
		if o.Error != nil {
			e := shared.ErrorEntry(o.Error, 0, o.Slot, o.Dispatcher, now)
			e.Slot, e.Dispatcher = o.Slot, o.Dispatcher
			b, err := json.Marshal(e)
			if err != nil {
				return fmt.Errorf("finishing job %s: encoding the error: %w", o.ID, err)
			}
			errJSON = string(b)
		}
		undo := 0
		if o.UndoAttempt {
			undo = 1
		}
		var queue string
		err := stmt.QueryRowContext(ctx, string(o.State), finalized, sched, undo, result, errJSON, o.ID, o.Dispatcher, o.Slot).Scan(&queue)
		if errors.Is(err, sql.ErrNoRows) {
			c.notHeld = append(c.notHeld, o.ID)
			continue
		}
		if err != nil {
			return fmt.Errorf("finishing job %s: %w", o.ID, err)
		}
		if o.State == store.StateAvailable || (!o.State.Final() && !at.After(now)) {
			c.queues[queue] = true
		}
	}
	return nil
}

// ---- dispatchers ---------------------------------------------------------

// RegisterDispatcher implements store.Store.
func (s *Store) RegisterDispatcher(ctx context.Context, d *store.Dispatcher) error {
	if err := s.checkOpen("registering a dispatcher"); err != nil {
		return err
	}
	if err := shared.ValidateDispatcher(d); err != nil {
		return err
	}
	now := nowOr(time.Time{})
	started := d.StartedAt
	if started.IsZero() {
		started = now
	}
	agents, err := json.Marshal(nonNilAgents(d.Agents))
	if err != nil {
		return fmt.Errorf("register dispatcher %s: encoding agents: %w", d.ID, err)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO skein_dispatchers (id, host, pid, agents, started_at, heartbeat_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, agents = excluded.agents,
				started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, dead_at = NULL, dead_by = NULL`,
			d.ID, d.Host, d.PID, string(agents), micros(started), micros(now))
		if err != nil {
			return fmt.Errorf("register dispatcher %s: %w", d.ID, err)
		}
		return nil
	})
}

func nonNilAgents(a []store.Agent) []store.Agent {
	if a == nil {
		return []store.Agent{}
	}
	return a
}

// Heartbeat implements store.Store.
func (s *Store) Heartbeat(ctx context.Context, id string) error {
	if err := s.checkOpen("heartbeat"); err != nil {
		return err
	}
	now := nowOr(time.Time{})
	return s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE skein_dispatchers SET heartbeat_at = ? WHERE id = ? AND dead_at IS NULL`, micros(now), id)
		if err != nil {
			return fmt.Errorf("heartbeat of dispatcher %s: %w", id, err)
		}
		if n, _ := r.RowsAffected(); n == 1 {
			return nil
		}
		if err := checkAlive(ctx, tx, id); err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		return nil
	})
}

const releaseErrSQL = `json_object('at', ?, 'attempt', attempt, 'slot', slot, 'error', ?,
	'interrupted', json('true'), 'dispatcher', attempted_by)`

// DeregisterDispatcher implements store.Store.
func (s *Store) DeregisterDispatcher(ctx context.Context, id string) error {
	if err := s.checkOpen("deregistering a dispatcher"); err != nil {
		return err
	}
	now := nowOr(time.Time{})
	queues := map[string]bool{}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		clear(queues)
		rows, err := tx.QueryContext(ctx, `UPDATE skein_jobs SET state = 'available', attempt = attempt - 1,
			errors = json_insert(errors, '$[#]', `+releaseErrSQL+`)
			WHERE state = 'running' AND attempted_by = ? RETURNING queue`,
			now.Format(time.RFC3339Nano), "interrupted: dispatcher "+id+" stopped", id)
		if err != nil {
			return fmt.Errorf("deregister dispatcher %s: releasing its jobs: %w", id, err)
		}
		defer rows.Close()
		for rows.Next() {
			var q string
			if err := rows.Scan(&q); err != nil {
				return fmt.Errorf("deregister dispatcher %s: %w", id, err)
			}
			queues[q] = true
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("deregister dispatcher %s: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM skein_dispatchers WHERE id = ?`, id); err != nil {
			return fmt.Errorf("deregister dispatcher %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.notify(queues)
	return nil
}

const dispatcherColumns = `id, host, pid, agents, started_at, heartbeat_at, dead_at, dead_by`

func scanDispatcher(r scanner) (*store.Dispatcher, error) {
	var (
		d                 store.Dispatcher
		agents            string
		started, hb, dead sql.NullInt64
		deadBy            sql.NullString
	)
	if err := r.Scan(&d.ID, &d.Host, &d.PID, &agents, &started, &hb, &dead, &deadBy); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(agents), &d.Agents); err != nil {
		return nil, fmt.Errorf("dispatcher %s: decoding column agents: %w", d.ID, err)
	}
	d.StartedAt, d.HeartbeatAt, d.DeadAt, d.DeadBy = fromMicros(started), fromMicros(hb), fromMicros(dead), deadBy.String
	return &d, nil
}

func scanDispatchers(rows *sql.Rows) ([]*store.Dispatcher, error) {
	defer rows.Close()
	var out []*store.Dispatcher
	for rows.Next() {
		d, err := scanDispatcher(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ListDispatchers implements store.Store.
func (s *Store) ListDispatchers(ctx context.Context) ([]*store.Dispatcher, error) {
	if err := s.checkOpen("listing dispatchers"); err != nil {
		return nil, err
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT `+dispatcherColumns+` FROM skein_dispatchers ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing dispatchers: %w", err)
	}
	ds, err := scanDispatchers(rows)
	if err != nil {
		return nil, fmt.Errorf("listing dispatchers: %w", err)
	}
	return ds, nil
}

// RescueDead implements store.Store.
func (s *Store) RescueDead(ctx context.Context, p *store.RescueParams) (*store.RescueResult, error) {
	if err := s.checkOpen("rescue"); err != nil {
		return nil, err
	}
	var rp store.RescueParams
	if p != nil {
		rp = *p
	}
	if rp.DeadAfter == 0 {
		rp.DeadAfter = store.DefaultDeadAfter
	}
	if rp.DeadAfter < 0 {
		return nil, fmt.Errorf("rescue: field DeadAfter is negative (%s)", rp.DeadAfter)
	}
	now := nowOr(rp.Now)
	res := &store.RescueResult{}
	queues := map[string]bool{}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		*res = store.RescueResult{}
		clear(queues)
		rows, err := tx.QueryContext(ctx, `UPDATE skein_dispatchers SET dead_at = ?, dead_by = ?
			WHERE dead_at IS NULL AND id != ? AND heartbeat_at < ? RETURNING `+dispatcherColumns,
			micros(now), rp.By, rp.By, micros(now.Add(-rp.DeadAfter)))
		if err != nil {
			return fmt.Errorf("rescue: marking dead dispatchers: %w", err)
		}
		if res.Dead, err = scanDispatchers(rows); err != nil {
			return fmt.Errorf("rescue: marking dead dispatchers: %w", err)
		}
		msg := "interrupted: dispatcher judged dead (no heartbeat for " + rp.DeadAfter.String() + "), job reassigned"
		rows, err = tx.QueryContext(ctx, `UPDATE skein_jobs SET
				state = CASE WHEN attempt >= max_attempts THEN 'discarded' ELSE 'available' END,
				finalized_at = CASE WHEN attempt >= max_attempts THEN ?1 ELSE NULL END,
				errors = json_insert(errors, '$[#]', json_object('at', ?2, 'attempt', attempt, 'slot', slot, 'error', ?3,
					'interrupted', json('true'), 'reassigned', json('true'), 'dispatcher', attempted_by))
			WHERE state = 'running' AND (attempted_by IS NULL OR attempted_by NOT IN
				(SELECT id FROM skein_dispatchers WHERE dead_at IS NULL))
			RETURNING `+shared.JobColumns, micros(now), now.Format(time.RFC3339Nano), msg)
		if err != nil {
			return fmt.Errorf("rescue: reassigning jobs: %w", err)
		}
		if res.Jobs, err = scanJobs(rows); err != nil {
			return fmt.Errorf("rescue: reassigning jobs: %w", err)
		}
		for _, j := range res.Jobs {
			if j.State == store.StateAvailable {
				queues[j.Queue] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(res.Jobs, func(a, b *store.Job) int { return strings.Compare(a.ID, b.ID) })
	s.notify(queues)
	return res, nil
}

// ---- retention -----------------------------------------------------------

// Cleanup implements store.Store.
func (s *Store) Cleanup(ctx context.Context, p *store.CleanupParams) (*store.CleanupResult, error) {
	if err := s.checkOpen("cleanup"); err != nil {
		return nil, err
	}
	c := shared.CleanupDefaults(p)
	if err := shared.ValidateCleanup(&c); err != nil {
		return nil, err
	}
	now := nowOr(c.Now)
	res := &store.CleanupResult{}
	for _, r := range []struct {
		state store.State
		after time.Duration
	}{{store.StateCompleted, c.CompletedAfter}, {store.StateCancelled, c.CancelledAfter}, {store.StateDiscarded, c.DiscardedAfter}} {
		if r.after < 0 {
			continue
		}
		for {
			var n int64
			err := s.inTx(ctx, func(tx *sql.Tx) error {
				out, err := tx.ExecContext(ctx, `DELETE FROM skein_jobs WHERE id IN (SELECT id FROM skein_jobs
					WHERE state = ? AND finalized_at < ? LIMIT ?)`, string(r.state), micros(now.Add(-r.after)), c.BatchSize)
				if err != nil {
					return fmt.Errorf("cleanup: deleting %s jobs: %w", r.state, err)
				}
				n, _ = out.RowsAffected()
				return nil
			})
			if err != nil {
				return res, err
			}
			res.Jobs += n
			if n < int64(c.BatchSize) {
				break
			}
			if err := ctx.Err(); err != nil {
				return res, fmt.Errorf("cleanup: %w", err)
			}
		}
	}
	if c.DeadDispatchersAfter >= 0 {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			out, err := tx.ExecContext(ctx, `DELETE FROM skein_dispatchers WHERE dead_at < ?`, micros(now.Add(-c.DeadDispatchersAfter)))
			if err != nil {
				return fmt.Errorf("cleanup: deleting dead dispatchers: %w", err)
			}
			res.Dispatchers, _ = out.RowsAffected()
			return nil
		})
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// ---- queries -------------------------------------------------------------

// GetJob implements store.Store.
func (s *Store) GetJob(ctx context.Context, id string) (*store.Job, error) {
	if err := s.checkOpen("reading job " + id); err != nil {
		return nil, err
	}
	j, err := scanJob(s.reader.QueryRowContext(ctx, `SELECT `+shared.JobColumns+` FROM skein_jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading job %s: %w", id, err)
	}
	return j, nil
}

// ListJobs implements store.Store.
func (s *Store) ListJobs(ctx context.Context, p *store.ListJobsParams) (*store.JobPage, error) {
	if err := s.checkOpen("listing jobs"); err != nil {
		return nil, err
	}
	l, err := shared.ListDefaults(p)
	if err != nil {
		return nil, err
	}
	b := shared.Builder{Time: func(t time.Time) any { return micros(t) }}
	b.Filter(&l.Filter)
	if l.Cursor != "" {
		c, err := shared.DecodeCursor(l.Cursor)
		if err != nil {
			return nil, err
		}
		b.Cond("(created_at, id) < (" + b.Arg(micros(c.CreatedAt)) + ", " + b.Arg(c.ID) + ")")
	}
	q := `SELECT ` + shared.JobColumns + ` FROM skein_jobs` + b.Where() + shared.OrderBy(l.Order) + ` LIMIT ` + b.Arg(l.Limit+1)
	rows, err := s.reader.QueryContext(ctx, q, b.Args...)
	if err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	jobs, err := scanJobs(rows)
	if err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	page := &store.JobPage{Jobs: jobs}
	if len(jobs) > l.Limit {
		page.Jobs = jobs[:l.Limit]
		if l.Order == store.OrderNewest {
			last := page.Jobs[l.Limit-1]
			page.Next = shared.EncodeCursor(shared.Cursor{CreatedAt: last.CreatedAt, ID: last.ID})
		}
	}
	return page, nil
}

// CountJobs implements store.Store.
func (s *Store) CountJobs(ctx context.Context, f *store.JobFilter) (int64, error) {
	if err := s.checkOpen("counting jobs"); err != nil {
		return 0, err
	}
	b := shared.Builder{Time: func(t time.Time) any { return micros(t) }}
	b.Filter(f)
	var n int64
	if err := s.reader.QueryRowContext(ctx, `SELECT count(*) FROM skein_jobs`+b.Where(), b.Args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting jobs: %w", err)
	}
	return n, nil
}

// Stats implements store.Store.
func (s *Store) Stats(ctx context.Context) ([]*store.QueueStats, error) {
	if err := s.checkOpen("job stats"); err != nil {
		return nil, err
	}
	now := micros(nowOr(time.Time{}))
	rows, err := s.reader.QueryContext(ctx, `SELECT queue, state, count(*),
			min(CASE WHEN state = 'available' OR (state IN ('scheduled', 'retryable') AND scheduled_at <= ?) THEN scheduled_at END),
			min(CASE WHEN state = 'running' THEN attempted_at END)
		FROM skein_jobs GROUP BY queue, state ORDER BY queue`, now)
	if err != nil {
		return nil, fmt.Errorf("job stats: %w", err)
	}
	defer rows.Close()
	var out []*store.QueueStats
	for rows.Next() {
		var (
			queue, state     string
			n                int64
			waiting, running sql.NullInt64
		)
		if err := rows.Scan(&queue, &state, &n, &waiting, &running); err != nil {
			return nil, fmt.Errorf("job stats: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].Queue != queue {
			out = append(out, &store.QueueStats{Queue: queue, Counts: map[store.State]int64{}})
		}
		qs := out[len(out)-1]
		qs.Counts[store.State(state)] = n
		qs.OldestWaiting = minTime(qs.OldestWaiting, fromMicros(waiting))
		qs.OldestRunning = minTime(qs.OldestRunning, fromMicros(running))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("job stats: %w", err)
	}
	return out, nil
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// FinishClaim implements store.Store as Finish then Claim: the writer
// combines each with its concurrent peers, and a commit here costs no sync
// to disk (WAL with synchronous=NORMAL), so one transaction for both would
// save little.
func (s *Store) FinishClaim(ctx context.Context, outcomes []*store.Outcome, p *store.ClaimParams) ([]string, []*store.Job, error) {
	if err := shared.ValidateClaim(p); err != nil {
		return nil, nil, err
	}
	var notHeld []string
	if len(outcomes) > 0 {
		var err error
		if notHeld, err = s.Finish(ctx, outcomes); err != nil {
			return nil, nil, err
		}
	}
	jobs, err := s.Claim(ctx, p)
	if err != nil && len(outcomes) > 0 {
		return notHeld, nil, &store.ClaimAfterFinishError{Err: err}
	}
	if err != nil {
		return nil, nil, err
	}
	return notHeld, jobs, nil
}
