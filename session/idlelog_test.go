package session

import (
	"bytes"
	"log/slog"
	"regexp"
	"testing"
)

// The lazy session logger writes exactly what Logger.With would have written.
func TestSessionLoggerMatchesWith(t *testing.T) {
	t.Parallel()
	timeAttr := regexp.MustCompile(`time=\S+ `)
	run := func(log func(parent *slog.Logger) *slog.Logger) string {
		var b bytes.Buffer
		parent := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", "n1")
		l := log(parent)
		l.Debug("not enabled", "k", 1)
		l.Info("joined", "k", 1)
		l.With("code", 4401).Warn("closing")
		l.WithGroup("g").Error("failed", "err", "boom")
		return timeAttr.ReplaceAllString(b.String(), "")
	}
	want := run(func(p *slog.Logger) *slog.Logger { return p.With("session", "s1", "doc", "d 1", "user", "ann") })
	got := run(func(p *slog.Logger) *slog.Logger { return sessionLogger(p, "s1", "d 1", "ann") })
	if got != want {
		t.Fatalf("lazy logger wrote\n%s\nwant\n%s", got, want)
	}
	if !bytes.Contains([]byte(got), []byte(`level=INFO msg=joined node=n1 session=s1 doc="d 1" user=ann k=1`)) {
		t.Fatalf("unexpected output:\n%s", got)
	}
}

// An idle session's logger holds no rendered attributes: it is the parent handler, three
// strings the session keeps anyway, and nothing else.
func TestSessionLoggerAllocatesLittle(t *testing.T) {
	parent := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	n := testing.AllocsPerRun(100, func() { _ = sessionLogger(parent, "s1", "doc", "ann") })
	if n > 2 {
		t.Fatalf("sessionLogger: %v allocations, want at most 2 (the handler and the Logger)", n)
	}
}
