// Package shared holds what the store drivers have in common: parameter
// defaults, list cursors, notification fan-out and migration files.
package shared

import (
	"encoding/base64"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skeinhq/skein/store"
)

// CleanupDefaults returns p with zero fields set to their defaults (p may be
// nil).
func CleanupDefaults(p *store.CleanupParams) store.CleanupParams {
	var c store.CleanupParams
	if p != nil {
		c = *p
	}
	if c.CompletedAfter == 0 {
		c.CompletedAfter = store.DefaultCompletedRetention
	}
	if c.CancelledAfter == 0 {
		c.CancelledAfter = store.DefaultCancelledRetention
	}
	if c.DiscardedAfter == 0 {
		c.DiscardedAfter = store.DefaultDiscardedRetention
	}
	if c.DeadDispatchersAfter == 0 {
		c.DeadDispatchersAfter = store.DefaultDeadDispatcherRetention
	}
	if c.BatchSize == 0 {
		c.BatchSize = store.DefaultCleanupBatch
	}
	return c
}

// ValidateCleanup checks c after defaults.
func ValidateCleanup(c *store.CleanupParams) error {
	if c.BatchSize < 0 {
		return fmt.Errorf("cleanup: field BatchSize is %d, want at least 1", c.BatchSize)
	}
	return nil
}

// ValidateClaim checks claim params.
func ValidateClaim(p *store.ClaimParams) error {
	switch {
	case p == nil:
		return fmt.Errorf("claim: params are nil")
	case p.Dispatcher == "":
		return fmt.Errorf("claim: field Dispatcher is empty")
	case p.Agent == "":
		return fmt.Errorf("claim: field Agent is empty")
	case p.Limit < 1:
		return fmt.Errorf("claim: field Limit is %d, want at least 1", p.Limit)
	}
	return nil
}

// ValidateDispatcher checks a dispatcher to register.
func ValidateDispatcher(d *store.Dispatcher) error {
	switch {
	case d == nil:
		return fmt.Errorf("register dispatcher: dispatcher is nil")
	case d.ID == "":
		return fmt.Errorf("register dispatcher: field ID is empty")
	}
	seen := map[string]bool{}
	for i, a := range d.Agents {
		if a.Name == "" {
			return fmt.Errorf("register dispatcher %s: Agents[%d]: field Name is empty", d.ID, i)
		}
		if seen[a.Name] {
			return fmt.Errorf("register dispatcher %s: Agents[%d]: agent name %q used twice", d.ID, i, a.Name)
		}
		seen[a.Name] = true
		if a.Size < 1 {
			return fmt.Errorf("register dispatcher %s: agent %q: field Size is %d, want at least 1", d.ID, a.Name, a.Size)
		}
	}
	return nil
}

// ListDefaults returns p with defaults applied, validated.
func ListDefaults(p *store.ListJobsParams) (store.ListJobsParams, error) {
	var l store.ListJobsParams
	if p != nil {
		l = *p
	}
	if l.Limit == 0 {
		l.Limit = store.DefaultListLimit
	}
	if l.Limit < 0 || l.Limit > store.MaxListLimit {
		return l, fmt.Errorf("list jobs: field Limit is %d, want 1 to %d", l.Limit, store.MaxListLimit)
	}
	if l.Order < store.OrderNewest || l.Order > store.OrderFinalized {
		return l, fmt.Errorf("list jobs: field Order is %d, unknown", l.Order)
	}
	if l.Cursor != "" && l.Order != store.OrderNewest {
		return l, fmt.Errorf("list jobs: field Cursor is only valid with OrderNewest")
	}
	for _, s := range l.Filter.States {
		if !s.Valid() {
			return l, fmt.Errorf("list jobs: field Filter.States: unknown state %q", s)
		}
	}
	return l, nil
}

// Cursor is a position in the newest-first job order.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// EncodeCursor returns the opaque form of c.
func EncodeCursor(c Cursor) string {
	raw := strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + "|" + c.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// DecodeCursor parses a cursor made by EncodeCursor.
func DecodeCursor(s string) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, fmt.Errorf("list jobs: field Cursor %q is not a cursor: %w", s, err)
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	if !ok || id == "" {
		return Cursor{}, fmt.Errorf("list jobs: field Cursor %q is not a cursor: no job id", s)
	}
	us, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return Cursor{}, fmt.Errorf("list jobs: field Cursor %q is not a cursor: bad time: %w", s, err)
	}
	return Cursor{CreatedAt: time.UnixMicro(us).UTC(), ID: id}, nil
}

// Hub fans notifications out to subscriptions.
type Hub struct {
	mu     sync.Mutex
	subs   map[*Sub]struct{}
	closed bool
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[*Sub]struct{}{}} }

// Sub is one subscription of a Hub.
type Sub struct {
	hub    *Hub
	ch     chan string
	queues map[string]bool // nil: all
	once   sync.Once
}

// SubBuffer is the channel buffer of a subscription.
const SubBuffer = 16

// Subscribe adds a subscription for queues (all when empty). A closed hub
// returns a closed subscription.
func (h *Hub) Subscribe(queues []string) *Sub {
	s := &Sub{hub: h, ch: make(chan string, SubBuffer)}
	if len(queues) > 0 {
		s.queues = map[string]bool{}
		for _, q := range queues {
			s.queues[q] = true
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.once.Do(func() { close(s.ch) })
		return s
	}
	h.subs[s] = struct{}{}
	return s
}

// Notify wakes the subscriptions of queue ("" wakes all). It never blocks.
func (h *Hub) Notify(queue string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if queue != "" && s.queues != nil && !s.queues[queue] {
			continue
		}
		select {
		case s.ch <- queue:
		default: // a hint is already pending: they coalesce
		}
	}
}

// Close closes every subscription; later ones are born closed.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		s.once.Do(func() { close(s.ch) })
	}
	clear(h.subs)
}

// Len is the number of open subscriptions.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// C implements store.Subscription.
func (s *Sub) C() <-chan string { return s.ch }

// Close implements store.Subscription.
func (s *Sub) Close() error {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	delete(s.hub.subs, s)
	s.once.Do(func() { close(s.ch) })
	return nil
}

// MigrationFile is one migration read from an embedded directory.
type MigrationFile struct {
	store.Migration
	Up   string
	Down string
}

var migrationName = regexp.MustCompile(`^(\d{3})_([a-z0-9_]+)\.(up|down)\.sql$`)

// LoadMigrations reads NNN_name.up.sql and NNN_name.down.sql files from dir
// of fsys; versions must run 1, 2, 3… without gaps, each with both files.
func LoadMigrations(fsys fs.FS, dir string) ([]MigrationFile, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	byVersion := map[int]*MigrationFile{}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("reading migrations: %s/%s: name is not NNN_name.up.sql or NNN_name.down.sql", dir, e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		body, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("reading migrations: %w", err)
		}
		mf := byVersion[v]
		if mf == nil {
			mf = &MigrationFile{Migration: store.Migration{Version: v, Name: m[2]}}
			byVersion[v] = mf
		}
		if mf.Name != m[2] {
			return nil, fmt.Errorf("reading migrations: %s/%s: version %d has two names, %q and %q", dir, e.Name(), v, mf.Name, m[2])
		}
		if m[3] == "up" {
			mf.Up = string(body)
		} else {
			mf.Down = string(body)
		}
	}
	out := make([]MigrationFile, 0, len(byVersion))
	for _, mf := range byVersion {
		out = append(out, *mf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, mf := range out {
		if mf.Version != i+1 {
			return nil, fmt.Errorf("reading migrations: version %d missing (found %d)", i+1, mf.Version)
		}
		if mf.Up == "" || mf.Down == "" {
			return nil, fmt.Errorf("reading migrations: version %03d_%s needs both .up.sql and .down.sql", mf.Version, mf.Name)
		}
	}
	return out, nil
}

// Plan returns the migrations to apply (up) or revert (down, newest first)
// to go from current to the target in opts.
func Plan(all []MigrationFile, current int, up bool, opts *store.MigrateOpts) ([]MigrationFile, error) {
	latest := len(all)
	if current > latest {
		return nil, &store.SchemaVersionError{Database: current, Code: latest}
	}
	var target int
	switch {
	case opts != nil && opts.TargetVersion != nil:
		target = *opts.TargetVersion
	case up:
		target = latest
	default:
		target = max(current-1, 0)
	}
	if target < 0 || target > latest {
		return nil, fmt.Errorf("migrate: target version %d out of range 0 to %d", target, latest)
	}
	if up {
		if target < current {
			return nil, fmt.Errorf("migrate up: target version %d is below the current version %d", target, current)
		}
		return all[current:target], nil
	}
	if target > current {
		return nil, fmt.Errorf("migrate down: target version %d is above the current version %d", target, current)
	}
	var out []MigrationFile
	for v := current; v > target; v-- {
		out = append(out, all[v-1])
	}
	return out, nil
}

// MigrationTx is what Migrate needs of a driver's migration transaction.
type MigrationTx struct {
	// Current returns the schema version recorded in the transaction.
	Current func() (int, error)
	// Run runs a migration's SQL.
	Run func(sql string) error
	// Record records m as applied (up) or forgets it (down).
	Record func(m MigrationFile, up bool) error
}

// Migrate plans the migrations from the transaction's current version (see
// Plan) and applies them in it, returning those applied. verb ("up" or
// "down") prefixes its errors.
func Migrate(all []MigrationFile, up bool, opts *store.MigrateOpts, tx MigrationTx) ([]store.Migration, error) {
	verb := "down"
	if up {
		verb = "up"
	}
	current, err := tx.Current()
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", verb, err)
	}
	plan, err := Plan(all, current, up, opts)
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", verb, err)
	}
	var done []store.Migration
	for _, m := range plan {
		body := m.Down
		if up {
			body = m.Up
		}
		if err := tx.Run(body); err != nil {
			return nil, fmt.Errorf("migrate %s: version %03d_%s: %w", verb, m.Version, m.Name, err)
		}
		if err := tx.Record(m, up); err != nil {
			return nil, fmt.Errorf("migrate %s: recording version %d: %w", verb, m.Version, err)
		}
		done = append(done, m.Migration)
	}
	return done, nil
}

// Status builds a SchemaStatus from the applied versions.
func Status(all []MigrationFile, current int, applied map[int]time.Time) *store.SchemaStatus {
	st := &store.SchemaStatus{Current: current, Latest: len(all)}
	for _, m := range all {
		st.Migrations = append(st.Migrations, store.MigrationStatus{Migration: m.Migration, AppliedAt: applied[m.Version]})
	}
	return st
}

// Migrations returns the store.Migration of each file.
func Migrations(fs []MigrationFile) []store.Migration {
	out := make([]store.Migration, len(fs))
	for i, f := range fs {
		out[i] = f.Migration
	}
	return out
}

// ErrorEntry fills the zero fields of an outcome's error.
func ErrorEntry(e *store.AttemptError, attempt int, slot int64, dispatcher string, now time.Time) store.AttemptError {
	out := *e
	if out.At.IsZero() {
		out.At = now
	}
	out.At = out.At.UTC()
	if out.Attempt == 0 {
		out.Attempt = attempt
	}
	if out.Slot == 0 {
		out.Slot = slot
	}
	if out.Dispatcher == "" {
		out.Dispatcher = dispatcher
	}
	return out
}
