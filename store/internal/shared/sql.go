package shared

import (
	"strconv"
	"strings"
	"time"

	"github.com/skeinhq/skein/store"
)

// JobColumns lists the job columns in the order drivers scan them.
const JobColumns = `id, kind, queue, priority, args, metadata, state, attempt, max_attempts, timeout_us,
	scheduled_at, created_at, attempted_at, finalized_at, attempted_by, attempted_agent,
	workflow_id, task_id, slot, unique_key, errors, result`

// PendingStates are the states in which a unique key is held, as an SQL list.
const PendingStates = `('scheduled', 'available', 'running', 'retryable')`

// RetryFrom are the states Store.RetryJobs moves to available, and
// CancelFrom those Store.CancelJobs moves to cancelled, as SQL lists.
const (
	RetryFrom  = `('completed', 'cancelled', 'discarded', 'retryable', 'scheduled')`
	CancelFrom = `('scheduled', 'available', 'retryable')`
)

// Builder accumulates an SQL WHERE clause and its arguments for one dialect.
type Builder struct {
	// Postgres selects $n placeholders and = ANY($n) for lists; else ? and
	// IN (?, ?).
	Postgres bool
	// Time converts a time for the database.
	Time  func(time.Time) any
	conds []string
	Args  []any
}

// Arg adds an argument and returns its placeholder.
func (b *Builder) Arg(v any) string {
	b.Args = append(b.Args, v)
	if b.Postgres {
		return "$" + strconv.Itoa(len(b.Args))
	}
	return "?"
}

// Cond adds a condition.
func (b *Builder) Cond(c string) { b.conds = append(b.conds, c) }

// In adds "col is one of vals" (nothing when vals is empty).
func (b *Builder) In(col string, vals []string) {
	switch {
	case len(vals) == 0:
	case len(vals) == 1:
		b.Cond(col + " = " + b.Arg(vals[0]))
	case b.Postgres:
		b.Cond(col + " = ANY(" + b.Arg(vals) + ")")
	default:
		ph := make([]string, len(vals))
		for i, v := range vals {
			ph[i] = b.Arg(v)
		}
		b.Cond(col + " IN (" + strings.Join(ph, ", ") + ")")
	}
}

func (b *Builder) rangeOf(col string, r store.TimeRange) {
	if !r.From.IsZero() {
		b.Cond(col + " >= " + b.Arg(b.Time(r.From)))
	}
	if !r.To.IsZero() {
		b.Cond(col + " < " + b.Arg(b.Time(r.To)))
	}
}

// Filter adds the conditions of f.
func (b *Builder) Filter(f *store.JobFilter) {
	if f == nil {
		return
	}
	b.In("id", f.IDs)
	states := make([]string, len(f.States))
	for i, s := range f.States {
		states[i] = string(s)
	}
	b.In("state", states)
	b.In("queue", f.Queues)
	b.In("kind", f.Kinds)
	if f.WorkflowID != "" {
		// Job ids start with "<workflow_id>_": the primary key finds them.
		b.Cond("id >= " + b.Arg(f.WorkflowID+"_") + " AND id < " + b.Arg(f.WorkflowID+"`"))
		b.Cond("workflow_id = " + b.Arg(f.WorkflowID))
	}
	if f.Dispatcher != "" {
		b.Cond("attempted_by = " + b.Arg(f.Dispatcher))
	}
	if f.Agent != "" {
		b.Cond("attempted_agent = " + b.Arg(f.Agent))
	}
	b.rangeOf("created_at", f.Created)
	b.rangeOf("scheduled_at", f.Scheduled)
	b.rangeOf("attempted_at", f.Attempted)
	b.rangeOf("finalized_at", f.Finalized)
}

// Where returns " WHERE c1 AND c2 …", or "" without conditions.
func (b *Builder) Where() string {
	if len(b.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(b.conds, " AND ")
}

// OrderBy returns the ORDER BY clause of an order.
func OrderBy(o store.Order) string {
	switch o {
	case store.OrderClaim:
		return " ORDER BY priority, scheduled_at"
	case store.OrderFinalized:
		return " ORDER BY finalized_at DESC NULLS LAST, id DESC"
	default:
		return " ORDER BY created_at DESC, id DESC"
	}
}
