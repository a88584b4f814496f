package monitor

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/skeinhq/skein/internal/pgtest"
	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/postgres"
	"github.com/skeinhq/skein/store/sqlite"
)

const (
	uuidA = "00000000-0000-4000-8000-00000000000a"
	uuidB = "00000000-0000-4000-8000-00000000000b"
)

// clusterStore returns a real SQLite store holding a small cluster:
// dispatcher A (alive: agents main on default, mail on email) runs a2 and
// completed a1; dispatcher B (marked dead by A) discarded e1 after two
// failed attempts; a3 waits in default and s1 is scheduled an hour ahead.
func clusterStore(t *testing.T) store.Store { return clusterStoreOn(t, drivers[0]) }

// driver opens an empty store of one kind.
type driver struct {
	name string
	open func(t *testing.T) store.Store
}

// drivers are the store drivers the asyncdb tests run on: SQLite, and a
// real PostgreSQL server (started on loopback by pgtest).
var drivers = []driver{
	{"sqlite", func(t *testing.T) store.Store {
		st, err := sqlite.Open(context.Background(), &sqlite.Config{Path: filepath.Join(t.TempDir(), "skein.db"), AutoMigrate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
	{"postgres", func(t *testing.T) store.Store {
		st, err := postgres.Open(context.Background(), &postgres.Config{DSN: pgtest.NewDatabase(t), AutoMigrate: true, MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
}

// forEachDriver runs f on a cluster store of each driver.
func forEachDriver(t *testing.T, f func(t *testing.T, st store.Store)) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) { f(t, clusterStoreOn(t, d)) })
	}
}

func clusterStoreOn(t *testing.T, drv driver) store.Store {
	t.Helper()
	ctx := context.Background()
	st := drv.open(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	for _, p := range []*store.InsertParams{
		{ID: "wf1_a1", Kind: "send_push", Queue: "default", MaxAttempts: 3, WorkflowID: "wf1", Args: json.RawMessage(`{"to":"ann"}`)},
		{ID: "wf1_a2", Kind: "send_email", Queue: "default", MaxAttempts: 3, WorkflowID: "wf1"},
		{ID: "wf1_e1", Kind: "send_email", Queue: "email", MaxAttempts: 2, WorkflowID: "wf1"},
		{ID: "wf2_a3", Kind: "send_text_message", Queue: "default", MaxAttempts: 3, WorkflowID: "wf2"},
		{ID: "wf2_s1", Kind: "send_push", Queue: "default", MaxAttempts: 3, WorkflowID: "wf2", ScheduledAt: now.Add(time.Hour)},
	} {
		_, err := st.Insert(ctx, []*store.InsertParams{p})
		must(err)
	}
	must(st.RegisterDispatcher(ctx, &store.Dispatcher{ID: uuidA, Host: "web-1", PID: 101, Agents: []store.Agent{
		{Name: "main", Size: 3, Queues: []string{"default"}}, {Name: "mail", Size: 1, Queues: []string{"email"}}}}))
	must(st.RegisterDispatcher(ctx, &store.Dispatcher{ID: uuidB, Host: "worker-2", PID: 202, Agents: []store.Agent{{Name: "main", Size: 2}}}))
	jobs, err := st.Claim(ctx, &store.ClaimParams{Dispatcher: uuidA, Agent: "main", Queues: []string{"default"}, Limit: 2})
	must(err)
	if len(jobs) != 2 || jobs[0].ID != "wf1_a1" || jobs[1].ID != "wf1_a2" {
		t.Fatalf("claimed %v, want wf1_a1 and wf1_a2", jobs)
	}
	_, err = st.Finish(ctx, []*store.Outcome{{ID: "wf1_a1", Dispatcher: uuidA, Slot: jobs[0].Slot, State: store.StateCompleted, Result: json.RawMessage(`{"sent":true}`)}})
	must(err)
	for attempt := 1; attempt <= 2; attempt++ {
		jobs, err := st.Claim(ctx, &store.ClaimParams{Dispatcher: uuidB, Agent: "main", Queues: []string{"email"}, Limit: 1})
		must(err)
		if len(jobs) != 1 {
			t.Fatalf("attempt %d: claimed %d jobs", attempt, len(jobs))
		}
		state, at := store.StateRetryable, time.Now().Add(-time.Second)
		if attempt == 2 {
			state = store.StateDiscarded
		}
		_, err = st.Finish(ctx, []*store.Outcome{{ID: "wf1_e1", Dispatcher: uuidB, Slot: jobs[0].Slot, State: state, At: at,
			Error: &store.AttemptError{Error: "smtp down", Stack: "goroutine 7 [running]:\nmain.send()"}}})
		must(err)
	}
	_, err = st.RescueDead(ctx, &store.RescueParams{By: uuidA, DeadAfter: time.Second, Now: time.Now().Add(time.Minute)})
	must(err)
	return st
}

func dbMonitor(t *testing.T, st store.Store) *Monitor {
	t.Helper()
	m, err := New(&Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// call runs a command and decodes its JSON answer.
func call(t *testing.T, m *Monitor, cmd string) any {
	t.Helper()
	out, err := m.Exec(context.Background(), cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return out // a plain string answer
	}
	return v
}

func TestAsyncdbCountsAndLists(t *testing.T) {
	forEachDriver(t, func(t *testing.T, st store.Store) {
		m := dbMonitor(t, st)
		tests := []struct {
			cmd  string
			want any
		}{
			{"asyncdb UUIDs", []any{uuidA}},
			{"asyncdb UUIDs all:", []any{uuidA, uuidB}},
			{"asyncdb count pending", 2.0},
			{"asyncdb count scheduled", 1.0},
			{"asyncdb count available", 1.0},
			{"asyncdb count running", 1.0},
			{"asyncdb count active", 1.0},
			{"asyncdb count final", 2.0},
			{"asyncdb count succeeded", 1.0},
			{"asyncdb count failed", 1.0},
			{"asyncdb count pending running final", 5.0},
			{"asyncdb count final queue:email", 1.0},
			{"asyncdb count final kind:send_*", 2.0},
			{"asyncdb count pending kind:send_push", 1.0},
			{"asyncdb count pending kind:*_message", 1.0},
			{"asyncdb count final uuid:" + uuidB, 1.0},
			{"asyncdb count final uuid:*b", 1.0},
			{"asyncdb count running agent:main", 1.0},
			{"asyncdb count running agent:ma?l", 0.0},
			{"asyncdb count final end:since1H", 2.0},
			{"asyncdb count final end:before1H", 0.0},
			{"asyncdb count final end:since1H,before1S", 0.0},
			{"asyncdb count pending created:since1M", 2.0},
			{"asyncdb count pending workflow:wf2", 2.0},
			{"asyncdb jobs pending", []any{"wf2_s1", "wf2_a3"}},
			{"asyncdb jobs pending count:1", []any{"wf2_s1"}},
			{"asyncdb jobs pending running final queue:default", []any{"wf2_s1", "wf2_a3", "wf1_a2", "wf1_a1"}},
			{"asyncdb jobs final kind:send_e*", []any{"wf1_e1"}},
			{"asyncdb jobs failed display:repr", []any{"<job wf1_e1 kind send_email queue email discarded attempt 2/2>"}},
			{"asyncdb traceback wf1_e1", "smtp down\ngoroutine 7 [running]:\nmain.send()"},
			{"asyncdb traceback wf1_e1 detail:brief", "smtp down"},
			{"asyncdb traceback wf1_a1", nil},
		}
		for _, tt := range tests {
			t.Run(tt.cmd, func(t *testing.T) {
				if got := call(t, m, tt.cmd); !reflect.DeepEqual(got, tt.want) {
					t.Errorf("%s = %#v, want %#v", tt.cmd, got, tt.want)
				}
			})
		}
		verbose := call(t, m, "asyncdb traceback wf1_e1 detail:verbose").(string)
		if strings.Count(verbose, "smtp down") != 2 || !strings.Contains(verbose, "attempt 1 (run 1, dispatcher "+uuidB) {
			t.Errorf("verbose traceback:\n%s", verbose)
		}
	})
}

func TestAsyncdbDetails(t *testing.T) {
	forEachDriver(t, func(t *testing.T, st store.Store) {
		m := dbMonitor(t, st)
		job := call(t, m, "asyncdb job wf1_a1").(map[string]any)
		for k, want := range map[string]any{
			"id": "wf1_a1", "kind": "send_push", "queue": "default", "status": "completed", "failed": false,
			"result": `{"sent":true}`, "agent": "main", "dispatcher": uuidA, "workflow id": "wf1",
			"args": map[string]any{"to": "ann"}, "attempt": 1.0, "max attempts": 3.0, "errors": 0.0,
		} {
			if !reflect.DeepEqual(job[k], want) {
				t.Errorf("job wf1_a1 %q = %#v, want %#v", k, job[k], want)
			}
		}
		for _, k := range []string{"created", "begin after", "active start", "active end"} {
			if s, _ := job[k].(string); !strings.HasSuffix(s, "Z") {
				t.Errorf("job wf1_a1 %q = %#v, want a UTC time", k, job[k])
			}
		}
		for _, k := range []string{"wait", "active"} {
			if _, ok := job[k].(map[string]any)["seconds"]; !ok {
				t.Errorf("job wf1_a1 %q = %#v, want a duration", k, job[k])
			}
		}
		failed := call(t, m, "asyncdb jobs failed display:details").([]any)
		if len(failed) != 1 || failed[0].(map[string]any)["result"] != "smtp down" || failed[0].(map[string]any)["failed"] != true {
			t.Errorf("failed details: %#v", failed)
		}
		next := call(t, m, "asyncdb nextpending").(map[string]any)
		if next["id"] != "wf2_a3" {
			t.Errorf("nextpending = %v, want wf2_a3 (wf2_s1 is not due)", next["id"])
		}
		if got := call(t, m, "asyncdb nextpending kind:send_p*"); got != nil {
			t.Errorf("nextpending kind:send_p* = %#v, want null", got)
		}
		last := call(t, m, "asyncdb lastcompleted").(map[string]any)
		if last["id"] != "wf1_e1" {
			t.Errorf("lastcompleted = %v, want wf1_e1", last["id"])
		}
		if got := call(t, m, "asyncdb lastcompleted kind:send_push").(map[string]any)["id"]; got != "wf1_a1" {
			t.Errorf("lastcompleted kind:send_push = %v, want wf1_a1", got)
		}
		stats := call(t, m, "asyncdb jobstats").(map[string]any)
		wantCounts := map[string]any{"scheduled": 1.0, "available": 1.0, "running": 1.0, "retryable": 0.0, "completed": 1.0, "cancelled": 0.0, "discarded": 1.0}
		if !reflect.DeepEqual(stats["counts"], wantCounts) {
			t.Errorf("jobstats counts = %v, want %v", stats["counts"], wantCounts)
		}
		for _, k := range []string{"longest wait", "shortest wait", "longest active", "shortest active"} {
			pair, ok := stats[k].([]any)
			if !ok || len(pair) != 2 {
				t.Errorf("jobstats %q = %#v, want [duration, id]", k, stats[k])
			}
		}
		if got := call(t, m, "asyncdb jobstats running").(map[string]any)["longest active"].([]any)[1]; got != "wf1_a2" {
			t.Errorf("jobstats running longest active = %v, want wf1_a2", got)
		}
	})
}

func TestAsyncdbStatus(t *testing.T) {
	forEachDriver(t, func(t *testing.T, st store.Store) {
		m := dbMonitor(t, st)
		status := call(t, m, "asyncdb status").(map[string]any)
		queues := status["queues"].(map[string]any)
		def := queues["default"].(map[string]any)
		if def["len"] != 2.0 {
			t.Errorf("default len = %v, want 2", def["len"])
		}
		for _, k := range []string{"waiting for", "running for"} {
			if _, ok := def[k].(map[string]any); !ok {
				t.Errorf("default %q = %v, want a duration", k, def[k])
			}
		}
		if got := queues["email"].(map[string]any)["running for"]; got != nil {
			t.Errorf("email running for = %v, want null (nothing runs)", got)
		}
		if got, want := def["dispatchers"], []any{uuidA, uuidB}; !reflect.DeepEqual(got, want) {
			t.Errorf("default dispatchers = %v, want %v", got, want)
		}
		if got, want := queues["email"].(map[string]any)["dispatchers"], []any{uuidA, uuidB}; !reflect.DeepEqual(got, want) {
			t.Errorf("email dispatchers = %v, want %v", got, want)
		}
		ds := status["dispatchers"].(map[string]any)
		a, b := ds[uuidA].(map[string]any), ds[uuidB].(map[string]any)
		if a["dead"] != false || b["dead"] != true {
			t.Errorf("dead: A %v, B %v; want false, true", a["dead"], b["dead"])
		}
		if b["marked dead"].(map[string]any)["by"] != uuidA {
			t.Errorf("B marked dead = %v, want by A", b["marked dead"])
		}
		mainA := a["agents"].(map[string]any)["main"].(map[string]any)
		if mainA["len"] != 1.0 || mainA["size"] != 3.0 {
			t.Errorf("A main = %v, want len 1 size 3", mainA)
		}
		if a["host"] != "web-1" || a["pid"] != 101.0 {
			t.Errorf("A host/pid = %v/%v", a["host"], a["pid"])
		}
		// Filters.
		status = call(t, m, "asyncdb status queue:email uuid:*a agent:mail").(map[string]any)
		if got := len(status["queues"].(map[string]any)); got != 1 {
			t.Errorf("queue:email shows %d queues", got)
		}
		ds = status["dispatchers"].(map[string]any)
		if _, ok := ds[uuidB]; ok || len(ds) != 1 {
			t.Errorf("uuid:*a shows %v", ds)
		}
		if agents := ds[uuidA].(map[string]any)["agents"].(map[string]any); len(agents) != 1 || agents["mail"] == nil {
			t.Errorf("agent:mail shows %v", agents)
		}
	})
}

func TestAsyncdbErrors(t *testing.T) {
	forEachDriver(t, func(t *testing.T, st store.Store) {
		m := dbMonitor(t, st)
		tests := []struct{ cmd, want string }{
			{"asyncdb jobs", "needs at least one state"},
			{"asyncdb count", "needs at least one state"},
			{"asyncdb jobs pendin", `unknown state "pendin"`},
			{"asyncdb jobs pending kind:[", `modifier "kind:": bad glob "["`},
			{"asyncdb jobs pending end:since5X", `modifier "end:": bad interval "5X"`},
			{"asyncdb jobs pending end:soon", `modifier "end:": "soon" does not start with since or before`},
			{"asyncdb jobs pending end:since1H,since2H", `modifier "end:": since given twice`},
			{"asyncdb jobs pending end:", `modifier "end:": needs sinceINTERVAL`},
			{"asyncdb jobs pending display:all", `modifier "display:": unknown value "all"`},
			{"asyncdb jobs pending count:x", `modifier "count:": "x" is not`},
			{"asyncdb jobs pending colour:red", `unknown modifier "colour:"`},
			{"asyncdb job nosuch", `no job "nosuch" in the store`},
			{"asyncdb job", "needs a job id"},
			{"asyncdb traceback wf1_e1 detail:max", `modifier "detail:": unknown value "max"`},
			{"asyncdb nextpending end:since1H", `unknown modifier "end:"`},
			{"asyncdb status uuid:THIS", "no dispatcher runs in this process"},
			{"asyncdb UUIDs all:yes", `modifier "all:": takes no value`},
			{"asyncdb nosuch", `unknown asyncdb tool "nosuch"`},
		}
		for _, tt := range tests {
			_, err := m.Exec(context.Background(), tt.cmd)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: error %v, want one containing %q", tt.cmd, err, tt.want)
			}
		}
	})
}

func TestAsyncdbScanLimit(t *testing.T) {
	st := clusterStore(t)
	m, err := New(&Config{Store: st, ScanLimit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Exec(context.Background(), "asyncdb jobs pending running final"); err == nil || !strings.Contains(err.Error(), "more than 1 jobs") {
		t.Errorf("over the scan limit: %v", err)
	}
	if out, err := m.Exec(context.Background(), "asyncdb jobs pending count:1"); err != nil || !strings.Contains(out, "wf2_s1") {
		t.Errorf("with count: under the limit: %q, %v", out, err)
	}
}

func TestAsyncdbHelp(t *testing.T) {
	m := dbMonitor(t, nil)
	out, err := m.Exec(context.Background(), "asyncdb help")
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"UUIDs", "count", "help", "job", "jobs", "jobstats", "lastcompleted", "nextpending", "status", "traceback"} {
		if !strings.Contains(out, "\n"+tool+": ") {
			t.Errorf("asyncdb help does not list %s:\n%s", tool, out)
		}
	}
}
