package kinds_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/kinds"
	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/sqlite"
)

// TestWithDispatcher runs the built-in kinds in a real dispatcher on a real
// SQLite store and checks what is stored: results, errors, final states.
func TestWithDispatcher(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, &sqlite.Config{Path: filepath.Join(t.TempDir(), "skein.db"), AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	logs := &syncBuffer{}
	logger := action.New(logs, nil)
	h := skein.NewHandlers()
	if err := kinds.Register(h, &kinds.Config{Logger: logger}); err != nil {
		t.Fatal(err)
	}
	if got := h.Kinds(); strings.Join(got, ",") != "exec,http" {
		t.Fatalf("kinds %v", got)
	}
	if err := kinds.Register(h, nil); err == nil {
		t.Errorf("registering the kinds twice: no error")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.Error(w, "no such hook", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()

	d, err := skein.NewDispatcher(st, &skein.Config{Handlers: h, Logger: logger, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	events, unsubscribe := d.Subscribe(16)
	defer unsubscribe()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stop, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := d.Stop(stop); err != nil {
			t.Error(err)
		}
	}()
	client, err := skein.NewClient(st, &skein.ClientConfig{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	one := &skein.EnqueueOpts{MaxAttempts: 1}
	jobs := map[string]skein.JobArgs{
		"ok":      kinds.ExecArgs{Command: []string{"sh", "-c", "echo out; echo err >&2"}},
		"exit3":   kinds.ExecArgs{Command: []string{"sh", "-c", "echo bad input >&2; exit 3"}},
		"hook":    kinds.HTTPArgs{URL: srv.URL + "/hook", JSON: json.RawMessage(`{"id":7}`)},
		"missing": kinds.HTTPArgs{URL: srv.URL + "/missing"},
	}
	ids := map[string]string{}
	for name, args := range jobs {
		opts := one
		if name == "missing" {
			opts = &skein.EnqueueOpts{MaxAttempts: 5} // a 4xx discards at once anyway
		}
		res, err := client.Enqueue(ctx, args, opts)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = res.Job.ID
	}
	final := map[string]bool{}
	timeout := time.After(30 * time.Second)
	for len(final) < len(jobs) {
		select {
		case e := <-events:
			if e.State.Final() {
				final[e.JobID] = true
			}
		case <-timeout:
			t.Fatalf("only %d of %d jobs final:\n%s", len(final), len(jobs), logs)
		}
	}
	get := func(name string) *store.Job {
		j, err := st.GetJob(ctx, ids[name])
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	if j := get("ok"); j.State != store.StateCompleted || !strings.Contains(string(j.Result), `"exit_code":0`) || !strings.Contains(string(j.Result), `"stdout":"out\n"`) {
		t.Errorf("ok: state %s result %s", j.State, j.Result)
	}
	if j := get("exit3"); j.State != store.StateDiscarded || len(j.Errors) != 1 || !strings.Contains(j.Errors[0].Error, "exited with status 3; stderr:\nbad input") {
		t.Errorf("exit3: state %s errors %+v", j.State, j.Errors)
	}
	if j := get("hook"); j.State != store.StateCompleted || !strings.Contains(string(j.Result), `"status":200`) || !strings.Contains(string(j.Result), `{\"ok\":true}`) {
		t.Errorf("hook: state %s result %s", j.State, j.Result)
	}
	if j := get("missing"); j.State != store.StateDiscarded || j.Attempt != 1 || len(j.Errors) != 1 || !strings.Contains(j.Errors[0].Error, "404 Not Found: no such hook") {
		t.Errorf("missing: state %s attempt %d errors %+v", j.State, j.Attempt, j.Errors)
	}
}
