package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skeinhq/skein/store"
)

// State groups that asyncdb accepts besides the store's own state names.
var stateAliases = map[string][]store.State{
	"pending":   {store.StateScheduled, store.StateAvailable, store.StateRetryable},
	"active":    {store.StateRunning},
	"succeeded": {store.StateCompleted},
	"failed":    {store.StateDiscarded},
	"final":     {store.StateCompleted, store.StateCancelled, store.StateDiscarded},
}

const stateHelp = `    States are skein's job states: scheduled, available, running,
    retryable, completed, cancelled and discarded; and the groups pending
    (scheduled, available and retryable), active (running), succeeded
    (completed), failed (discarded) and final (completed, cancelled and
    discarded).`

const filterHelp = `    Filters:

        kind:<glob>       the job's kind, a shell glob such as send_*
        queue:<glob>      the job's queue
        agent:<glob>      the agent that claimed it
        uuid:<glob>       the dispatcher that claimed it (uuid:THIS is the
                          first dispatcher of this process)
        workflow:<id>     the job's workflow id

    Time filters take sinceINTERVAL, beforeINTERVAL, or both separated by a
    comma (no space): "created:", "scheduled:" (when the job may run),
    "start:" (its last attempt began) and "end:" (it became final).  For
    instance end:since1H, or start:since1M,before30S.

` + intervalHelp

var filterNames = []string{"kind", "queue", "agent", "uuid", "workflow", "created", "scheduled", "start", "end"}

func (m *Monitor) asyncdbPlugin() *plugin {
	p := &plugin{name: "asyncdb", doc: `Monitor skein activity in the store (the whole cluster).

    To see a list of asyncdb tools, use 'asyncdb help'.

    To learn more about an asyncdb monitor tool, use 'asyncdb help <tool name>'.`}
	p.tools = map[string]*tool{
		"help": {doc: `Get help on an asyncdb monitor tool.

    Usage is 'asyncdb help <tool name>' or 'asyncdb help'.`, pos: 1,
			call: func(_ context.Context, a Args) (any, error) { return toolHelp(p, a) }},
		"UUIDs": {doc: `Return the UUIDs of the dispatchers registered and not marked dead.

    Usage:

        UUIDs
        (returns the UUIDs, sorted)

        UUIDs all:
        (includes the dispatchers marked dead)`,
			named: []string{"all"}, call: m.dbUUIDs},
		"status": {doc: `Get the cluster's queues and dispatchers, with dead or alive.

    Usage:

        status
        (returns every queue and every dispatcher)

        status queue:<glob> agent:<glob> uuid:<glob>
        (only the matching queues, agents and dispatchers)

    Each queue shows "len" (jobs pending: scheduled, available or
    retryable), its counts by state, its oldest waiting job and running
    attempt ("waiting for" and "running for": how long ago), and the
    dispatchers whose agents claim from it.  Each dispatcher shows its last
    heartbeat ("last ping"), the time since, whether it is dead (marked dead
    by another dispatcher, or silent for longer than the dead-after time),
    and its agents with their size and "len", the jobs they hold now
    (running, or claimed ahead and waiting for a slot).`,
			named: []string{"queue", "agent", "uuid"}, call: m.dbStatus},
		"jobs": {doc: `Return the jobs in the given states that match the filters.

    Usage:

        jobs <state> [<state>...] [filters] [display:<ids|repr|details>] [count:<n>]
        (newest first; count: limits the result, 0 or none means all)

    display:ids (the default) shows job ids, display:repr one line per job,
    display:details the whole record of each job.

` + stateHelp + `

` + filterHelp + `

    Example:

        asyncdb jobs failed kind:send_* end:since1H
        (the send_* jobs that failed for good in the last hour)`,
			pos: len(store.States) + len(stateAliases), named: append([]string{"display", "count"}, filterNames...), call: m.dbJobs},
		"count": {doc: `Count the jobs in the given states that match the filters.

    Usage:

        count <state> [<state>...] [filters]

` + stateHelp + `

` + filterHelp,
			pos: len(store.States) + len(stateAliases), named: filterNames, call: m.dbCount},
		"jobstats": {doc: `Statistics on the jobs in the given states that match the filters.

    Usage:

        jobstats [<state>...] [filters]
        (all states when none is given)

    Returns the count of jobs by state, and the shortest and longest
    "wait" (from when the job could run to when its last attempt began, or
    to now) and "active" (from when its last attempt began to when it
    ended, or to now), each as [duration, job id].

` + stateHelp + `

` + filterHelp,
			pos: len(store.States) + len(stateAliases), named: filterNames, call: m.dbJobstats},
		"job": {doc: `Details of a job in the store.

    Usage:

        job <job id>`, pos: 1, call: m.dbJob},
		"nextpending": {doc: `Details of the job the next claim would take.

    Usage:

        nextpending [filters]
        (the due job with the smallest priority, then the oldest; null when
         none is due)

` + filterHelp, named: slices.DeleteFunc(slices.Clone(filterNames), func(s string) bool { return s == "start" || s == "end" }), call: m.dbNextPending},
		"lastcompleted": {doc: `Details of the job that most recently became final.

    Usage:

        lastcompleted [filters]
        (completed, cancelled or discarded; null when none)

` + filterHelp, named: filterNames, call: m.dbLastCompleted},
		"traceback": {doc: `The error of a job's failed attempt, or null if none failed.

    Usage:

        traceback <job id>
        (the last error, with its stack when one was taken)

        traceback <job id> detail:brief
        (the last error's message only)

        traceback <job id> detail:verbose
        (every failed or interrupted attempt, oldest first)`,
			pos: 1, named: []string{"detail"}, call: m.dbTraceback},
	}
	for name, t := range p.tools {
		t.name = name
	}
	return p
}

var errNoStore = errors.New("no store is configured in this monitor")

func (m *Monitor) store() (store.Store, error) {
	if m.cfg.Store == nil {
		return nil, errNoStore
	}
	return m.cfg.Store, nil
}

func (m *Monitor) dbUUIDs(ctx context.Context, a Args) (any, error) {
	st, err := m.store()
	if err != nil {
		return nil, err
	}
	if v, ok := a.Named["all"]; ok && v != "" {
		return nil, fmt.Errorf("modifier \"all:\": takes no value, got %q", v)
	}
	_, all := a.Named["all"]
	ds, err := st.ListDispatchers(ctx)
	if err != nil {
		return nil, &StoreError{Op: "listing dispatchers", Err: err}
	}
	ids := []string{}
	for _, d := range ds {
		if all || d.DeadAt.IsZero() {
			ids = append(ids, d.ID)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// glob is a compiled shell-glob filter; an empty pattern with ok false
// matches everything.
type glob struct {
	pattern string
	set     bool
}

func newGlob(name string, a Args) (glob, error) {
	v, ok := a.Named[name]
	if !ok {
		return glob{}, nil
	}
	if _, err := path.Match(v, ""); err != nil {
		return glob{}, fmt.Errorf("modifier \"%s:\": bad glob %q: %w", name, v, err)
	}
	return glob{pattern: v, set: true}, nil
}

func (g glob) match(s string) bool {
	if !g.set {
		return true
	}
	ok, _ := path.Match(g.pattern, s)
	return ok
}

// literal reports whether the glob matches exactly one string: itself.
func (g glob) literal() bool { return g.set && !strings.ContainsAny(g.pattern, `*?[\`) }

// query is a parsed asyncdb filter: what the store can filter, and the
// globs it cannot.
type query struct {
	filter                   store.JobFilter
	kind, queue, agent, uuid glob
}

func (q *query) match(j *store.Job) bool {
	return q.kind.match(j.Kind) && q.queue.match(j.Queue) &&
		q.agent.match(j.AttemptedAgent) && q.uuid.match(j.AttemptedBy)
}

// inMemory reports whether some glob must be applied after reading.
func (q *query) inMemory() bool {
	for _, g := range []glob{q.kind, q.queue, q.agent, q.uuid} {
		if g.set && !g.literal() {
			return true
		}
	}
	return false
}

// parseStates reads the positional state words.
func parseStates(words []string) ([]store.State, error) {
	var out []store.State
	for _, w := range words {
		if group, ok := stateAliases[w]; ok {
			for _, s := range group {
				if !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
			continue
		}
		s, err := store.ParseState(w)
		if err != nil {
			return nil, fmt.Errorf("unknown state %q (want one of scheduled, available, running, retryable, completed, cancelled, discarded, pending, active, succeeded, failed, final)", w)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// parseQuery reads the filters of a.
func (m *Monitor) parseQuery(a Args) (*query, error) {
	q := &query{}
	var err error
	for _, f := range []struct {
		name string
		g    *glob
	}{{"kind", &q.kind}, {"queue", &q.queue}, {"agent", &q.agent}, {"uuid", &q.uuid}} {
		if *f.g, err = newGlob(f.name, a); err != nil {
			return nil, err
		}
	}
	if q.uuid.set && q.uuid.pattern == "THIS" {
		if len(m.cfg.Dispatchers) == 0 {
			return nil, fmt.Errorf("modifier uuid:THIS: %w", errNoDispatcher)
		}
		q.uuid.pattern = m.cfg.Dispatchers[0].Status().UUID
	}
	if q.kind.literal() {
		q.filter.Kinds = []string{q.kind.pattern}
	}
	if q.queue.literal() {
		q.filter.Queues = []string{q.queue.pattern}
	}
	if q.agent.literal() {
		q.filter.Agent = q.agent.pattern
	}
	if q.uuid.literal() {
		q.filter.Dispatcher = q.uuid.pattern
	}
	q.filter.WorkflowID = a.Named["workflow"]
	now := m.now()
	for _, f := range []struct {
		name string
		r    *store.TimeRange
	}{{"created", &q.filter.Created}, {"scheduled", &q.filter.Scheduled}, {"start", &q.filter.Attempted}, {"end", &q.filter.Finalized}} {
		v, ok := a.Named[f.name]
		if !ok {
			continue
		}
		if *f.r, err = parseTimeFilter(f.name, v, now); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// parseTimeFilter reads sinceINTERVAL, beforeINTERVAL or both,
// comma-separated.
func parseTimeFilter(name, v string, now time.Time) (store.TimeRange, error) {
	var r store.TimeRange
	if v == "" {
		return r, fmt.Errorf("modifier \"%s:\": needs sinceINTERVAL, beforeINTERVAL or both, e.g. %s:since1H", name, name)
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(v, ",") {
		lower := strings.ToLower(part)
		var which string
		switch {
		case strings.HasPrefix(lower, "since"):
			which = "since"
		case strings.HasPrefix(lower, "before"):
			which = "before"
		default:
			return r, fmt.Errorf("modifier \"%s:\": %q does not start with since or before (e.g. %s:since1H or %s:since1H,before5M)", name, part, name, name)
		}
		if seen[which] {
			return r, fmt.Errorf("modifier \"%s:\": %s given twice", name, which)
		}
		seen[which] = true
		d, err := ParseInterval(part[len(which):])
		if err != nil {
			return r, fmt.Errorf("modifier \"%s:\": %w", name, err)
		}
		if which == "since" {
			r.From = now.Add(-d)
		} else {
			r.To = now.Add(-d)
		}
	}
	return r, nil
}

// scan calls fn on each job matching q, newest first, until fn returns
// false; it reads at most ScanLimit jobs when globs apply in memory.
func (m *Monitor) scan(ctx context.Context, st store.Store, q *query, fn func(*store.Job) bool) error {
	params := &store.ListJobsParams{Filter: q.filter, Order: store.OrderNewest, Limit: store.MaxListLimit}
	read := 0
	for {
		page, err := st.ListJobs(ctx, params)
		if err != nil {
			return &StoreError{Op: "listing jobs", Err: err}
		}
		for _, j := range page.Jobs {
			read++
			if q.match(j) && !fn(j) {
				return nil
			}
		}
		if page.Next == "" {
			return nil
		}
		if read >= m.cfg.ScanLimit {
			return fmt.Errorf("more than %d jobs to read: narrow the filters", m.cfg.ScanLimit)
		}
		params.Cursor = page.Next
	}
}

func (m *Monitor) dbJobs(ctx context.Context, a Args) (any, error) {
	st, err := m.store()
	if err != nil {
		return nil, err
	}
	states, err := parseStates(a.Pos)
	if err != nil {
		return nil, err
	}
	if len(states) == 0 {
		return nil, errors.New("needs at least one state, e.g. asyncdb jobs pending (see 'asyncdb help jobs')")
	}
	display := a.Named["display"]
	switch display {
	case "", "default", "ids", "repr", "details":
	default:
		return nil, fmt.Errorf("modifier \"display:\": unknown value %q (want ids, repr or details)", display)
	}
	limit := 0
	if c, ok := a.Named["count"]; ok {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("modifier \"count:\": %q is not a non-negative integer", c)
		}
		limit = n
	}
	q, err := m.parseQuery(a)
	if err != nil {
		return nil, err
	}
	q.filter.States = states
	now := m.now()
	out := []any{}
	err = m.scan(ctx, st, q, func(j *store.Job) bool {
		switch display {
		case "repr":
			out = append(out, jobRepr(j))
		case "details":
			out = append(out, m.jobDetails(j, now))
		default:
			out = append(out, j.ID)
		}
		if len(out) > m.cfg.ScanLimit {
			return false
		}
		return limit == 0 || len(out) < limit
	})
	if err != nil {
		return nil, err
	}
	if len(out) > m.cfg.ScanLimit {
		return nil, fmt.Errorf("more than %d jobs match: narrow the filters or give a count: modifier", m.cfg.ScanLimit)
	}
	return out, nil
}

func jobRepr(j *store.Job) string {
	return fmt.Sprintf("<job %s kind %s queue %s %s attempt %d/%d>", j.ID, j.Kind, j.Queue, j.State, j.Attempt, j.MaxAttempts)
}

func (m *Monitor) dbCount(ctx context.Context, a Args) (any, error) {
	st, err := m.store()
	if err != nil {
		return nil, err
	}
	states, err := parseStates(a.Pos)
	if err != nil {
		return nil, err
	}
	if len(states) == 0 {
		return nil, errors.New("needs at least one state, e.g. asyncdb count pending (see 'asyncdb help count')")
	}
	q, err := m.parseQuery(a)
	if err != nil {
		return nil, err
	}
	q.filter.States = states
	if !q.inMemory() {
		n, err := st.CountJobs(ctx, &q.filter)
		if err != nil {
			return nil, &StoreError{Op: "counting jobs", Err: err}
		}
		return n, nil
	}
	var n int64
	if err := m.scan(ctx, st, q, func(*store.Job) bool { n++; return true }); err != nil {
		return nil, err
	}
	return n, nil
}

// wait is how long j waited to run: from ScheduledAt to its last attempt,
// or to now when it is due and not yet claimed.
func wait(j *store.Job, now time.Time) (time.Duration, bool) {
	switch j.State {
	case store.StateAvailable, store.StateScheduled, store.StateRetryable:
		if j.ScheduledAt.After(now) {
			return 0, false
		}
		return now.Sub(j.ScheduledAt), true
	}
	if j.AttemptedAt.IsZero() {
		return 0, false
	}
	return max(j.AttemptedAt.Sub(j.ScheduledAt), 0), true
}

// active is how long j's last attempt ran: to when it ended, or to now.
func active(j *store.Job, now time.Time) (time.Duration, bool) {
	if j.AttemptedAt.IsZero() {
		return 0, false
	}
	switch {
	case j.State == store.StateRunning:
		return now.Sub(j.AttemptedAt), true
	case j.State.Final() && !j.FinalizedAt.IsZero():
		return max(j.FinalizedAt.Sub(j.AttemptedAt), 0), true
	}
	return 0, false
}

func (m *Monitor) dbJobstats(ctx context.Context, a Args) (any, error) {
	st, err := m.store()
	if err != nil {
		return nil, err
	}
	states, err := parseStates(a.Pos)
	if err != nil {
		return nil, err
	}
	q, err := m.parseQuery(a)
	if err != nil {
		return nil, err
	}
	q.filter.States = states
	now := m.now()
	counts := map[string]int64{}
	for _, s := range store.States {
		if len(states) == 0 || slices.Contains(states, s) {
			counts[string(s)] = 0
		}
	}
	type extreme struct {
		d     time.Duration
		id    string
		valid bool
	}
	var shortWait, longWait, shortActive, longActive extreme
	note := func(short, long *extreme, d time.Duration, id string) {
		if !short.valid || d < short.d {
			*short = extreme{d, id, true}
		}
		if !long.valid || d > long.d {
			*long = extreme{d, id, true}
		}
	}
	err = m.scan(ctx, st, q, func(j *store.Job) bool {
		counts[string(j.State)]++
		if d, ok := wait(j, now); ok {
			note(&shortWait, &longWait, d, j.ID)
		}
		if d, ok := active(j, now); ok {
			note(&shortActive, &longActive, d, j.ID)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	pair := func(e extreme) any {
		if !e.valid {
			return nil
		}
		return []any{Duration(e.d), e.id}
	}
	return map[string]any{
		"counts":          counts,
		"shortest wait":   pair(shortWait),
		"longest wait":    pair(longWait),
		"shortest active": pair(shortActive),
		"longest active":  pair(longActive),
	}, nil
}

// jobDetails is the detail record of a stored job.
func (m *Monitor) jobDetails(j *store.Job, now time.Time) map[string]any {
	var result any
	switch {
	case j.State == store.StateCompleted && len(j.Result) > 0:
		result = m.truncate(string(j.Result))
	case len(j.Errors) > 0 && (j.State == store.StateDiscarded || j.State == store.StateRetryable || j.State == store.StateCancelled):
		result = m.truncate(j.Errors[len(j.Errors)-1].Error)
	}
	w, wok := wait(j, now)
	act, aok := active(j, now)
	v := map[string]any{
		"id":           j.ID,
		"kind":         j.Kind,
		"queue":        j.Queue,
		"status":       string(j.State),
		"priority":     j.Priority,
		"args":         rawOrNil(j.Args),
		"metadata":     rawOrNil(j.Metadata),
		"attempt":      j.Attempt,
		"max attempts": j.MaxAttempts,
		"created":      timeOrNil(j.CreatedAt),
		"begin after":  timeOrNil(j.ScheduledAt),
		"active start": timeOrNil(j.AttemptedAt),
		"active end":   timeOrNil(j.FinalizedAt),
		"wait":         durationOrNil(w, wok),
		"active":       durationOrNil(act, aok),
		"failed":       j.State == store.StateDiscarded,
		"result":       result,
		"errors":       len(j.Errors),
		"agent":        stringOrNil(j.AttemptedAgent),
		"dispatcher":   stringOrNil(j.AttemptedBy),
		"workflow id":  stringOrNil(j.WorkflowID),
		"task id":      stringOrNil(j.TaskID),
	}
	if j.Timeout > 0 {
		v["timeout"] = Duration(j.Timeout)
	}
	return v
}

func rawOrNil(r json.RawMessage) any {
	if len(r) == 0 || !json.Valid(r) {
		return nil
	}
	return r
}

func (m *Monitor) getJob(ctx context.Context, a Args) (*store.Job, error) {
	st, err := m.store()
	if err != nil {
		return nil, err
	}
	if len(a.Pos) == 0 {
		return nil, errors.New("needs a job id")
	}
	j, err := st.GetJob(ctx, a.Pos[0])
	if errors.Is(err, store.ErrNotFound) {
		return nil, &NotFoundError{What: fmt.Sprintf("no job %q in the store", a.Pos[0])}
	}
	if err != nil {
		return nil, &StoreError{Op: fmt.Sprintf("reading job %q", a.Pos[0]), Err: err}
	}
	return j, nil
}

func (m *Monitor) dbJob(ctx context.Context, a Args) (any, error) {
	j, err := m.getJob(ctx, a)
	if err != nil {
		return nil, err
	}
	return m.jobDetails(j, m.now()), nil
}

// first returns the first job in order that matches q.
func (m *Monitor) first(ctx context.Context, q *query, order store.Order) (*store.Job, error) {
	st, err := m.store()
	if err != nil {
		return nil, err
	}
	limit := 1
	if q.inMemory() {
		limit = store.MaxListLimit
	}
	page, err := st.ListJobs(ctx, &store.ListJobsParams{Filter: q.filter, Order: order, Limit: limit})
	if err != nil {
		return nil, &StoreError{Op: "listing jobs", Err: err}
	}
	for _, j := range page.Jobs {
		if q.match(j) {
			return j, nil
		}
	}
	return nil, nil
}

func (m *Monitor) dbNextPending(ctx context.Context, a Args) (any, error) {
	q, err := m.parseQuery(a)
	if err != nil {
		return nil, err
	}
	now := m.now()
	q.filter.States = stateAliases["pending"]
	if q.filter.Scheduled.To.IsZero() || q.filter.Scheduled.To.After(now) {
		q.filter.Scheduled.To = now.Add(time.Microsecond) // due: ScheduledAt <= now
	}
	j, err := m.first(ctx, q, store.OrderClaim)
	if err != nil || j == nil {
		return nil, err
	}
	return m.jobDetails(j, now), nil
}

func (m *Monitor) dbLastCompleted(ctx context.Context, a Args) (any, error) {
	q, err := m.parseQuery(a)
	if err != nil {
		return nil, err
	}
	q.filter.States = stateAliases["final"]
	j, err := m.first(ctx, q, store.OrderFinalized)
	if err != nil || j == nil {
		return nil, err
	}
	return m.jobDetails(j, m.now()), nil
}

func (m *Monitor) dbTraceback(ctx context.Context, a Args) (any, error) {
	detail := a.Named["detail"]
	switch detail {
	case "", "default", "brief", "verbose":
	default:
		return nil, fmt.Errorf("modifier \"detail:\": unknown value %q (want brief, default or verbose)", detail)
	}
	j, err := m.getJob(ctx, a)
	if err != nil {
		return nil, err
	}
	if len(j.Errors) == 0 {
		return nil, nil
	}
	last := j.Errors[len(j.Errors)-1]
	switch detail {
	case "brief":
		return m.truncate(last.Error), nil
	case "verbose":
		var b strings.Builder
		for i, e := range j.Errors {
			if i > 0 {
				b.WriteString("\n\n")
			}
			fmt.Fprintf(&b, "attempt %d (run %d", e.Attempt, e.Slot)
			if e.Dispatcher != "" {
				fmt.Fprintf(&b, ", dispatcher %s", e.Dispatcher)
			}
			if !e.At.IsZero() {
				fmt.Fprintf(&b, ", at %s", formatTime(e.At))
			}
			if e.Interrupted {
				b.WriteString(", interrupted")
			}
			if e.Reassigned {
				b.WriteString(", reassigned")
			}
			fmt.Fprintf(&b, "): %s", e.Error)
			if e.Stack != "" {
				b.WriteString("\n" + strings.TrimRight(e.Stack, "\n"))
			}
		}
		return m.truncate(b.String()), nil
	}
	s := last.Error
	if last.Stack != "" {
		s += "\n" + strings.TrimRight(last.Stack, "\n")
	}
	return m.truncate(s), nil
}

func (m *Monitor) dbStatus(ctx context.Context, a Args) (any, error) {
	st, err := m.store()
	if err != nil {
		return nil, err
	}
	var queueG, agentG, uuidG glob
	if queueG, err = newGlob("queue", a); err != nil {
		return nil, err
	}
	if agentG, err = newGlob("agent", a); err != nil {
		return nil, err
	}
	if uuidG, err = newGlob("uuid", a); err != nil {
		return nil, err
	}
	if uuidG.set && uuidG.pattern == "THIS" {
		if len(m.cfg.Dispatchers) == 0 {
			return nil, fmt.Errorf("modifier uuid:THIS: %w", errNoDispatcher)
		}
		uuidG.pattern = m.cfg.Dispatchers[0].Status().UUID
	}
	now := m.now()
	stats, err := st.Stats(ctx)
	if err != nil {
		return nil, &StoreError{Op: "reading queue stats", Err: err}
	}
	ds, err := st.ListDispatchers(ctx)
	if err != nil {
		return nil, &StoreError{Op: "listing dispatchers", Err: err}
	}
	// Running jobs per dispatcher and agent.
	type agentKey struct{ dispatcher, agent string }
	running := map[agentKey]int{}
	page, err := st.ListJobs(ctx, &store.ListJobsParams{Filter: store.JobFilter{States: []store.State{store.StateRunning}}, Limit: store.MaxListLimit})
	if err != nil {
		return nil, &StoreError{Op: "listing running jobs", Err: err}
	}
	for _, j := range page.Jobs {
		running[agentKey{j.AttemptedBy, j.AttemptedAgent}]++
	}
	queues := map[string]map[string]any{}
	addQueue := func(name string) map[string]any {
		if q, ok := queues[name]; ok {
			return q
		}
		q := map[string]any{"len": int64(0), "counts": map[string]int64{}, "oldest waiting": nil, "oldest running": nil,
			"waiting for": nil, "running for": nil, "dispatchers": []string{}}
		queues[name] = q
		return q
	}
	for _, s := range stats {
		if !queueG.match(s.Queue) {
			continue
		}
		q := addQueue(s.Queue)
		counts := map[string]int64{}
		var pending int64
		for state, n := range s.Counts {
			counts[string(state)] = n
			if slices.Contains(stateAliases["pending"], state) {
				pending += n
			}
		}
		q["counts"] = counts
		q["len"] = pending
		q["oldest waiting"] = timeOrNil(s.OldestWaiting)
		q["oldest running"] = timeOrNil(s.OldestRunning)
		q["waiting for"] = durationOrNil(now.Sub(s.OldestWaiting), !s.OldestWaiting.IsZero())
		q["running for"] = durationOrNil(now.Sub(s.OldestRunning), !s.OldestRunning.IsZero())
	}
	dispatchers := map[string]any{}
	type serves struct {
		id     string
		all    bool
		queues []string
	}
	var serving []serves
	for _, d := range ds {
		if !uuidG.match(d.ID) {
			continue
		}
		agents := map[string]any{}
		var served []string // queues, or nil for all
		all := false
		for _, ag := range d.Agents {
			if !agentG.match(ag.Name) {
				continue
			}
			agents[ag.Name] = map[string]any{
				"size":   ag.Size,
				"len":    running[agentKey{d.ID, ag.Name}],
				"queues": listOrNil(ag.Queues),
				"kinds":  listOrNil(ag.Kinds),
			}
			if len(ag.Queues) == 0 {
				all = true
			}
			served = append(served, ag.Queues...)
		}
		if agentG.set && len(agents) == 0 {
			continue
		}
		dead := !d.DeadAt.IsZero() || now.Sub(d.HeartbeatAt) > m.cfg.DeadAfter
		dispatchers[d.ID] = map[string]any{
			"host":       d.Host,
			"pid":        d.PID,
			"started":    timeOrNil(d.StartedAt),
			"last ping":  timeOrNil(d.HeartbeatAt),
			"since ping": Duration(now.Sub(d.HeartbeatAt)),
			"dead":       dead,
			"dead after": Duration(m.cfg.DeadAfter),
			"marked dead": func() any {
				if d.DeadAt.IsZero() {
					return nil
				}
				return map[string]any{"at": Time(d.DeadAt), "by": stringOrNil(d.DeadBy)}
			}(),
			"agents": agents,
		}
		for _, qn := range served {
			if queueG.match(qn) {
				addQueue(qn)
			}
		}
		serving = append(serving, serves{d.ID, all, served})
	}
	for name, q := range queues {
		for _, s := range serving {
			if s.all || slices.Contains(s.queues, name) {
				q["dispatchers"] = append(q["dispatchers"].([]string), s.id)
			}
		}
	}
	return map[string]any{"queues": queues, "dispatchers": dispatchers}, nil
}
