// Package postgres is the distributed skein store: PostgreSQL through pgx v5
// (pgxpool). Many dispatchers on many hosts share one database.
//
// Claims lock rows with FOR UPDATE SKIP LOCKED, so concurrent claimers never
// wait for each other nor get the same job. Batches of jobs are inserted with
// COPY (or one multi-row INSERT when some have a unique key), outcomes are
// applied in one statement per batch.
//
// Concurrent calls are combined: Insert calls of fewer than CopyThreshold
// jobs, and Finish calls, that arrive while a statement of their kind is in
// flight go together in the next statement (up to MaxCombined rows), so that
// many goroutines enqueueing or finishing one job each share statements and
// commits. Each call still returns only after its own rows are committed, and
// an error (a duplicate id, say) is reported to the call it belongs to. An
// idle store runs a call at once; a combined insert with fewer calls than
// the callers of the last few rounds (those served and those that queued
// meanwhile) waits up to CombineWait (200 µs) for as many, so that
// goroutines enqueueing in a loop keep sharing one commit rather than
// splitting into alternating small ones.
//
// Notifications use LISTEN/NOTIFY on the channel "skein_jobs" (the payload is
// the queue). The listener holds one dedicated connection per Store, opened
// at the first Subscribe; when it breaks (a server restart) it reconnects
// with backoff and then wakes every subscription, since hints may have been
// lost meanwhile. Inserts made through the store notify after they commit,
// from a background sender that coalesces notifications (so a burst of
// inserts costs one NOTIFY, not one per insert); inserts made in the
// caller's transaction (InsertTx) notify inside it, delivered on commit.
//
// Times compared with "now" use the database server's clock unless a Params
// Now says otherwise; CreatedAt and ScheduledAt of inserted jobs come from
// the inserting process's clock.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/internal/shared"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

var migrations = func() []shared.MigrationFile {
	m, err := shared.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		panic("store/postgres: " + err.Error())
	}
	return m
}()

// SchemaVersion is the schema version this code expects.
var SchemaVersion = len(migrations)

// Channel is the LISTEN/NOTIFY channel; the payload is a queue name.
const Channel = "skein_jobs"

// Config configures [Open].
type Config struct {
	// DSN is a PostgreSQL connection string (postgres://… or key=value).
	// Required unless Pool is set.
	DSN string
	// Pool, when set, is used instead of opening one from DSN; Close does
	// not close it. Defaults to nil.
	Pool *pgxpool.Pool
	// MaxConns is the size of the pool opened from DSN. Defaults to
	// pgxpool's default (the larger of 4 and the number of CPUs) or the
	// DSN's pool_max_conns.
	MaxConns int32
	// CopyThreshold is the smallest batch inserted with COPY rather than
	// INSERT (batches with unique keys always use INSERT). Defaults to 64.
	CopyThreshold int
	// NotifyInterval is the least time between two NOTIFY statements of
	// this store: notifications that come sooner wait for its end and go
	// together (each NOTIFY costs the server a commit). Subscriptions in
	// this process are woken at once regardless. Defaults to 2 ms.
	NotifyInterval time.Duration
	// ReconnectMin is the first delay before the listener reconnects after
	// losing its connection; it doubles up to ReconnectMax. Defaults to
	// 100 ms.
	ReconnectMin time.Duration
	// ReconnectMax caps the listener's reconnect delay. Defaults to 5 s.
	ReconnectMax time.Duration
	// ListenCheck is how long the listener waits without a notification
	// before it pings its connection (waiting up to 10 s for the answer),
	// so that a connection dropped without a word (a network partition) is
	// noticed and replaced. Defaults to 30 s.
	ListenCheck time.Duration
	// Logger receives the listener's connection errors and reconnects.
	// Defaults to discarding them.
	Logger *slog.Logger
	// MaxCombined is the most rows one statement carries when concurrent
	// Insert calls of fewer than CopyThreshold jobs, and concurrent Finish
	// calls, are combined (see the package doc). Defaults to 1000.
	MaxCombined int
	// CombineWait is how long a combined insert statement that gathered
	// fewer calls than the callers of the last few rounds waits for as many
	// before it runs (see the package doc); a lone caller never waits.
	// Defaults to 200 µs; negative: no wait.
	CombineWait time.Duration
	// AutoMigrate applies pending migrations in Open. Defaults to false:
	// run `skein migrate up` (or MigrateUp) first.
	AutoMigrate bool
}

// Defaults of Config.
const (
	DefaultCopyThreshold  = 64
	DefaultMaxCombined    = 1000
	DefaultCombineWait    = 200 * time.Microsecond
	DefaultNotifyInterval = 2 * time.Millisecond
	DefaultReconnectMin   = 100 * time.Millisecond
	DefaultReconnectMax   = 5 * time.Second
	DefaultListenCheck    = 30 * time.Second
)

// Store is the PostgreSQL store. Create it with [Open].
type Store struct {
	pool     *pgxpool.Pool
	ownPool  bool
	connCfg  *pgx.ConnConfig
	cfg      Config
	log      *slog.Logger
	hub      *shared.Hub
	ctx      context.Context // cancelled by Close
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	notifyMu sync.Mutex
	pending  map[string]bool
	wake     chan struct{}

	listenOnce sync.Once
	listening  chan struct{} // closed once LISTEN is first active

	gate     shared.Gate
	inserts  *shared.Combiner[insertCall]
	finishes *shared.Combiner[finishCall]

	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Open connects to the database. It does not check the schema version unless
// AutoMigrate is set; callers use CheckSchema.
func Open(ctx context.Context, cfg *Config) (*Store, error) {
	if cfg == nil || (cfg.DSN == "" && cfg.Pool == nil) {
		return nil, errors.New("opening postgres store: field DSN is empty and no Pool is given")
	}
	c := *cfg
	if c.CopyThreshold == 0 {
		c.CopyThreshold = DefaultCopyThreshold
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = DefaultReconnectMin
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = DefaultReconnectMax
	}
	if c.MaxCombined == 0 {
		c.MaxCombined = DefaultMaxCombined
	}
	if c.CombineWait == 0 {
		c.CombineWait = DefaultCombineWait
	}
	if c.NotifyInterval == 0 {
		c.NotifyInterval = DefaultNotifyInterval
	}
	if c.ListenCheck == 0 {
		c.ListenCheck = DefaultListenCheck
	}
	switch {
	case c.CopyThreshold < 1:
		return nil, fmt.Errorf("opening postgres store: field CopyThreshold is %d, want at least 1", c.CopyThreshold)
	case c.ReconnectMin < 0 || c.ReconnectMax < c.ReconnectMin:
		return nil, fmt.Errorf("opening postgres store: fields ReconnectMin %s, ReconnectMax %s: want 0 < min <= max", c.ReconnectMin, c.ReconnectMax)
	case c.ListenCheck < 0:
		return nil, fmt.Errorf("opening postgres store: field ListenCheck is negative (%s)", c.ListenCheck)
	case c.NotifyInterval < 0:
		return nil, fmt.Errorf("opening postgres store: field NotifyInterval is negative (%s)", c.NotifyInterval)
	case c.MaxCombined < 1:
		return nil, fmt.Errorf("opening postgres store: field MaxCombined is %d, want at least 1", c.MaxCombined)
	case c.MaxConns < 0:
		return nil, fmt.Errorf("opening postgres store: field MaxConns is %d", c.MaxConns)
	}
	s := &Store{cfg: c, log: c.Logger, hub: shared.NewHub(), pending: map[string]bool{},
		wake: make(chan struct{}, 1), listening: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Pool != nil {
		s.pool = c.Pool
		s.connCfg = c.Pool.Config().ConnConfig.Copy()
	} else {
		pc, err := pgxpool.ParseConfig(c.DSN)
		if err != nil {
			return nil, fmt.Errorf("opening postgres store: parsing the DSN: %w", err)
		}
		if c.MaxConns > 0 {
			pc.MaxConns = c.MaxConns
		}
		s.connCfg = pc.ConnConfig.Copy()
		s.pool, err = pgxpool.NewWithConfig(ctx, pc)
		if err != nil {
			return nil, fmt.Errorf("opening postgres store: %w", err)
		}
		s.ownPool = true
		if err := s.pool.Ping(ctx); err != nil {
			s.pool.Close()
			return nil, fmt.Errorf("opening postgres store: connecting to %s:%d: %w", pc.ConnConfig.Host, pc.ConnConfig.Port, err)
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.inserts = &shared.Combiner[insertCall]{In: make(chan *insertCall), Max: c.MaxCombined,
		Size: func(c *insertCall) int { return len(c.params) }, Run: s.runInserts, Linger: c.CombineWait,
		Done: func(c *insertCall) { close(c.done) }}
	s.finishes = &shared.Combiner[finishCall]{In: make(chan *finishCall), Max: c.MaxCombined,
		Size: func(c *finishCall) int { return len(c.outcomes) }, Run: s.runFinishes}
	s.wg.Go(s.sendNotifications)
	s.wg.Go(func() { s.inserts.Loop(s.ctx) })
	s.wg.Go(func() { s.finishes.Loop(s.ctx) })
	if c.AutoMigrate {
		if _, err := s.MigrateUp(ctx, nil); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Name implements store.Store.
func (s *Store) Name() string { return "postgres" }

// Pool is the store's connection pool, e.g. to begin the transactions given
// to InsertTx.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close implements store.Store.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.gate.Close() // waits for the calls in flight
		s.cancel()
		s.wg.Wait()
		s.hub.Close()
		if s.ownPool {
			s.pool.Close()
		}
	})
	return nil
}

// ---- notifications -------------------------------------------------------

// notify wakes local subscribers at once and has the sender NOTIFY the other
// processes.
func (s *Store) notify(queues map[string]bool) {
	if len(queues) == 0 {
		return
	}
	s.notifyMu.Lock()
	for q := range queues {
		s.hub.Notify(q)
		s.pending[q] = true
	}
	s.notifyMu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// sendNotifications sends pending notifications, one statement at a time
// and at most one per NotifyInterval: whatever accumulates meanwhile goes in
// the next.
func (s *Store) sendNotifications() {
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		}
		s.notifyMu.Lock()
		queues := make([]string, 0, len(s.pending))
		for q := range s.pending {
			queues = append(queues, q)
		}
		clear(s.pending)
		s.notifyMu.Unlock()
		if len(queues) == 0 {
			continue
		}
		if _, err := s.pool.Exec(s.ctx, `SELECT pg_notify('`+Channel+`', q) FROM unnest($1::text[]) q`, queues); err != nil && s.ctx.Err() == nil {
			// Lost hints only delay jobs until the next poll.
			s.log.Warn("skein: sending job notifications failed", "error", err, "queues", queues)
		}
		pause.Reset(s.cfg.NotifyInterval)
		select {
		case <-s.ctx.Done():
			return
		case <-pause.C:
		}
	}
}

// Subscribe implements store.Store. The first call starts the listener and
// waits until it listens (or ctx ends).
func (s *Store) Subscribe(ctx context.Context, queues []string) (store.Subscription, error) {
	if err := s.checkOpen("subscribing"); err != nil {
		return nil, err
	}
	if s.ctx.Err() != nil {
		return nil, fmt.Errorf("subscribing: %w", store.ErrClosed)
	}
	s.listenOnce.Do(func() { s.wg.Go(s.listen) })
	select {
	case <-s.listening:
	case <-ctx.Done():
		return nil, fmt.Errorf("subscribing: waiting for LISTEN %s: %w", Channel, ctx.Err())
	case <-s.ctx.Done():
		return nil, fmt.Errorf("subscribing: %w", store.ErrClosed)
	}
	return s.hub.Subscribe(queues), nil
}

func (s *Store) listen() {
	delay := s.cfg.ReconnectMin
	first := true
	for s.ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(s.ctx, s.connCfg)
		if err == nil {
			if _, err = conn.Exec(s.ctx, "LISTEN "+Channel); err != nil {
				_ = conn.Close(context.Background())
			}
		}
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			s.log.Warn("skein: job notification listener cannot connect; retrying", "error", err, "delay", delay)
			t := time.NewTimer(delay)
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			delay = min(delay*2, s.cfg.ReconnectMax)
			continue
		}
		delay = s.cfg.ReconnectMin
		if first {
			close(s.listening)
			first = false
		} else {
			s.log.Info("skein: job notification listener reconnected")
			s.hub.Notify("") // hints may have been lost while down
		}
		for {
			n, err := s.waitNotification(conn)
			if err != nil {
				if s.ctx.Err() == nil {
					s.log.Warn("skein: job notification listener lost its connection; reconnecting", "error", err)
				}
				break
			}
			if n != nil {
				s.hub.Notify(n.Payload)
			}
		}
		_ = conn.Close(context.Background())
	}
}

// listenPingTimeout is how long the listener's check waits for an answer.
const listenPingTimeout = 10 * time.Second

// waitNotification waits up to ListenCheck for a notification; when none
// comes it pings the connection and returns nil, nil if it answers.
func (s *Store) waitNotification(conn *pgx.Conn) (*pgconn.Notification, error) {
	wctx, cancel := context.WithTimeout(s.ctx, s.cfg.ListenCheck)
	n, err := conn.WaitForNotification(wctx)
	cancel()
	if err == nil || s.ctx.Err() != nil || !errors.Is(wctx.Err(), context.DeadlineExceeded) {
		return n, err
	}
	// A timed out read leaves the connection usable: check it answers.
	pctx, cancel := context.WithTimeout(s.ctx, listenPingTimeout)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		return nil, fmt.Errorf("listener connection does not answer: %w", err)
	}
	return nil, nil
}

// ---- helpers -------------------------------------------------------------

// querier is what pgxpool.Pool, pgx.Conn and pgx.Tx offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error)
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func scanJob(r pgx.Row) (*store.Job, error) {
	var (
		j                        store.Job
		args, meta, errs, result []byte
		by, agent, unique        *string
		timeoutUS                int64
		sched, created           time.Time
		attempted, finalized     *time.Time
		state                    string
	)
	if err := r.Scan(&j.ID, &j.Kind, &j.Queue, &j.Priority, &args, &meta, &state, &j.Attempt, &j.MaxAttempts, &timeoutUS,
		&sched, &created, &attempted, &finalized, &by, &agent, &j.WorkflowID, &j.TaskID, &j.Slot, &unique, &errs, &result); err != nil {
		return nil, err
	}
	j.Args, j.Metadata, j.State = args, meta, store.State(state)
	j.Timeout = time.Duration(timeoutUS) * time.Microsecond
	j.ScheduledAt, j.CreatedAt, j.AttemptedAt, j.FinalizedAt = sched.UTC(), created.UTC(), utc(attempted), utc(finalized)
	if by != nil {
		j.AttemptedBy = *by
	}
	if agent != nil {
		j.AttemptedAgent = *agent
	}
	if unique != nil {
		j.UniqueKey = *unique
	}
	if result != nil {
		j.Result = result
	}
	if len(errs) > 2 {
		if err := json.Unmarshal(errs, &j.Errors); err != nil {
			return nil, fmt.Errorf("job %s: decoding column errors: %w", j.ID, err)
		}
		for i := range j.Errors {
			j.Errors[i].At = j.Errors[i].At.UTC()
		}
	}
	return &j, nil
}

func scanJobs(rows pgx.Rows) ([]*store.Job, error) {
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

func pgCode(err error) (string, string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code, pe.ConstraintName
	}
	return "", ""
}

func isDuplicateID(err error) bool {
	code, constraint := pgCode(err)
	return code == "23505" && constraint == "skein_jobs_pkey"
}

func (s *Store) inTx(ctx context.Context, f func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, f)
}

// ---- insert --------------------------------------------------------------

var copyColumns = []string{"id", "kind", "queue", "priority", "args", "metadata", "state", "max_attempts", "timeout_us",
	"scheduled_at", "created_at", "workflow_id", "task_id", "unique_key"}

const insertOneSQL = `INSERT INTO skein_jobs (id, kind, queue, priority, args, metadata, state, max_attempts, timeout_us,
	scheduled_at, created_at, workflow_id, task_id, unique_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ` + shared.PendingStates + ` DO NOTHING
RETURNING id`

const insertManySQL = `INSERT INTO skein_jobs (id, kind, queue, priority, args, metadata, state, max_attempts, timeout_us,
	scheduled_at, created_at, workflow_id, task_id, unique_key)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::json[], $6::json[], $7::text[], $8::integer[],
	$9::bigint[], $10::timestamptz[], $11::timestamptz[], $12::text[], $13::text[], $14::text[])
ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ` + shared.PendingStates + ` DO NOTHING
RETURNING id`

// insertPlainOneSQL and insertPlainManySQL insert jobs none of which has a
// unique key. Without ON CONFLICT the server inserts each row once, where
// ON CONFLICT's speculative insertion also locks a token and writes a
// confirmation record per row (about 50 bytes of WAL per job, see
// docs/BENCHMARKS.md). An id that exists still fails on the primary key.
const (
	insertPlainOneSQL = `INSERT INTO skein_jobs (id, kind, queue, priority, args, metadata, state, max_attempts, timeout_us,
	scheduled_at, created_at, workflow_id, task_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`
	insertPlainManySQL = `INSERT INTO skein_jobs (id, kind, queue, priority, args, metadata, state, max_attempts, timeout_us,
	scheduled_at, created_at, workflow_id, task_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::json[], $6::json[], $7::text[], $8::integer[],
	$9::bigint[], $10::timestamptz[], $11::timestamptz[], $12::text[], $13::text[])`
)

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
	if len(params) < s.cfg.CopyThreshold {
		res, queues, err = s.insertCombined(ctx, params)
	} else {
		res, queues, err = s.insertDirect(ctx, params)
	}
	if err != nil {
		return nil, err
	}
	s.notify(queues)
	return res, nil
}

// insertDirect inserts params on their own.
func (s *Store) insertDirect(ctx context.Context, params []*store.InsertParams) ([]store.InsertResult, map[string]bool, error) {
	var (
		res    []store.InsertResult
		queues map[string]bool
		err    error
	)
	if len(params) == 1 || !hasUniqueKey(params) {
		// One statement is atomic by itself: no transaction round trips.
		// A unique key's holder may finish between the INSERT and the
		// SELECT that reads it: then the INSERT is tried again.
		for range 3 {
			res, queues, err = s.insert(ctx, s.pool, params)
			if !errors.Is(err, errHolderGone) {
				break
			}
		}
	} else {
		err = s.inTx(ctx, func(tx pgx.Tx) error {
			var err error
			res, queues, err = s.insert(ctx, tx, params)
			return err
		})
	}
	return res, queues, err
}

// errHolderGone: a job was not inserted for its unique key, yet no job holds
// the key any more.
var errHolderGone = errors.New("the job holding the unique key finished meanwhile")

// copies reports whether insert uses COPY for params.
func (s *Store) copies(params []*store.InsertParams) bool {
	return len(params) >= s.cfg.CopyThreshold && !hasUniqueKey(params)
}

// hasUniqueKey reports whether any of params has a unique key: only then
// does insert need ON CONFLICT.
func hasUniqueKey(params []*store.InsertParams) bool {
	for _, p := range params {
		if p.UniqueKey != "" {
			return true
		}
	}
	return false
}

// InsertTx implements store.Store: tx is a pgx.Tx or a *sql.Tx.
func (s *Store) InsertTx(ctx context.Context, tx any, params []*store.InsertParams) ([]store.InsertResult, error) {
	if err := s.checkOpen("inserting jobs"); err != nil {
		return nil, err
	}
	if err := validateInsert(params); err != nil {
		return nil, err
	}
	var (
		res    []store.InsertResult
		queues map[string]bool
		err    error
	)
	switch tx := tx.(type) {
	case pgx.Tx:
		if len(params) == 0 {
			return nil, nil
		}
		if res, queues, err = s.insert(ctx, tx, params); err != nil {
			return nil, err
		}
		if len(queues) > 0 {
			if _, err := tx.Exec(ctx, `SELECT pg_notify('`+Channel+`', q) FROM unnest($1::text[]) q`, keys(queues)); err != nil {
				return nil, fmt.Errorf("inserting jobs: notifying: %w", err)
			}
		}
	case *sql.Tx:
		if len(params) == 0 {
			return nil, nil
		}
		if res, queues, err = insertSQLTx(ctx, tx, params); err != nil {
			return nil, err
		}
		for q := range queues {
			if _, err := tx.ExecContext(ctx, `SELECT pg_notify('`+Channel+`', $1)`, q); err != nil {
				return nil, fmt.Errorf("inserting jobs: notifying: %w", err)
			}
		}
	default:
		return nil, fmt.Errorf("inserting jobs: %T: %w (store/postgres takes a pgx.Tx or a *sql.Tx)", tx, store.ErrUnsupportedTx)
	}
	return res, nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func validateInsert(params []*store.InsertParams) error {
	for i, p := range params {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("inserting jobs: params[%d]: %w", i, err)
		}
	}
	return nil
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (s *Store) insert(ctx context.Context, q querier, params []*store.InsertParams) ([]store.InsertResult, map[string]bool, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	res := make([]store.InsertResult, len(params))
	jobs := make([]*store.Job, len(params))
	queues := map[string]bool{}
	for i, p := range params {
		jobs[i] = store.NewJob(p, now)
		res[i].Job = jobs[i]
		if jobs[i].State == store.StateAvailable {
			queues[jobs[i].Queue] = true
		}
	}
	keyed := hasUniqueKey(params)
	switch {
	case len(jobs) == 1 && !keyed:
		j := jobs[0]
		_, err := q.Exec(ctx, insertPlainOneSQL, j.ID, j.Kind, j.Queue, j.Priority, []byte(j.Args), []byte(j.Metadata), string(j.State),
			j.MaxAttempts, j.Timeout.Microseconds(), j.ScheduledAt, j.CreatedAt, j.WorkflowID, j.TaskID)
		switch {
		case isDuplicateID(err):
			return nil, nil, fmt.Errorf("inserting job %s: %w", j.ID, store.ErrJobExists)
		case err != nil:
			return nil, nil, fmt.Errorf("inserting job %s: %w", j.ID, err)
		}
		return res, queues, nil
	case len(jobs) == 1:
		j := jobs[0]
		var id string
		err := q.QueryRow(ctx, insertOneSQL, j.ID, j.Kind, j.Queue, j.Priority, []byte(j.Args), []byte(j.Metadata), string(j.State),
			j.MaxAttempts, j.Timeout.Microseconds(), j.ScheduledAt, j.CreatedAt, j.WorkflowID, j.TaskID, nullString(j.UniqueKey)).Scan(&id)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return s.duplicates(ctx, q, res, queues, map[string]bool{})
		case isDuplicateID(err):
			return nil, nil, fmt.Errorf("inserting job %s: %w", j.ID, store.ErrJobExists)
		case err != nil:
			return nil, nil, fmt.Errorf("inserting job %s: %w", j.ID, err)
		}
		return res, queues, nil
	case s.copies(params):
		_, err := q.CopyFrom(ctx, pgx.Identifier{"skein_jobs"}, copyColumns, pgx.CopyFromSlice(len(jobs), func(i int) ([]any, error) {
			j := jobs[i]
			return []any{j.ID, j.Kind, j.Queue, int32(j.Priority), []byte(j.Args), []byte(j.Metadata), string(j.State), int32(j.MaxAttempts),
				j.Timeout.Microseconds(), j.ScheduledAt, j.CreatedAt, j.WorkflowID, j.TaskID, nil}, nil
		}))
		if isDuplicateID(err) {
			return nil, nil, fmt.Errorf("inserting %d jobs: %w (%s)", len(jobs), store.ErrJobExists, pgDetail(err))
		}
		if err != nil {
			return nil, nil, fmt.Errorf("inserting %d jobs: %w", len(jobs), err)
		}
		return res, queues, nil
	default:
		n := len(jobs)
		var (
			ids, kinds, qs, states, wfs, tasks = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			prios, maxs                        = make([]int32, n), make([]int32, n)
			argss, metas                       = make([][]byte, n), make([][]byte, n)
			timeouts                           = make([]int64, n)
			scheds, createds                   = make([]time.Time, n), make([]time.Time, n)
			uniques                            = make([]*string, n)
		)
		for i, j := range jobs {
			ids[i], kinds[i], qs[i], states[i], wfs[i], tasks[i] = j.ID, j.Kind, j.Queue, string(j.State), j.WorkflowID, j.TaskID
			prios[i], maxs[i] = int32(j.Priority), int32(j.MaxAttempts)
			argss[i], metas[i] = j.Args, j.Metadata
			timeouts[i] = j.Timeout.Microseconds()
			scheds[i], createds[i] = j.ScheduledAt, j.CreatedAt
			uniques[i] = nullString(j.UniqueKey)
		}
		if !keyed {
			_, err := q.Exec(ctx, insertPlainManySQL, ids, kinds, qs, prios, argss, metas, states, maxs, timeouts, scheds, createds, wfs, tasks)
			if isDuplicateID(err) {
				return nil, nil, fmt.Errorf("inserting %d jobs: %w (%s)", n, store.ErrJobExists, pgDetail(err))
			}
			if err != nil {
				return nil, nil, fmt.Errorf("inserting %d jobs: %w", n, err)
			}
			return res, queues, nil
		}
		rows, err := q.Query(ctx, insertManySQL, ids, kinds, qs, prios, argss, metas, states, maxs, timeouts, scheds, createds, wfs, tasks, uniques)
		if err != nil {
			return nil, nil, fmt.Errorf("inserting %d jobs: %w", n, err)
		}
		inserted := map[string]bool{}
		var id string
		_, err = pgx.ForEachRow(rows, []any{&id}, func() error { inserted[id] = true; return nil })
		if isDuplicateID(err) {
			return nil, nil, fmt.Errorf("inserting %d jobs: %w (%s)", n, store.ErrJobExists, pgDetail(err))
		}
		if err != nil {
			return nil, nil, fmt.Errorf("inserting %d jobs: %w", n, err)
		}
		if len(inserted) == n {
			return res, queues, nil
		}
		return s.duplicates(ctx, q, res, queues, inserted)
	}
}

func pgDetail(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Detail != "" {
		return pe.Detail
	}
	return err.Error()
}

// duplicates replaces the results of jobs not inserted (not in inserted) by
// the jobs holding their unique keys.
func (s *Store) duplicates(ctx context.Context, q querier, res []store.InsertResult, queues, inserted map[string]bool) ([]store.InsertResult, map[string]bool, error) {
	var keys []string
	for _, r := range res {
		if !inserted[r.Job.ID] {
			keys = append(keys, r.Job.UniqueKey)
		}
	}
	rows, err := q.Query(ctx, `SELECT `+shared.JobColumns+` FROM skein_jobs WHERE unique_key = ANY($1) AND state IN `+shared.PendingStates, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("inserting jobs: reading the jobs holding unique keys: %w", err)
	}
	held, err := scanJobs(rows)
	if err != nil {
		return nil, nil, fmt.Errorf("inserting jobs: reading the jobs holding unique keys: %w", err)
	}
	byKey := map[string]*store.Job{}
	for _, j := range held {
		byKey[j.UniqueKey] = j
	}
	clear(queues)
	for i, r := range res {
		if inserted[r.Job.ID] {
			if r.Job.State == store.StateAvailable {
				queues[r.Job.Queue] = true
			}
			continue
		}
		h := byKey[r.Job.UniqueKey]
		if h == nil {
			return nil, nil, fmt.Errorf("inserting job %s with unique key %q: %w", r.Job.ID, r.Job.UniqueKey, errHolderGone)
		}
		res[i] = store.InsertResult{Job: h, Duplicate: true}
	}
	return res, queues, nil
}

// insertSQLTx inserts through a database/sql transaction on PostgreSQL (any
// driver): one multi-row INSERT per chunk, then the duplicates.
func insertSQLTx(ctx context.Context, tx *sql.Tx, params []*store.InsertParams) ([]store.InsertResult, map[string]bool, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	res := make([]store.InsertResult, len(params))
	queues := map[string]bool{}
	const chunk = 1000 // 14 parameters a row, under PostgreSQL's 65535
	inserted := map[string]bool{}
	keyed := hasUniqueKey(params)
	for start := 0; start < len(params); start += chunk {
		end := min(start+chunk, len(params))
		var sb strings.Builder
		sb.WriteString(`INSERT INTO skein_jobs (id, kind, queue, priority, args, metadata, state, max_attempts, timeout_us,
	scheduled_at, created_at, workflow_id, task_id, unique_key) VALUES `)
		args := make([]any, 0, 14*(end-start))
		for i := start; i < end; i++ {
			j := store.NewJob(params[i], now)
			res[i].Job = j
			if i > start {
				sb.WriteString(", ")
			}
			sb.WriteString("(")
			for c := range 14 {
				if c > 0 {
					sb.WriteString(", ")
				}
				sb.WriteString("$" + strconv.Itoa(len(args)+c+1))
				if c == 4 || c == 5 {
					sb.WriteString("::json")
				}
			}
			sb.WriteString(")")
			var unique any
			if j.UniqueKey != "" {
				unique = j.UniqueKey
			}
			args = append(args, j.ID, j.Kind, j.Queue, j.Priority, string(j.Args), string(j.Metadata), string(j.State), j.MaxAttempts,
				j.Timeout.Microseconds(), j.ScheduledAt, j.CreatedAt, j.WorkflowID, j.TaskID, unique)
		}
		if !keyed {
			// Every row goes in, or the statement fails.
			if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
				if isDuplicateID(err) {
					return nil, nil, fmt.Errorf("inserting jobs: %w (%s)", store.ErrJobExists, pgDetail(err))
				}
				return nil, nil, fmt.Errorf("inserting jobs: %w", err)
			}
			for i := start; i < end; i++ {
				inserted[res[i].Job.ID] = true
			}
			continue
		}
		sb.WriteString(` ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ` + shared.PendingStates + ` DO NOTHING RETURNING id`)
		rows, err := tx.QueryContext(ctx, sb.String(), args...)
		if err != nil {
			if isDuplicateID(err) {
				return nil, nil, fmt.Errorf("inserting jobs: %w (%s)", store.ErrJobExists, pgDetail(err))
			}
			return nil, nil, fmt.Errorf("inserting jobs: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("inserting jobs: %w", err)
			}
			inserted[id] = true
		}
		if err := rows.Err(); err != nil {
			if isDuplicateID(err) {
				return nil, nil, fmt.Errorf("inserting jobs: %w (%s)", store.ErrJobExists, pgDetail(err))
			}
			return nil, nil, fmt.Errorf("inserting jobs: %w", err)
		}
	}
	for i, r := range res {
		if inserted[r.Job.ID] {
			if r.Job.State == store.StateAvailable {
				queues[r.Job.Queue] = true
			}
			continue
		}
		row := tx.QueryRowContext(ctx, `SELECT `+shared.JobColumns+` FROM skein_jobs WHERE unique_key = $1 AND state IN `+shared.PendingStates, r.Job.UniqueKey)
		h, err := scanSQLJob(row)
		if err != nil {
			return nil, nil, fmt.Errorf("inserting job %s: reading the job holding unique key %q: %w", r.Job.ID, r.Job.UniqueKey, err)
		}
		res[i] = store.InsertResult{Job: h, Duplicate: true}
	}
	return res, queues, nil
}

// scanSQLJob scans a database/sql row (whatever the driver gives for jsonb).
func scanSQLJob(r *sql.Row) (*store.Job, error) {
	var (
		j                    store.Job
		args, meta, errs     []byte
		result               []byte
		by, agent, unique    sql.NullString
		timeoutUS            int64
		sched, created       time.Time
		attempted, finalized sql.NullTime
		state                string
	)
	if err := r.Scan(&j.ID, &j.Kind, &j.Queue, &j.Priority, &args, &meta, &state, &j.Attempt, &j.MaxAttempts, &timeoutUS,
		&sched, &created, &attempted, &finalized, &by, &agent, &j.WorkflowID, &j.TaskID, &j.Slot, &unique, &errs, &result); err != nil {
		return nil, err
	}
	j.Args, j.Metadata, j.State = args, meta, store.State(state)
	j.Timeout = time.Duration(timeoutUS) * time.Microsecond
	j.ScheduledAt, j.CreatedAt = sched.UTC(), created.UTC()
	if attempted.Valid {
		j.AttemptedAt = attempted.Time.UTC()
	}
	if finalized.Valid {
		j.FinalizedAt = finalized.Time.UTC()
	}
	j.AttemptedBy, j.AttemptedAgent, j.UniqueKey = by.String, agent.String, unique.String
	if result != nil {
		j.Result = result
	}
	if len(errs) > 2 {
		if err := json.Unmarshal(errs, &j.Errors); err != nil {
			return nil, fmt.Errorf("job %s: decoding column errors: %w", j.ID, err)
		}
	}
	return &j, nil
}

// ---- claim and finish ----------------------------------------------------

// claimPlanSQL runs before every claim, in the same transaction. It keeps the
// planner on an ordered scan of a claim index, which LIMIT stops after the
// jobs it needs, even when the table has no statistics yet (a new table, or
// one just truncated, before autovacuum analyzed it): the planner would then
// pick a bitmap scan, which reads and sorts every claimable row on every
// claim. The setting ends with the transaction.
const claimPlanSQL = `SELECT set_config('enable_bitmapscan', 'off', true)`

// Claim implements store.Store.
func (s *Store) Claim(ctx context.Context, p *store.ClaimParams) ([]*store.Job, error) {
	if err := s.checkOpen("claiming jobs"); err != nil {
		return nil, err
	}
	if err := shared.ValidateClaim(p); err != nil {
		return nil, err
	}
	q, args := claimQuery(p)
	// One round trip, one implicit transaction: the plan setting, then the
	// claim.
	batch := &pgx.Batch{}
	batch.Queue(claimPlanSQL)
	batch.Queue(q, args...)
	br := s.pool.SendBatch(ctx, batch)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return nil, fmt.Errorf("claiming jobs: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, fmt.Errorf("claiming jobs: %w", err)
	}
	jobs, err := scanJobs(rows)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("claiming jobs: %w", err)
	}
	if len(jobs) == 0 {
		if err := checkAlive(ctx, s.pool, p.Dispatcher); err != nil {
			return nil, fmt.Errorf("claiming jobs: %w", err)
		}
		return nil, nil
	}
	sortClaimed(jobs)
	return jobs, nil
}

// claimQuery returns the claim statement for p and its arguments.
func claimQuery(p *store.ClaimParams) (string, []any) {
	b := shared.Builder{Postgres: true, Time: func(t time.Time) any { return t }}
	d, agent, now := b.Arg(p.Dispatcher), b.Arg(p.Agent), b.Arg(nullTime(p.Now))
	nowExpr := "coalesce(" + now + "::timestamptz, now())"
	b.Cond("state IN ('available', 'scheduled', 'retryable')")
	b.Cond("(state = 'available' OR scheduled_at <= " + nowExpr + ")")
	b.In("queue", p.Queues)
	b.In("kind", p.Kinds)
	b.Cond("EXISTS (SELECT 1 FROM skein_dispatchers WHERE id = " + d + " AND dead_at IS NULL)")
	q := `WITH picked AS (SELECT id FROM skein_jobs` + b.Where() + `
		ORDER BY priority, scheduled_at LIMIT ` + b.Arg(p.Limit) + ` FOR UPDATE SKIP LOCKED)
	UPDATE skein_jobs j SET state = 'running', attempt = j.attempt + 1, slot = j.slot + 1,
		attempted_at = ` + nowExpr + `, attempted_by = ` + d + `, attempted_agent = ` + agent + `
	FROM picked WHERE j.id = picked.id
	RETURNING ` + prefixed("j.", shared.JobColumns)
	return q, b.Args
}

// sortClaimed puts claimed jobs in claim order.
func sortClaimed(jobs []*store.Job) {
	slices.SortFunc(jobs, func(a, b *store.Job) int {
		if a.Priority != b.Priority {
			return a.Priority - b.Priority
		}
		if c := a.ScheduledAt.Compare(b.ScheduledAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

func checkAlive(ctx context.Context, q querier, id string) error {
	var deadAt *time.Time
	var deadBy *string
	err := q.QueryRow(ctx, `SELECT dead_at, dead_by FROM skein_dispatchers WHERE id = $1`, id).Scan(&deadAt, &deadBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("dispatcher %s: %w", id, store.ErrDispatcherNotFound)
	}
	if err != nil {
		return fmt.Errorf("reading dispatcher %s: %w", id, err)
	}
	if deadAt != nil {
		e := &store.DispatcherDeadError{ID: id, DeadAt: deadAt.UTC()}
		if deadBy != nil {
			e.DeadBy = *deadBy
		}
		return e
	}
	return nil
}

const finishSQL = `UPDATE skein_jobs j SET
	state = u.state,
	finalized_at = CASE WHEN u.state IN ('completed', 'cancelled', 'discarded') THEN now() END,
	scheduled_at = CASE WHEN u.state IN ('retryable', 'scheduled') THEN coalesce(u.at, now()) ELSE j.scheduled_at END,
	attempt = j.attempt - u.undo,
	result = coalesce(u.result::json, j.result),
	errors = CASE WHEN u.err IS NULL THEN j.errors
		ELSE j.errors || jsonb_build_array(u.err::jsonb || jsonb_build_object('attempt', j.attempt)) END
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::timestamptz[], $6::integer[], $7::text[], $8::text[])
	AS u(id, dispatcher, slot, state, at, undo, result, err)
WHERE j.id = u.id AND (j.state = 'running') IS TRUE AND j.attempted_by = u.dispatcher AND j.slot = u.slot
RETURNING j.id, j.queue, j.state = 'available' OR (j.state IN ('retryable', 'scheduled') AND j.scheduled_at <= now())`

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
	return s.finishCombined(ctx, outcomes)
}

// finish applies valid outcomes in one statement, or in several when two
// of them are for one job (a statement would apply only one, and both would
// look applied): the first outcome of each job, then the second, and so on.
func (s *Store) finish(ctx context.Context, outcomes []*store.Outcome) ([]string, error) {
	if !clash(outcomes) {
		return s.finishOnce(ctx, outcomes)
	}
	var rounds [][]*store.Outcome
	nth := map[string]int{}
	for _, o := range outcomes {
		k := nth[o.ID]
		nth[o.ID]++
		if k == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[k] = append(rounds[k], o)
	}
	missing := map[*store.Outcome]bool{}
	for _, r := range rounds {
		nh, err := s.finishOnce(ctx, r)
		if err != nil {
			return nil, err
		}
		for _, o := range r {
			if slices.Contains(nh, o.ID) {
				missing[o] = true
			}
		}
	}
	var notHeld []string
	for _, o := range outcomes {
		if missing[o] {
			notHeld = append(notHeld, o.ID)
		}
	}
	return notHeld, nil
}

// finishOnce applies outcomes, each for a different job, in one statement.
func (s *Store) finishOnce(ctx context.Context, outcomes []*store.Outcome) ([]string, error) {
	args, err := finishArgs(outcomes)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, finishSQL, args...)
	if err != nil {
		return nil, fmt.Errorf("finishing %d jobs: %w", len(outcomes), err)
	}
	notHeld, queues, err := readFinished(rows, outcomes)
	if err != nil {
		return nil, err
	}
	s.notify(queues)
	return notHeld, nil
}

// finishArgs returns finishSQL's arguments for outcomes.
func finishArgs(outcomes []*store.Outcome) ([]any, error) {
	n := len(outcomes)
	var (
		ids, ds, states = make([]string, n), make([]string, n), make([]string, n)
		slots           = make([]int64, n)
		ats             = make([]*time.Time, n)
		undos           = make([]int32, n)
		results, errs   = make([]*string, n), make([]*string, n)
	)
	now := time.Now().UTC()
	for i, o := range outcomes {
		ids[i], ds[i], states[i], slots[i] = o.ID, o.Dispatcher, string(o.State), o.Slot
		if !o.At.IsZero() {
			at := o.At
			ats[i] = &at
		}
		if o.UndoAttempt {
			undos[i] = 1
		}
		if o.Result != nil {
			r := string(o.Result)
			results[i] = &r
		}
		if o.Error != nil {
			e := shared.ErrorEntry(o.Error, 0, o.Slot, o.Dispatcher, now)
			e.Slot, e.Dispatcher = o.Slot, o.Dispatcher
			b, err := json.Marshal(e)
			if err != nil {
				return nil, fmt.Errorf("finishing job %s: encoding the error: %w", o.ID, err)
			}
			str := string(b)
			errs[i] = &str
		}
	}
	return []any{ids, ds, slots, states, ats, undos, results, errs}, nil
}

// readFinished reads finishSQL's rows: the outcomes that did not apply (in
// input order) and the queues that got jobs ready to run.
func readFinished(rows pgx.Rows, outcomes []*store.Outcome) (notHeld []string, queues map[string]bool, err error) {
	done := make(map[string]bool, len(outcomes))
	queues = map[string]bool{}
	var (
		id, queue string
		ready     bool
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &queue, &ready}, func() error {
		done[id] = true
		if ready {
			queues[queue] = true
		}
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("finishing %d jobs: %w", len(outcomes), err)
	}
	if len(done) == len(outcomes) {
		return nil, queues, nil
	}
	for _, o := range outcomes {
		if !done[o.ID] {
			notHeld = append(notHeld, o.ID)
		}
	}
	return notHeld, queues, nil
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
	agents := d.Agents
	if agents == nil {
		agents = []store.Agent{}
	}
	ab, err := json.Marshal(agents)
	if err != nil {
		return fmt.Errorf("register dispatcher %s: encoding agents: %w", d.ID, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO skein_dispatchers (id, host, pid, agents, started_at, heartbeat_at)
		VALUES ($1, $2, $3, $4, coalesce($5, now()), now())
		ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, agents = excluded.agents,
			started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, dead_at = NULL, dead_by = NULL`,
		d.ID, d.Host, d.PID, ab, nullTime(d.StartedAt))
	if err != nil {
		return fmt.Errorf("register dispatcher %s: %w", d.ID, err)
	}
	return nil
}

// Heartbeat implements store.Store.
func (s *Store) Heartbeat(ctx context.Context, id string) error {
	if err := s.checkOpen("heartbeat"); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE skein_dispatchers SET heartbeat_at = now() WHERE id = $1 AND dead_at IS NULL`, id)
	if err != nil {
		return fmt.Errorf("heartbeat of dispatcher %s: %w", id, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if err := checkAlive(ctx, s.pool, id); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// DeregisterDispatcher implements store.Store.
func (s *Store) DeregisterDispatcher(ctx context.Context, id string) error {
	if err := s.checkOpen("deregistering a dispatcher"); err != nil {
		return err
	}
	queues := map[string]bool{}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		clear(queues)
		rows, err := tx.Query(ctx, `UPDATE skein_jobs SET state = 'available', attempt = attempt - 1,
			errors = errors || jsonb_build_array(jsonb_build_object('at', $2::text, 'attempt', attempt, 'slot', slot,
				'error', $3::text, 'interrupted', true, 'dispatcher', attempted_by))
			WHERE state = 'running' AND attempted_by = $1 RETURNING queue`,
			id, time.Now().UTC().Format(time.RFC3339Nano), "interrupted: dispatcher "+id+" stopped")
		if err != nil {
			return fmt.Errorf("deregister dispatcher %s: releasing its jobs: %w", id, err)
		}
		var q string
		if _, err := pgx.ForEachRow(rows, []any{&q}, func() error { queues[q] = true; return nil }); err != nil {
			return fmt.Errorf("deregister dispatcher %s: releasing its jobs: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM skein_dispatchers WHERE id = $1`, id); err != nil {
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

func scanDispatchers(rows pgx.Rows) ([]*store.Dispatcher, error) {
	defer rows.Close()
	var out []*store.Dispatcher
	for rows.Next() {
		var (
			d           store.Dispatcher
			agents      []byte
			started, hb time.Time
			dead        *time.Time
			deadBy      *string
		)
		if err := rows.Scan(&d.ID, &d.Host, &d.PID, &agents, &started, &hb, &dead, &deadBy); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(agents, &d.Agents); err != nil {
			return nil, fmt.Errorf("dispatcher %s: decoding column agents: %w", d.ID, err)
		}
		d.StartedAt, d.HeartbeatAt, d.DeadAt = started.UTC(), hb.UTC(), utc(dead)
		if deadBy != nil {
			d.DeadBy = *deadBy
		}
		out = append(out, &d)
	}
	return out, rows.Err()
}

// ListDispatchers implements store.Store.
func (s *Store) ListDispatchers(ctx context.Context) ([]*store.Dispatcher, error) {
	if err := s.checkOpen("listing dispatchers"); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+dispatcherColumns+` FROM skein_dispatchers ORDER BY id COLLATE "C"`)
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
	res := &store.RescueResult{}
	queues := map[string]bool{}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		*res = store.RescueResult{}
		clear(queues)
		rows, err := tx.Query(ctx, `UPDATE skein_dispatchers SET dead_at = coalesce($1::timestamptz, now()), dead_by = $2
			WHERE dead_at IS NULL AND id <> $2 AND heartbeat_at < coalesce($1::timestamptz, now()) - make_interval(secs => $3)
			RETURNING `+dispatcherColumns, nullTime(rp.Now), rp.By, rp.DeadAfter.Seconds())
		if err != nil {
			return fmt.Errorf("rescue: marking dead dispatchers: %w", err)
		}
		if res.Dead, err = scanDispatchers(rows); err != nil {
			return fmt.Errorf("rescue: marking dead dispatchers: %w", err)
		}
		at := rp.Now
		if at.IsZero() {
			at = time.Now()
		}
		msg := "interrupted: dispatcher judged dead (no heartbeat for " + rp.DeadAfter.String() + "), job reassigned"
		rows, err = tx.Query(ctx, `UPDATE skein_jobs j SET
				state = CASE WHEN j.attempt >= j.max_attempts THEN 'discarded' ELSE 'available' END,
				finalized_at = CASE WHEN j.attempt >= j.max_attempts THEN coalesce($1::timestamptz, now()) END,
				errors = j.errors || jsonb_build_array(jsonb_build_object('at', $2::text, 'attempt', j.attempt, 'slot', j.slot,
					'error', $3::text, 'interrupted', true, 'reassigned', true, 'dispatcher', j.attempted_by))
			WHERE j.state = 'running' AND NOT EXISTS
				(SELECT 1 FROM skein_dispatchers d WHERE d.id = j.attempted_by AND d.dead_at IS NULL)
			RETURNING `+prefixed("j.", shared.JobColumns), nullTime(rp.Now), at.UTC().Format(time.RFC3339Nano), msg)
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
	res := &store.CleanupResult{}
	for _, r := range []struct {
		state store.State
		after time.Duration
	}{{store.StateCompleted, c.CompletedAfter}, {store.StateCancelled, c.CancelledAfter}, {store.StateDiscarded, c.DiscardedAfter}} {
		if r.after < 0 {
			continue
		}
		for {
			tag, err := s.pool.Exec(ctx, `DELETE FROM skein_jobs WHERE id IN (SELECT id FROM skein_jobs
				WHERE state = $1 AND finalized_at < coalesce($2::timestamptz, now()) - make_interval(secs => $3) LIMIT $4)`,
				string(r.state), nullTime(c.Now), r.after.Seconds(), c.BatchSize)
			if err != nil {
				return res, fmt.Errorf("cleanup: deleting %s jobs: %w", r.state, err)
			}
			res.Jobs += tag.RowsAffected()
			if tag.RowsAffected() < int64(c.BatchSize) {
				break
			}
		}
	}
	if c.DeadDispatchersAfter >= 0 {
		tag, err := s.pool.Exec(ctx, `DELETE FROM skein_dispatchers WHERE dead_at < coalesce($1::timestamptz, now()) - make_interval(secs => $2)`,
			nullTime(c.Now), c.DeadDispatchersAfter.Seconds())
		if err != nil {
			return res, fmt.Errorf("cleanup: deleting dead dispatchers: %w", err)
		}
		res.Dispatchers = tag.RowsAffected()
	}
	return res, nil
}

// ---- queries -------------------------------------------------------------

// GetJob implements store.Store.
func (s *Store) GetJob(ctx context.Context, id string) (*store.Job, error) {
	if err := s.checkOpen("reading job " + id); err != nil {
		return nil, err
	}
	j, err := scanJob(s.pool.QueryRow(ctx, `SELECT `+shared.JobColumns+` FROM skein_jobs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
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
	b := shared.Builder{Postgres: true, Time: func(t time.Time) any { return t }}
	b.Filter(&l.Filter)
	if l.Cursor != "" {
		c, err := shared.DecodeCursor(l.Cursor)
		if err != nil {
			return nil, err
		}
		b.Cond("(created_at, id) < (" + b.Arg(c.CreatedAt) + "::timestamptz, " + b.Arg(c.ID) + "::text)")
	}
	var q string
	if l.Order == store.OrderNewest {
		q = newestQuery(&b, l.Filter.States, l.Limit+1)
	} else {
		q = `SELECT ` + shared.JobColumns + ` FROM skein_jobs` + b.Where() + shared.OrderBy(l.Order) + ` LIMIT ` + b.Arg(l.Limit+1)
	}
	rows, err := s.pool.Query(ctx, q, b.Args...)
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

// newestQuery returns the newest-first listing of the jobs b selects
// (states: the filter's). The created_at order is kept in two indexes, one
// for running jobs and one for the others (migration 002): each branch
// reads its own in order, with its state condition written out so that a
// generic plan sees it, and the branches are merged.
func newestQuery(b *shared.Builder, states []store.State, limit int) string {
	running, others := len(states) == 0, len(states) == 0
	for _, st := range states {
		if st == store.StateRunning {
			running = true
		} else {
			others = true
		}
	}
	where := b.Where()
	branch := func(cond string) string {
		w := " WHERE " + cond
		if where != "" {
			w = where + " AND " + cond
		}
		return `SELECT ` + shared.JobColumns + ` FROM skein_jobs` + w + shared.OrderBy(store.OrderNewest)
	}
	lim := ` LIMIT ` + b.Arg(limit)
	switch {
	case !running:
		return branch("state <> 'running'") + lim
	case !others:
		return branch("state = 'running'") + lim
	}
	return `SELECT ` + shared.JobColumns + ` FROM ((` + branch("state <> 'running'") + lim + `) UNION ALL (` +
		branch("state = 'running'") + lim + `)) j` + shared.OrderBy(store.OrderNewest) + lim
}

// CountJobs implements store.Store.
func (s *Store) CountJobs(ctx context.Context, f *store.JobFilter) (int64, error) {
	if err := s.checkOpen("counting jobs"); err != nil {
		return 0, err
	}
	b := shared.Builder{Postgres: true, Time: func(t time.Time) any { return t }}
	b.Filter(f)
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM skein_jobs`+b.Where(), b.Args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting jobs: %w", err)
	}
	return n, nil
}

// Stats implements store.Store.
func (s *Store) Stats(ctx context.Context) ([]*store.QueueStats, error) {
	if err := s.checkOpen("job stats"); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT queue, state, count(*),
			min(scheduled_at) FILTER (WHERE state = 'available' OR (state IN ('scheduled', 'retryable') AND scheduled_at <= now())),
			min(attempted_at) FILTER (WHERE state = 'running')
		FROM skein_jobs GROUP BY queue, state ORDER BY queue COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("job stats: %w", err)
	}
	defer rows.Close()
	var out []*store.QueueStats
	for rows.Next() {
		var (
			queue, state     string
			n                int64
			waiting, running *time.Time
		)
		if err := rows.Scan(&queue, &state, &n, &waiting, &running); err != nil {
			return nil, fmt.Errorf("job stats: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].Queue != queue {
			out = append(out, &store.QueueStats{Queue: queue, Counts: map[store.State]int64{}})
		}
		qs := out[len(out)-1]
		qs.Counts[store.State(state)] = n
		qs.OldestWaiting = minTime(qs.OldestWaiting, utc(waiting))
		qs.OldestRunning = minTime(qs.OldestRunning, utc(running))
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
