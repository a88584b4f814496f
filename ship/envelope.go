package ship

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/skeinhq/skein/internal/jsonstr"
)

// encoder lays a batch out as a request body.
type encoder interface {
	// encode appends the body for the batch's records to dst.
	encode(dst []byte, b *batch, now time.Time) []byte
	contentType() string
}

func newEncoder(e Envelope) (encoder, error) {
	ct := func(def string) string {
		if e.ContentType != "" {
			return e.ContentType
		}
		return def
	}
	switch e.Format {
	case NDJSON:
		return ndjsonEncoder{ct("application/x-ndjson")}, nil
	case JSONArray:
		return arrayEncoder{ct("application/json")}, nil
	case Template:
		t, err := parseTemplate(e.Template)
		if err != nil {
			return nil, err
		}
		t.framing = e.Framing
		def := "application/json"
		if t.perRecord && e.Framing == NDJSON {
			def = "application/x-ndjson"
		}
		t.ctype = ct(def)
		return t, nil
	case Loki:
		return newLokiEncoder(e.Labels, ct("application/json")), nil
	case OTLP:
		return newOTLPEncoder(e.ServiceName, ct("application/json")), nil
	case Elasticsearch:
		meta, _ := json.Marshal(map[string]any{"create": map[string]string{"_index": e.Index}})
		return esEncoder{meta: append(meta, '\n'), ctype: ct("application/x-ndjson")}, nil
	}
	return nil, fmt.Errorf("unknown envelope format %q", e.Format)
}

type ndjsonEncoder struct{ ctype string }

func (e ndjsonEncoder) contentType() string { return e.ctype }
func (ndjsonEncoder) encode(dst []byte, b *batch, _ time.Time) []byte {
	for i := range b.len() {
		dst = append(dst, b.record(i)...)
		dst = append(dst, '\n')
	}
	return dst
}

type arrayEncoder struct{ ctype string }

func (e arrayEncoder) contentType() string { return e.ctype }
func (arrayEncoder) encode(dst []byte, b *batch, _ time.Time) []byte {
	return appendArray(dst, b)
}

func appendArray(dst []byte, b *batch) []byte {
	dst = append(dst, '[')
	for i := range b.len() {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, b.record(i)...)
	}
	return append(dst, ']')
}

type esEncoder struct {
	meta  []byte
	ctype string
}

func (e esEncoder) contentType() string { return e.ctype }
func (e esEncoder) encode(dst []byte, b *batch, _ time.Time) []byte {
	for i := range b.len() {
		dst = append(dst, e.meta...)
		dst = append(dst, b.record(i)...)
		dst = append(dst, '\n')
	}
	return dst
}

// Template placeholders.
const (
	phRecords       = "records"
	phRecordsString = "records_string"
	phNDJSONString  = "ndjson_string"
	phCount         = "count"
	phRecord        = "record"
	phRecordString  = "record_string"
)

type templateEncoder struct {
	lits      []string // len(holes)+1 literal pieces
	holes     []string // placeholder names
	perRecord bool
	framing   Format
	ctype     string
	scratch   []byte
}

// parseTemplate splits a template at its {{placeholders}} and checks that
// the body it makes is valid JSON.
func parseTemplate(s string) (*templateEncoder, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("template is empty")
	}
	t := &templateEncoder{}
	rest := s
	batchKind, recordKind := false, false
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			t.lits = append(t.lits, rest)
			break
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("unclosed {{ at byte %d", len(s)-len(rest)+i)
		}
		name := strings.TrimSpace(rest[i+2 : i+j])
		switch name {
		case phRecords, phRecordsString, phNDJSONString, phCount:
			batchKind = true
		case phRecord, phRecordString:
			recordKind = true
		default:
			return nil, fmt.Errorf("unknown placeholder {{%s}} at byte %d (want records, records_string, ndjson_string, count, record or record_string)", name, len(s)-len(rest)+i)
		}
		t.lits = append(t.lits, rest[:i])
		t.holes = append(t.holes, name)
		rest = rest[i+j+2:]
	}
	if batchKind && recordKind {
		return nil, errors.New("template mixes batch placeholders ({{records}}...) with record placeholders ({{record}}...)")
	}
	t.perRecord = recordKind
	// The body must be JSON for any records: try a sample.
	sample := &batch{}
	sample.add([]byte(`{"task_uuid":"x","task_level":[1],"message":"a \"quoted\"\nline"}`))
	sample.add([]byte(`{"n":2}`))
	t.framing = NDJSON
	body := t.encode(nil, sample, time.Unix(0, 0))
	// A batch template makes one document (its literal line breaks are
	// JSON whitespace); a record template one line per record.
	docs := []string{string(body)}
	if t.perRecord {
		docs = strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	}
	for _, doc := range docs {
		if !json.Valid([]byte(doc)) {
			return nil, fmt.Errorf("template does not make valid JSON (a placeholder inside quotes, or a missing comma?); with sample records it makes %s", doc)
		}
	}
	return t, nil
}

func (t *templateEncoder) contentType() string { return t.ctype }

func (t *templateEncoder) encode(dst []byte, b *batch, now time.Time) []byte {
	if !t.perRecord {
		return t.fill(dst, b, -1)
	}
	if t.framing == JSONArray {
		dst = append(dst, '[')
	}
	for i := range b.len() {
		if i > 0 && t.framing == JSONArray {
			dst = append(dst, ',')
		}
		dst = t.fill(dst, b, i)
		if t.framing != JSONArray {
			dst = append(dst, '\n')
		}
	}
	if t.framing == JSONArray {
		dst = append(dst, ']')
	}
	return dst
}

// fill appends the template for record i, or for the whole batch if i < 0.
func (t *templateEncoder) fill(dst []byte, b *batch, i int) []byte {
	for k, hole := range t.holes {
		dst = append(dst, t.lits[k]...)
		switch hole {
		case phRecord:
			dst = append(dst, b.record(i)...)
		case phRecordString:
			dst = appendJSONString(dst, b.record(i))
		case phRecords:
			dst = appendArray(dst, b)
		case phRecordsString:
			t.scratch = appendArray(t.scratch[:0], b)
			dst = appendJSONString(dst, t.scratch)
		case phNDJSONString:
			t.scratch = ndjsonEncoder{}.encode(t.scratch[:0], b, time.Time{})
			dst = appendJSONString(dst, t.scratch)
		case phCount:
			dst = strconv.AppendInt(dst, int64(b.len()), 10)
		}
	}
	return append(dst, t.lits[len(t.lits)-1]...)
}

// appendJSONString appends s as a quoted JSON string (see
// [jsonstr.Append]).
func appendJSONString(dst, s []byte) []byte { return jsonstr.AppendBytes(dst, s) }

// lokiEncoder makes a Loki push request: one stream with the configured
// labels, one value per record, timestamped from the record.
type lokiEncoder struct {
	head  []byte
	ctype string
}

func newLokiEncoder(labels map[string]string, ctype string) *lokiEncoder {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	head := []byte(`{"streams":[{"stream":{`)
	for i, k := range keys {
		if i > 0 {
			head = append(head, ',')
		}
		head = appendJSONString(head, []byte(k))
		head = append(head, ':')
		head = appendJSONString(head, []byte(labels[k]))
	}
	head = append(head, `},"values":[`...)
	return &lokiEncoder{head: head, ctype: ctype}
}

func (e *lokiEncoder) contentType() string { return e.ctype }
func (e *lokiEncoder) encode(dst []byte, b *batch, now time.Time) []byte {
	dst = append(dst, e.head...)
	for i := range b.len() {
		if i > 0 {
			dst = append(dst, ',')
		}
		rec := b.record(i)
		dst = append(dst, `["`...)
		dst = strconv.AppendInt(dst, recordTime(rec, now).UnixNano(), 10)
		dst = append(dst, `",`...)
		dst = appendJSONString(dst, rec)
		dst = append(dst, ']')
	}
	return append(dst, `]}]}`...)
}

// otlpEncoder makes an OTLP/HTTP JSON logs request: each record is one log
// record whose body is the record as a string.
type otlpEncoder struct {
	head  []byte
	ctype string
}

func newOTLPEncoder(service, ctype string) *otlpEncoder {
	head := []byte(`{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":`)
	head = appendJSONString(head, []byte(service))
	head = append(head, `}}]},"scopeLogs":[{"scope":{"name":"github.com/skeinhq/skein/ship"},"logRecords":[`...)
	return &otlpEncoder{head: head, ctype: ctype}
}

func (e *otlpEncoder) contentType() string { return e.ctype }
func (e *otlpEncoder) encode(dst []byte, b *batch, now time.Time) []byte {
	dst = append(dst, e.head...)
	observed := strconv.AppendInt(nil, now.UnixNano(), 10)
	for i := range b.len() {
		if i > 0 {
			dst = append(dst, ',')
		}
		rec := b.record(i)
		dst = append(dst, `{"timeUnixNano":"`...)
		dst = strconv.AppendInt(dst, recordTime(rec, now).UnixNano(), 10)
		dst = append(dst, `","observedTimeUnixNano":"`...)
		dst = append(dst, observed...)
		dst = append(dst, '"')
		if lv, ok := topLevelField(rec, "level"); ok && len(lv) > 1 && lv[0] == '"' {
			dst = append(dst, `,"severityText":`...)
			dst = append(dst, lv...)
		}
		dst = append(dst, `,"body":{"stringValue":`...)
		dst = appendJSONString(dst, rec)
		dst = append(dst, `}}`...)
	}
	return append(dst, `]}]}]}`...)
}

// recordTime finds a record's time: Eliot's "timestamp" (seconds since the
// epoch, a number) or slog's "time" (RFC 3339); else now.
func recordTime(rec []byte, now time.Time) time.Time {
	if v, ok := topLevelField(rec, "timestamp"); ok {
		if f, err := strconv.ParseFloat(string(v), 64); err == nil && f > 0 && f < 1e11 {
			sec, frac := math.Modf(f)
			return time.Unix(int64(sec), int64(frac*1e9))
		}
	}
	if v, ok := topLevelField(rec, "time"); ok && len(v) > 2 && v[0] == '"' {
		if t, err := time.Parse(time.RFC3339Nano, string(v[1:len(v)-1])); err == nil {
			return t
		}
	}
	return now
}

// topLevelField returns the raw JSON value of key in the object rec, without
// decoding the rest. Keys with escapes are not matched. It never panics on
// bad input; it reports false instead.
func topLevelField(rec []byte, key string) ([]byte, bool) {
	i := skipSpace(rec, 0)
	if i >= len(rec) || rec[i] != '{' {
		return nil, false
	}
	i++
	for {
		i = skipSpace(rec, i)
		if i >= len(rec) || rec[i] != '"' {
			return nil, false
		}
		kstart := i + 1
		kend, ok := skipString(rec, i)
		if !ok {
			return nil, false
		}
		k := rec[kstart : kend-1]
		i = skipSpace(rec, kend)
		if i >= len(rec) || rec[i] != ':' {
			return nil, false
		}
		i = skipSpace(rec, i+1)
		vstart := i
		vend, ok := skipValue(rec, i)
		if !ok {
			return nil, false
		}
		if string(k) == key {
			return rec[vstart:vend], true
		}
		i = skipSpace(rec, vend)
		if i >= len(rec) {
			return nil, false
		}
		if rec[i] == '}' {
			return nil, false
		}
		if rec[i] != ',' {
			return nil, false
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i]=='"'.
func skipString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return 0, false
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, ok := skipString(b, i)
				if !ok {
					return 0, false
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
		}
		return 0, false
	default:
		start := i
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		return i, i > start
	}
}
