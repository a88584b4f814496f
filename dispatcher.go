package skein

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/internal/ring"
	"github.com/skeinhq/skein/store"
)

// Dispatcher states, as [Status] reports them.
const (
	StateNew      = "new"
	StateRunning  = "running"
	StateStopping = "stopping"
	StateStopped  = "stopped"
)

// Dispatcher claims jobs from a store and runs them: one per process. It
// registers itself in the store (UUID, host, pid, agents), heartbeats,
// runs its agents, rescues the jobs of dead dispatchers, and cleans up old
// jobs. Create it with [NewDispatcher], then Start and Stop it.
//
// # Goroutines
//
// Start starts one goroutine per agent (claiming), a heartbeat loop, a
// rescue loop, a cleanup loop and a completer (which stores outcomes in
// batches); each job runs in a goroutine of its own. Stop ends them all.
type Dispatcher struct {
	store   store.Store
	cfg     Config
	log     *slog.Logger
	agents  []*agent
	polls   *ring.Buffer[Poll]
	jobs    *ring.Buffer[JobRecord]
	pollKey atomic.Int64
	// lastPoll is the UnixNano of the last timed poll of any agent.
	lastPoll atomic.Int64
	// jobBase is the parent of every job context: it carries the Logger
	// and is never cancelled (each run has its own cancel).
	jobBase context.Context

	mu         sync.Mutex
	state      string
	startedAt  time.Time
	runs       map[*run]struct{}
	pending    []*finishing
	finishing  map[string]int // job ids with an outcome not yet stored
	goroutines int            // job goroutines still running
	claimsOver bool           // no more claims: set by Stop once the agents ended
	idle       chan struct{}  // closed when goroutines reaches 0 while stopping
	stopDone   chan struct{}  // closed when the first Stop finished its work
	stopErr    error

	fetchCancel context.CancelFunc // agents, rescue, cleanup
	fetchWG     sync.WaitGroup
	bgCancel    context.CancelFunc // heartbeat
	bgWG        sync.WaitGroup
	completer   chan struct{} // wakes the completer
	compStop    chan struct{} // closed to make the completer flush and exit
	compDone    chan struct{}
	rejoin      chan struct{}
	subs        subscribers
	counts      runCounters
	// orphans maps "<job id>#<slot>" of running jobs the store says this
	// dispatcher holds but that it does not know of, to when that was
	// first seen. Owned by the rescue loop.
	orphans map[string]time.Time
}

// NewDispatcher returns a dispatcher on st configured by cfg. It does not
// touch the store until Start.
func NewDispatcher(st store.Store, cfg *Config) (*Dispatcher, error) {
	if st == nil {
		return nil, fmt.Errorf("creating skein dispatcher: %w", errNoStore)
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("creating skein dispatcher: %w", err)
	}
	d := &Dispatcher{
		store:     st,
		cfg:       c,
		log:       slog.New(c.Logger.Handler(nil)),
		polls:     ring.New[Poll](c.PollRecords),
		jobs:      ring.New[JobRecord](c.JobRecords),
		jobBase:   action.WithLogger(context.Background(), c.Logger),
		state:     StateNew,
		runs:      make(map[*run]struct{}),
		finishing: make(map[string]int),
		orphans:   make(map[string]time.Time),
		completer: make(chan struct{}, 1),
		compStop:  make(chan struct{}),
		compDone:  make(chan struct{}),
		rejoin:    make(chan struct{}, 1),
		idle:      make(chan struct{}),
		stopDone:  make(chan struct{}),
	}
	for _, ac := range c.Agents {
		d.agents = append(d.agents, &agent{d: d, cfg: ac, wake: make(chan struct{}, 1), work: make(chan *run), quit: make(chan struct{}), freed: make(chan struct{}, 1), slots: make(chan struct{}, ac.Size)})
	}
	return d, nil
}

// ID returns the dispatcher's UUID.
func (d *Dispatcher) ID() string { return d.cfg.ID }

func (d *Dispatcher) registration() *store.Dispatcher {
	reg := &store.Dispatcher{ID: d.cfg.ID, Host: d.cfg.Host, PID: os.Getpid(), StartedAt: d.startedAt}
	for _, a := range d.agents {
		reg.Agents = append(reg.Agents, store.Agent{Name: a.cfg.Name, Size: a.cfg.Size, Queues: a.cfg.Queues, Kinds: a.cfg.Kinds})
	}
	return reg
}

// Start registers the dispatcher in the store and starts its goroutines.
// ctx bounds the start-up calls only; stop the dispatcher with Stop or
// StopAndCancel. Start fails on a dispatcher already started or stopped.
func (d *Dispatcher) Start(ctx context.Context) error {
	d.mu.Lock()
	if d.state != StateNew {
		st := d.state
		d.mu.Unlock()
		return fmt.Errorf("starting dispatcher %s: it is %s (a dispatcher starts once)", d.cfg.ID, st)
	}
	d.state = StateRunning
	d.startedAt = time.Now().UTC()
	d.mu.Unlock()

	fail := func(err error) error {
		for _, a := range d.agents {
			if a.sub != nil {
				_ = a.sub.Close()
			}
		}
		d.mu.Lock()
		d.state = StateStopped
		close(d.idle)
		close(d.stopDone)
		close(d.compDone)
		d.mu.Unlock()
		return fmt.Errorf("starting dispatcher %s: %w", d.cfg.ID, err)
	}
	if err := d.store.RegisterDispatcher(ctx, d.registration()); err != nil {
		return fail(fmt.Errorf("registering in the %s store: %w", d.store.Name(), err))
	}
	for _, a := range d.agents {
		sub, err := d.store.Subscribe(ctx, a.cfg.Queues)
		if err != nil {
			_ = d.store.DeregisterDispatcher(context.WithoutCancel(ctx), d.cfg.ID)
			return fail(fmt.Errorf("subscribing agent %s to notifications: %w", a.cfg.Name, err))
		}
		a.sub = sub
	}
	fetchCtx, fetchCancel := context.WithCancel(context.Background())
	bgCtx, bgCancel := context.WithCancel(context.Background())
	d.fetchCancel, d.bgCancel = fetchCancel, bgCancel
	d.lastPoll.Store(time.Now().UnixNano())
	for _, a := range d.agents {
		d.fetchWG.Go(func() { a.loop(fetchCtx) })
	}
	d.fetchWG.Go(func() { d.rescueLoop(fetchCtx) })
	if d.cfg.CleanupInterval > 0 {
		d.fetchWG.Go(func() { d.cleanupLoop(fetchCtx) })
	}
	d.bgWG.Go(func() { d.heartbeatLoop(bgCtx) })
	go d.completerLoop()
	d.log.LogAttrs(ctx, slog.LevelInfo, "skein:dispatcher:started",
		slog.String("dispatcher", d.cfg.ID), slog.String("host", d.cfg.Host), slog.Int("pid", os.Getpid()),
		slog.Int("agents", len(d.agents)), slog.String("store", d.store.Name()))
	return nil
}

// Stop stops the dispatcher gracefully: its agents stop claiming, running
// jobs may finish until ctx is done, then the jobs still running have their
// contexts cancelled (cause [ErrStopped]) and are put back in their queues
// at once, their attempts not counted. Stop then stores the last outcomes,
// deregisters the dispatcher and returns ctx.Err() if ctx ended first, else
// nil.
//
// Stop is safe to call before Start and more than once: a later call waits
// (within its own ctx) until the job goroutines of a handler that ignored
// its context have returned too.
func (d *Dispatcher) Stop(ctx context.Context) error { return d.stop(ctx, false) }

// StopAndCancel stops the dispatcher at once: the contexts of running jobs
// are cancelled (cause [ErrStopped]); jobs whose handler then returns an
// error are put back without counting the attempt. It waits for the
// handlers to return within ctx, like Stop.
func (d *Dispatcher) StopAndCancel(ctx context.Context) error { return d.stop(ctx, true) }

func (d *Dispatcher) stop(ctx context.Context, hard bool) error {
	d.mu.Lock()
	switch d.state {
	case StateNew:
		d.state = StateStopped
		close(d.idle)
		close(d.stopDone)
		close(d.compDone)
		d.mu.Unlock()
		return nil
	case StateRunning:
		d.state = StateStopping
		d.mu.Unlock()
	default:
		d.mu.Unlock()
		if hard {
			d.cancelRuns(ErrStopped)
		}
		select {
		case <-d.stopDone:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-d.idle:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	// 1. Stop claiming, rescuing and cleaning; idle workers exit, busy
	// ones once their run ended.
	d.fetchCancel()
	d.fetchWG.Wait()
	for _, a := range d.agents {
		close(a.quit)
	}
	d.mu.Lock()
	d.claimsOver = true
	if d.goroutines == 0 {
		close(d.idle)
	}
	d.mu.Unlock()
	// 2. Let running jobs finish (or cancel them at once).
	if hard {
		d.cancelRuns(ErrStopped)
	}
	var stopErr error
	select {
	case <-d.idle:
	case <-ctx.Done():
		stopErr = ctx.Err()
		d.release()
	}
	// 3. Store the last outcomes, stop heartbeating, deregister.
	close(d.compStop)
	<-d.compDone
	d.bgCancel()
	d.bgWG.Wait()
	rctx, cancel := context.WithTimeout(context.Background(), d.cfg.ReleaseTimeout)
	defer cancel()
	if err := d.store.DeregisterDispatcher(rctx, d.cfg.ID); err != nil {
		d.log.LogAttrs(rctx, slog.LevelError, "skein:dispatcher:deregister_failed",
			slog.String("dispatcher", d.cfg.ID), slog.String("error", err.Error()))
	}
	for _, a := range d.agents {
		_ = a.sub.Close()
	}
	d.mu.Lock()
	d.state = StateStopped
	d.stopErr = stopErr
	d.mu.Unlock()
	close(d.stopDone)
	d.log.LogAttrs(rctx, slog.LevelInfo, "skein:dispatcher:stopped", slog.String("dispatcher", d.cfg.ID))
	return stopErr
}

// putBackLocked ends run r without its handler's outcome: r leaves the
// running set and its job goes back to its queue, the claim not counted as
// an attempt (e, when not nil, is recorded on the job). d.mu is held.
func (d *Dispatcher) putBackLocked(r *run, e *store.AttemptError) {
	r.agent.active--
	delete(d.runs, r)
	d.finishing[r.job.ID]++
	d.pending = append(d.pending, &finishing{run: r, outcome: &store.Outcome{
		ID: r.job.ID, Dispatcher: d.cfg.ID, Slot: r.job.Slot,
		State: store.StateAvailable, UndoAttempt: true, Error: e,
	}})
}

// recordPutBack marks r's record as put back, with why.
func (d *Dispatcher) recordPutBack(r *run, why string) {
	d.jobs.UpdateAt(r.rec, func(j *JobRecord) {
		j.Completed = time.Now()
		j.State = string(store.StateAvailable)
		j.Error = why
	})
}

// cancelRuns cancels the context of every running job with cause.
func (d *Dispatcher) cancelRuns(cause error) []*run {
	d.mu.Lock()
	runs := make([]*run, 0, len(d.runs))
	for r := range d.runs {
		runs = append(runs, r)
	}
	d.mu.Unlock()
	for _, r := range runs {
		r.cancel(cause)
	}
	return runs
}

// release puts back every job still running when a graceful stop's
// deadline passed: their contexts are cancelled and their outcomes
// replaced by a release that does not count the attempt.
func (d *Dispatcher) release() {
	d.mu.Lock()
	var released []*run
	for r := range d.runs {
		r.released = true
		d.putBackLocked(r, &store.AttemptError{Error: ErrStopped.Error() + ": the job did not finish before the stop deadline", Interrupted: true})
		released = append(released, r)
	}
	d.mu.Unlock()
	for _, r := range released {
		r.cancel(ErrStopped)
		r.mu.Lock()
		att := r.attempt
		r.mu.Unlock()
		if att != nil {
			att.Fail(ErrStopped, slog.Bool("interrupted", true))
		}
		d.recordPutBack(r, ErrStopped.Error())
		d.log.LogAttrs(context.Background(), slog.LevelWarn, "skein:dispatcher:released",
			slog.String("dispatcher", d.cfg.ID), slog.String("job_id", r.job.ID),
			slog.String("reason", "the job did not finish before the stop deadline"))
	}
	d.signalCompleter()
}

func (d *Dispatcher) goroutineDone() {
	d.mu.Lock()
	d.goroutines--
	if d.goroutines == 0 && d.claimsOver {
		select {
		case <-d.idle:
		default:
			close(d.idle)
		}
	}
	d.mu.Unlock()
}

func (d *Dispatcher) signalCompleter() {
	select {
	case d.completer <- struct{}{}:
	default:
	}
}

// completerLoop stores outcomes in batches: whatever accumulated while the
// previous Finish ran. On stop it stores what is left and exits.
func (d *Dispatcher) completerLoop() {
	defer close(d.compDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-d.compStop
		// Leave the final flush ReleaseTimeout to finish.
		t := time.NewTimer(d.cfg.ReleaseTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-d.completer:
			d.flush(ctx)
		case <-d.compStop:
			d.flush(ctx)
			return
		}
	}
}

const maxFinishBatch = 1000

// flush stores pending outcomes, retrying failed store calls until they
// succeed or ctx ends.
func (d *Dispatcher) flush(ctx context.Context) {
	for {
		d.mu.Lock()
		batch := d.takePendingLocked()
		d.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		if !d.storeBatch(ctx, batch, outcomesOf(batch)) {
			return
		}
	}
}

// takePendingLocked removes up to maxFinishBatch pending outcomes, the
// oldest first, stopping before a second outcome for one job (a store
// reports the outcomes it refused by job id, which would not tell the two
// apart). d.mu is held.
func (d *Dispatcher) takePendingLocked() []*finishing {
	n := min(len(d.pending), maxFinishBatch)
	seen := make(map[string]bool, n)
	for i, f := range d.pending[:n] {
		if seen[f.outcome.ID] {
			n = i
			break
		}
		seen[f.outcome.ID] = true
	}
	batch := d.pending[:n:n]
	if n == len(d.pending) {
		d.pending = nil
	} else {
		d.pending = d.pending[n:]
	}
	return batch
}

// putBackPending returns a batch whose store call failed to the front of
// the pending outcomes, for the completer to retry.
func (d *Dispatcher) putBackPending(batch []*finishing) {
	d.mu.Lock()
	for _, f := range batch {
		f.tried = true
	}
	d.pending = append(batch, d.pending...)
	d.mu.Unlock()
	d.signalCompleter()
}

func outcomesOf(batch []*finishing) []*store.Outcome {
	outcomes := make([]*store.Outcome, len(batch))
	for i, f := range batch {
		outcomes[i] = f.outcome
	}
	return outcomes
}

// doneFinishing forgets that the outcomes of batch are pending.
func (d *Dispatcher) doneFinishing(batch []*finishing) {
	d.mu.Lock()
	for _, f := range batch {
		if d.finishing[f.outcome.ID]--; d.finishing[f.outcome.ID] <= 0 {
			delete(d.finishing, f.outcome.ID)
		}
	}
	d.mu.Unlock()
}

// storeBatch stores one batch of outcomes, retrying until it succeeds or
// ctx ends; it reports whether flushing may go on.
func (d *Dispatcher) storeBatch(ctx context.Context, batch []*finishing, outcomes []*store.Outcome) bool {
	defer d.doneFinishing(batch)
	var (
		notHeld []string
		err     error
	)
	lastTry := 0
	for try := 1; ; try++ {
		lastTry = try
		notHeld, err = d.store.Finish(ctx, outcomes)
		if err == nil {
			break
		}
		if errors.Is(err, store.ErrClosed) {
			d.log.LogAttrs(context.Background(), slog.LevelError, "skein:dispatcher:outcomes_lost",
				slog.String("dispatcher", d.cfg.ID), slog.Int("jobs", len(outcomes)),
				slog.String("reason", "the store was closed before the dispatcher stopped; the jobs will be rescued"))
			return false
		}
		d.log.LogAttrs(ctx, slog.LevelError, "skein:dispatcher:finish_failed",
			slog.String("dispatcher", d.cfg.ID), slog.Int("jobs", len(outcomes)), slog.Int("try", try), slog.String("error", err.Error()))
		t := time.NewTimer(min(time.Duration(try)*100*time.Millisecond, 5*time.Second))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			d.log.LogAttrs(context.Background(), slog.LevelError, "skein:dispatcher:outcomes_lost",
				slog.String("dispatcher", d.cfg.ID), slog.Int("jobs", len(outcomes)),
				slog.String("reason", "the store did not accept them before the stop; the jobs will be rescued"))
			return false
		}
	}
	d.stored(ctx, batch, notHeld, lastTry > 1)
	return true
}

// stored reports a batch of outcomes stored, notHeld those the store
// refused; retried says the store call was tried more than once (an earlier
// try may have applied an outcome whose reply was lost).
func (d *Dispatcher) stored(ctx context.Context, batch []*finishing, notHeld []string, retried bool) {
	skip := make(map[string]bool, len(notHeld))
	for _, id := range notHeld {
		skip[id] = true
	}
	for _, f := range batch {
		o := f.outcome
		if skip[o.ID] && (retried || f.tried) && d.appliedEarlier(ctx, o) {
			skip[o.ID] = false
		}
		if skip[o.ID] {
			d.log.LogAttrs(ctx, slog.LevelWarn, "skein:dispatcher:not_held",
				slog.String("dispatcher", d.cfg.ID), slog.String("job_id", o.ID), slog.Int64("slot", o.Slot),
				slog.String("outcome", string(o.State)),
				slog.String("reason", "the job was taken from this dispatcher (judged dead) before its outcome was stored"))
			d.recordReassigned(f.run)
			continue
		}
		if o.State.Final() {
			d.endJobAction(f.run.job, o.State, f.err)
		}
		d.emit(f.run.job, o)
		// A retry or snooze due before the next poll wakes its agent when
		// due, so short backoffs are not stretched to the poll.
		if o.State == store.StateRetryable || o.State == store.StateScheduled {
			if wait := time.Until(o.At); wait < d.cfg.PollInterval {
				time.AfterFunc(max(wait, 0), f.run.agent.signal)
			}
		}
	}
}

// appliedEarlier reports whether o, refused as not held by a Finish that
// was retried, had in fact been applied by an earlier try whose reply was
// lost: the job still names this dispatcher at o's slot, is no longer
// running, and was not rescued at that slot.
func (d *Dispatcher) appliedEarlier(ctx context.Context, o *store.Outcome) bool {
	j, err := d.store.GetJob(ctx, o.ID)
	if err != nil || j.AttemptedBy != d.cfg.ID || j.Slot != o.Slot || j.State == store.StateRunning {
		return false
	}
	for _, e := range j.Errors {
		if e.Slot == o.Slot && e.Reassigned {
			return false
		}
	}
	return true
}

// endJobAction ends the job action of job, whose last run had job.Slot, at
// its next slot.
func (d *Dispatcher) endJobAction(job *JobRow, state store.State, err error) {
	EndJobAction(d.jobBase, job, state, err)
}

func (d *Dispatcher) requestRejoin() {
	select {
	case d.rejoin <- struct{}{}:
	default:
	}
}

// heartbeatLoop tells the store the dispatcher is alive and rejoins when
// it learns it was judged dead.
func (d *Dispatcher) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.HeartbeatInterval)
	defer t.Stop()
	var lastErr string // log each distinct failure once
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.rejoin:
		}
		err := d.store.Heartbeat(ctx, d.cfg.ID)
		switch {
		case err == nil:
			if lastErr != "" {
				d.log.LogAttrs(ctx, slog.LevelInfo, "skein:dispatcher:heartbeat_recovered",
					slog.String("dispatcher", d.cfg.ID), slog.String("last_error", lastErr))
				lastErr = ""
			}
		case ctx.Err() != nil:
			return
		case errors.Is(err, store.ErrDispatcherDead) || errors.Is(err, store.ErrDispatcherNotFound):
			d.rejoinAfter(ctx, err)
		case err.Error() != lastErr:
			lastErr = err.Error()
			d.log.LogAttrs(ctx, slog.LevelWarn, "skein:dispatcher:heartbeat_failed",
				slog.String("dispatcher", d.cfg.ID), slog.String("error", lastErr))
		}
	}
}

// rejoinAfter handles being judged dead: the jobs this dispatcher runs were
// rescued (they may run elsewhere already), so their contexts are
// cancelled; then it registers again.
func (d *Dispatcher) rejoinAfter(ctx context.Context, cause error) {
	runs := d.cancelRuns(ErrReassigned)
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.job.ID
	}
	slices.Sort(ids)
	d.log.LogAttrs(ctx, slog.LevelError, "skein:dispatcher:judged_dead",
		slog.String("dispatcher", d.cfg.ID), slog.String("error", cause.Error()),
		slog.Any("reassigned_jobs", ids),
		slog.String("hint", "heartbeats reached the store too late: clock skew, a long pause, or DeadAfter too short for HeartbeatInterval; rejoining"))
	if err := d.store.RegisterDispatcher(ctx, d.registration()); err != nil {
		d.log.LogAttrs(ctx, slog.LevelError, "skein:dispatcher:rejoin_failed",
			slog.String("dispatcher", d.cfg.ID), slog.String("error", err.Error()))
		d.requestRejoin()
		return
	}
	d.log.LogAttrs(ctx, slog.LevelWarn, "skein:dispatcher:rejoined", slog.String("dispatcher", d.cfg.ID))
}

// rescueLoop rescues the jobs of dead dispatchers, without a leader: every
// dispatcher does it.
func (d *Dispatcher) rescueLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.RescueInterval)
	defer t.Stop()
	var reconciled time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.rescue(ctx)
		if time.Since(reconciled) >= d.cfg.HeartbeatInterval {
			reconciled = time.Now()
			d.reconcile(ctx)
		}
	}
}

// reconcile puts back the jobs the store says this dispatcher runs but
// that it never received: a claim whose reply was lost (a connection
// dropped during the commit, a claim that timed out after committing).
// Such a job is put back once it has been seen unknown for longer than a
// claim may take (ReleaseTimeout); its attempt action is logged as failed so
// that the job's tree has no hole.
func (d *Dispatcher) reconcile(ctx context.Context) {
	page, err := d.store.ListJobs(ctx, &store.ListJobsParams{
		Filter: store.JobFilter{States: []store.State{store.StateRunning}, Dispatcher: d.cfg.ID},
		Order:  store.OrderClaim, Limit: store.MaxListLimit,
	})
	if err != nil {
		return // the store is unreachable: the next round tries again
	}
	d.mu.Lock()
	known := make(map[string]bool, len(d.runs)+len(d.finishing))
	for r := range d.runs {
		known[r.job.ID] = true
	}
	for id := range d.finishing {
		known[id] = true
	}
	d.mu.Unlock()
	now := time.Now()
	seen := make(map[string]bool)
	var lost []*JobRow
	for _, j := range page.Jobs {
		if known[j.ID] {
			continue
		}
		key := fmt.Sprintf("%s#%d", j.ID, j.Slot)
		seen[key] = true
		first, ok := d.orphans[key]
		switch {
		case !ok:
			d.orphans[key] = now
		case now.Sub(first) > d.cfg.ReleaseTimeout:
			lost = append(lost, j)
		}
	}
	for k := range d.orphans {
		if !seen[k] {
			delete(d.orphans, k)
		}
	}
	if len(lost) == 0 {
		return
	}
	const reason = "claim lost: this dispatcher never received the job it claimed (its reply was lost); put back"
	outcomes := make([]*store.Outcome, len(lost))
	for i, j := range lost {
		outcomes[i] = &store.Outcome{ID: j.ID, Dispatcher: d.cfg.ID, Slot: j.Slot, State: store.StateAvailable,
			UndoAttempt: true, Error: &store.AttemptError{Error: reason, Interrupted: true}}
	}
	notHeld, err := d.store.Finish(ctx, outcomes)
	if err != nil {
		return
	}
	skip := make(map[string]bool, len(notHeld))
	for _, id := range notHeld {
		skip[id] = true
	}
	woke := map[*agent]bool{}
	for _, j := range lost {
		delete(d.orphans, fmt.Sprintf("%s#%d", j.ID, j.Slot))
		if skip[j.ID] {
			continue
		}
		d.log.LogAttrs(ctx, slog.LevelWarn, "skein:dispatcher:lost_claim",
			slog.String("dispatcher", d.cfg.ID), slog.String("job_id", j.ID), slog.Int64("slot", j.Slot), slog.String("reason", reason))
		if tid, err := parseJobTaskID(j.TaskID); err == nil && j.TaskID != "" {
			actx := action.WithWorkflow(d.jobBase, j.WorkflowID)
			_, att := action.ContinueAt(actx, tid.Child(int(j.Slot)+1), "skein:attempt",
				slog.String("job_id", j.ID), slog.String("kind", j.Kind), slog.String("queue", j.Queue),
				slog.Int("attempt", j.Attempt), slog.String("dispatcher", d.cfg.ID), slog.String("agent", j.AttemptedAgent))
			att.Fail(errors.New(reason), slog.Bool("interrupted", true))
		}
		// The event follows the log, so whoever sees the job available
		// finds its lost attempt already in the tree.
		d.emit(j, outcomes[slices.IndexFunc(outcomes, func(o *store.Outcome) bool { return o.ID == j.ID })])
		for _, a := range d.agents {
			if a.cfg.Name == j.AttemptedAgent && !woke[a] {
				woke[a] = true
				a.signal()
			}
		}
	}
}

func (d *Dispatcher) rescue(ctx context.Context) {
	res, err := d.store.RescueDead(ctx, &store.RescueParams{By: d.cfg.ID, DeadAfter: d.cfg.DeadAfter})
	if err != nil {
		if ctx.Err() == nil {
			d.log.LogAttrs(ctx, slog.LevelWarn, "skein:dispatcher:rescue_failed",
				slog.String("dispatcher", d.cfg.ID), slog.String("error", err.Error()))
		}
		return
	}
	for _, dead := range res.Dead {
		d.log.LogAttrs(ctx, slog.LevelWarn, "skein:dispatcher:judged_dead_other",
			slog.String("dispatcher", d.cfg.ID), slog.String("dead", dead.ID), slog.String("host", dead.Host),
			slog.Int("pid", dead.PID), slog.Time("heartbeat_at", dead.HeartbeatAt), slog.String("dead_after", d.cfg.DeadAfter.String()))
	}
	available := false
	for _, j := range res.Jobs {
		var from string
		if n := len(j.Errors); n > 0 {
			from = j.Errors[n-1].Dispatcher
		}
		d.log.LogAttrs(ctx, slog.LevelWarn, "skein:dispatcher:rescued",
			slog.String("dispatcher", d.cfg.ID), slog.String("job_id", j.ID), slog.String("from", from),
			slog.String("state", string(j.State)), slog.Int("attempt", j.Attempt), slog.Int64("slot", j.Slot))
		if j.State.Final() {
			msg := "interrupted"
			if n := len(j.Errors); n > 0 {
				msg = j.Errors[n-1].Error
			}
			d.endJobAction(j, j.State, errors.New(msg))
		} else {
			available = true
		}
	}
	if available {
		for _, a := range d.agents {
			a.signal()
		}
	}
}

// cleanupLoop deletes final jobs past their retention.
func (d *Dispatcher) cleanupLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.CleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.cleanup(ctx)
	}
}

// cleanup deletes final jobs past their retention, once.
func (d *Dispatcher) cleanup(ctx context.Context) {
	res, err := d.store.Cleanup(ctx, &store.CleanupParams{
		CompletedAfter: d.cfg.CompletedRetention,
		CancelledAfter: d.cfg.CancelledRetention,
		DiscardedAfter: d.cfg.DiscardedRetention,
	})
	switch {
	case err != nil && ctx.Err() == nil:
		d.log.LogAttrs(ctx, slog.LevelWarn, "skein:dispatcher:cleanup_failed",
			slog.String("dispatcher", d.cfg.ID), slog.String("error", err.Error()))
	case err == nil && (res.Jobs > 0 || res.Dispatchers > 0):
		d.log.LogAttrs(ctx, slog.LevelInfo, "skein:dispatcher:cleaned",
			slog.String("dispatcher", d.cfg.ID), slog.Int64("jobs", res.Jobs), slog.Int64("dispatchers", res.Dispatchers))
	}
}
