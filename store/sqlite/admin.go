package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/internal/shared"
)

// checkOpen returns an error wrapping store.ErrClosed, prefixed with what
// the caller was doing, once Close has been called. Every method but Name,
// Path and Close starts with it.
func (s *Store) checkOpen(doing string) error {
	if s.ctx.Err() != nil {
		return fmt.Errorf("%s: %w", doing, store.ErrClosed)
	}
	return nil
}

// retrySQL makes one job available now. A final job's slot is incremented:
// its job action already ended at the position the next run would
// otherwise take. A job without attempts left gets one more. A job whose
// unique key another pending job holds is not changed.
const retrySQL = `UPDATE skein_jobs SET
	state = 'available',
	scheduled_at = ?1,
	finalized_at = NULL,
	max_attempts = CASE WHEN attempt >= max_attempts THEN attempt + 1 ELSE max_attempts END,
	slot = CASE WHEN state IN ('completed', 'cancelled', 'discarded') THEN slot + 1 ELSE slot END
WHERE id = ?2 AND state IN ` + shared.RetryFrom + `
	AND (unique_key IS NULL OR NOT EXISTS (SELECT 1 FROM skein_jobs o
		WHERE o.unique_key = skein_jobs.unique_key AND o.id <> skein_jobs.id AND o.state IN ` + shared.PendingStates + `))
RETURNING ` + shared.JobColumns

const cancelSQL = `UPDATE skein_jobs SET state = 'cancelled', finalized_at = ?1
WHERE id = ?2 AND state IN ` + shared.CancelFrom + `
RETURNING ` + shared.JobColumns

// RetryJobs implements store.Store.
func (s *Store) RetryJobs(ctx context.Context, ids []string) ([]*store.Job, error) {
	if err := s.checkOpen("retrying jobs"); err != nil {
		return nil, err
	}
	jobs, queues, err := s.change(ctx, "retrying", retrySQL, ids)
	if err != nil {
		return nil, err
	}
	s.notify(queues)
	return jobs, nil
}

// CancelJobs implements store.Store.
func (s *Store) CancelJobs(ctx context.Context, ids []string) ([]*store.Job, error) {
	if err := s.checkOpen("cancelling jobs"); err != nil {
		return nil, err
	}
	jobs, _, err := s.change(ctx, "cancelling", cancelSQL, ids)
	return jobs, err
}

// change runs query (parameters: now, id) for each id in one write
// transaction and returns every job as it is afterwards, in the order of
// ids, and the queues of the jobs it changed.
func (s *Store) change(ctx context.Context, doing, query string, ids []string) ([]*store.Job, map[string]bool, error) {
	if len(ids) == 0 {
		return []*store.Job{}, nil, nil
	}
	now := micros(nowOr(time.Time{}))
	var jobs []*store.Job
	queues := map[string]bool{}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		jobs = make([]*store.Job, 0, len(ids))
		clear(queues)
		stmt, err := tx.PrepareContext(ctx, query)
		if err != nil {
			return fmt.Errorf("%s jobs: preparing: %w", doing, err)
		}
		defer stmt.Close()
		for _, id := range ids {
			j, err := scanJob(stmt.QueryRowContext(ctx, now, id))
			switch {
			case err == nil:
				queues[j.Queue] = true
			case errors.Is(err, sql.ErrNoRows):
				if j, err = unchanged(ctx, tx, doing, id); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%s job %s: %w", doing, id, err)
			}
			jobs = append(jobs, j)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return jobs, queues, nil
}

// unchanged reads a job that change left alone: unknown (ErrNotFound),
// in a state the change does not apply to, or, for a retry, kept from
// running by its unique key (an error naming the job that holds it).
func unchanged(ctx context.Context, tx *sql.Tx, doing, id string) (*store.Job, error) {
	j, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+shared.JobColumns+` FROM skein_jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s job %s: %w", doing, id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s job %s: reading it: %w", doing, id, err)
	}
	if doing != "retrying" || j.UniqueKey == "" || j.State == store.StateRunning || j.State == store.StateAvailable {
		return j, nil
	}
	var holder, state string
	err = tx.QueryRowContext(ctx, `SELECT id, state FROM skein_jobs
		WHERE unique_key = ? AND id <> ? AND state IN `+shared.PendingStates+` LIMIT 1`, j.UniqueKey, id).Scan(&holder, &state)
	if err != nil {
		return nil, fmt.Errorf("%s job %s: not changed, and finding out why: %w", doing, id, err)
	}
	return nil, fmt.Errorf("%s job %s: its unique key %q is held by job %s (%s)", doing, id, j.UniqueKey, holder, state)
}
