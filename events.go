package skein

import (
	"sync"
	"time"

	"github.com/skeinhq/skein/store"
)

// Event says that a run of a job ended and its outcome was stored.
type Event struct {
	JobID string `json:"job_id"`
	Kind  string `json:"kind"`
	Queue string `json:"queue"`
	// State the job moved to: completed, retryable, scheduled (snoozed),
	// available (put back by a stop), cancelled or discarded.
	State store.State `json:"state"`
	// Attempt and Slot of the run.
	Attempt int   `json:"attempt"`
	Slot    int64 `json:"slot"`
	// Error of the run, if any.
	Error string    `json:"error,omitempty"`
	At    time.Time `json:"at"`
}

type subscribers struct {
	mu      sync.Mutex
	next    int
	chans   map[int]chan Event
	dropped uint64
}

// Subscribe returns a channel that receives an Event for every run whose
// outcome this dispatcher stores, and a function that ends the
// subscription and closes the channel. Sends never block the dispatcher: an
// event that finds the channel's buffer (of the given size, at least 1)
// full is dropped and counted ([Dispatcher.DroppedEvents]). A job's
// events come in the order of its runs, except with
// Config.OutcomesWithClaims after a failed store call: the completer then
// stores the outcomes that call carried, and the event of a later run of
// the same job, stored by an agent, may come first.
func (d *Dispatcher) Subscribe(buffer int) (<-chan Event, func()) {
	s := &d.subs
	ch := make(chan Event, max(buffer, 1))
	s.mu.Lock()
	if s.chans == nil {
		s.chans = make(map[int]chan Event)
	}
	id := s.next
	s.next++
	s.chans[id] = ch
	s.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.chans, id)
			s.mu.Unlock()
			close(ch)
		})
	}
}

// DroppedEvents counts the events dropped because a subscriber's buffer
// was full.
func (d *Dispatcher) DroppedEvents() uint64 {
	d.subs.mu.Lock()
	defer d.subs.mu.Unlock()
	return d.subs.dropped
}

func (d *Dispatcher) emit(job *JobRow, o *store.Outcome) {
	s := &d.subs
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.chans) == 0 {
		return
	}
	e := Event{JobID: job.ID, Kind: job.Kind, Queue: job.Queue, State: o.State,
		Attempt: job.Attempt, Slot: job.Slot, At: time.Now()}
	if o.Error != nil {
		e.Error = o.Error.Error
	}
	for _, ch := range s.chans {
		select {
		case ch <- e:
		default:
			s.dropped++
		}
	}
}
