package kinds_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/action/actionhttp"
	"github.com/skeinhq/skein/kinds"
)

func TestHTTPOutcomes(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var code int
		_, _ = fmt.Sscanf(r.URL.Path, "/%d", &code)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		fmt.Fprintf(w, "answer %d", code)
	}))
	defer srv.Close()
	h, err := kinds.NewHTTP(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		status  int
		wantErr bool
		discard bool
	}{
		{200, false, false},
		{204, false, false},
		{404, true, true},
		{400, true, true},
		{408, true, false},
		{429, true, false},
		{500, true, false},
		{503, true, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			ctx, att, _ := attemptCtx(t, &syncBuffer{})
			err := h.Run(ctx, job(kinds.HTTPArgs{URL: fmt.Sprintf("%s/%d", srv.URL, tt.status)}))
			att.Finish(err)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error: %v", err, tt.wantErr)
			}
			var discard *skein.DiscardError
			if errors.As(err, &discard) != tt.discard {
				t.Errorf("got %v, want discard: %v", err, tt.discard)
			}
			var se *kinds.StatusError
			if err != nil && (!errors.As(err, &se) || se.Code != tt.status || se.Body != fmt.Sprintf("answer %d", tt.status)) {
				t.Errorf("got %#v, want a *StatusError with code and body", err)
			}
		})
	}
}

// TestHTTPCarriesTheTask checks that a server with actionhttp.Middleware
// logs into the job's tree and gets the workflow id.
func TestHTTPCarriesTheTask(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	ctx, att, logger := attemptCtx(t, logs)
	var gotWorkflow, gotBody, gotType string
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotWorkflow = action.Workflow(r.Context())
		b, _ := io.ReadAll(r.Body)
		gotBody, gotType = string(b), r.Header.Get("Content-Type")
		action.Log(r.Context(), "server:handled")
	})
	srv := httptest.NewServer(actionhttp.Middleware(inner, &actionhttp.MiddlewareConfig{Logger: logger}))
	defer srv.Close()
	h, err := kinds.NewHTTP(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Run(ctx, job(kinds.HTTPArgs{URL: srv.URL + "/hook", JSON: []byte(`{"id":7}`)})); err != nil {
		t.Fatal(err)
	}
	att.End()
	if gotWorkflow != "wf-1" || gotBody != `{"id":7}` || gotType != "application/json" {
		t.Errorf("server got workflow %q body %q type %q", gotWorkflow, gotBody, gotType)
	}
	tasks := buildTasks(t, logs.String())
	if len(tasks) != 1 {
		t.Fatalf("got %d tasks, want 1:\n%s", len(tasks), logs)
	}
	want := "skein:attempt/succeeded(http:client/succeeded(http:request/succeeded(server:handled)))"
	if got := outline(tasks[0].Root); got != want {
		t.Errorf("tree:\n got %s\nwant %s", got, want)
	}
}

func TestHTTPNetworkErrorIsRetried(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now
	h, err := kinds.NewHTTP(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, att, _ := attemptCtx(t, &syncBuffer{})
	err = h.Run(ctx, job(kinds.HTTPArgs{URL: "http://user:secret@" + addr + "/x?token=abc"}))
	att.Finish(err)
	var discard *skein.DiscardError
	if err == nil || errors.As(err, &discard) {
		t.Fatalf("got %v, want a retryable error", err)
	}
	if s := err.Error(); strings.Contains(s, "secret") || strings.Contains(s, "abc") || !strings.Contains(s, "GET http://user:xxxxx@"+addr+"/x") {
		t.Errorf("error %q: want the URL without password or query", s)
	}
}

func TestHTTPBadArgs(t *testing.T) {
	t.Parallel()
	h, err := kinds.NewHTTP(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args kinds.HTTPArgs
		want string
	}{
		{kinds.HTTPArgs{}, `field "url" is empty`},
		{kinds.HTTPArgs{URL: "ftp://x/"}, `scheme "ftp"`},
		{kinds.HTTPArgs{URL: "http:///nohost"}, "has no host"},
		{kinds.HTTPArgs{URL: "http://x/", Body: "a", JSON: []byte(`{}`)}, "both given"},
		{kinds.HTTPArgs{URL: "http://x/", JSON: []byte(`{`)}, `field "json"`},
	}
	for _, tt := range tests {
		ctx, att, _ := attemptCtx(t, &syncBuffer{})
		err := h.Run(ctx, job(tt.args))
		att.Finish(err)
		var discard *skein.DiscardError
		if !errors.As(err, &discard) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: got %v, want a discard containing %q", tt.args, err, tt.want)
		}
	}
}
