package monitor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Handler returns the HTTP JSON API: every monitor command as a GET
// request, answering the same value the text protocol shows, as JSON.
//
//	GET /api/                              the plugins and their tools
//	GET /api/{plugin}/{tool}[/{word}]      one command
//
// Positional words come from the path after the tool (/api/asyncdb/job/ID)
// or from repeated "arg" parameters; asyncdb states may also be given as
// repeated "state" parameters. Every other query parameter is the
// modifier of that name: /api/asyncdb/jobs?state=pending&kind=send_*
// is "asyncdb jobs pending kind:send_*", and /api/async/polls?since=10M
// is "async polls since:10M". A string result is a JSON string.
//
// Errors are JSON objects {"error": "..."}: 400 for a bad command, 404 for
// an unknown tool or job, 405 for a method other than GET or HEAD, 502 when
// the store fails, 503 when the monitor has no dispatcher or no store.
//
// Mount it at the root, or under a prefix with [http.StripPrefix].
func (m *Monitor) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{$}", m.serveIndex)
	mux.HandleFunc("/api/{plugin}/{tool}", m.serveTool)
	mux.HandleFunc("/api/{plugin}/{tool}/{word...}", m.serveTool)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("no such path %q: try /api/", r.URL.Path))
	})
	return mux
}

func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	writeJSONError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed: the monitor API is read-only (GET)", r.Method))
	return false
}

func (m *Monitor) serveIndex(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, m.Plugins())
}

func (m *Monitor) serveTool(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	pluginName, toolName := r.PathValue("plugin"), r.PathValue("tool")
	a := Args{Named: map[string]string{}}
	if word := r.PathValue("word"); word != "" {
		a.Pos = append(a.Pos, word)
	}
	q := r.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		vs := q[k]
		switch {
		case k == "arg" || (k == "state" && pluginName == "asyncdb"):
			for _, v := range vs {
				a.Pos = append(a.Pos, strings.Fields(v)...)
			}
		case len(vs) > 1:
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("query parameter %q given %d times", k, len(vs)))
			return
		default:
			a.Named[k] = vs[0]
		}
	}
	v, err := m.Call(r.Context(), pluginName, toolName, a)
	if err != nil {
		writeJSONError(w, statusOf(err), oneLine(err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func statusOf(err error) int {
	var se *StoreError
	var nf *NotFoundError
	var unknown *unknownError
	switch {
	case errors.Is(err, errNoStore), errors.Is(err, errNoDispatcher):
		return http.StatusServiceUnavailable
	case errors.As(err, &se):
		return http.StatusBadGateway
	case errors.As(err, &nf), errors.As(err, &unknown):
		return http.StatusNotFound
	}
	return http.StatusBadRequest
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(v); err != nil {
		writeJSONError(w, http.StatusInternalServerError, "encoding the result: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
