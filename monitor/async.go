package monitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Dispatcher states shown by async status.
const (
	StateStopped  = "STOPPED"
	StateStarting = "STARTING"
	StateRunning  = "RUNNING"
	StateStuck    = "STUCK"
)

// DefaultPollsCount is how many polls async polls shows when neither
// count: nor since: is given.
const DefaultPollsCount = 3

const intervalHelp = `    Intervals are of the format ` + "``[nD][nH][nM][nS]``" + `, where "n" should
    be replaced with a positive integer, and "D," "H," "M," and "S" are
    literals standing for "days," "hours," "minutes," and "seconds."
    For instance, you might use ` + "``5M``" + ` for five minutes, ` + "``20S``" + ` for
    twenty seconds, or ` + "``1H30M``" + ` for an hour and a half.`

const pollKeyHelp = `    Poll keys are the values shown as "key" from the ` + "``poll``" + ` or ` + "``polls``" + `
    command.`

const uuidHelp = `    Every tool that reads a dispatcher also takes "uuid:<uuid>" to read
    another dispatcher of this process (see ` + "``asyncdb UUIDs``" + `).`

func (m *Monitor) asyncPlugin() *plugin {
	p := &plugin{name: "async", doc: `Monitor skein activity in this process.

    To see a list of async tools, use 'async help'.

    To learn more about an async monitor tool, use 'async help <tool name>'.`}
	p.tools = map[string]*tool{
		"UUID": {doc: `Get instance UUID in hex.`, named: []string{"uuid"},
			call: func(_ context.Context, a Args) (any, error) {
				d, err := m.dispatcher(a)
				if err != nil {
					return nil, err
				}
				return d.Status().UUID, nil
			}},
		"utcnow": {doc: `Return the current time in UTC, in ISO 8601 format.`,
			call: func(context.Context, Args) (any, error) { return formatTime(m.now()), nil }},
		"help": {doc: `Get help on an async monitor tool.

    Usage is 'async help <tool name>' or 'async help'.`, pos: 1,
			call: func(_ context.Context, a Args) (any, error) { return toolHelp(p, a) }},
		"status": {doc: `Get a mapping of general skein dispatcher information.

    'status' is one of 'STUCK', 'STARTING', 'RUNNING', or 'STOPPED', where
    'STUCK' means the poll is past due.

` + uuidHelp, named: []string{"uuid"}, call: m.asyncStatus},
		"jobs": {doc: `Show active jobs as of the instant.

    Usage:

        jobs
        (returns active jobs, newest to oldest)

        jobs queue:<queue name>
        (jobs are filtered to those coming from the named queue)

        jobs agent:<agent name>
        (jobs are filtered to those coming from agents with given name)

    "queue:" and "agent:" modifiers may be combined.

    Example:

        async jobs queue:default agent:main
        (results filtered to queue named 'default' and agent named 'main')`,
			named: []string{"queue", "agent", "uuid"}, call: m.asyncJobs},
		"job": {doc: `Local information about a job, if this dispatcher ran it recently.

    Usage:

        job <job id>
        (returns what this dispatcher remembers of the job's latest run)

    The dispatcher remembers a fixed number of recent runs.  "result" is
    the job's result, or its error (with the stack of a panic) when it
    failed; it is null while the job runs.`,
			pos: 1, named: []string{"uuid"}, call: m.asyncJob},
		"jobstats": {doc: `Statistics on historical jobs as of last poll.

    Usage:

        jobstats
        (returns statistics on historical jobs as of last poll)

        jobstats queue:<queue name>
        (statistics are filtered to those coming from the named queue)

        jobstats agent:<agent name>
        (statistics are filtered to those coming from agents with given name)

        jobstats at:<poll key or interval>
        (statistics are collected at or before the poll key or interval)

        jobstats before:<pollkey or interval>
        (statistics are collected before the poll key or interval)

        jobstats since:<pollkey or interval>
        (statistics are collected since poll key or interval, inclusive)

    The modifiers "queue:", "agent:", "since:", and one of "at:" or "before:"
    may be combined.

` + intervalHelp + `

` + pollKeyHelp + `

    Example:

        async jobstats queue:default agent:main since:1H
        (results filtered to queue named 'default' and agent named 'main' from
         one hour ago till now)`,
			named: []string{"queue", "agent", "at", "before", "since", "uuid"}, call: m.asyncJobstats},
		"poll": {doc: `Get information about a single poll, defaulting to most recent.

    Usage:

        poll
        (returns most recent poll)

        poll at:<poll key or interval>
        (returns poll at or before the poll key or interval)

        poll before:<poll key or interval>
        (returns poll before the poll key or interval)

` + intervalHelp + `

    Example:

        async poll at:5M
        (get the poll information at five minutes ago or before)`,
			named: []string{"at", "before", "uuid"}, call: m.asyncPoll},
		"polls": {doc: `Get information about recent polls, defaulting to most recent.

    Usage:

        polls
        (returns most recent 3 polls)

        polls at:<poll key or interval>
        (returns up to 3 polls at or before the poll key or interval)

        polls before:<poll key or interval>
        (returns up to 3 polls before the poll key or interval)

        polls since:<poll key or interval>
        (returns polls since the poll key or interval, inclusive)

        polls count:<positive integer>
        (returns the given number of the most recent polls)

    The modifiers "since:", "count:", and one of "at:" or "before:" may
    be combined.

` + intervalHelp + `

    Example:

        async polls since:10M before:5M
        (get the poll information from 10 to 5 minutes ago)`,
			named: []string{"at", "before", "since", "count", "uuid"}, call: m.asyncPolls},
	}
	for name, t := range p.tools {
		t.name = name
	}
	return p
}

var errNoDispatcher = errors.New("no dispatcher runs in this process")

// dispatcher returns the dispatcher named by uuid:, or the first.
func (m *Monitor) dispatcher(a Args) (Dispatcher, error) {
	if len(m.cfg.Dispatchers) == 0 {
		return nil, errNoDispatcher
	}
	id, ok := a.Named["uuid"]
	if !ok || id == "" {
		return m.cfg.Dispatchers[0], nil
	}
	for _, d := range m.cfg.Dispatchers {
		if d.Status().UUID == id {
			return d, nil
		}
	}
	return nil, fmt.Errorf("modifier \"uuid:\": no dispatcher %q in this process", id)
}

// DispatcherState computes the state async status shows for s at now:
// STOPPED when not running, STUCK when the next poll is past due by more
// than grace, STARTING before the first poll, else RUNNING.
func DispatcherState(s Status, now time.Time, grace time.Duration) string {
	if !s.Running() {
		return StateStopped
	}
	last := s.LastPoll
	if last.IsZero() {
		if now.After(s.Started.Add(s.PollInterval + grace)) {
			return StateStuck
		}
		return StateStarting
	}
	if now.After(last.Add(s.PollInterval + grace)) {
		return StateStuck
	}
	return StateRunning
}

func (m *Monitor) asyncStatus(_ context.Context, a Args) (any, error) {
	d, err := m.dispatcher(a)
	if err != nil {
		return nil, err
	}
	return statusValue(d.Status(), m.now(), m.cfg.StuckGrace), nil
}

func statusValue(s Status, now time.Time, grace time.Duration) map[string]any {
	agents := map[string]any{}
	for _, ag := range s.Agents {
		agents[ag.Name] = map[string]any{
			"size":   ag.Size,
			"len":    len(ag.Active),
			"queues": listOrNil(ag.Queues),
		}
	}
	running := s.Running()
	return map[string]any{
		"uuid":                 s.UUID,
		"status":               DispatcherState(s, now, grace),
		"poll interval":        Duration(s.PollInterval),
		"time since last poll": durationOrNil(now.Sub(s.LastPoll), running && !s.LastPoll.IsZero()),
		"uptime":               durationOrNil(now.Sub(s.Started), running),
		"agents":               agents,
	}
}

func listOrNil(s []string) any {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func (m *Monitor) asyncJobs(_ context.Context, a Args) (any, error) {
	d, err := m.dispatcher(a)
	if err != nil {
		return nil, err
	}
	queue, byQueue := a.Named["queue"]
	agentName, byAgent := a.Named["agent"]
	newest := newestRecords(d.Jobs(0))
	type active struct {
		id      string
		started time.Time
	}
	var list []active
	for _, ag := range d.Status().Agents {
		if byAgent && ag.Name != agentName {
			continue
		}
		for _, id := range ag.Active {
			r, known := newest[id]
			if byQueue && (!known || r.Queue != queue) {
				continue
			}
			list = append(list, active{id, r.Started})
		}
	}
	slices.SortStableFunc(list, func(x, y active) int {
		if c := y.started.Compare(x.started); c != 0 {
			return c
		}
		if x.id < y.id {
			return 1
		}
		if x.id > y.id {
			return -1
		}
		return 0
	})
	ids := make([]string, len(list))
	for i, x := range list {
		ids[i] = x.id
	}
	return ids, nil
}

// newestRecords maps each job id to its newest record.
func newestRecords(recs []JobRecord) map[string]JobRecord {
	out := make(map[string]JobRecord, len(recs))
	for _, r := range recs { // newest first
		if _, seen := out[r.ID]; !seen {
			out[r.ID] = r
		}
	}
	return out
}

func (m *Monitor) asyncJob(_ context.Context, a Args) (any, error) {
	d, err := m.dispatcher(a)
	if err != nil {
		return nil, err
	}
	if len(a.Pos) == 0 {
		return nil, errors.New("needs a job id: async job <job id>")
	}
	id := a.Pos[0]
	for _, r := range d.Jobs(0) {
		if r.ID == id {
			return m.jobRecordValue(r), nil
		}
	}
	return nil, &NotFoundError{What: fmt.Sprintf("job %q is not among the runs this dispatcher remembers", id)}
}

func (m *Monitor) jobRecordValue(r JobRecord) map[string]any {
	var result any
	switch {
	case r.Completed.IsZero() && r.State == "":
		result = nil
	case r.Failed:
		result = m.truncate(r.Error)
	default:
		result = stringOrNil(m.truncate(r.Result))
	}
	v := map[string]any{
		"agent":      r.Agent,
		"attempt":    r.Attempt,
		"completed":  timeOrNil(r.Completed),
		"failed":     r.Failed,
		"kind":       r.Kind,
		"poll id":    r.PollKey,
		"queue":      r.Queue,
		"reassigned": r.Reassigned,
		"result":     result,
		"started":    timeOrNil(r.Started),
		"state":      stringOrNil(r.State),
		"goroutine":  r.Goroutine,
	}
	if r.Process != 0 {
		v["process"] = r.Process
	}
	return v
}

// truncateMarker ends a result or traceback cut at Config.MaxResultChars.
const truncateMarker = "\n[...TRUNCATED...]"

func (m *Monitor) truncate(s string) string {
	r := []rune(s)
	if len(r) <= m.cfg.MaxResultChars {
		return s
	}
	return string(r[:m.cfg.MaxResultChars]) + truncateMarker
}

// window is a run of polls (newest first) selected by at:, before:,
// since: and count:.
func (m *Monitor) window(polls []Poll, a Args, defaultCount int) ([]Poll, error) {
	now := m.now()
	at, hasAt := a.Named["at"]
	before, hasBefore := a.Named["before"]
	if hasAt && hasBefore {
		return nil, errors.New("modifiers at: and before: may not be combined: give only one")
	}
	start := 0
	if hasAt || hasBefore {
		name, val := "at:", at
		if hasBefore {
			name, val = "before:", before
		}
		pt, err := ParsePoint(name, val)
		if err != nil {
			return nil, err
		}
		cut := now.Add(-pt.Ago)
		start = len(polls)
		for i, p := range polls {
			var ok bool
			switch {
			case pt.IsKey && hasAt:
				ok = p.Key <= pt.Key
			case pt.IsKey:
				ok = p.Key < pt.Key
			case hasAt:
				ok = !p.Time.After(cut)
			default:
				ok = p.Time.Before(cut)
			}
			if ok {
				start = i
				break
			}
		}
	}
	end := len(polls)
	since, hasSince := a.Named["since"]
	if hasSince {
		pt, err := ParsePoint("since:", since)
		if err != nil {
			return nil, err
		}
		cut := now.Add(-pt.Ago)
		end = start
		for end < len(polls) {
			p := polls[end]
			if pt.IsKey && p.Key < pt.Key || !pt.IsKey && p.Time.Before(cut) {
				break
			}
			end++
		}
	}
	count := 0
	if c, ok := a.Named["count"]; ok {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("modifier \"count:\": %q is not a positive integer", c)
		}
		count = n
	} else if !hasSince {
		count = defaultCount
	}
	if count > 0 && end-start > count {
		end = start + count
	}
	return polls[start:end], nil
}

// pollJSON and agentPollJSON are a poll as the monitor shows it. Their
// fields are in the order of their JSON names: sorted, as every answer's keys.
type pollJSON struct {
	Key     int64                    `json:"key"`
	Results map[string]agentPollJSON `json:"results"`
	Time    Time                     `json:"time"`
}

type agentPollJSON struct {
	ActiveJobs []string `json:"active jobs"`
	Error      *string  `json:"error"`
	Len        int      `json:"len"`
	NewJobs    []string `json:"new jobs"`
	Queues     []string `json:"queues"`
	Reason     *string  `json:"reason"`
	Size       int      `json:"size"`
}

func pollValue(p Poll) pollJSON {
	results := make(map[string]agentPollJSON, len(p.Agents))
	for _, ap := range p.Agents {
		v := agentPollJSON{ActiveJobs: nonNil(ap.Active), Len: ap.Len, NewJobs: nonNil(ap.New), Size: ap.Size}
		if ap.Error != "" {
			v.Error = &ap.Error
		}
		if ap.Reason != "" {
			v.Reason = &ap.Reason
		}
		if len(ap.Queues) > 0 {
			v.Queues = ap.Queues
		}
		results[ap.Agent] = v
	}
	return pollJSON{Key: p.Key, Time: Time(p.Time), Results: results}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (m *Monitor) asyncPoll(_ context.Context, a Args) (any, error) {
	d, err := m.dispatcher(a)
	if err != nil {
		return nil, err
	}
	w, err := m.window(d.Polls(0), a, 1)
	if err != nil {
		return nil, err
	}
	if len(w) == 0 {
		return nil, nil
	}
	return pollValue(w[0]), nil
}

func (m *Monitor) asyncPolls(_ context.Context, a Args) (any, error) {
	d, err := m.dispatcher(a)
	if err != nil {
		return nil, err
	}
	w, err := m.window(d.Polls(0), a, DefaultPollsCount)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(w))
	for i, p := range w {
		out[i] = pollValue(p)
	}
	return out, nil
}

func (m *Monitor) asyncJobstats(_ context.Context, a Args) (any, error) {
	d, err := m.dispatcher(a)
	if err != nil {
		return nil, err
	}
	polls := d.Polls(0)
	w, err := m.window(polls, a, 0)
	if err != nil {
		return nil, err
	}
	now := m.now()
	queue, byQueue := a.Named["queue"]
	agentName, byAgent := a.Named["agent"]
	type runKey struct {
		id   string
		poll int64
	}
	recs := map[runKey]JobRecord{}
	for _, r := range d.Jobs(0) {
		recs[runKey{r.ID, r.PollKey}] = r
	}
	type extreme struct {
		id    string
		d     time.Duration
		valid bool
	}
	var shortest, longest [3]extreme // successful, failed, active
	note := func(i int, id string, dur time.Duration) {
		if !shortest[i].valid || dur < shortest[i].d {
			shortest[i] = extreme{id, dur, true}
		}
		if !longest[i].valid || dur > longest[i].d {
			longest[i] = extreme{id, dur, true}
		}
	}
	var started, successful, failed, unknown int
	for _, p := range w {
		for _, ap := range p.Agents {
			if byAgent && ap.Agent != agentName {
				continue
			}
			for _, id := range ap.New {
				r, known := recs[runKey{id, p.Key}]
				if byQueue && (!known || r.Queue != queue) {
					continue
				}
				started++
				switch {
				case !known:
					unknown++
				case r.Completed.IsZero():
					note(2, id, now.Sub(r.Started))
				case r.Failed:
					failed++
					note(1, id, r.Completed.Sub(r.Started))
				default:
					successful++
					note(0, id, r.Completed.Sub(r.Started))
				}
			}
		}
	}
	idOrNil := func(e extreme) any {
		if !e.valid {
			return nil
		}
		return e.id
	}
	var first, last time.Time
	if len(w) > 0 {
		first, last = w[len(w)-1].Time, w[0].Time
	}
	return map[string]any{
		"started":             started,
		"successful":          successful,
		"failed":              failed,
		"unknown":             unknown,
		"shortest successful": idOrNil(shortest[0]),
		"longest successful":  idOrNil(longest[0]),
		"shortest failed":     idOrNil(shortest[1]),
		"longest failed":      idOrNil(longest[1]),
		"shortest active":     idOrNil(shortest[2]),
		"longest active":      idOrNil(longest[2]),
		"statistics start":    timeOrNil(first),
		"statistics end":      timeOrNil(last),
	}, nil
}
