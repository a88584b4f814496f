package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/internal/shared"
)

// Concurrent small inserts and all outcomes are combined (shared.Combiner):
// calls that arrive while a statement is in flight go together in the next
// one, so eight goroutines inserting one job each cost one statement and one
// commit, not eight. A call returns once its own rows are committed.

// ---- inserts -------------------------------------------------------------

type insertCall struct {
	params []*store.InsertParams
	res    []store.InsertResult
	queues map[string]bool
	err    error
	done   chan struct{}
}

func (s *Store) insertCombined(ctx context.Context, params []*store.InsertParams) ([]store.InsertResult, map[string]bool, error) {
	c := &insertCall{params: params, done: make(chan struct{})}
	if err := shared.Submit(ctx, &s.gate, s.inserts, c, c.done); err != nil {
		return nil, nil, fmt.Errorf("inserting jobs: %w", err)
	}
	return c.res, c.queues, c.err
}

// runInserts runs a batch of insert calls; the combiner ends them
// (closes done) once it returned.
func (s *Store) runInserts(ctx context.Context, calls []*insertCall) {
	if len(calls) == 1 {
		c := calls[0]
		c.res, c.queues, c.err = s.insertDirect(ctx, c.params)
		return
	}
	var all []*store.InsertParams
	for _, c := range calls {
		all = append(all, c.params...)
	}
	// One statement for all; a unique key held by a job that finishes
	// meanwhile or an id that exists (which fails the whole statement)
	// sends every call its own way, so that errors land where they belong.
	res, _, err := s.insert(ctx, s.pool, all)
	if err != nil {
		for _, c := range calls {
			c.res, c.queues, c.err = s.insertDirect(ctx, c.params)
		}
		return
	}
	for _, c := range calls {
		c.res, res = res[:len(c.params):len(c.params)], res[len(c.params):]
		c.queues = map[string]bool{}
		for _, r := range c.res {
			if !r.Duplicate && r.Job.State == store.StateAvailable {
				c.queues[r.Job.Queue] = true
			}
		}
	}
}

// ---- outcomes ------------------------------------------------------------

type finishCall struct {
	outcomes []*store.Outcome
	notHeld  []string
	err      error
	done     chan struct{}
}

func (s *Store) finishCombined(ctx context.Context, outcomes []*store.Outcome) ([]string, error) {
	c := &finishCall{outcomes: outcomes, done: make(chan struct{})}
	if err := shared.Submit(ctx, &s.gate, s.finishes, c, c.done); err != nil {
		return nil, fmt.Errorf("finishing jobs: %w", err)
	}
	return c.notHeld, c.err
}

func (s *Store) runFinishes(ctx context.Context, calls []*finishCall) {
	// Two outcomes for one job cannot share a statement (only one would
	// apply, and both would look applied): such calls go alone.
	seen := map[string]bool{}
	var together, alone []*finishCall
	for _, c := range calls {
		if clash(c.outcomes) || slices.ContainsFunc(c.outcomes, func(o *store.Outcome) bool { return seen[o.ID] }) {
			alone = append(alone, c) // finish applies them in rounds
			continue
		}
		for _, o := range c.outcomes {
			seen[o.ID] = true
		}
		together = append(together, c)
	}
	if len(together) > 0 {
		var all []*store.Outcome
		for _, c := range together {
			all = append(all, c.outcomes...)
		}
		notHeld, err := s.finish(ctx, all)
		missing := map[string]bool{}
		for _, id := range notHeld {
			missing[id] = true
		}
		for _, c := range together {
			c.err = err
			if err == nil {
				for _, o := range c.outcomes {
					if missing[o.ID] {
						c.notHeld = append(c.notHeld, o.ID)
					}
				}
			}
			close(c.done)
		}
	}
	for _, c := range alone {
		c.notHeld, c.err = s.finish(ctx, c.outcomes)
		close(c.done)
	}
}
