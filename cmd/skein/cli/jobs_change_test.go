package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestJobsCancelRetryCausality cancels a job (an id given twice), retries
// it and lets serve run it: the job's task tree gets one end per ending, and
// no (task_uuid, task_level) pair is written twice.
func TestJobsCancelRetryCausality(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "skein.db")
	logFile := filepath.Join(dir, "skein.log")
	cfg := filepath.Join(dir, "skein.yaml")
	if err := os.WriteFile(cfg, []byte("dispatcher:\n  poll_interval: 50ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	must := func(args ...string) string {
		t.Helper()
		code, out, errs := jobsCLI(t, ctx, args...)
		if code != 0 {
			t.Fatalf("skein %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}
	must("migrate", "up", "--store", db)
	id := strings.TrimSpace(must("enqueue", "--store", db, "--log", logFile, "--workflow", "wf-cancel", "--in", "1h", "exec", "--", "echo", "ran"))

	if code, _, errs := jobsCLI(t, ctx, "jobs", "cancel", "--store", db, "--log", logFile, id, "wf-cancel_missing"); code != 1 || !strings.Contains(errs, "wf-cancel_missing: not found") {
		t.Errorf("cancel with an unknown id: exit %d, %q", code, errs)
	}
	if out := must("jobs", "cancel", "--store", db, "--log", logFile, id, id); out != id+" cancelled\n"+id+" cancelled\n" {
		t.Errorf("cancel ID ID printed %q", out)
	}
	if out := must("jobs", "cancel", "--store", db, "--log", logFile, id); out != id+" cancelled\n" {
		t.Errorf("second cancel printed %q", out)
	}
	if out := must("jobs", "retry", "--store", db, id); out != id+" available\n" {
		t.Errorf("retry printed %q", out)
	}

	serveCtx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	served := make(chan string, 1)
	go func() {
		_, out, errs := jobsCLI(t, serveCtx, "serve", "--store", db, "--config", cfg, "--log", logFile, "--quiet")
		served <- out + errs
	}()
	if out := must("jobs", "wait", "--store", db, id); out != id+" completed\n" {
		t.Errorf("jobs wait printed %q", out)
	}
	stopServe()
	select {
	case <-served:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}

	// The job action: started at /1, ended (cancelled) at /2, the run at
	// /3, ended (completed) at /4; every position written once.
	f, err := os.Open(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]int{}
	var ends []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m struct {
			TaskUUID    string `json:"task_uuid"`
			TaskLevel   []int  `json:"task_level"`
			ActionType  string `json:"action_type"`
			ActionState string `json:"action_status"`
			JobID       string `json:"job_id"`
			Workflow    string `json:"workflow_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		key := fmt.Sprint(m.TaskUUID, m.TaskLevel)
		if seen[key]++; seen[key] == 2 {
			t.Errorf("position %s written twice", key)
		}
		if m.ActionType == "skein:job" && m.ActionState != "started" && m.Workflow == "wf-cancel" {
			ends = append(ends, fmt.Sprint(m.ActionState, m.TaskLevel))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(ends) != 2 || !strings.HasPrefix(ends[0], "failed") || !strings.HasPrefix(ends[1], "succeeded") {
		t.Errorf("ends of the job action = %v, want failed (cancel) then succeeded (the retried run)", ends)
	}
}
