package actionhttp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/skeinhq/skein/action"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

type message map[string]any

func (s *syncBuffer) messages(t *testing.T) []message {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var msgs []message
	sc := bufio.NewScanner(bytes.NewReader(s.buf.Bytes()))
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("invalid line %q: %v", sc.Text(), err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func (m message) level() string {
	var b strings.Builder
	for _, l := range m["task_level"].([]any) {
		fmt.Fprintf(&b, "/%v", l)
	}
	return b.String()
}

func (m message) name() string {
	if t, ok := m["action_type"]; ok {
		return fmt.Sprintf("%v %v", t, m["action_status"])
	}
	return fmt.Sprint(m["message_type"])
}

// bundle is a server process and a client process, each with its own log.
type bundle struct {
	server, client *syncBuffer
	srv            *httptest.Server
	clientCtx      context.Context
	http           *http.Client
}

func setup(t *testing.T, handler http.HandlerFunc) *bundle {
	t.Helper()
	b := &bundle{server: &syncBuffer{}, client: &syncBuffer{}}
	serverLog := action.New(b.server, nil)
	mux := http.NewServeMux()
	mux.Handle("/", handler)
	b.srv = httptest.NewUnstartedServer(Middleware(mux, &MiddlewareConfig{Logger: serverLog}))
	b.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the panic test's stack
	b.srv.Start()
	t.Cleanup(b.srv.Close)
	b.clientCtx = action.WithLogger(context.Background(), action.New(b.client, nil))
	b.http = &http.Client{Transport: &Transport{}}
	t.Cleanup(b.http.CloseIdleConnections)
	return b
}

func (b *bundle) get(t *testing.T, ctx context.Context, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.srv.URL+"/hello?secret=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

// TestClientAndServerFormOneTree checks that a request made inside an
// action is continued by the server at the serialized position, with the
// workflow id and a traceparent alongside.
func TestClientAndServerFormOneTree(t *testing.T) {
	var seen http.Header
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		action.Log(r.Context(), "server:work", slog.String("workflow", action.Workflow(r.Context())))
		w.WriteHeader(http.StatusCreated)
	})
	ctx := action.WithWorkflow(b.clientCtx, "wf-7")
	ctx, a := action.Start(ctx, "client:checkout")
	resp := b.get(t, ctx, nil)
	a.End()

	if got := resp.Header.Get("X-Request-ID"); got != "wf-7" {
		t.Errorf("echoed workflow id %q, want wf-7", got)
	}
	if seen.Get("X-Request-ID") != "wf-7" {
		t.Errorf("server saw workflow header %q", seen.Get("X-Request-ID"))
	}
	wantTrace := strings.ReplaceAll(a.TaskUUID(), "-", "")
	if tp := seen.Get("Traceparent"); !strings.HasPrefix(tp, "00-"+wantTrace+"-") || len(tp) != 55 {
		t.Errorf("traceparent %q does not carry trace id %s", tp, wantTrace)
	}

	var got []string
	for _, m := range append(b.client.messages(t), b.server.messages(t)...) {
		if m["task_uuid"] != a.TaskUUID() {
			t.Errorf("message outside the client's task: %v", m)
		}
		if m["workflow_id"] != "wf-7" {
			t.Errorf("message without the workflow id: %v", m)
		}
		got = append(got, m.level()+" "+m.name())
	}
	want := []string{
		"/1 client:checkout started",
		"/2/1 http:client started",
		"/2/3 http:client succeeded",
		"/3 client:checkout succeeded",
		"/2/2/1 http:request started",
		"/2/2/2 server:work",
		"/2/2/3 http:request succeeded",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	server := b.server.messages(t)
	if end := server[2]; end["status"] != 201.0 || end["method"] != nil {
		t.Errorf("server end %v", end)
	}
	if start := server[0]; start["method"] != "GET" || start["path"] != "/hello" {
		t.Errorf("server start %v", start)
	}
	if start := b.client.messages(t)[1]; start["url"] != b.srv.URL+"/hello" {
		t.Errorf("client logged url %v, want it without the query", start["url"])
	}
}

func TestServerWithoutHeadersStartsTaskAndWorkflow(t *testing.T) {
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {})
	req, _ := http.NewRequest(http.MethodGet, b.srv.URL+"/x", nil)
	resp, err := http.DefaultClient.Do(req) // no Transport: no headers at all
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wf := resp.Header.Get("X-Request-ID")
	if len(wf) != 36 {
		t.Errorf("generated workflow id %q", wf)
	}
	msgs := b.server.messages(t)
	if len(msgs) != 2 || msgs[0].level() != "/1" || msgs[1].level() != "/2" || msgs[0]["workflow_id"] != wf {
		t.Errorf("messages %v", msgs)
	}
}

func TestServerBadHeadersStillServes(t *testing.T) {
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {})
	req, _ := http.NewRequest(http.MethodGet, b.srv.URL+"/x", nil)
	req.Header.Set("X-Request-ID", "has space")
	req.Header.Set("X-Skein-Task-Id", "garbage")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(resp.Header.Get("X-Request-ID")) != 36 {
		t.Fatalf("status %d, workflow %q", resp.StatusCode, resp.Header.Get("X-Request-ID"))
	}
	start := b.server.messages(t)[0]
	if start["bad_workflow_id"] != "has space" || start["bad_task_id"] != "garbage" || start.level() != "/1" {
		t.Errorf("start %v", start)
	}
	if !strings.Contains(start["bad_task_id_error"].(string), "no '@'") {
		t.Errorf("bad_task_id_error %v", start["bad_task_id_error"])
	}
}

func TestServerMalformedTaskID(t *testing.T) {
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {})
	req, _ := http.NewRequest(http.MethodGet, b.srv.URL+"/x", nil)
	req.Header.Set("X-Skein-Task-Id", "not-a-uuid@/1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	start := b.server.messages(t)[0]
	if start["bad_task_id"] != "not-a-uuid@/1" || !strings.Contains(start["bad_task_id_error"].(string), "is not a UUID") {
		t.Errorf("start %v", start)
	}
}

func TestServerJoinsTraceparent(t *testing.T) {
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {})
	req, _ := http.NewRequest(http.MethodGet, b.srv.URL+"/x", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	for range 2 {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	msgs := b.server.messages(t)
	seen := map[string]bool{}
	for _, m := range msgs {
		if m["task_uuid"] != "4bf92f35-77b3-4da6-a3ce-929d0e0e4736" {
			t.Errorf("task uuid %v, want the trace id", m["task_uuid"])
		}
		if seen[m.level()] {
			t.Errorf("two requests of one trace share level %s", m.level())
		}
		seen[m.level()] = true
	}
	if msgs[0]["trace_parent_id"] != "00f067aa0ba902b7" {
		t.Errorf("start %v", msgs[0])
	}
}

func TestServerErrorsAndPanics(t *testing.T) {
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/boom":
			panic("handler exploded")
		case "/fail":
			http.Error(w, "nope", http.StatusBadGateway)
		}
	})
	for _, path := range []string{"/fail", "/boom", "/ok"} {
		req, _ := http.NewRequest(http.MethodGet, b.srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if path == "/boom" {
			if err == nil {
				resp.Body.Close()
				t.Error("a panicking handler answered")
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	var got []string
	for _, m := range b.server.messages(t) {
		got = append(got, fmt.Sprintf("%s %s %v", m.level(), m.name(), m["exception"]))
	}
	want := []string{
		"/1 http:request started <nil>",
		"/2 http:request failed github.com/skeinhq/skein/action/actionhttp.StatusError",
		"/1 http:request started <nil>",
		"/2 eliot:traceback string",
		"/3 http:request failed errors.errorString",
		"/1 http:request started <nil>",
		"/2 http:request succeeded <nil>",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestTransportFailure(t *testing.T) {
	out := &syncBuffer{}
	ctx := action.WithLogger(context.Background(), action.New(out, nil))
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	client := &http.Client{Transport: &Transport{}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("request to a closed server succeeded")
	}
	msgs := out.messages(t)
	if len(msgs) != 2 || msgs[1]["action_status"] != "failed" || !strings.Contains(msgs[1]["reason"].(string), "refused") {
		t.Errorf("messages %v", msgs)
	}
}

func TestTraceparentRoundTrip(t *testing.T) {
	id := action.TaskID{UUID: "1c1defcd-38e9-4a99-9c6c-95bc6da3dc61", Level: []int{2, 3}}
	tp := traceparent(id)
	uuid, parent, ok := parseTraceparent(tp)
	if !ok || uuid != id.UUID || len(parent) != 16 {
		t.Errorf("traceparent %q parsed to %q %q %v", tp, uuid, parent, ok)
	}
	for _, bad := range []string{
		"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
	} {
		if _, _, ok := parseTraceparent(bad); ok {
			t.Errorf("parseTraceparent(%q) accepted it", bad)
		}
	}
}

func FuzzParseTraceparent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx")
	f.Fuzz(func(t *testing.T, s string) {
		uuid, _, ok := parseTraceparent(s)
		if !ok {
			return
		}
		if _, err := action.ParseTaskID(uuid + "@/1"); err != nil {
			t.Fatalf("%q gave task uuid %q that does not parse: %v", s, uuid, err)
		}
	})
}
