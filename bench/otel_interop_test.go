package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/action/actionhttp"
)

// TestOpenTelemetryReadsOurTraceparent sends a request through skein's
// Transport to a server that extracts the trace context with
// OpenTelemetry's own W3C propagator: the trace id it sees is the task uuid.
func TestOpenTelemetryReadsOurTraceparent(t *testing.T) {
	var got trace.SpanContext
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		got = trace.SpanContextFromContext(ctx)
	}))
	defer srv.Close()
	ctx := action.WithLogger(context.Background(), action.New(io.Discard, nil))
	ctx, a := action.Start(ctx, "client")
	client := &http.Client{Transport: &actionhttp.Transport{}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	a.End()
	if !got.IsValid() || !got.IsRemote() {
		t.Fatalf("OpenTelemetry extracted no valid remote span context: %+v", got)
	}
	if want := strings.ReplaceAll(a.TaskUUID(), "-", ""); got.TraceID().String() != want {
		t.Errorf("trace id %s, want the task uuid %s", got.TraceID(), want)
	}
}

// TestOurServerJoinsOpenTelemetryTrace injects a span context with
// OpenTelemetry's propagator: skein's middleware logs the request in the task
// whose uuid is that trace id.
func TestOurServerJoinsOpenTelemetryTrace(t *testing.T) {
	var uuid string
	srv := httptest.NewServer(actionhttp.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uuid = action.FromContext(r.Context()).TaskUUID()
	}), &actionhttp.MiddlewareConfig{Logger: action.New(io.Discard, nil)}))
	defer srv.Close()
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled})
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), propagation.HeaderCarrier(req.Header))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if uuid != "4bf92f35-77b3-4da6-a3ce-929d0e0e4736" {
		t.Errorf("request logged in task %q, want the trace id", uuid)
	}
}
