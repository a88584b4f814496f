package ship

import (
	"context"
	"log/slog"
)

// Handler returns a slog.Handler that writes each record as one JSON object
// (slog's JSON handler, with opts) into s. Records logged by the shipper
// itself (its reports, when Config.Logger is such a handler) are refused,
// so the shipper's reports never loop back into its own queue.
func (s *Shipper) Handler(opts *slog.HandlerOptions) slog.Handler {
	return &handler{s: s, h: slog.NewJSONHandler(s, opts)}
}

type handler struct {
	s *Shipper
	h slog.Handler
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.h.Enabled(ctx, l)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil && ctx.Value(selfKey{}) == h.s {
		return nil
	}
	return h.h.Handle(ctx, r)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{s: h.s, h: h.h.WithAttrs(as)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{s: h.s, h: h.h.WithGroup(name)}
}
