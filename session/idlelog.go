package session

import (
	"context"
	"log/slog"
)

// sessionLogger returns parent with the session's attributes (session, doc, user), added when a
// record is handled instead of up front. slog's text and JSON handlers render WithAttrs into a
// buffer of their own at once: ~270 bytes per session, kept for the connection's lifetime
// although an idle session logs nothing (docs/load.md, "Issue 14 results"). The output is the
// same: the attributes come first, as WithAttrs puts them.
func sessionLogger(parent *slog.Logger, id, doc, user string) *slog.Logger {
	return slog.New(&lazyAttrs{parent: parent.Handler(), id: id, doc: doc, user: user})
}

// lazyAttrs is a slog.Handler that renders its attributes only for records that get handled
// (a level the parent does not enable costs nothing).
type lazyAttrs struct {
	parent        slog.Handler
	id, doc, user string
}

func (h *lazyAttrs) attrs() slog.Handler {
	return h.parent.WithAttrs([]slog.Attr{slog.String("session", h.id), slog.String("doc", h.doc), slog.String("user", h.user)})
}

func (h *lazyAttrs) Enabled(ctx context.Context, l slog.Level) bool { return h.parent.Enabled(ctx, l) }

func (h *lazyAttrs) Handle(ctx context.Context, r slog.Record) error {
	return h.attrs().Handle(ctx, r)
}

func (h *lazyAttrs) WithAttrs(as []slog.Attr) slog.Handler { return h.attrs().WithAttrs(as) }

func (h *lazyAttrs) WithGroup(name string) slog.Handler { return h.attrs().WithGroup(name) }
