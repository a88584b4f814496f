package skein

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/store"
)

// Defaults of Config and AgentConfig.
const (
	DefaultAgentName          = "main"
	DefaultAgentSize          = 10
	DefaultHeartbeatInterval  = store.DefaultHeartbeatInterval // 5 s
	DefaultPollInterval       = store.DefaultPollInterval      // 1 s
	DefaultDeadAfter          = store.DefaultDeadAfter         // 30 s
	DefaultCleanupInterval    = 30 * time.Second
	DefaultCompletedRetention = store.DefaultCompletedRetention // 24 h
	DefaultCancelledRetention = store.DefaultCancelledRetention // 24 h
	DefaultDiscardedRetention = store.DefaultDiscardedRetention // 7 days
	DefaultPollRecords        = 400
	DefaultJobRecords         = 200
	DefaultReleaseTimeout     = 10 * time.Second
	DefaultBackoffBase        = time.Second
	DefaultBackoffMax         = 24 * time.Hour
)

// Config configures a [Dispatcher]. A nil *Config means every default,
// which needs Handlers: pass at least that.
type Config struct {
	// Agents the dispatcher runs. Defaults to one agent named "main" of
	// size 10 that takes every queue and every kind Handlers knows.
	Agents []AgentConfig
	// Backoff is the delay before a failed job's next attempt. Defaults to
	// ExponentialBackoff{Base: 1 s, Max: 24 h}: exponential with full
	// jitter.
	Backoff Backoff
	// CleanupInterval is how often the dispatcher deletes final jobs past
	// their retention ([store.Store.Cleanup]). Defaults to 30 s; negative
	// disables cleanup in this dispatcher.
	CleanupInterval time.Duration
	// CompletedRetention is how long completed jobs are kept. Defaults to
	// 24 h; negative keeps them forever.
	CompletedRetention time.Duration
	// CancelledRetention is how long cancelled jobs are kept. Defaults to
	// 24 h; negative keeps them forever.
	CancelledRetention time.Duration
	// DiscardedRetention is how long discarded jobs are kept. Defaults to
	// 7 days; negative keeps them forever.
	DiscardedRetention time.Duration
	// DeadAfter is how old another dispatcher's heartbeat may get before
	// this one judges it dead and rescues its running jobs. Defaults to
	// 30 s. Keep it several times HeartbeatInterval (of every dispatcher
	// sharing the store).
	DeadAfter time.Duration
	// Handlers run the jobs of agents that have no Executor of their own.
	// Required unless every agent has one.
	Handlers *Handlers
	// HeartbeatInterval is how often the dispatcher tells the store it is
	// alive. Defaults to 5 s.
	HeartbeatInterval time.Duration
	// Host is the host name registered with the dispatcher. Defaults to
	// os.Hostname().
	Host string
	// ID is the dispatcher's UUID. Defaults to a new random UUID.
	ID string
	// JobRecords is how many recent jobs the dispatcher remembers in memory
	// for the monitor ([Dispatcher.Jobs]). Defaults to 200.
	JobRecords int
	// Logger receives the attempt and job actions and the dispatcher's own
	// messages. Defaults to [action.Default].
	Logger *action.Logger
	// OutcomesWithClaims makes a busy agent store the outcomes of its last
	// jobs together with the claim of its next ones
	// ([store.Store.FinishClaim]: one transaction and one commit on
	// PostgreSQL), rather than leaving them to a completer goroutine that
	// stores them while the agent claims. It halves the commits and saves
	// about a sixth of the database's CPU per job, but a claim then waits for
	// the outcomes before it: worth it when the database's CPU or disk is
	// what limits throughput (many dispatchers sharing one server, a busy
	// server), not on a server with cores to spare, where the completer's
	// parallel statement is faster (see docs/jobs.md). Defaults to false.
	OutcomesWithClaims bool
	// PollInterval is how often each agent claims without having been
	// notified. Defaults to 1 s.
	PollInterval time.Duration
	// PollRecords is how many polls the dispatcher remembers in memory for
	// the monitor ([Dispatcher.Polls]). Defaults to 400.
	PollRecords int
	// ReleaseTimeout bounds the store calls that must complete even while
	// the dispatcher stops: a claim in flight, storing the last outcomes,
	// putting jobs back and deregistering once a Stop's context has
	// expired. Defaults to 10 s.
	ReleaseTimeout time.Duration
	// RescueInterval is how often the dispatcher looks for dead
	// dispatchers ([store.Store.RescueDead]). Defaults to PollInterval, so
	// that a job of a dead dispatcher runs again within DeadAfter plus one
	// poll.
	RescueInterval time.Duration
}

// AgentConfig configures one agent of a dispatcher: a named set of
// goroutines that claim and run jobs.
type AgentConfig struct {
	// Name of the agent, unique within the dispatcher. Defaults to "main"
	// for the first agent, "agent-N" (N its index) for the others.
	Name string
	// Size is how many jobs the agent runs at once. Defaults to 10.
	Size int
	// Queues the agent claims from. Defaults to all queues.
	Queues []string
	// Kinds the agent claims. Defaults to the kinds its Executor knows when
	// NewDispatcher is called, if that is a *Handlers (so that a dispatcher
	// never claims a job it cannot run), else all kinds.
	Kinds []string
	// Executor runs the agent's jobs. Defaults to Config.Handlers.
	Executor Executor
	// DisableClaimAhead stops the agent from claiming ahead. By default,
	// while its jobs take less time than its claims (each a round trip and
	// a commit), an agent claims its next batch as soon as a full one
	// returned, as that one runs: it then holds up to 2·Size jobs, at most
	// Size running, the others waiting (state running in the store) for a
	// slot. A stop puts waiting jobs back unstarted. Defaults to false.
	DisableClaimAhead bool
}

// Backoff says how long to wait before retrying a job whose attempt
// failed.
type Backoff interface {
	// Delay returns the wait after the given attempt (1 for the first)
	// failed.
	Delay(attempt int) time.Duration
}

// ExponentialBackoff waits a random time between 0 and
// min(Max, Base·2^(attempt-1)) ("full jitter"): 0–1 s after the first
// failure, 0–2 s after the second, 0–4 s after the third… with the
// defaults.
type ExponentialBackoff struct {
	// Base is the cap of the first delay. Defaults to 1 s.
	Base time.Duration
	// Max caps every delay. Defaults to 24 h.
	Max time.Duration
}

// Delay implements Backoff.
func (b ExponentialBackoff) Delay(attempt int) time.Duration {
	base, ceiling := b.Base, b.Max
	if base <= 0 {
		base = DefaultBackoffBase
	}
	if ceiling <= 0 {
		ceiling = DefaultBackoffMax
	}
	d := base
	for i := 1; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return rand.N(d + 1)
}

// BackoffFunc adapts a function to [Backoff].
type BackoffFunc func(attempt int) time.Duration

// Delay implements Backoff.
func (f BackoffFunc) Delay(attempt int) time.Duration { return f(attempt) }

// withDefaults returns a copy of c with defaults applied, or an error
// naming the bad field.
func (c *Config) withDefaults() (Config, error) {
	var o Config
	if c != nil {
		o = *c
	}
	if o.Backoff == nil {
		o.Backoff = ExponentialBackoff{}
	}
	if o.CleanupInterval == 0 {
		o.CleanupInterval = DefaultCleanupInterval
	}
	if o.CompletedRetention == 0 {
		o.CompletedRetention = DefaultCompletedRetention
	}
	if o.CancelledRetention == 0 {
		o.CancelledRetention = DefaultCancelledRetention
	}
	if o.DiscardedRetention == 0 {
		o.DiscardedRetention = DefaultDiscardedRetention
	}
	if o.DeadAfter == 0 {
		o.DeadAfter = DefaultDeadAfter
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.ID == "" {
		o.ID = action.NewID()
	}
	if o.JobRecords == 0 {
		o.JobRecords = DefaultJobRecords
	}
	if o.Logger == nil {
		o.Logger = action.Default()
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.PollRecords == 0 {
		o.PollRecords = DefaultPollRecords
	}
	if o.ReleaseTimeout == 0 {
		o.ReleaseTimeout = DefaultReleaseTimeout
	}
	if o.RescueInterval == 0 {
		o.RescueInterval = o.PollInterval
	}
	switch {
	case o.DeadAfter < 0:
		return o, fmt.Errorf("field DeadAfter is negative (%s)", o.DeadAfter)
	case o.HeartbeatInterval < 0:
		return o, fmt.Errorf("field HeartbeatInterval is negative (%s)", o.HeartbeatInterval)
	case o.PollInterval < 0:
		return o, fmt.Errorf("field PollInterval is negative (%s)", o.PollInterval)
	case o.RescueInterval < 0:
		return o, fmt.Errorf("field RescueInterval is negative (%s)", o.RescueInterval)
	case o.ReleaseTimeout < 0:
		return o, fmt.Errorf("field ReleaseTimeout is negative (%s)", o.ReleaseTimeout)
	case o.JobRecords < 0:
		return o, fmt.Errorf("field JobRecords is %d, want at least 1", o.JobRecords)
	case o.PollRecords < 0:
		return o, fmt.Errorf("field PollRecords is %d, want at least 1", o.PollRecords)
	case o.HeartbeatInterval >= o.DeadAfter:
		return o, fmt.Errorf("field HeartbeatInterval (%s) is not shorter than DeadAfter (%s): live dispatchers would be judged dead", o.HeartbeatInterval, o.DeadAfter)
	}
	if len(o.Agents) == 0 {
		o.Agents = []AgentConfig{{}}
	} else {
		o.Agents = append([]AgentConfig(nil), o.Agents...)
	}
	names := make(map[string]bool, len(o.Agents))
	for i := range o.Agents {
		a := &o.Agents[i]
		if a.Name == "" {
			a.Name = DefaultAgentName
			if i > 0 {
				a.Name = fmt.Sprintf("agent-%d", i)
			}
		}
		if names[a.Name] {
			return o, fmt.Errorf("field Agents[%d]: agent name %q is used twice", i, a.Name)
		}
		names[a.Name] = true
		if a.Size == 0 {
			a.Size = DefaultAgentSize
		}
		if a.Size < 0 {
			return o, fmt.Errorf("field Agents[%d] (%s): Size is %d, want at least 1", i, a.Name, a.Size)
		}
		if a.Executor == nil {
			if o.Handlers == nil {
				return o, fmt.Errorf("field Agents[%d] (%s): no Executor and Config.Handlers is nil", i, a.Name)
			}
			a.Executor = o.Handlers
		}
		if len(a.Kinds) == 0 {
			if h, ok := a.Executor.(*Handlers); ok {
				a.Kinds = h.Kinds()
				if len(a.Kinds) == 0 {
					return o, fmt.Errorf("field Agents[%d] (%s): its Handlers have no handler registered", i, a.Name)
				}
			}
		}
		a.Queues = append([]string(nil), a.Queues...)
		a.Kinds = append([]string(nil), a.Kinds...)
	}
	return o, nil
}

var errNoStore = errors.New("store is nil")
