package skeinmon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/monitor"
	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/sqlite"
)

const childEnv = "SKEINMON_TEST_CHILD_STORE"

// TestMain checks for leaked goroutines, and runs a dispatcher until
// killed when a test re-executes this binary as a child process.
func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		if err := runChild(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// runChild runs a dispatcher on the store at path, prints its id, and
// heartbeats until the process is killed.
func runChild(path string) error {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, &sqlite.Config{Path: path})
	if err != nil {
		return err
	}
	h := skein.NewHandlers()
	skein.AddHandler(h, func(context.Context, *skein.Job[okArgs]) error { return nil })
	d, err := skein.NewDispatcher(st, &skein.Config{Handlers: h, Logger: action.New(io.Discard, nil),
		HeartbeatInterval: 50 * time.Millisecond, PollInterval: 50 * time.Millisecond, DeadAfter: time.Hour})
	if err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	fmt.Println(d.ID())
	select {}
}

type okArgs struct{}

func (okArgs) Kind() string { return "send_push" }

type failArgs struct{}

func (failArgs) Kind() string { return "send_text_message" }

type waitArgs struct{}

func (waitArgs) Kind() string { return "wait_for_me" }

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), &sqlite.Config{Path: filepath.Join(t.TempDir(), "skein.db"), AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func run(t *testing.T, m *monitor.Monitor, cmd string) any {
	t.Helper()
	out, err := m.Exec(context.Background(), cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return out
	}
	return v
}

func waitEvents(t *testing.T, events <-chan skein.Event, n int) []skein.Event {
	t.Helper()
	var got []skein.Event
	timeout := time.After(30 * time.Second)
	for len(got) < n {
		select {
		case e := <-events:
			got = append(got, e)
		case <-timeout:
			t.Fatalf("got %d events, want %d", len(got), n)
		}
	}
	return got
}

// TestRealDispatcher runs a skein dispatcher on a real SQLite store and
// reads it through the monitor.
func TestRealDispatcher(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	started := make(chan struct{})
	release := make(chan struct{})
	h := skein.NewHandlers()
	skein.AddHandler(h, func(context.Context, *skein.Job[okArgs]) error { return nil })
	skein.AddHandler(h, func(context.Context, *skein.Job[failArgs]) error {
		return errors.New("boom: text notifications disabled")
	})
	skein.AddHandler(h, func(ctx context.Context, _ *skein.Job[waitArgs]) error {
		close(started)
		<-release
		return nil
	})
	logger := action.New(io.Discard, nil)
	d, err := skein.NewDispatcher(st, &skein.Config{Handlers: h, Logger: logger, PollInterval: time.Hour,
		Agents: []skein.AgentConfig{{Name: "main", Size: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := monitor.New(&monitor.Config{Dispatchers: []monitor.Dispatcher{New(d)}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if got := run(t, m, "async status").(map[string]any)["status"]; got != "STOPPED" {
		t.Errorf("before Start: %v, want STOPPED", got)
	}
	events, unsubscribe := d.Subscribe(16)
	defer unsubscribe()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			d.Stop(ctx)
		}
	}()
	if got := run(t, m, "async status").(map[string]any)["status"]; got != "STARTING" {
		t.Errorf("before the first timed poll: %v, want STARTING", got)
	}
	client, err := skein.NewClient(st, &skein.ClientConfig{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	enqueue := func(args skein.JobArgs) string {
		t.Helper()
		res, err := client.Enqueue(action.WithWorkflow(ctx, "wf-monitor"), args, &skein.EnqueueOpts{MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		return res.Job.ID
	}
	okID, failID, waitID := enqueue(okArgs{}), enqueue(failArgs{}), enqueue(waitArgs{})
	waitEvents(t, events, 2)
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the wait_for_me handler never started")
	}
	// While wait_for_me runs.
	if got := run(t, m, "async jobs"); !slices.Equal(toStrings(got), []string{waitID}) {
		t.Errorf("async jobs = %v, want [%s]", got, waitID)
	}
	status := run(t, m, "async status").(map[string]any)
	if got := status["agents"].(map[string]any)["main"].(map[string]any)["len"]; got != 1.0 {
		t.Errorf("status agents main len = %v, want 1", got)
	}
	if got := status["uuid"]; got != d.ID() {
		t.Errorf("status uuid = %v, want %s", got, d.ID())
	}
	job := run(t, m, "async job "+waitID).(map[string]any)
	if job["completed"] != nil || job["kind"] != "wait_for_me" || job["agent"] != "main" || job["goroutine"] == 0.0 {
		t.Errorf("running job record = %v", job)
	}
	if got := run(t, m, "async jobstats").(map[string]any)["longest active"]; got != waitID {
		t.Errorf("jobstats longest active = %v, want %s", got, waitID)
	}
	// The store sees it too.
	if got := run(t, m, "asyncdb count running"); got != 1.0 {
		t.Errorf("asyncdb count running = %v, want 1", got)
	}
	if got := run(t, m, "asyncdb UUIDs"); !slices.Equal(toStrings(got), []string{d.ID()}) {
		t.Errorf("asyncdb UUIDs = %v, want [%s]", got, d.ID())
	}
	close(release)
	waitEvents(t, events, 1)
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped = true
	// After the stop the dispatcher's memory is kept for diagnosis.
	if got := run(t, m, "async status").(map[string]any)["status"]; got != "STOPPED" {
		t.Errorf("after Stop: %v, want STOPPED", got)
	}
	for _, tt := range []struct {
		id, state, result string
		failed            bool
	}{
		{okID, "completed", "", false},
		{failID, "discarded", "boom: text notifications disabled", true},
		{waitID, "completed", "", false},
	} {
		job := run(t, m, "async job "+tt.id).(map[string]any)
		if job["state"] != tt.state || job["failed"] != tt.failed || job["completed"] == nil {
			t.Errorf("job %s = %v, want state %s failed %v", tt.id, job, tt.state, tt.failed)
		}
		if tt.result != "" && !strings.HasPrefix(job["result"].(string), tt.result) {
			t.Errorf("job %s result = %v, want %q", tt.id, job["result"], tt.result)
		}
	}
	stats := run(t, m, "async jobstats").(map[string]any)
	if stats["started"] != 3.0 || stats["successful"] != 2.0 || stats["failed"] != 1.0 || stats["longest failed"] != failID {
		t.Errorf("jobstats = %v", stats)
	}
	var claimed []string
	for _, p := range run(t, m, "async polls since:1H").([]any) {
		for _, r := range p.(map[string]any)["results"].(map[string]any) {
			claimed = append(claimed, toStrings(r.(map[string]any)["new jobs"])...)
		}
	}
	slices.Sort(claimed)
	want := []string{okID, failID, waitID}
	slices.Sort(want)
	if !slices.Equal(claimed, want) {
		t.Errorf("claimed in polls = %v, want %v", claimed, want)
	}
}

func toStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// blockingStore is a real store whose claims (FinishClaim, the
// dispatcher's claim call) hang from the n-th call on, as a stuck database
// would.
type blockingStore struct {
	store.Store
	mu      sync.Mutex
	calls   int
	from    int           // the first call that hangs
	block   chan struct{} // closed to release the hung calls
	entered chan int      // receives the number of each hung call
}

func (s *blockingStore) FinishClaim(ctx context.Context, outcomes []*store.Outcome, p *store.ClaimParams) ([]string, []*store.Job, error) {
	s.mu.Lock()
	s.calls++
	n := s.calls
	s.mu.Unlock()
	if n >= s.from {
		select {
		case s.entered <- n:
		default:
		}
		select {
		case <-s.block:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	return s.Store.FinishClaim(ctx, outcomes, p)
}

// TestStuckWithinOnePollInterval: a dispatcher whose claim hangs is shown
// STUCK as soon as its next poll is past due: hung in its start-up round,
// one interval after the start; hung in a timed poll, one interval after
// that poll.
func TestStuckWithinOnePollInterval(t *testing.T) {
	for _, tt := range []struct {
		name string
		from int // the claim that hangs: 1 is the start-up round, 2 the first timed poll
	}{
		{"start-up round", 1},
		{"timed poll", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			bs := &blockingStore{Store: openStore(t), from: tt.from, block: make(chan struct{}), entered: make(chan int, 1)}
			h := skein.NewHandlers()
			skein.AddHandler(h, func(context.Context, *skein.Job[okArgs]) error { return nil })
			const interval = 100 * time.Millisecond
			d, err := skein.NewDispatcher(bs, &skein.Config{Handlers: h, Logger: action.New(io.Discard, nil), PollInterval: interval})
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var at time.Time // the monitor's clock
			m, err := monitor.New(&monitor.Config{Dispatchers: []monitor.Dispatcher{New(d)}, Now: func() time.Time {
				mu.Lock()
				defer mu.Unlock()
				return at
			}})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer d.Stop(ctx)
			select {
			case <-bs.entered: // the agent hangs in its claim; no timed poll can follow
			case <-time.After(30 * time.Second):
				t.Fatal("FinishClaim was never called")
			}
			s := d.Status()
			due := s.StartedAt.Add(interval)
			if tt.from > 1 {
				due = s.LastPoll.Add(interval)
			}
			mu.Lock()
			at = due
			mu.Unlock()
			if got := run(t, m, "async status").(map[string]any)["status"]; got == "STUCK" {
				t.Errorf("at the due time %v (started %v, last poll %v): STUCK, want not yet", due, s.StartedAt, s.LastPoll)
			}
			mu.Lock()
			at = due.Add(time.Nanosecond)
			mu.Unlock()
			if got := run(t, m, "async status").(map[string]any)["status"]; got != "STUCK" {
				t.Errorf("just past the due time: %v, want STUCK", got)
			}
			close(bs.block)
		})
	}
}

// TestKilledDispatcherShownDead: a dispatcher in another process, killed
// with SIGKILL, is shown dead by asyncdb status once its last heartbeat is
// older than the dead-after time, though nobody marked it dead.
func TestKilledDispatcherShownDead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "skein.db")
	st, err := sqlite.Open(context.Background(), &sqlite.Config{Path: path, AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	id, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the child's dispatcher id: %v", err)
	}
	id = strings.TrimSpace(id)
	const deadAfter = 400 * time.Millisecond
	m, err := monitor.New(&monitor.Config{Store: st, DeadAfter: deadAfter})
	if err != nil {
		t.Fatal(err)
	}
	dead := func() (bool, time.Time) {
		ds := run(t, m, "asyncdb status").(map[string]any)["dispatchers"].(map[string]any)
		d, ok := ds[id].(map[string]any)
		if !ok {
			t.Fatalf("asyncdb status does not show dispatcher %s: %v", id, ds)
		}
		last, err := time.Parse(monitor.TimeLayout, d["last ping"].(string))
		if err != nil {
			t.Fatal(err)
		}
		return d["dead"].(bool), last
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	// Alive while it heartbeats: its heartbeat moves.
	_, first := dead()
	for deadline := time.Now().Add(30 * time.Second); ; {
		isDead, last := dead()
		if isDead {
			t.Fatal("the live child is shown dead")
		}
		if last.After(first) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child's heartbeat never moved")
		}
		<-tick.C // the child is another process: poll it
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed := time.Now()
	for deadline := killed.Add(30 * time.Second); ; {
		isDead, last := dead()
		if isDead {
			if since := time.Since(last); since <= deadAfter {
				t.Errorf("shown dead %s after its last heartbeat, before the dead-after time %s", since, deadAfter)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed child is never shown dead")
		}
		<-tick.C // the child is another process: poll it
	}
	// Nobody marked it dead: it is still among the UUIDs of registered
	// dispatchers, but status says dead.
	if got := toStrings(run(t, m, "asyncdb UUIDs")); !slices.Contains(got, id) {
		t.Errorf("asyncdb UUIDs = %v, want %s among them", got, id)
	}
}

// TestMetricsCountEveryRun runs more jobs than the dispatcher keeps records
// of: /metrics, fed by the dispatcher's own counts, still counts them all.
func TestMetricsCountEveryRun(t *testing.T) {
	ctx := t.Context()
	st := openStore(t)
	h := skein.NewHandlers()
	skein.AddHandler(h, func(context.Context, *skein.Job[okArgs]) error { return nil })
	skein.AddHandler(h, func(context.Context, *skein.Job[failArgs]) error { return errors.New("no") })
	logger := action.New(io.Discard, nil)
	d, err := skein.NewDispatcher(st, &skein.Config{Handlers: h, Logger: logger, JobRecords: 3,
		Agents: []skein.AgentConfig{{Name: "main", Size: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := skein.NewClient(st, &skein.ClientConfig{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	other, err := skein.NewClient(st, &skein.ClientConfig{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	m, err := monitor.New(&monitor.Config{Dispatchers: []monitor.Dispatcher{New(d)},
		Enqueuers: []monitor.EnqueueCounter{Client(client), Client(other)}})
	if err != nil {
		t.Fatal(err)
	}
	events, unsubscribe := d.Subscribe(64)
	defer unsubscribe()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Stop(ctx)
	// Two jobs from another client on another queue, the second refused
	// for its unique key (not counted).
	for range 2 {
		if _, err := other.Enqueue(ctx, okArgs{}, &skein.EnqueueOpts{Queue: "later", RunIn: time.Hour, UniqueKey: "once"}); err != nil {
			t.Fatal(err)
		}
	}
	const oks, fails = 20, 5
	for i := range oks + fails {
		var args skein.JobArgs = okArgs{}
		if i < fails {
			args = failArgs{}
		}
		if _, err := client.Enqueue(ctx, args, &skein.EnqueueOpts{MaxAttempts: 1}); err != nil {
			t.Fatal(err)
		}
	}
	waitEvents(t, events, oks+fails)
	rec := httptest.NewRecorder()
	m.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`skein_jobs_started_total{kind="send_push",queue="default"} 20`,
		`skein_jobs_finished_total{kind="send_push",outcome="succeeded",queue="default"} 20`,
		`skein_jobs_finished_total{kind="send_text_message",outcome="failed",queue="default"} 5`,
		`skein_job_duration_seconds_count{kind="send_push",outcome="succeeded",queue="default"} 20`,
		`skein_job_duration_seconds_bucket{kind="send_push",outcome="succeeded",queue="default",le="+Inf"} 20`,
		`skein_job_wait_seconds_count{queue="default"} 25`,
		`skein_jobs_enqueued_total{kind="send_push",queue="default"} 20`,
		`skein_jobs_enqueued_total{kind="send_text_message",queue="default"} 5`,
		`skein_jobs_enqueued_total{kind="send_push",queue="later"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}
