package skein

import (
	"errors"
	"os"
	"slices"
	"time"

	"github.com/skeinhq/skein/store"
)

// Poll records one claim round of one agent, as the monitor shows it. A
// round is recorded when it is a timed poll, claimed jobs, or failed;
// notifications that found nothing are not recorded.
type Poll struct {
	// Key identifies the poll; keys grow with time.
	Key int64 `json:"key"`
	// Time the round started.
	Time time.Time `json:"time"`
	// Agent that claimed.
	Agent string `json:"agent"`
	// Reason of the round: "start", "poll" (timer), "notify" (a store
	// notification), "slot" (a slot freed while more jobs were waiting) or
	// "ahead" (claiming ahead: the last claim came back full while the
	// agent's jobs run shorter than its claims).
	Reason string `json:"reason"`
	// Queues the agent claims from (empty: all).
	Queues []string `json:"queues,omitempty"`
	// Size of the agent.
	Size int `json:"size"`
	// Active is how many jobs the agent held after the round.
	Active int `json:"active"`
	// Claimed lists the ids of the jobs claimed in the round.
	Claimed []string `json:"claimed,omitempty"`
	// ClaimedByQueue counts the claimed jobs per queue.
	ClaimedByQueue map[string]int `json:"claimed_by_queue,omitempty"`
	// Error is the claim's error, if it failed.
	Error string `json:"error,omitempty"`
}

// JobRecord is what a dispatcher remembers of one run of a job it claimed.
type JobRecord struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	Queue string `json:"queue"`
	Agent string `json:"agent"`
	// Attempt and Slot of the run.
	Attempt int   `json:"attempt"`
	Slot    int64 `json:"slot"`
	// PollKey is the key of the poll that claimed the job.
	PollKey int64 `json:"poll_key"`
	// Started is when the job was claimed.
	Started time.Time `json:"started"`
	// Completed is when the run ended; zero while it runs.
	Completed time.Time `json:"completed,omitzero"`
	// State is the state the run moved the job to (completed, retryable,
	// scheduled, available, cancelled, discarded); empty while it runs.
	State string `json:"state,omitempty"`
	// Failed is set when the run ended with an error.
	Failed bool `json:"failed"`
	// Reassigned is set when the job was taken from this dispatcher while
	// it ran (it had been judged dead).
	Reassigned bool `json:"reassigned"`
	// Result is the run's recorded result (JSON), when it completed.
	Result string `json:"result,omitempty"`
	// Error is the run's error text, with the stack of a panic.
	Error string `json:"error,omitempty"`
	// Goroutine is the id of the goroutine that ran the handler.
	Goroutine int64 `json:"goroutine"`
}

func (d *Dispatcher) recordPoll(p Poll) int64 {
	// Keys: nanoseconds since the epoch, made strictly increasing.
	k := p.Time.UnixNano()
	for {
		last := d.pollKey.Load()
		if k <= last {
			k = last + 1
		}
		if d.pollKey.CompareAndSwap(last, k) {
			break
		}
	}
	p.Key = k
	d.polls.Push(p)
	return k
}

func (d *Dispatcher) recordOutcome(r *run, o *store.Outcome, err error) {
	r.mu.Lock()
	result := string(o.Result)
	r.mu.Unlock()
	d.counts.end(r.job.Queue, r.job.Kind, runOutcome(string(o.State), err != nil || o.Error != nil), time.Since(r.started))
	d.jobs.UpdateAt(r.rec, func(j *JobRecord) {
		j.Completed = time.Now()
		j.State = string(o.State)
		j.Result = result
		if err != nil {
			j.Failed = true
			j.Error = err.Error()
			var pe *PanicError
			if errors.As(err, &pe) {
				j.Error += "\n" + string(pe.Stack)
			}
		} else if o.Error != nil {
			j.Failed = true
			j.Error = o.Error.Error
		}
	})
}

func (d *Dispatcher) recordReassigned(r *run) {
	counted := false
	d.jobs.UpdateAt(r.rec, func(j *JobRecord) {
		// A run whose outcome was recorded (then refused by the store)
		// was counted with that outcome already.
		counted = j.State != ""
		j.Reassigned = true
		if j.Completed.IsZero() {
			j.Completed = time.Now()
		}
	})
	if !counted {
		d.counts.end(r.job.Queue, r.job.Kind, "reassigned", time.Since(r.started))
	}
}

func (d *Dispatcher) recordGoroutine(r *run, id int64) {
	d.counts.start(r.job.Queue, r.job.Kind, r.started.Sub(r.job.ScheduledAt))
	d.jobs.UpdateAt(r.rec, func(j *JobRecord) { j.Goroutine = id })
}

// Polls returns up to n recorded polls, newest first (all when n <= 0). At
// most Config.PollRecords (400) are kept.
func (d *Dispatcher) Polls(n int) []Poll { return d.polls.Newest(n) }

// Jobs returns up to n records of recent runs, newest first (all when
// n <= 0). At most Config.JobRecords (200) are kept.
func (d *Dispatcher) Jobs(n int) []JobRecord { return d.jobs.Newest(n) }

// Status describes a dispatcher for the monitor.
type Status struct {
	ID   string `json:"id"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
	// State is "new", "running", "stopping" or "stopped".
	State     string    `json:"state"`
	StartedAt time.Time `json:"started_at,omitzero"`
	// LastPoll is the time of the last timed poll of any agent.
	LastPoll          time.Time     `json:"last_poll,omitzero"`
	PollInterval      time.Duration `json:"poll_interval"`
	HeartbeatInterval time.Duration `json:"heartbeat_interval"`
	DeadAfter         time.Duration `json:"dead_after"`
	Agents            []AgentStatus `json:"agents"`
}

// AgentStatus describes one agent.
type AgentStatus struct {
	Name   string   `json:"name"`
	Size   int      `json:"size"`
	Queues []string `json:"queues,omitempty"`
	Kinds  []string `json:"kinds,omitempty"`
	// Active is how many jobs the agent holds now: running, or claimed
	// ahead and waiting for a slot (up to twice Size).
	Active int `json:"active"`
	// Jobs are the ids of those jobs, sorted.
	Jobs []string `json:"jobs,omitempty"`
}

// Status returns the dispatcher's current state.
func (d *Dispatcher) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Status{
		ID: d.cfg.ID, Host: d.cfg.Host, PID: os.Getpid(), State: d.state, StartedAt: d.startedAt,
		PollInterval: d.cfg.PollInterval, HeartbeatInterval: d.cfg.HeartbeatInterval, DeadAfter: d.cfg.DeadAfter,
	}
	if d.state != StateNew {
		s.LastPoll = time.Unix(0, d.lastPoll.Load()).UTC()
	}
	byAgent := make(map[*agent][]string)
	for r := range d.runs {
		byAgent[r.agent] = append(byAgent[r.agent], r.job.ID)
	}
	for _, a := range d.agents {
		jobs := byAgent[a]
		slices.Sort(jobs)
		s.Agents = append(s.Agents, AgentStatus{Name: a.cfg.Name, Size: a.cfg.Size,
			Queues: slices.Clone(a.cfg.Queues), Kinds: slices.Clone(a.cfg.Kinds), Active: a.active, Jobs: jobs})
	}
	return s
}
