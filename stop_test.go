package skein_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/store"
)

type blocker struct {
	Name string `json:"name"`
}

func (blocker) Kind() string { return "blocker" }

func TestStopBeforeStartAndTwice(t *testing.T) {
	h := openSQLite(t)
	handlers := skein.NewHandlers()
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[greet]) error { return nil })
	d, err := skein.NewDispatcher(h.store, h.testConfig(handlers))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Stop(ctx); err != nil {
		t.Errorf("Stop before Start: %v", err)
	}
	if err := d.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := d.StopAndCancel(ctx); err != nil {
		t.Errorf("StopAndCancel after Stop: %v", err)
	}
	if err := d.Start(ctx); err == nil {
		t.Error("Start after Stop succeeded, want an error")
	}
	if got := d.Status().State; got != skein.StateStopped {
		t.Errorf("state %q, want stopped", got)
	}
}

func TestGracefulStopLetsJobFinish(t *testing.T) {
	h := openSQLite(t)
	handlers := skein.NewHandlers()
	started, release := make(chan struct{}), make(chan struct{})
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[blocker]) error {
		close(started)
		<-release
		return nil
	})
	d, _ := h.start(h.testConfig(handlers))
	res, err := h.client.Enqueue(context.Background(), blocker{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, started, "the handler to start")
	stopped := make(chan error, 1)
	go func() { stopped <- d.Stop(context.Background()) }()
	close(release)
	if err := waitClosed(t, stopped, "Stop"); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if j := h.getJob(res.Job.ID); j.State != store.StateCompleted {
		t.Errorf("job state %s after a graceful stop, want completed", j.State)
	}
	dispatchers, err := h.store.ListDispatchers(context.Background())
	if err != nil || len(dispatchers) != 0 {
		t.Errorf("ListDispatchers after Stop = %d, %v; want none (deregistered)", len(dispatchers), err)
	}
}

func TestGracefulStopPutsJobBack(t *testing.T) {
	eachStore(t, func(t *testing.T, h *harness) {
		handlers := skein.NewHandlers()
		started := make(chan struct{})
		cause := make(chan error, 1)
		skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[blocker]) error {
			close(started)
			<-ctx.Done()
			cause <- context.Cause(ctx)
			return ctx.Err()
		})
		d, _ := h.start(h.testConfig(handlers))
		res, err := h.client.Enqueue(context.Background(), blocker{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		waitClosed(t, started, "the handler to start")
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // the deadline has passed: put the job back at once
		if err := d.Stop(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Stop = %v, want context.Canceled", err)
		}
		if got := waitClosed(t, cause, "the handler's context"); !errors.Is(got, skein.ErrStopped) {
			t.Errorf("handler's context cause = %v, want ErrStopped", got)
		}
		if err := d.Stop(context.Background()); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		j := h.getJob(res.Job.ID)
		if j.State != store.StateAvailable || j.Attempt != 0 {
			t.Errorf("job state/attempt = %s/%d, want available/0", j.State, j.Attempt)
		}
		if len(j.Errors) != 1 || !j.Errors[0].Interrupted {
			t.Errorf("errors = %+v, want one interrupted entry", j.Errors)
		}
		// The attempt action ended as interrupted; the job runs again in a
		// new dispatcher at the next slot.
		ran := make(chan struct{})
		handlers2 := skein.NewHandlers()
		skein.AddHandler(handlers2, func(ctx context.Context, job *skein.Job[blocker]) error { close(ran); return nil })
		_, events := h.start(h.testConfig(handlers2))
		waitEvent(t, events, res.Job.ID, store.StateCompleted)
		waitClosed(t, ran, "the second run")
		msgs := parseMessages(t, h.logs.String())
		checkUnique(t, msgs)
		tid := strings.TrimSuffix(j.TaskID, "@/")
		pos := byPosition(msgs)
		for level, status := range map[string]string{"/2/2": "failed", "/3/2": "succeeded", "/4": "succeeded"} {
			if got := pos[tid+"@"+level].str("action_status"); got != status {
				t.Errorf("message at %s: status %q, want %q", level, got, status)
			}
		}
	})
}

func TestStopAndCancel(t *testing.T) {
	h := openSQLite(t)
	handlers := skein.NewHandlers()
	started := make(chan struct{})
	cause := make(chan error, 1)
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[blocker]) error {
		close(started)
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return ctx.Err()
	})
	d, _ := h.start(h.testConfig(handlers))
	res, err := h.client.Enqueue(context.Background(), blocker{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, started, "the handler to start")
	if err := d.StopAndCancel(context.Background()); err != nil {
		t.Errorf("StopAndCancel: %v", err)
	}
	if got := waitClosed(t, cause, "the handler's context"); !errors.Is(got, skein.ErrStopped) {
		t.Errorf("handler's context cause = %v, want ErrStopped", got)
	}
	j := h.getJob(res.Job.ID)
	if j.State != store.StateAvailable || j.Attempt != 0 || len(j.Errors) != 1 || !j.Errors[0].Interrupted {
		t.Errorf("job state/attempt/errors = %s/%d/%+v, want available/0/one interrupted", j.State, j.Attempt, j.Errors)
	}
}

func TestStopWithHandlerIgnoringContext(t *testing.T) {
	h := openSQLite(t)
	handlers := skein.NewHandlers()
	started, unblock, returned := make(chan struct{}), make(chan struct{}), make(chan struct{})
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[blocker]) error {
		defer close(returned)
		close(started)
		<-unblock // ignores ctx
		return nil
	})
	d, _ := h.start(h.testConfig(handlers))
	res, err := h.client.Enqueue(context.Background(), blocker{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, started, "the handler to start")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.StopAndCancel(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("StopAndCancel = %v, want context.Canceled", err)
	}
	if j := h.getJob(res.Job.ID); j.State != store.StateAvailable {
		t.Errorf("job state %s after the stop deadline, want available (put back)", j.State)
	}
	// A later Stop waits for the straggler, whose late success is not
	// stored: the job was put back.
	close(unblock)
	if err := d.Stop(context.Background()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	waitClosed(t, returned, "the handler to return")
	if j := h.getJob(res.Job.ID); j.State != store.StateAvailable || j.Attempt != 0 {
		t.Errorf("job state/attempt %s/%d after the straggler returned, want available/0", j.State, j.Attempt)
	}
}

func TestStopAfterStoreClosed(t *testing.T) {
	probe := openSQLite(t)
	_ = probe.store.Close()
	if _, err := probe.store.Finish(context.Background(), []*store.Outcome{{ID: "x", Dispatcher: "y", State: store.StateCompleted}}); !errors.Is(err, store.ErrClosed) {
		t.Skipf("store/sqlite: Finish on a closed store returns %v, not an error wrapping store.ErrClosed", err)
	}
	h := openSQLite(t)
	handlers := skein.NewHandlers()
	started, release := make(chan struct{}), make(chan struct{})
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[blocker]) error {
		close(started)
		<-release
		return nil
	})
	cfg := h.testConfig(handlers)
	cfg.ReleaseTimeout = 10 * waitTimeout // a hang would show
	d, _ := h.start(cfg)
	if _, err := h.client.Enqueue(context.Background(), blocker{}, nil); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, started, "the handler to start")
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	close(release)
	stopped := make(chan error, 1)
	go func() { stopped <- d.Stop(context.Background()) }()
	if err := waitClosed(t, stopped, "Stop on a closed store"); err != nil {
		t.Errorf("Stop: %v", err)
	}
	var lost bool
	for _, m := range parseMessages(t, h.logs.String()) {
		if m.str("message_type") == "skein:dispatcher:outcomes_lost" {
			lost = true
		}
	}
	if !lost {
		t.Error("no skein:dispatcher:outcomes_lost message")
	}
}
