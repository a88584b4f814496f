package skein

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/store"
)

// Defaults of ClientConfig and EnqueueOpts.
const (
	DefaultQueue       = "default"
	DefaultMaxAttempts = 25
)

// ClientConfig configures a [Client]. A nil *ClientConfig means every
// default.
type ClientConfig struct {
	// Logger receives the job actions of jobs enqueued from a context
	// without an action (each such job is a new task). Jobs enqueued inside
	// an action always write where that action writes. Defaults to the
	// context's Logger ([action.WithLogger]), else [action.Default].
	Logger *action.Logger
	// MaxAttempts is the number of attempts a job gets when neither its
	// EnqueueOpts nor its args' defaults say. Defaults to 25
	// ([DefaultMaxAttempts]).
	MaxAttempts int
	// Queue is the queue of jobs whose options name none. Defaults to
	// "default" ([DefaultQueue]).
	Queue string
	// Timeout is the per-attempt timeout of jobs whose options give none.
	// Defaults to 0: no timeout.
	Timeout time.Duration
}

// Client enqueues jobs. It is safe for concurrent use and holds no
// goroutines: create one per store and keep it.
type Client struct {
	store  store.Store
	cfg    ClientConfig
	counts enqueueCounters
}

// NewClient returns a client that enqueues into st.
func NewClient(st store.Store, cfg *ClientConfig) (*Client, error) {
	if st == nil {
		return nil, errors.New("creating skein client: store is nil")
	}
	var c ClientConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Queue == "" {
		c.Queue = DefaultQueue
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxAttempts < 0 {
		return nil, fmt.Errorf("creating skein client: field MaxAttempts is %d, want at least 1", c.MaxAttempts)
	}
	if c.Timeout < 0 {
		c.Timeout = 0
	}
	return &Client{store: st, cfg: c}, nil
}

// Store returns the store the client enqueues into.
func (c *Client) Store() store.Store { return c.store }

// Enqueue stores one job and returns it.
//
// The job joins the workflow of ctx ([action.Workflow]) or, when ctx has
// none, a new one; its id is "<workflow id>_<uuid>" (a version 7 uuid,
// [action.NewTimeID]). Once stored, the job
// appears in the log as a "skein:job" action, a child of the current action
// of ctx (a new task when there is none); every attempt of the job will be
// a child of that action, wherever it runs.
func (c *Client) Enqueue(ctx context.Context, args JobArgs, opts *EnqueueOpts) (*EnqueueResult, error) {
	res, err := c.enqueue(ctx, nil, []EnqueueParams{{Args: args, Opts: opts}})
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// EnqueueMany stores jobs in one transaction, all or none, and returns one
// result per job, in order. When ctx has no workflow, the jobs share one new
// workflow.
func (c *Client) EnqueueMany(ctx context.Context, jobs []EnqueueParams) ([]*EnqueueResult, error) {
	return c.enqueue(ctx, nil, jobs)
}

// EnqueueTx stores one job in the caller's own transaction tx, so that the
// job exists only if that transaction commits: a pgx.Tx or a *sql.Tx with
// store/postgres, a *sql.Tx on the same database file with store/sqlite
// (see [store.Store.InsertTx]).
//
// The job's action is logged as soon as the insert returns. If tx is then
// rolled back, that action stays unfinished in the log: a job that was
// never stored.
func (c *Client) EnqueueTx(ctx context.Context, tx any, args JobArgs, opts *EnqueueOpts) (*EnqueueResult, error) {
	if tx == nil {
		return nil, errors.New("enqueueing job in transaction: tx is nil")
	}
	res, err := c.enqueue(ctx, tx, []EnqueueParams{{Args: args, Opts: opts}})
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// EnqueueManyTx is [Client.EnqueueMany] in the caller's transaction (see
// [Client.EnqueueTx]).
func (c *Client) EnqueueManyTx(ctx context.Context, tx any, jobs []EnqueueParams) ([]*EnqueueResult, error) {
	if tx == nil {
		return nil, errors.New("enqueueing jobs in transaction: tx is nil")
	}
	return c.enqueue(ctx, tx, jobs)
}

func (c *Client) params(i int, p EnqueueParams, workflow string, now time.Time) (*store.InsertParams, error) {
	if p.Args == nil {
		return nil, fmt.Errorf("job %d: field Args is nil", i)
	}
	kind := p.Args.Kind()
	if kind == "" {
		return nil, fmt.Errorf("job %d: args of type %T: Kind() returned an empty string", i, p.Args)
	}
	var o EnqueueOpts
	if p.Opts != nil {
		o = *p.Opts
	}
	if wo, ok := p.Args.(JobArgsWithOpts); ok {
		o = o.merge(wo.EnqueueOpts())
	}
	o = o.merge(EnqueueOpts{Queue: c.cfg.Queue, MaxAttempts: c.cfg.MaxAttempts, Timeout: c.cfg.Timeout})
	if o.MaxAttempts < 1 {
		return nil, fmt.Errorf("job %d (kind %s): field MaxAttempts is %d, want at least 1", i, kind, o.MaxAttempts)
	}
	args, err := json.Marshal(p.Args)
	if err != nil {
		return nil, fmt.Errorf("job %d (kind %s): encoding args: %w", i, kind, err)
	}
	meta, err := marshalMetadata(o.Metadata)
	if err != nil {
		return nil, fmt.Errorf("job %d (kind %s): encoding field Metadata: %w", i, kind, err)
	}
	if meta != nil && !json.Valid(meta) {
		return nil, fmt.Errorf("job %d (kind %s): field Metadata is not valid JSON", i, kind)
	}
	at := o.RunAt
	if at.IsZero() && o.RunIn > 0 {
		at = now.Add(o.RunIn)
	}
	return &store.InsertParams{
		ID:          workflow + "_" + action.NewTimeID(),
		Kind:        kind,
		Queue:       o.Queue,
		Priority:    o.Priority,
		Args:        args,
		Metadata:    meta,
		MaxAttempts: o.MaxAttempts,
		Timeout:     max(o.Timeout, 0),
		ScheduledAt: at,
		WorkflowID:  workflow,
		UniqueKey:   o.UniqueKey,
	}, nil
}

func (c *Client) enqueue(ctx context.Context, tx any, jobs []EnqueueParams) ([]*EnqueueResult, error) {
	if len(jobs) == 0 {
		return nil, nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	workflow := action.Workflow(ctx)
	if workflow == "" {
		workflow = action.NewTimeID()
		ctx = action.WithWorkflow(ctx, workflow)
	}
	if c.cfg.Logger != nil {
		ctx = action.WithLogger(ctx, c.cfg.Logger)
	}
	now := time.Now()
	params := make([]*store.InsertParams, len(jobs))
	for i, p := range jobs {
		ip, err := c.params(i, p, workflow, now)
		if err != nil {
			return nil, fmt.Errorf("enqueueing jobs: %w", err)
		}
		params[i] = ip
	}
	// Reserve each job's position in the current action now, in order, so
	// that its task id is stored with it; the job action itself is logged
	// at that position once the insert returned.
	positions := make([]position, len(params))
	for i, p := range params {
		positions[i] = reservePosition(ctx)
		p.TaskID = positions[i].id.String()
		if len(positions[i].id.Level) == 0 {
			p.TaskID = rootTaskID(positions[i].id.UUID)
		}
	}
	var (
		res []store.InsertResult
		err error
	)
	if tx != nil {
		res, err = c.store.InsertTx(ctx, tx, params)
	} else {
		res, err = c.store.Insert(ctx, params)
	}
	if err == nil && len(res) != len(params) {
		err = fmt.Errorf("store returned %d results for %d jobs", len(res), len(params))
	}
	if err != nil {
		err = fmt.Errorf("enqueueing %d job(s) into the %s store: %w", len(params), c.store.Name(), err)
		// Fill the reserved positions, so the tree shows the failure.
		for i, p := range params {
			_, a := action.ContinueAt(ctx, positions[i].id, "skein:job", jobStartAttrs(p, positions[i])...)
			a.Fail(err)
		}
		return nil, err
	}
	out := make([]*EnqueueResult, len(params))
	for i, p := range params {
		r := res[i]
		out[i] = &EnqueueResult{Job: r.Job, Duplicate: r.Duplicate}
		attrs := jobStartAttrs(p, positions[i])
		if r.Duplicate {
			attrs = append(attrs, slog.String("duplicate_of", r.Job.ID), slog.String("unique_key", p.UniqueKey))
			_, a := action.ContinueAt(ctx, positions[i].id, "skein:job", attrs...)
			a.End(slog.Bool("duplicate", true))
			continue
		}
		c.counts.add(p.Queue, p.Kind)
		action.ContinueAt(ctx, positions[i].id, "skein:job", attrs...)
	}
	return out, nil
}

func jobStartAttrs(p *store.InsertParams, pos position) []slog.Attr {
	attrs := make([]slog.Attr, 0, 6)
	attrs = append(attrs,
		slog.String("job_id", p.ID),
		slog.String("kind", p.Kind),
		slog.String("queue", p.Queue))
	if !p.ScheduledAt.IsZero() {
		attrs = append(attrs, slog.Time("scheduled_at", p.ScheduledAt.UTC()))
	}
	if pos.parentTask != "" {
		attrs = append(attrs, slog.String(action.ParentTask, pos.parentTask))
	}
	return attrs
}

// position is where a job's action goes.
type position struct {
	id action.TaskID
	// parentTask is set when the enqueuing action had already ended: the
	// job becomes a task of its own that points back at it.
	parentTask string
}

// reservePosition takes the next slot of the current action of ctx, or
// makes a new task when there is none (or it has ended).
func reservePosition(ctx context.Context) position {
	a := action.FromContext(ctx)
	if a == nil {
		return position{id: action.TaskID{UUID: action.NewID()}}
	}
	if a.Finished() {
		return position{id: action.TaskID{UUID: action.NewID()}, parentTask: a.TaskID().String()}
	}
	id, err := action.ParseTaskID(a.SerializeTaskID())
	if err != nil { // cannot happen: the action made it
		return position{id: action.TaskID{UUID: action.NewID()}}
	}
	return position{id: id}
}

// rootTaskID is the stored task id of a job that is a task of its own: its
// action is the task's root, at the empty level.
func rootTaskID(uuid string) string { return uuid + "@/" }

// parseJobTaskID parses a job's stored task id: a serialized task id, or
// "<uuid>@/" for a job whose action is the root of its task.
func parseJobTaskID(s string) (action.TaskID, error) {
	if uuid, ok := strings.CutSuffix(s, "@/"); ok {
		if _, err := action.ParseTaskID(uuid + "@/1"); err != nil {
			return action.TaskID{}, err
		}
		return action.TaskID{UUID: strings.ToLower(uuid)}, nil
	}
	return action.ParseTaskID(s)
}
