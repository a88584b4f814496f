package monitor

import "time"

// Dispatcher is what the async tools read from one dispatcher's memory. The
// adapter for skein's own dispatcher is in package monitor/skeinmon; tests
// and other job systems implement it directly. Implementations are safe for
// concurrent use and return copies that the monitor may keep.
type Dispatcher interface {
	// Status describes the dispatcher now.
	Status() Status
	// Polls returns up to n recorded polls, newest first (all when n <= 0).
	Polls(n int) []Poll
	// Jobs returns up to n records of recent job runs, newest first (all
	// when n <= 0).
	Jobs(n int) []JobRecord
}

// RunCounter is implemented by dispatchers that count their runs since
// they started (the skeinmon adapter of a skein dispatcher does). When every
// dispatcher of a monitor is one, /metrics takes skein_jobs_started_total,
// skein_jobs_finished_total and skein_job_duration_seconds from these counts
// and misses no run; otherwise it derives them from the job records.
type RunCounter interface {
	RunCounts() []RunCount
}

// EnqueueCounter is implemented by job clients that count the jobs they
// enqueued since they were made (the skeinmon adapter of a skein client
// does). /metrics exports the counts of [Config.Enqueuers] as
// skein_jobs_enqueued_total.
type EnqueueCounter interface {
	EnqueueCounts() []EnqueueCount
}

// EnqueueCount counts the jobs of one kind enqueued on one queue.
type EnqueueCount struct {
	Queue string
	Kind  string
	Jobs  uint64
}

// RunCount counts the runs of one kind of job on one queue.
type RunCount struct {
	Queue   string
	Kind    string
	Started uint64
	// Waited is how long the started runs waited for a worker after their
	// job was due.
	Waited OutcomeCount
	// Ended maps an outcome (succeeded, failed, cancelled, snoozed,
	// interrupted, reassigned) to its runs.
	Ended map[string]OutcomeCount
}

// OutcomeCount counts runs with a histogram of a duration (how long they
// took, or waited).
type OutcomeCount struct {
	Runs    uint64
	Seconds float64
	// Bounds are the buckets' upper bounds in seconds and Buckets the
	// cumulative counts of runs at most that long.
	Bounds  []float64
	Buckets []uint64
}

// Status is a dispatcher's general state.
type Status struct {
	// UUID identifies the dispatcher.
	UUID string
	// Started is when the dispatcher was activated; zero when it never
	// was.
	Started time.Time
	// Stopped is set once the dispatcher was stopped (or is stopping).
	Stopped bool
	// LastPoll is the time of the last timed poll; zero before the first.
	LastPoll time.Time
	// PollInterval is the time between timed polls.
	PollInterval time.Duration
	// Agents lists the dispatcher's agents, in their configured order.
	Agents []AgentStatus
}

// AgentStatus is one agent of a dispatcher.
type AgentStatus struct {
	// Name of the agent.
	Name string
	// Size is how many jobs it runs at once.
	Size int
	// Queues it claims from (empty: all).
	Queues []string
	// Active are the ids of the jobs it runs now.
	Active []string
}

// Poll is one recorded claim round.
type Poll struct {
	// Key identifies the poll; keys grow with time.
	Key int64
	// Time the poll started.
	Time time.Time
	// Agents are the agents that took part, with what each claimed.
	Agents []AgentPoll
}

// AgentPoll is what one agent did in one poll.
type AgentPoll struct {
	// Agent is the agent's name.
	Agent string
	// Reason the round ran: "start", "poll", "notify", "slot", "ahead" or empty.
	Reason string
	// Queues the agent claims from (empty: all).
	Queues []string
	// Size of the agent.
	Size int
	// Len is how many jobs the agent held after the poll.
	Len int
	// New are the ids of the jobs claimed in the poll.
	New []string
	// Active are the ids of the jobs the agent was already running.
	Active []string
	// Error is the claim's error text, if it failed.
	Error string
}

// JobRecord is what a dispatcher remembers of one run of a job.
type JobRecord struct {
	// ID of the job.
	ID string
	// Kind of the job (what it calls).
	Kind string
	// Queue it came from.
	Queue string
	// Agent that claimed it.
	Agent string
	// Attempt number of the run.
	Attempt int
	// PollKey is the key of the poll that claimed it.
	PollKey int64
	// Started is when the run began.
	Started time.Time
	// Completed is when it ended; zero while it runs.
	Completed time.Time
	// State the run left the job in; empty while it runs.
	State string
	// Failed is set when the run ended with an error.
	Failed bool
	// Reassigned is set when the job was taken from this dispatcher while
	// it ran.
	Reassigned bool
	// Result of the run (JSON text), when it succeeded.
	Result string
	// Error text (with a stack for panics), when it failed.
	Error string
	// Goroutine that ran the handler; 0 when unknown.
	Goroutine int64
	// Process that ran the handler, for agents running jobs in child
	// processes; 0 when the job ran in the dispatcher's own process.
	Process int
}

// Running reports whether the dispatcher is activated and not stopped.
func (s Status) Running() bool { return !s.Started.IsZero() && !s.Stopped }
