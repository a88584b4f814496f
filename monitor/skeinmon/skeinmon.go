// Package skeinmon shows a [skein.Dispatcher] to the monitor: it adapts
// the dispatcher's status, poll records and job records to
// [monitor.Dispatcher], so that the async tools, /metrics and statsd read
// them. [Client] adapts a [skein.Client]'s enqueue counts, for
// skein_jobs_enqueued_total.
//
//	m, err := monitor.New(&monitor.Config{
//		Dispatchers: []monitor.Dispatcher{skeinmon.New(d)},
//		Enqueuers:   []monitor.EnqueueCounter{skeinmon.Client(client)},
//		Store:       st,
//	})
package skeinmon

import (
	"slices"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/monitor"
)

// Dispatcher adapts a *skein.Dispatcher to [monitor.Dispatcher]. It is
// safe for concurrent use.
type Dispatcher struct {
	d *skein.Dispatcher
}

var _ monitor.Dispatcher = (*Dispatcher)(nil)

// New returns the adapter of d.
func New(d *skein.Dispatcher) *Dispatcher { return &Dispatcher{d: d} }

// Status implements [monitor.Dispatcher].
func (a *Dispatcher) Status() monitor.Status {
	s := a.d.Status()
	out := monitor.Status{
		UUID:         s.ID,
		PollInterval: s.PollInterval,
		Stopped:      s.State == skein.StateStopping || s.State == skein.StateStopped,
	}
	if s.State != skein.StateNew {
		out.Started = s.StartedAt
		// The dispatcher sets its last poll to its start time; its ticks
		// come one interval after that. A last poll that is not a tick
		// means no timed poll yet (STARTING).
		if s.LastPoll.Sub(s.StartedAt) >= s.PollInterval/2 || a.timedPoll() {
			out.LastPoll = s.LastPoll
		}
	}
	for _, ag := range s.Agents {
		active := slices.Clone(ag.Jobs)
		if active == nil {
			active = []string{}
		}
		out.Agents = append(out.Agents, monitor.AgentStatus{Name: ag.Name, Size: ag.Size, Queues: slices.Clone(ag.Queues), Active: active})
	}
	return out
}

// timedPoll reports whether the dispatcher recorded a timed poll.
func (a *Dispatcher) timedPoll() bool {
	for _, p := range a.d.Polls(0) {
		if p.Reason == "poll" {
			return true
		}
	}
	return false
}

// Polls implements [monitor.Dispatcher]. The skein dispatcher records one
// poll per agent round; each becomes a monitor poll with one agent. The
// jobs an agent was already running at a poll ("active jobs") are worked
// out from the job records the dispatcher still keeps.
func (a *Dispatcher) Polls(n int) []monitor.Poll {
	polls := a.d.Polls(n)
	if len(polls) == 0 {
		return nil
	}
	jobs := a.d.Jobs(0)
	out := make([]monitor.Poll, len(polls))
	for i, p := range polls {
		var active []string
		for _, j := range jobs {
			if j.Agent == p.Agent && j.PollKey < p.Key && (j.Completed.IsZero() || j.Completed.After(p.Time)) {
				active = append(active, j.ID)
			}
		}
		slices.Sort(active)
		out[i] = monitor.Poll{Key: p.Key, Time: p.Time, Agents: []monitor.AgentPoll{{
			Agent: p.Agent, Reason: p.Reason, Queues: slices.Clone(p.Queues), Size: p.Size,
			Len: p.Active, New: slices.Clone(p.Claimed), Active: active, Error: p.Error,
		}}}
	}
	return out
}

// Jobs implements [monitor.Dispatcher].
func (a *Dispatcher) Jobs(n int) []monitor.JobRecord {
	recs := a.d.Jobs(n)
	out := make([]monitor.JobRecord, len(recs))
	for i, r := range recs {
		out[i] = monitor.JobRecord{
			ID: r.ID, Kind: r.Kind, Queue: r.Queue, Agent: r.Agent, Attempt: r.Attempt,
			PollKey: r.PollKey, Started: r.Started, Completed: r.Completed, State: r.State,
			Failed: r.Failed, Reassigned: r.Reassigned, Result: r.Result, Error: r.Error,
			Goroutine: r.Goroutine,
		}
	}
	return out
}

var _ monitor.RunCounter = (*Dispatcher)(nil)

// RunCounts implements [monitor.RunCounter] with the dispatcher's own
// counts ([skein.Dispatcher.RunCounts]), which miss no run.
func (a *Dispatcher) RunCounts() []monitor.RunCount {
	counts := a.d.RunCounts()
	out := make([]monitor.RunCount, len(counts))
	for i, rc := range counts {
		ended := make(map[string]monitor.OutcomeCount, len(rc.Ended))
		for o, oc := range rc.Ended {
			ended[o] = monitor.OutcomeCount{Runs: oc.Runs, Seconds: oc.Seconds, Bounds: skein.RunDurationBuckets, Buckets: oc.Buckets}
		}
		waited := monitor.OutcomeCount{Runs: rc.Waited.Runs, Seconds: rc.Waited.Seconds, Bounds: skein.RunWaitBuckets, Buckets: rc.Waited.Buckets}
		out[i] = monitor.RunCount{Queue: rc.Queue, Kind: rc.Kind, Started: rc.Started, Waited: waited, Ended: ended}
	}
	return out
}

// Client adapts a *skein.Client to [monitor.EnqueueCounter].
func Client(c *skein.Client) monitor.EnqueueCounter { return clientCounts{c} }

type clientCounts struct{ c *skein.Client }

// EnqueueCounts implements [monitor.EnqueueCounter].
func (a clientCounts) EnqueueCounts() []monitor.EnqueueCount {
	counts := a.c.EnqueueCounts()
	out := make([]monitor.EnqueueCount, len(counts))
	for i, ec := range counts {
		out[i] = monitor.EnqueueCount{Queue: ec.Queue, Kind: ec.Kind, Jobs: ec.Jobs}
	}
	return out
}
