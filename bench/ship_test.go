package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"

	"github.com/skeinhq/skein/ship"
)

// BenchmarkShip compares skein's shipper with OpenTelemetry Go's log SDK
// (sdk/log BatchProcessor + otlploghttp exporter) shipping the same records
// to the same local HTTP sink, which reads and discards each body.
//
// Both run with their defaults (queue 2048 records, batches of 512, 1 s
// interval, no compression); skein sends NDJSON, OTel OTLP protobuf.
//
//   - enqueue: the caller's cost of handing over one record (ns/op,
//     allocs/op). For skein that is Write of the record's JSON line (what
//     package action and slog's JSON handler produce); for OTel, Logger.Emit
//     of a prebuilt log.Record with the same fields. A full queue drops its
//     oldest record in both.
//   - end_to_end: b.N records handed over and flushed; records/s counts the
//     records the sink answered 2xx for, per second of wall time. skein
//     blocks the caller when its queue is full (Queue.Policy block), so
//     every record is delivered; OTel has no blocking mode and drops what
//     its queue cannot hold, so its delivered% is reported too.
func BenchmarkShip(b *testing.B) {
	sink := newDiscardSink()
	defer sink.Close()
	for _, peer := range shipPeers {
		b.Run(peer.name+"/enqueue", func(b *testing.B) {
			p := peer.start(b, sink.URL, false)
			defer p.close()
			emit := p.emit
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				emit(i)
			}
		})
		b.Run(peer.name+"/end_to_end", func(b *testing.B) {
			p := peer.start(b, sink.URL, true)
			defer p.close()
			b.ReportAllocs()
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				p.emit(i)
			}
			p.flush()
			elapsed := time.Since(start)
			delivered := p.delivered()
			b.ReportMetric(float64(delivered)/elapsed.Seconds(), "records/s")
			b.ReportMetric(100*float64(delivered)/float64(b.N), "delivered%")
		})
	}
}

// TestShipPeersDeliver checks that each peer really ships to the sink, so
// the benchmark measures delivery and not a no-op.
func TestShipPeersDeliver(t *testing.T) {
	sink := newDiscardSink()
	defer sink.Close()
	for _, peer := range shipPeers {
		t.Run(peer.name, func(t *testing.T) {
			before := sink.bytes.Load()
			p := peer.start(t, sink.URL, true)
			for i := range 1000 {
				p.emit(i)
			}
			p.flush()
			if got := p.delivered(); got != 1000 {
				t.Errorf("%s delivered %d of 1000 records", peer.name, got)
			}
			if sink.bytes.Load() == before {
				t.Errorf("%s sent no bytes", peer.name)
			}
			p.close()
		})
	}
}

// discardSink is the shared endpoint: it reads every body and discards it.
type discardSink struct {
	*httptest.Server
	bytes atomic.Int64
}

func newDiscardSink() *discardSink {
	s := &discardSink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.bytes.Add(n)
		w.WriteHeader(http.StatusOK)
	}))
	return s
}

// The record both peers ship: an Eliot message.
const (
	shipTaskUUID = "8c668cde-d2e5-4b7e-8f0e-5c3e2a1b0d9f"
	shipMessage  = "user has text notifications disabled"
)

type shipPeer struct {
	name  string
	start func(tb testing.TB, url string, endToEnd bool) *runningPeer
}

type runningPeer struct {
	emit      func(i int)
	flush     func()
	delivered func() int64
	close     func()
}

var shipPeers = []shipPeer{
	{"skein", startSkeinShipper},
	{"otel", startOTelShipper},
}

func startSkeinShipper(tb testing.TB, url string, endToEnd bool) *runningPeer {
	cfg := ship.Config{URL: url}
	if endToEnd {
		cfg.Queue.Policy = ship.Block
	}
	s, err := ship.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	// The caller's line, as action or slog's JSON handler writes it; the
	// record number varies so that batches are not identical.
	prefix := fmt.Appendf(nil, `{"timestamp":1763812800.123456,"task_uuid":"%s","task_level":[2,1],"message_type":"send_text_message:disabled","level":"WARN","message":"%s","user_id":`, shipTaskUUID, shipMessage)
	line := make([]byte, 0, len(prefix)+32)
	return &runningPeer{
		emit: func(i int) {
			line = append(line[:0], prefix...)
			line = appendInt(line, i)
			line = append(line, "}\n"...)
			_, _ = s.Write(line)
		},
		flush: func() {
			if err := s.Flush(context.Background()); err != nil {
				tb.Fatal(err)
			}
		},
		delivered: func() int64 { return int64(s.Stats().Delivered) },
		close: func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.Close(ctx)
		},
	}
}

func appendInt(b []byte, i int) []byte {
	if i == 0 {
		return append(b, '0')
	}
	var tmp [20]byte
	n := len(tmp)
	for i > 0 {
		n--
		tmp[n] = byte('0' + i%10)
		i /= 10
	}
	return append(b, tmp[n:]...)
}

// countingExporter counts the records the wrapped exporter delivered.
type countingExporter struct {
	sdklog.Exporter
	n atomic.Int64
}

func (c *countingExporter) Export(ctx context.Context, records []sdklog.Record) error {
	err := c.Exporter.Export(ctx, records)
	if err == nil {
		c.n.Add(int64(len(records)))
	}
	return err
}

func startOTelShipper(tb testing.TB, url string, _ bool) *runningPeer {
	ctx := context.Background()
	exp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL(url+"/v1/logs"))
	if err != nil {
		tb.Fatal(err)
	}
	counting := &countingExporter{Exporter: exp}
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(counting)))
	logger := lp.Logger("github.com/skeinhq/skein/bench")
	var rec otellog.Record
	rec.SetTimestamp(time.Unix(1763812800, 123456000))
	rec.SetSeverity(otellog.SeverityWarn)
	rec.SetSeverityText("WARN")
	rec.SetBody(attribute.StringValue(shipMessage))
	rec.AddAttributes(
		attribute.String("task_uuid", shipTaskUUID),
		attribute.Int64Slice("task_level", []int64{2, 1}),
		attribute.String("message_type", "send_text_message:disabled"),
	)
	return &runningPeer{
		emit: func(i int) {
			r := rec
			r.AddAttributes(attribute.Int("user_id", i))
			logger.Emit(ctx, r)
		},
		flush: func() {
			if err := lp.ForceFlush(ctx); err != nil {
				tb.Fatal(err)
			}
		},
		delivered: func() int64 { return counting.n.Load() },
		close: func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = lp.Shutdown(ctx)
		},
	}
}
