package monitor

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeDispatcher is a dispatcher driven by a test: it polls, claims, runs
// and completes jobs only when told, on a fake clock.
type fakeDispatcher struct {
	clock *fakeClock

	mu       sync.Mutex
	status   Status
	pending  []fakeJob // queued, oldest first
	polls    []Poll    // newest first
	jobs     []JobRecord
	maxPolls int
	maxJobs  int
}

type fakeJob struct{ id, kind, queue string }

func newFakeDispatcher(clock *fakeClock, uuid string, interval time.Duration) *fakeDispatcher {
	return &fakeDispatcher{clock: clock, status: Status{UUID: uuid, PollInterval: interval}, maxPolls: 400, maxJobs: 200}
}

func (d *fakeDispatcher) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.status
	s.Agents = nil
	for _, a := range d.status.Agents {
		a.Active = slices.Clone(a.Active)
		a.Queues = slices.Clone(a.Queues)
		s.Agents = append(s.Agents, a)
	}
	return s
}

func (d *fakeDispatcher) Polls(n int) []Poll {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n <= 0 || n > len(d.polls) {
		n = len(d.polls)
	}
	return slices.Clone(d.polls[:n])
}

func (d *fakeDispatcher) Jobs(n int) []JobRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n <= 0 || n > len(d.jobs) {
		n = len(d.jobs)
	}
	return slices.Clone(d.jobs[:n])
}

func (d *fakeDispatcher) addAgent(name string, size int, queues ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status.Agents = append(d.status.Agents, AgentStatus{Name: name, Size: size, Queues: queues})
}

func (d *fakeDispatcher) start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status.Started = d.clock.Now()
	d.status.Stopped = false
	d.status.LastPoll = time.Time{}
	d.polls, d.jobs = nil, nil
}

func (d *fakeDispatcher) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status.Stopped = true
}

func (d *fakeDispatcher) put(id, kind, queue string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending = append(d.pending, fakeJob{id, kind, queue})
}

// poll runs one timed poll: every agent claims what it can.
func (d *fakeDispatcher) poll() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.clock.Now()
	d.status.LastPoll = now
	key := now.UnixNano()
	if len(d.polls) > 0 && key <= d.polls[0].Key {
		key = d.polls[0].Key + 1
	}
	p := Poll{Key: key, Time: now}
	for i := range d.status.Agents {
		a := &d.status.Agents[i]
		ap := AgentPoll{Agent: a.Name, Reason: "poll", Queues: slices.Clone(a.Queues), Size: a.Size, Active: slices.Clone(a.Active)}
		rest := d.pending[:0:0]
		for _, j := range d.pending {
			if len(a.Active) < a.Size && (len(a.Queues) == 0 || slices.Contains(a.Queues, j.queue)) {
				a.Active = append(a.Active, j.id)
				ap.New = append(ap.New, j.id)
				d.jobs = append([]JobRecord{{ID: j.id, Kind: j.kind, Queue: j.queue, Agent: a.Name, Attempt: 1, PollKey: key, Started: now, Goroutine: int64(100 + len(d.jobs))}}, d.jobs...)
				continue
			}
			rest = append(rest, j)
		}
		d.pending = rest
		ap.Len = len(a.Active)
		p.Agents = append(p.Agents, ap)
	}
	d.polls = append([]Poll{p}, d.polls...)
	if len(d.polls) > d.maxPolls {
		d.polls = d.polls[:d.maxPolls]
	}
	if len(d.jobs) > d.maxJobs {
		d.jobs = d.jobs[:d.maxJobs]
	}
	return key
}

// finish ends the run of job id: with result, or failed with errText.
func (d *fakeDispatcher) finish(id string, failed bool, text string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.clock.Now()
	for i := range d.status.Agents {
		a := &d.status.Agents[i]
		a.Active = slices.DeleteFunc(a.Active, func(s string) bool { return s == id })
	}
	for i := range d.jobs {
		if d.jobs[i].ID == id {
			r := &d.jobs[i]
			r.Completed = now
			r.Failed = failed
			if failed {
				r.State = "retryable"
				r.Error = text
			} else {
				r.State = "completed"
				r.Result = text
			}
			return nil
		}
	}
	return fmt.Errorf("fake dispatcher: no job %q", id)
}

// do runs one transcript action such as "advance 1s" or "put j1 send".
func (d *fakeDispatcher) do(action string) error {
	words := strings.Fields(action)
	if len(words) == 0 {
		return fmt.Errorf("empty action")
	}
	arg := func(i int, def string) string {
		if i < len(words) {
			return words[i]
		}
		return def
	}
	switch words[0] {
	case "advance":
		dur, err := time.ParseDuration(arg(1, ""))
		if err != nil {
			return err
		}
		d.clock.Advance(dur)
	case "agent":
		size, err := strconv.Atoi(arg(2, "3"))
		if err != nil {
			return err
		}
		d.addAgent(arg(1, "main"), size, words[min(3, len(words)):]...)
	case "start":
		d.start()
	case "stop":
		d.stop()
	case "poll":
		d.poll()
	case "put":
		d.put(arg(1, ""), arg(2, "send_message"), arg(3, "default"))
	case "complete":
		return d.finish(arg(1, ""), false, strings.Join(words[min(2, len(words)):], " "))
	case "fail":
		return d.finish(arg(1, ""), true, strings.Join(words[min(2, len(words)):], " "))
	default:
		return fmt.Errorf("unknown action %q", words[0])
	}
	return nil
}
