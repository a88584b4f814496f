package skein_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/store"
)

func TestNewDispatcherValidates(t *testing.T) {
	h := openSQLite(t)
	handlers := skein.NewHandlers()
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[greet]) error { return nil })
	tests := []struct {
		name string
		cfg  *skein.Config
		want string
	}{
		{"nil config", nil, "no Executor and Config.Handlers is nil"},
		{"empty handlers", &skein.Config{Handlers: skein.NewHandlers()}, "its Handlers have no handler registered"},
		{"negative dead after", &skein.Config{Handlers: handlers, DeadAfter: -1}, "field DeadAfter is negative"},
		{"heartbeat too slow", &skein.Config{Handlers: handlers, HeartbeatInterval: time.Minute}, "HeartbeatInterval (1m0s) is not shorter than DeadAfter (30s)"},
		{"negative poll", &skein.Config{Handlers: handlers, PollInterval: -time.Second}, "field PollInterval is negative"},
		{"agent size", &skein.Config{Handlers: handlers, Agents: []skein.AgentConfig{{Size: -2}}}, "field Agents[0] (main): Size is -2"},
		{"agent names", &skein.Config{Handlers: handlers, Agents: []skein.AgentConfig{{Name: "a"}, {Name: "a"}}}, `field Agents[1]: agent name "a" is used twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := skein.NewDispatcher(h.store, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewDispatcher error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := skein.NewDispatcher(nil, &skein.Config{Handlers: handlers}); err == nil {
		t.Error("NewDispatcher(nil store) succeeded")
	}
	if _, err := skein.NewClient(nil, nil); err == nil {
		t.Error("NewClient(nil store) succeeded")
	}
}

func TestDefaultsAndStatus(t *testing.T) {
	h := openSQLite(t)
	handlers := skein.NewHandlers()
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[greet]) error { return nil })
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[flaky]) error { return nil })
	d, err := skein.NewDispatcher(h.store, &skein.Config{Handlers: handlers, Logger: h.logger})
	if err != nil {
		t.Fatal(err)
	}
	s := d.Status()
	if s.State != skein.StateNew || s.PollInterval != time.Second || s.HeartbeatInterval != 5*time.Second || s.DeadAfter != 30*time.Second {
		t.Errorf("status = %+v, want new with 1 s poll, 5 s heartbeat, 30 s dead-after", s)
	}
	if len(s.Agents) != 1 || s.Agents[0].Name != "main" || s.Agents[0].Size != 10 || strings.Join(s.Agents[0].Kinds, ",") != "flaky,greet" {
		t.Errorf("agents = %+v, want main of size 10 taking flaky and greet", s.Agents)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer d.Stop(context.Background())
	if got := d.Status().State; got != skein.StateRunning {
		t.Errorf("state after Start = %s", got)
	}
	if err := d.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	ds, err := h.store.ListDispatchers(context.Background())
	if err != nil || len(ds) != 1 || ds[0].ID != d.ID() || ds[0].Agents[0].Size != 10 {
		t.Errorf("registered dispatchers = %+v, %v; want %s with its agent", ds, err, d.ID())
	}
}

func TestPollAndJobRecords(t *testing.T) {
	h := openSQLite(t)
	handlers := skein.NewHandlers()
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[greet]) error {
		return skein.RecordResult(ctx, "hello "+job.Args.Name)
	})
	cfg := h.testConfig(handlers)
	cfg.JobRecords = 3
	d, events := h.start(cfg)
	var last string
	for _, name := range []string{"a", "b", "c", "d"} {
		res, err := h.client.Enqueue(context.Background(), greet{Name: name}, &skein.EnqueueOpts{Queue: "mail"})
		if err != nil {
			t.Fatal(err)
		}
		waitEvent(t, events, res.Job.ID, store.StateCompleted)
		last = res.Job.ID
	}
	jobs := d.Jobs(0)
	if len(jobs) != 3 {
		t.Fatalf("%d job records, want 3 (JobRecords)", len(jobs))
	}
	j := jobs[0]
	if j.ID != last || j.Queue != "mail" || j.Agent != "main" || j.State != "completed" || j.Failed ||
		j.Result != `"hello d"` || j.Completed.Before(j.Started) || j.Goroutine == 0 || j.PollKey == 0 {
		t.Errorf("newest job record = %+v", j)
	}
	var found bool
	for _, p := range d.Polls(0) {
		if p.Key == j.PollKey {
			found = true
			if len(p.Claimed) != 1 || p.Claimed[0] != last || p.ClaimedByQueue["mail"] != 1 {
				t.Errorf("poll %d = %+v, want it to have claimed %s from mail", p.Key, p, last)
			}
		}
	}
	if !found {
		t.Errorf("no poll with key %d", j.PollKey)
	}
}

func TestExponentialBackoff(t *testing.T) {
	b := skein.ExponentialBackoff{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	tests := []struct {
		attempt int
		ceiling time.Duration
	}{
		{1, 10 * time.Millisecond},
		{2, 20 * time.Millisecond},
		{4, 80 * time.Millisecond},
		{5, 100 * time.Millisecond},
		{60, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		var top time.Duration
		for range 2000 {
			d := b.Delay(tt.attempt)
			if d < 0 || d > tt.ceiling {
				t.Fatalf("Delay(%d) = %s, want within [0, %s]", tt.attempt, d, tt.ceiling)
			}
			top = max(top, d)
		}
		if top < tt.ceiling/2 {
			t.Errorf("Delay(%d) never above %s in 2000 draws: not spread up to %s", tt.attempt, top, tt.ceiling)
		}
	}
	if d := (skein.ExponentialBackoff{}).Delay(100); d > 24*time.Hour {
		t.Errorf("default Delay(100) = %s, want at most 24 h", d)
	}
}

func TestAddHandlerErrors(t *testing.T) {
	h := skein.NewHandlers()
	fn := func(ctx context.Context, job *skein.Job[greet]) error { return nil }
	if err := skein.AddHandlerSafely(h, fn); err != nil {
		t.Fatal(err)
	}
	if err := skein.AddHandlerSafely(h, fn); err == nil || !strings.Contains(err.Error(), `kind "greet": a handler is already registered`) {
		t.Errorf("second AddHandlerSafely = %v", err)
	}
	if err := skein.AddHandlerSafely(h, func(ctx context.Context, job *skein.Job[noKind]) error { return nil }); err == nil {
		t.Error("AddHandlerSafely with an empty kind succeeded")
	}
	if err := skein.RecordResult(context.Background(), 1); err == nil {
		t.Error("RecordResult outside a handler succeeded")
	}
	err := h.Execute(context.Background(), &skein.JobRow{ID: "x", Kind: "unknown"})
	if err == nil || !strings.Contains(err.Error(), `no handler registered for job kind "unknown"`) {
		t.Errorf("Execute(unknown kind) = %v", err)
	}
}

func TestRetentionCleanup(t *testing.T) {
	h := openSQLite(t)
	handlers := skein.NewHandlers()
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[outcomeArgs]) error {
		if job.Args.Mode == "discard" {
			return skein.JobDiscard(nil)
		}
		return nil
	})
	cfg := h.testConfig(handlers)
	cfg.CompletedRetention = time.Nanosecond
	cfg.DiscardedRetention = -1 // forever
	d, events := h.start(cfg)
	ctx := context.Background()
	done, err := h.client.Enqueue(ctx, outcomeArgs{Mode: "ok"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := h.client.Enqueue(ctx, outcomeArgs{Mode: "discard"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitEvents(t, events, map[string]store.State{done.Job.ID: store.StateCompleted, kept.Job.ID: store.StateDiscarded})
	d.CleanupOnce(ctx)
	if _, err := h.store.GetJob(ctx, done.Job.ID); err == nil {
		t.Error("the completed job survived a cleanup with 1 ns retention")
	}
	if j := h.getJob(kept.Job.ID); j.State != store.StateDiscarded {
		t.Errorf("kept job state %s", j.State)
	}
}
