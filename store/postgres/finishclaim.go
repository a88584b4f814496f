package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/internal/shared"
)

// FinishClaim implements store.Store: the outcomes, the claim plan setting
// and the claim go in one round trip and one implicit transaction, hence
// one commit. Jobs the outcomes made ready are claimable by the claim that
// follows them.
func (s *Store) FinishClaim(ctx context.Context, outcomes []*store.Outcome, p *store.ClaimParams) ([]string, []*store.Job, error) {
	if err := s.checkOpen("finishing and claiming jobs"); err != nil {
		return nil, nil, err
	}
	for i, o := range outcomes {
		if err := o.Validate(); err != nil {
			return nil, nil, fmt.Errorf("finishing jobs: outcomes[%d]: %w", i, err)
		}
	}
	if err := shared.ValidateClaim(p); err != nil {
		return nil, nil, err
	}
	if len(outcomes) == 0 || clash(outcomes) {
		// Two outcomes for one job cannot share the statement (only one
		// would apply, and both would look applied).
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
		return notHeld, jobs, err
	}
	fargs, err := finishArgs(outcomes)
	if err != nil {
		return nil, nil, err
	}
	q, cargs := claimQuery(p)
	batch := &pgx.Batch{}
	batch.Queue(finishSQL, fargs...)
	batch.Queue(claimPlanSQL)
	batch.Queue(q, cargs...)
	br := s.pool.SendBatch(ctx, batch)
	notHeld, queues, jobs, err := readFinishClaim(br, outcomes)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("finishing %d jobs and claiming: %w", len(outcomes), cerr)
	}
	if err != nil {
		return nil, nil, err
	}
	s.notify(queues)
	if len(jobs) == 0 {
		if err := checkAlive(ctx, s.pool, p.Dispatcher); err != nil {
			return notHeld, nil, &store.ClaimAfterFinishError{Err: fmt.Errorf("claiming jobs: %w", err)}
		}
		return notHeld, nil, nil
	}
	sortClaimed(jobs)
	return notHeld, jobs, nil
}

// readFinishClaim reads the results of FinishClaim's batch, in order.
func readFinishClaim(br pgx.BatchResults, outcomes []*store.Outcome) ([]string, map[string]bool, []*store.Job, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("finishing %d jobs: %w", len(outcomes), err)
	}
	notHeld, queues, err := readFinished(rows, outcomes)
	if err != nil {
		return nil, nil, nil, err
	}
	if _, err := br.Exec(); err != nil {
		return nil, nil, nil, fmt.Errorf("claiming jobs: %w", err)
	}
	rows, err = br.Query()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("claiming jobs: %w", err)
	}
	jobs, err := scanJobs(rows)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("claiming jobs: %w", err)
	}
	return notHeld, queues, jobs, nil
}

// clash reports whether two outcomes are for one job.
func clash(outcomes []*store.Outcome) bool {
	seen := make(map[string]bool, len(outcomes))
	for _, o := range outcomes {
		if seen[o.ID] {
			return true
		}
		seen[o.ID] = true
	}
	return false
}
