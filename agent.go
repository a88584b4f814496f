package skein

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/store"
)

// agent claims jobs for one AgentConfig and runs each on a worker
// goroutine. Its loop goroutine is owned by the dispatcher (fetchWG); runs
// in progress are counted in Dispatcher.goroutines.
//
// Workers are reused: a worker that finished a run waits on work for the
// next one, so a busy agent does not start a goroutine (and grow its stack)
// per job. A run that finds no worker waiting starts a new one. Workers
// exit when quit is closed, once the agent loop has ended.
//
// Claiming ahead: when the agent's jobs take less time than a claim, the
// agent would spend most of its time waiting for claims with every slot
// free. It then claims its next batch (at most Size jobs) as soon as the
// last one returned full, while that one runs: it holds up to twice Size
// jobs, at most Size of them running; the others wait for a slot (a run
// takes a token from slots). A stop puts the waiting ones back unstarted.
type agent struct {
	d   *Dispatcher
	cfg AgentConfig
	sub store.Subscription
	// wake asks the loop to claim again (a slot freed while more jobs were
	// likely waiting, or a rescue put jobs back).
	wake chan struct{}
	// work hands a run to an idle worker; quit makes idle workers exit.
	work chan *run
	quit chan struct{}
	// freed receives a hint whenever a run ends (see gather).
	freed chan struct{}
	// slots holds a token per running job: at most Size.
	slots chan struct{}

	// runNanos is an average of the agent's recent run times (see
	// claimAhead); claimNanos of its recent claims' (loop-owned).
	runNanos   atomic.Int64
	claimNanos int64

	// lastErr is the last claim error logged; owned by the loop goroutine.
	lastErr string

	// Guarded by d.mu.
	active int
	more   bool // the last claim was capped by the free slots
	// carry (with Config.OutcomesWithClaims): the loop was woken to
	// claim, and will store the pending outcomes with that claim
	// (store.Store.FinishClaim: one commit for both), so finished runs
	// leave their outcomes to it rather than wake the completer.
	carry bool
	ended bool // the loop returned: outcomes go to the completer
}

func (a *agent) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// loop claims until ctx is cancelled: at start, on every notification, on
// every poll tick and whenever a slot frees while more jobs were likely
// waiting.
func (a *agent) loop(ctx context.Context) {
	ticker := time.NewTicker(a.d.cfg.PollInterval)
	defer ticker.Stop()
	var notes <-chan string
	if a.sub != nil {
		notes = a.sub.C()
	}
	defer func() {
		a.d.mu.Lock()
		a.ended, a.carry = true, false
		a.d.mu.Unlock()
		a.d.signalCompleter() // outcomes left for this loop
	}()
	reason := "start"
	for {
		if a.fetch(ctx, reason) && ctx.Err() == nil {
			reason = "ahead"
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			reason = "poll"
		case <-notes:
			reason = "notify"
		case <-a.wake:
			reason = "slot"
			a.gather(ctx)
		}
	}
}

// claimAhead reports whether the agent's jobs run shorter than its claims
// take, so that claiming the next batch while one runs pays.
func (a *agent) claimAhead() bool {
	run := a.runNanos.Load()
	return !a.cfg.DisableClaimAhead && run > 0 && run < a.claimNanos
}

// ewma moves an average a eighth of the way to x (the first x sets it).
func ewma(avg, x int64) int64 {
	if avg == 0 {
		return x
	}
	return avg + (x-avg)/8
}

// fetch claims jobs for the agent's free slots and hands them to workers.
// It reports whether to claim again at once: the claim came back full and
// the agent claims ahead (see agent), with no more jobs held than slots.
func (a *agent) fetch(ctx context.Context, reason string) (again bool) {
	d := a.d
	ahead := a.claimAhead()
	d.mu.Lock()
	free := a.cfg.Size - a.active
	if ahead && a.active <= a.cfg.Size {
		free = a.cfg.Size
	}
	if free <= 0 {
		a.more = true
	}
	active := a.active
	var batch []*finishing
	if free > 0 && d.cfg.OutcomesWithClaims {
		batch = d.takePendingLocked()
	}
	carried := a.carry
	a.carry = false
	left := len(d.pending) > 0
	d.mu.Unlock()
	if carried && (free <= 0 || left) {
		d.signalCompleter()
	}
	now := time.Now()
	if reason == "poll" {
		d.lastPoll.Store(now.UnixNano())
	}
	if free <= 0 {
		if reason == "poll" {
			d.recordPoll(Poll{Time: now, Agent: a.cfg.Name, Reason: reason, Queues: a.cfg.Queues, Size: a.cfg.Size, Active: active})
		}
		return false
	}
	// The claim is not cancelled by a stop: jobs it claimed must run (or
	// be put back) so that each claimed slot gets its attempt action.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.ReleaseTimeout)
	defer cancel()
	notHeld, jobs, err := d.store.FinishClaim(cctx, outcomesOf(batch), &store.ClaimParams{
		Dispatcher: d.cfg.ID, Agent: a.cfg.Name,
		Queues: a.cfg.Queues, Kinds: a.cfg.Kinds, Limit: free,
	})
	a.claimNanos = ewma(a.claimNanos, int64(time.Since(now)))
	if len(batch) > 0 {
		var after *store.ClaimAfterFinishError
		if err == nil || errors.As(err, &after) {
			// A fresh deadline: the claim may have used up cctx's.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.ReleaseTimeout)
			d.stored(sctx, batch, notHeld, false)
			cancel()
			d.doneFinishing(batch)
		} else {
			d.putBackPending(batch)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return false // stopping
		}
		err = fmt.Errorf("agent %s claiming up to %d jobs: %w", a.cfg.Name, free, err)
		d.recordPoll(Poll{Time: now, Agent: a.cfg.Name, Reason: reason, Queues: a.cfg.Queues, Size: a.cfg.Size, Active: active, Error: err.Error()})
		if errors.Is(err, store.ErrDispatcherDead) || errors.Is(err, store.ErrDispatcherNotFound) {
			d.requestRejoin()
			return false
		}
		if msg := err.Error(); msg != a.lastErr { // log each distinct error once
			a.lastErr = msg
			d.log.LogAttrs(context.Background(), slog.LevelWarn, "skein:dispatcher:claim_failed",
				slog.String("dispatcher", d.cfg.ID), slog.String("agent", a.cfg.Name), slog.String("error", msg))
		}
		return false
	}
	if a.lastErr != "" {
		d.log.LogAttrs(context.Background(), slog.LevelInfo, "skein:dispatcher:claim_recovered",
			slog.String("dispatcher", d.cfg.ID), slog.String("agent", a.cfg.Name), slog.String("last_error", a.lastErr))
		a.lastErr = ""
	}
	if len(jobs) == 0 && reason != "poll" && reason != "start" {
		return false
	}
	p := Poll{Time: now, Agent: a.cfg.Name, Reason: reason, Queues: a.cfg.Queues, Size: a.cfg.Size, Active: active + len(jobs)}
	if len(jobs) > 0 {
		p.Claimed = make([]string, len(jobs))
		p.ClaimedByQueue = make(map[string]int)
		for i, j := range jobs {
			p.Claimed[i] = j.ID
			p.ClaimedByQueue[j.Queue]++
		}
	}
	key := d.recordPoll(p)
	d.mu.Lock()
	a.more = len(jobs) == free
	a.active += len(jobs)
	again = a.more && ahead && a.active <= a.cfg.Size
	runs := make([]*run, len(jobs))
	for i, j := range jobs {
		r := &run{job: j, agent: a, pollKey: key, started: now}
		r.ctx, r.cancel = context.WithCancelCause(d.jobBase)
		d.runs[r] = struct{}{}
		d.goroutines++
		runs[i] = r
	}
	d.mu.Unlock()
	for _, r := range runs {
		r.rec = d.jobs.Push(JobRecord{ID: r.job.ID, Kind: r.job.Kind, Queue: r.job.Queue, Agent: a.cfg.Name,
			Attempt: r.job.Attempt, Slot: r.job.Slot, PollKey: key, Started: now})
		select {
		case a.work <- r:
		default:
			go a.worker(r)
		}
	}
	return again
}

// worker runs r, then every run handed to it until quit is closed.
func (a *agent) worker(r *run) {
	id := goid()
	for {
		if a.takeSlot(r) {
			start := time.Now()
			a.d.execute(r, id)
			<-a.slots
			a.runNanos.Store(ewma(a.runNanos.Load(), int64(time.Since(start))))
		}
		select {
		case r = <-a.work:
		case <-a.quit:
			return
		}
	}
}

// takeSlot waits for a free slot for r and reports whether r may run. A
// run that has not started when the dispatcher stops (a run claimed ahead
// still waiting for a slot, or one its worker had not begun), or whose
// context ends first (an immediate stop, a release, a reassignment), is
// put back unstarted instead: no attempt began, none is counted.
func (a *agent) takeSlot(r *run) bool {
	got := false
	select {
	case a.slots <- struct{}{}: // the common case, without making r's Done channel
		got = true
	default:
		select {
		case a.slots <- struct{}{}:
			got = true
		case <-r.ctx.Done():
		case <-a.quit:
		}
	}
	if got {
		select {
		case <-a.quit: // a graceful stop starts no held job
			<-a.slots
		default:
			return true
		}
	}
	a.d.putBackUnstarted(r)
	return false
}

// putBackUnstarted ends a run that never started: its job goes back to
// its queue without its claim counting as an attempt, unless a release
// or reassignment already took it.
func (d *Dispatcher) putBackUnstarted(r *run) {
	defer d.goroutineDone()
	a := r.agent
	reassigned := errors.Is(context.Cause(r.ctx), ErrReassigned)
	d.mu.Lock()
	if r.released {
		d.mu.Unlock()
		return
	}
	if reassigned { // the store gave the job to another dispatcher
		delete(d.runs, r)
		a.active--
	} else {
		d.putBackLocked(r, nil)
	}
	d.mu.Unlock()
	r.cancel(ErrStopped)
	d.recordPutBack(r, "put back before it started")
	if !reassigned {
		d.signalCompleter()
	}
	select {
	case a.freed <- struct{}{}:
	default:
	}
}

// gatherWait bounds how long gather waits.
const gatherWait = time.Millisecond

// gather runs when a slot freed while more jobs were waiting (the last
// claim was capped by the free slots). It waits until every slot of the
// agent is free, or gatherWait passed, so that short jobs are claimed many
// per claim rather than a few per freed slot: each claim is a write
// transaction, hence a commit, whatever its size. Jobs longer than
// gatherWait lose at most gatherWait of one slot per claim.
func (a *agent) gather(ctx context.Context) {
	t := time.NewTimer(gatherWait)
	defer t.Stop()
	for {
		a.d.mu.Lock()
		free := a.cfg.Size - a.active
		a.d.mu.Unlock()
		if free >= a.cfg.Size {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case <-a.freed:
		}
	}
}

// run is one claimed run of a job.
type run struct {
	job     *JobRow
	agent   *agent
	pollKey int64
	rec     uint64 // its record in Dispatcher.jobs (ring.Buffer.Push)
	started time.Time
	ctx     context.Context
	cancel  context.CancelCauseFunc

	mu      sync.Mutex
	result  []byte
	attempt *action.Action

	released bool // guarded by Dispatcher.mu: put back by a stop
}

// finishing is an outcome waiting for the completer.
type finishing struct {
	run     *run
	outcome *store.Outcome
	err     error // the attempt's error, for the job action of a final state
	tried   bool  // a store call with it failed: it may have been applied
}

// execute runs one attempt on the worker goroutine gid and hands its
// outcome to the completer.
func (d *Dispatcher) execute(r *run, gid int64) {
	defer d.goroutineDone()
	d.recordGoroutine(r, gid)
	job := r.job
	ctx := action.WithWorkflow(r.ctx, job.WorkflowID)
	ctx = context.WithValue(ctx, runKey{}, r)
	if job.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, job.Timeout)
		defer cancel()
	}
	attrs := []slog.Attr{
		slog.String("job_id", job.ID),
		slog.String("kind", job.Kind),
		slog.String("queue", job.Queue),
		slog.Int("attempt", job.Attempt),
		slog.Int("max_attempts", job.MaxAttempts),
		slog.String("dispatcher", d.cfg.ID),
		slog.String("agent", r.agent.cfg.Name),
	}
	var att *action.Action
	if job.TaskID == "" { // inserted without a causal position
		ctx, att = action.StartTask(ctx, "skein:attempt", attrs...)
	} else if tid, err := parseJobTaskID(job.TaskID); err == nil {
		ctx, att = action.ContinueAt(ctx, tid.Child(int(job.Slot)+1), "skein:attempt", attrs...)
	} else {
		attrs = append(attrs, slog.String("bad_task_id", err.Error()))
		ctx, att = action.StartTask(ctx, "skein:attempt", attrs...)
	}
	r.mu.Lock()
	r.attempt = att
	r.mu.Unlock()

	herr := callExecutor(ctx, r.agent.cfg.Executor, job)
	if herr != nil && job.Timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) && r.ctx.Err() == nil {
		herr = &TimeoutError{Timeout: job.Timeout, Err: herr}
	}
	f := d.decide(r, att, herr)
	d.complete(r, f)
}

// callExecutor runs e, turning a panic into a *PanicError logged in the
// attempt's action.
func callExecutor(ctx context.Context, e Executor, job *JobRow) (err error) {
	defer func() {
		if v := recover(); v != nil {
			stack := debug.Stack()
			action.LogPanic(ctx, v, stack)
			err = &PanicError{Value: v, Stack: stack}
		}
	}()
	return e.Execute(ctx, job)
}

// decide turns an attempt's error into an outcome and ends the attempt's
// action. A nil result means nothing is to be stored (the job was
// reassigned).
func (d *Dispatcher) decide(r *run, att *action.Action, herr error) *finishing {
	job := r.job
	o := &store.Outcome{ID: job.ID, Dispatcher: d.cfg.ID, Slot: job.Slot}
	cause := context.Cause(r.ctx)
	var (
		snooze  *SnoozeError
		cancel  *CancelError
		discard *DiscardError
		panicE  *PanicError
	)
	switch {
	case herr == nil:
		o.State = store.StateCompleted
		r.mu.Lock()
		o.Result = r.result
		r.mu.Unlock()
		att.End()
		return &finishing{run: r, outcome: o}
	case errors.As(herr, &snooze):
		o.State = store.StateScheduled
		o.At = time.Now().Add(snooze.Duration)
		o.UndoAttempt = true
		att.End(slog.String("snoozed", snooze.Duration.String()))
		return &finishing{run: r, outcome: o}
	case errors.Is(cause, ErrReassigned):
		att.Fail(herr, slog.Bool("reassigned", true))
		return nil
	case errors.Is(cause, ErrStopped):
		o.State = store.StateAvailable
		o.UndoAttempt = true
		o.Error = &store.AttemptError{Error: fmt.Sprintf("%v (%v)", ErrStopped, herr), Interrupted: true}
		att.Fail(herr, slog.Bool("interrupted", true))
		return &finishing{run: r, outcome: o}
	}
	o.Error = &store.AttemptError{Error: herr.Error()}
	if errors.As(herr, &panicE) {
		o.Error.Stack = string(panicE.Stack)
	}
	switch {
	case errors.As(herr, &cancel):
		o.State = store.StateCancelled
	case errors.As(herr, &discard):
		o.State = store.StateDiscarded
	case job.Attempt >= job.MaxAttempts:
		o.State = store.StateDiscarded
	default:
		o.State = store.StateRetryable
		delay := d.cfg.Backoff.Delay(job.Attempt)
		o.At = time.Now().Add(delay)
		att.Fail(herr, slog.String("retry_in", delay.String()))
		return &finishing{run: r, outcome: o, err: herr}
	}
	att.Fail(herr, slog.String("state", string(o.State)))
	return &finishing{run: r, outcome: o, err: herr}
}

// complete queues f for the completer and frees the run's slot, unless a
// stop already put the job back.
func (d *Dispatcher) complete(r *run, f *finishing) {
	a := r.agent
	d.mu.Lock()
	if r.released {
		d.mu.Unlock()
		return
	}
	delete(d.runs, r)
	a.active--
	wake := a.more
	a.more = false
	if wake && !a.ended && d.cfg.OutcomesWithClaims {
		a.carry = true
	}
	carry := a.carry
	if f != nil {
		d.finishing[f.outcome.ID]++
		d.pending = append(d.pending, f)
	}
	d.mu.Unlock()
	r.cancel(nil)
	if f != nil {
		// The record first, so that whoever the completer's event wakes
		// finds the run completed in the dispatcher's memory.
		d.recordOutcome(r, f.outcome, f.err)
		if !carry {
			d.signalCompleter()
		}
	} else {
		d.recordReassigned(r)
	}
	if wake {
		a.signal()
	}
	select {
	case a.freed <- struct{}{}:
	default:
	}
}

// goid returns the current goroutine's id, for the job records.
func goid() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	// "goroutine 123 [running]:..."
	const prefix = "goroutine "
	if len(b) < len(prefix) {
		return 0
	}
	b = b[len(prefix):]
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	n, _ := strconv.ParseInt(string(b[:i]), 10, 64)
	return n
}
