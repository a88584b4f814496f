package skein_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/postgres"
	"github.com/skeinhq/skein/store/sqlite"
)

// The test binary re-executed as a dispatcher child: environment.
const (
	childEnv      = "SKEIN_TEST_CHILD"       // "dispatcher"
	childStoreEnv = "SKEIN_TEST_CHILD_STORE" // "sqlite:<path>" or "postgres:<dsn>"
	childLogEnv   = "SKEIN_TEST_CHILD_LOG"   // log file
)

// runChild runs a dispatcher whose handler reports "started <job id>
// <dispatcher id>" on stdout and then blocks until the process is killed.
func runChild() int {
	ctx := context.Background()
	kind, dsn, _ := strings.Cut(os.Getenv(childStoreEnv), ":")
	var (
		st  store.Store
		err error
	)
	switch kind {
	case "sqlite":
		st, err = sqlite.Open(ctx, &sqlite.Config{Path: dsn})
	case "postgres":
		st, err = postgres.Open(ctx, &postgres.Config{DSN: dsn})
	default:
		err = fmt.Errorf("unknown store %q", kind)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	f, err := action.OpenFile(os.Getenv(childLogEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	handlers := skein.NewHandlers()
	var id string
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[blocker]) error {
		action.Log(ctx, "test:child_running")
		fmt.Printf("started %s %s\n", job.ID, id)
		select {} // until killed
	})
	d, err := skein.NewDispatcher(st, &skein.Config{
		Handlers: handlers, Logger: action.New(f, nil),
		PollInterval: 20 * time.Millisecond, HeartbeatInterval: 100 * time.Millisecond,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	id = d.ID()
	if err := d.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	select {}
}

func TestKilledDispatcherJobIsRescued(t *testing.T) {
	eachStore(t, func(t *testing.T, h *harness) {
		storeArg := "sqlite:" + h.path
		if h.kind == "postgres" {
			storeArg = "postgres:" + h.dsn
		}
		childLog := filepath.Join(t.TempDir(), "child.log")
		ctx := action.WithLogger(action.WithWorkflow(context.Background(), "wf-rescue"), h.logger)
		ctx, root := action.Start(ctx, "test:request")
		res, err := h.client.Enqueue(ctx, blocker{Name: "rescue me"}, nil)
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		root.End()

		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=dispatcher", childStoreEnv+"="+storeArg, childLogEnv+"="+childLog)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting the child dispatcher: %v", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		lines := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(out)
			if sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		var line string
		select {
		case line = <-lines:
		case <-time.After(waitTimeout):
			t.Fatal("the child never started the job")
		}
		var jobID, childID string
		if _, err := fmt.Sscanf(line, "started %s %s", &jobID, &childID); err != nil || jobID != res.Job.ID {
			t.Fatalf("child said %q, want started %s <dispatcher>", line, res.Job.ID)
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		_ = cmd.Wait()
		<-lines

		handlers := skein.NewHandlers()
		ran := make(chan int, 10)
		skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[blocker]) error {
			ran <- job.Attempt
			return nil
		})
		cfg := h.testConfig(handlers)
		cfg.DeadAfter = 500 * time.Millisecond
		d, events := h.start(cfg)
		waitEvent(t, events, res.Job.ID, store.StateCompleted)
		if got := <-ran; got != 2 {
			t.Errorf("the rescued job ran as attempt %d, want 2", got)
		}
		if err := d.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(ran) != 0 {
			t.Errorf("the rescued job ran %d more times, want exactly once", len(ran)+1)
		}
		j := h.getJob(res.Job.ID)
		if j.State != store.StateCompleted || j.Attempt != 2 || j.Slot != 2 {
			t.Errorf("job state/attempt/slot = %s/%d/%d, want completed/2/2", j.State, j.Attempt, j.Slot)
		}
		if len(j.Errors) != 1 || !j.Errors[0].Interrupted || !j.Errors[0].Reassigned || j.Errors[0].Dispatcher != childID {
			t.Errorf("errors = %+v, want one interrupted, reassigned entry of dispatcher %s", j.Errors, childID)
		}

		// Both processes' logs: the killed attempt is started, never ended;
		// the rescued one succeeded; the job ended once.
		childText, err := os.ReadFile(childLog)
		if err != nil {
			t.Fatal(err)
		}
		msgs := parseMessages(t, h.logs.String()+string(childText))
		checkUnique(t, msgs)
		pos := byPosition(msgs)
		u := root.TaskUUID()
		want := map[string]string{
			"/2/1":   "started",   // job
			"/2/2/1": "started",   // attempt 1 (child)
			"/2/3/1": "started",   // attempt 2
			"/2/3/2": "succeeded", // attempt 2 end
			"/2/4":   "succeeded", // job end
		}
		for level, status := range want {
			if got := pos[u+"@"+level].str("action_status"); got != status {
				t.Errorf("message at %s: status %q, want %q", level, got, status)
			}
		}
		if m := pos[u+"@/2/2/2"]; m.str("message_type") != "test:child_running" {
			t.Errorf("message at /2/2/2 = %v, want the child's test:child_running", m)
		}
		if _, ok := pos[u+"@/2/2/3"]; ok {
			t.Errorf("the killed attempt has an end message: %v", pos[u+"@/2/2/3"])
		}
		var rescued bool
		for _, m := range msgs {
			if m.str("message_type") == "skein:dispatcher:rescued" && m.str("job_id") == res.Job.ID && m.str("from") == childID {
				rescued = true
			}
		}
		if !rescued {
			t.Error("no skein:dispatcher:rescued message names the job and the killed dispatcher")
		}
	})
}

func TestJudgedDeadDispatcherRejoins(t *testing.T) {
	h := openSQLite(t)
	handlers := skein.NewHandlers()
	started := make(chan int64, 10)
	cause := make(chan error, 10)
	skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[blocker]) error {
		started <- job.Slot
		if job.Slot > 1 {
			return nil
		}
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return ctx.Err()
	})
	d, events := h.start(h.testConfig(handlers))
	res, err := h.client.Enqueue(context.Background(), blocker{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := waitClosed(t, started, "the first run"); got != 1 {
		t.Fatalf("first run has slot %d, want 1", got)
	}
	// Another dispatcher, whose clock runs a minute ahead, judges d dead.
	rr, err := h.store.RescueDead(context.Background(), &store.RescueParams{By: "other", DeadAfter: time.Second, Now: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.Dead) != 1 || rr.Dead[0].ID != d.ID() || len(rr.Jobs) != 1 {
		t.Fatalf("RescueDead: dead %v, jobs %d; want %s and 1 job", rr.Dead, len(rr.Jobs), d.ID())
	}
	if got := waitClosed(t, cause, "the reassigned run's cancellation"); !errors.Is(got, skein.ErrReassigned) {
		t.Errorf("cause = %v, want ErrReassigned", got)
	}
	// d rejoins and runs the job again, at the next slot.
	waitEvent(t, events, res.Job.ID, store.StateCompleted)
	if got := waitClosed(t, started, "the second run"); got != 2 {
		t.Errorf("second run has slot %d, want 2", got)
	}
	msgs := parseMessages(t, h.logs.String())
	checkUnique(t, msgs)
	var loud bool
	for _, m := range msgs {
		if m.str("message_type") == "skein:dispatcher:judged_dead" && m.str("log_level") == "ERROR" {
			loud = true
		}
	}
	if !loud {
		t.Error("no ERROR skein:dispatcher:judged_dead message")
	}
	jobs := d.Jobs(0)
	if len(jobs) != 2 || !jobs[1].Reassigned || jobs[0].State != string(store.StateCompleted) {
		t.Errorf("job records = %+v, want the completed run then the reassigned one", jobs)
	}
}

func TestLostClaimIsPutBack(t *testing.T) {
	eachStore(t, func(t *testing.T, h *harness) {
		handlers := skein.NewHandlers()
		ran := make(chan int64, 10)
		skein.AddHandler(handlers, func(ctx context.Context, job *skein.Job[blocker]) error {
			ran <- job.Slot
			return nil
		})
		cfg := h.testConfig(handlers)
		cfg.Agents = []skein.AgentConfig{{Queues: []string{"elsewhere"}}} // the dispatcher itself claims nothing yet
		cfg.ReleaseTimeout = 500 * time.Millisecond
		d, events := h.start(cfg)
		res, err := h.client.Enqueue(context.Background(), blocker{}, &skein.EnqueueOpts{Queue: "elsewhere", RunIn: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		// A claim made in the dispatcher's name whose reply it never got.
		jobs, err := h.store.Claim(context.Background(), &store.ClaimParams{Dispatcher: d.ID(), Agent: "main", Limit: 1,
			Now: time.Now().Add(2 * time.Hour)})
		if err != nil || len(jobs) != 1 {
			t.Fatalf("Claim = %d jobs, %v", len(jobs), err)
		}
		// The dispatcher puts it back (available, the attempt not counted)
		// and its agent runs it, at slot 2. The agent may poll on its own
		// and finish the job before the put-back event is out, so the two
		// events are awaited in either order.
		seen := map[store.State]bool{}
		for !seen[store.StateAvailable] || !seen[store.StateCompleted] {
			seen[waitEvent(t, events, res.Job.ID, store.StateAvailable, store.StateCompleted).State] = true
		}
		if got := waitClosed(t, ran, "the run"); got != 2 {
			t.Errorf("the job ran at slot %d, want 2", got)
		}
		j := h.getJob(res.Job.ID)
		if j.Attempt != 1 || len(j.Errors) != 1 || !j.Errors[0].Interrupted || !strings.Contains(j.Errors[0].Error, "claim lost") {
			t.Errorf("job attempt %d errors %+v, want attempt 1 and one interrupted claim-lost entry", j.Attempt, j.Errors)
		}
		msgs := parseMessages(t, h.logs.String())
		checkUnique(t, msgs)
		tid := strings.TrimSuffix(res.Job.TaskID, "@/")
		pos := byPosition(msgs)
		for level, status := range map[string]string{"/2/1": "started", "/2/2": "failed", "/3/2": "succeeded", "/4": "succeeded"} {
			if got := pos[tid+"@"+level].str("action_status"); got != status {
				t.Errorf("message at %s: status %q, want %q", level, got, status)
			}
		}
	})
}
