package messaging_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

	"github.com/skeinhq/skein/internal/pgtest"
	"github.com/skeinhq/skein/internal/testwait"
	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/open"
	"github.com/skeinhq/skein/tree"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(removeBinaries{pgtest.Main(m)})
}

// removeBinaries removes the built programs once the tests ran.
type removeBinaries struct{ m pgtest.TestingM }

func (r removeBinaries) Run() int {
	code := r.m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	return code
}

// binDir holds the built programs; set by binaries.
var binDir string

// binaries builds the example's programs and skein once per test binary.
var binaries = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "skein-messaging-")
	if err != nil {
		return "", err
	}
	binDir = dir
	cmd := exec.Command("go", "build", "-o", dir+string(os.PathSeparator),
		"github.com/skeinhq/skein/examples/messaging/web",
		"github.com/skeinhq/skein/examples/messaging/worker",
		"github.com/skeinhq/skein/examples/messaging/client",
		"github.com/skeinhq/skein/examples/messaging/sendtext",
		"github.com/skeinhq/skein/cmd/skein")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the example: %v\n%s", err, out)
	}
	return dir, nil
})

// hasPythonEliot reports whether Debian's python3-eliot is there.
func hasPythonEliot() bool {
	return exec.Command("/usr/bin/python3", "-c", "import eliot").Run() == nil
}

func TestMessagingSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	runMessaging(t, dir, filepath.Join(dir, "skein.db"), textCommand(t, true))
}

func TestMessagingPostgres(t *testing.T) {
	t.Parallel()
	runMessaging(t, t.TempDir(), pgtest.NewDatabase(t), textCommand(t, false))
}

// textCommand is the text job's command: the Python eliot script when
// python is true and python3-eliot is installed, else the Go program.
func textCommand(t *testing.T, python bool) string {
	bin, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	if python {
		if hasPythonEliot() {
			return "/usr/bin/python3 send_text_message.py"
		}
		if os.Getenv("CI") == "true" {
			t.Fatal("python3-eliot is required in CI (apt-get install python3-eliot)")
		}
		t.Log("LOUD NOTE: python3-eliot is not installed: the text job runs the Go sendtext program instead")
	}
	return filepath.Join(bin, "sendtext")
}

// proc is a running program of the example.
type proc struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	lines chan string
	mu    sync.Mutex
	out   bytes.Buffer
	done  chan struct{}
	err   error
}

func start(t *testing.T, dir, name string, args ...string) *proc {
	t.Helper()
	bin, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, lines: make(chan string, 64), done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(bin, name), args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), "SKEIN_STORE=", "SKEIN_LOG=")
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &lockedWriter{p: p}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

type lockedWriter struct{ p *proc }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitLine returns the first line of standard output that starts with
// prefix.
func (p *proc) waitLine(prefix string) string {
	p.t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-p.done:
			p.t.Fatalf("%s exited (%v) before printing %q:\n%s", p.name, p.err, prefix, p.output())
		case <-timeout:
			p.t.Fatalf("%s did not print %q:\n%s", p.name, prefix, p.output())
		}
	}
}

// stop sends SIGINT and wants a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("%s did not stop on SIGINT:\n%s", p.name, p.output())
	}
	if p.err != nil {
		p.t.Errorf("%s: %v\n%s", p.name, p.err, p.output())
	}
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	bin, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SKEIN_STORE=", "SKEIN_LOG=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

func runMessaging(t *testing.T, dir, dsn, textCommand string) {
	for _, f := range []string{"users.json", "send_text_message.py"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "exec-worker.yaml"), []byte("dispatcher:\n  poll_interval: 100ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, dir, "skein", "migrate", "up", "--store", dsn)

	serve := start(t, dir, "skein", "serve", "--store", dsn, "--log", "worker-exec.log", "--config", "exec-worker.yaml", "--quiet")
	serve.waitLine("Ctrl-C stops gracefully")
	worker := start(t, dir, "worker", "--store", dsn, "--log", "worker.log", "--poll", "100ms", "--backoff", "100ms", "--text-command", textCommand)
	worker.waitLine("worker ")
	web := start(t, dir, "web", "--store", dsn, "--log", "web.log", "--addr", "127.0.0.1:0")
	url := strings.TrimPrefix(web.waitLine("listening on "), "listening on ")

	id := strings.TrimSpace(run(t, dir, "client", "--url", url, "--log", "client.log", "--to", "7", "See you at 5"))
	if id == "" {
		t.Fatal("client printed no request id")
	}

	// Wait until the workflow's four jobs are final (other processes do the
	// work: poll the store with a deadline).
	ctx := context.Background()
	st, err := open.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var jobs []*store.Job
	final := 0
	var listErr error
	if !testwait.For(60*time.Second, func() bool {
		page, err := st.ListJobs(ctx, &store.ListJobsParams{Filter: store.JobFilter{WorkflowID: id}})
		if err != nil {
			listErr = err
			return true
		}
		jobs, final = page.Jobs, 0
		for _, j := range jobs {
			if j.State.Final() {
				final++
			}
		}
		return len(jobs) == 4 && final == 4
	}) {
		t.Fatalf("after 60s, %d jobs of workflow %s, %d final: %+v\nserve:\n%s\nworker:\n%s", len(jobs), id, final, jobs, serve.output(), worker.output())
	}
	if listErr != nil {
		t.Fatal(listErr)
	}
	for _, j := range jobs {
		if j.State != store.StateCompleted || !strings.HasPrefix(j.ID, id+"_") {
			t.Errorf("job %s (%s): state %s, want completed and an id starting with the request id", j.ID, j.Kind, j.State)
		}
	}
	web.stop()
	worker.stop()
	serve.stop()

	logs := []string{"client.log", "web.log", "worker.log", "worker-exec.log"}
	task := oneTree(t, dir, id, logs)
	checkShape(t, task)

	// What the README shows: skein tree --workflow finds one tree with the
	// warning in it.
	out := run(t, dir, "skein", append([]string{"tree", "--color", "never", "--workflow", id}, logs...)...)
	if n := strings.Count(out, "└── client:send_message/1 ⇒ started"); n != 1 {
		t.Errorf("skein tree printed %d trees, want 1:\n%s", n, out)
	}
	for _, want := range []string{"user has text notifications disabled", "log_level: WARN", "kind: send_push", "kind: send_email", "reason: smtp: 421", "kind: exec", "send_text_message"} {
		if !strings.Contains(out, want) {
			t.Errorf("skein tree output lacks %q:\n%s", want, out)
		}
	}
}

// oneTree rebuilds the trees of the logs and returns the workflow's only
// task, which must be complete.
func oneTree(t *testing.T, dir, workflow string, logs []string) *tree.Task {
	t.Helper()
	b := tree.NewBuilder(nil)
	var tasks []*tree.Task
	match := tree.WorkflowMatcher(workflow)
	for _, name := range logs {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		r, err := tree.NewReader(f, &tree.ReaderConfig{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		for {
			m, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			task, err := b.Add(m)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if task != nil && task.Any(match) {
				tasks = append(tasks, task)
			}
		}
		_ = f.Close()
	}
	for _, task := range b.Flush() {
		if task.Any(match) {
			t.Errorf("task %s of the workflow is incomplete", task.UUID)
			tasks = append(tasks, task)
		}
	}
	if len(tasks) != 1 {
		t.Fatalf("workflow %s: %d trees, want 1", workflow, len(tasks))
	}
	return tasks[0]
}

// checkShape asserts the tree of the seeds' scenario: the client's action,
// the request, every job with every attempt, and the warning inside the
// text job.
func checkShape(t *testing.T, task *tree.Task) {
	t.Helper()
	root := task.Root
	if root.ActionType() != "client:send_message" || root.Status() != "succeeded" {
		t.Fatalf("root is %s/%s, want client:send_message/succeeded", root.ActionType(), root.Status())
	}
	request := find(root, func(n *tree.Node) bool { return n.ActionType() == "http:request" })
	if request == nil || str(request.Start, "process") != "web" {
		t.Fatalf("no http:request of the web process under the client's action")
	}
	jobs := map[string]*tree.Node{}
	walk(root, func(n *tree.Node) {
		if n.IsAction() && n.ActionType() == "skein:job" && n.Start != nil {
			jobs[str(n.Start, "kind")] = n
		}
	})
	want := map[string]struct {
		attempts []string // statuses
		parent   string   // kind of the job whose attempt enqueued it ("" : the request)
		process  string   // process that ran the attempts
	}{
		"send_notification": {[]string{"succeeded"}, "", "worker"},
		"send_push":         {[]string{"succeeded"}, "send_notification", "worker"},
		"send_email":        {[]string{"failed", "succeeded"}, "send_notification", "worker"},
		"exec":              {[]string{"succeeded"}, "send_notification", "skein"},
	}
	var kinds []string
	for k := range jobs {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, []string{"exec", "send_email", "send_notification", "send_push"}) {
		t.Fatalf("jobs in the tree: %v", kinds)
	}
	for kind, w := range want {
		n := jobs[kind]
		if n.Status() != "succeeded" {
			t.Errorf("job %s: action %s, want succeeded", kind, n.Status())
		}
		var statuses []string
		for _, c := range n.Children {
			if c.IsAction() && c.ActionType() == "skein:attempt" {
				statuses = append(statuses, c.Status())
				if p := str(c.Start, "process"); p != w.process {
					t.Errorf("job %s: attempt run by %q, want %q", kind, p, w.process)
				}
			}
		}
		if !slices.Equal(statuses, w.attempts) {
			t.Errorf("job %s: attempts %v, want %v", kind, statuses, w.attempts)
		}
		if w.parent == "" {
			if find(request, func(x *tree.Node) bool { return x == n }) == nil {
				t.Errorf("job %s is not inside the request's action", kind)
			}
		} else if find(jobs[w.parent], func(x *tree.Node) bool { return x == n }) == nil {
			t.Errorf("job %s is not inside job %s", kind, w.parent)
		}
	}
	text := find(jobs["exec"], func(n *tree.Node) bool { return n.ActionType() == "send_text_message" })
	if text == nil || text.Status() != "succeeded" {
		t.Fatalf("no send_text_message action (from the text job's own process) inside the exec job")
	}
	warning := find(text, func(n *tree.Node) bool {
		return n.Message != nil && n.Message.MessageType == "user has text notifications disabled"
	})
	if warning == nil {
		t.Fatalf("no warning inside send_text_message")
	}
	if lvl := str(warning.Message, "log_level"); lvl != "WARN" {
		t.Errorf("warning has log_level %q, want WARN", lvl)
	}
}

func walk(n *tree.Node, f func(*tree.Node)) {
	f(n)
	for _, c := range n.Children {
		walk(c, f)
	}
}

func find(n *tree.Node, pred func(*tree.Node) bool) *tree.Node {
	if n == nil {
		return nil
	}
	if pred(n) {
		return n
	}
	for _, c := range n.Children {
		if got := find(c, pred); got != nil {
			return got
		}
	}
	return nil
}

func str(m *tree.Message, key string) string {
	if m == nil {
		return ""
	}
	v, ok := m.Get(key)
	if !ok {
		return ""
	}
	return v.Str()
}
