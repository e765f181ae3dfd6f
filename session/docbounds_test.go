package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ysync/ysync/session"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/store"
)

// A session for a new document while every loaded document is busy closes with 1013 (retry).
func TestJoinOverMaxLoadedDocsClosesTryAgain(t *testing.T) {
	clock := shareddoc.NewFakeClock(time.Unix(1_700_000_000, 0))
	e := &env{
		reg:   shareddoc.NewRegistry(shareddoc.Config{Store: store.NewMemory(), Clock: clock, IdleTimeout: time.Hour, MaxLoadedDocs: 1}),
		clock: clock,
		stats: new(session.Stats),
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.reg.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	busy, busyConn, busyDone := e.start(t, "busy", "a", session.Config{})
	conn := newFakeConn()
	c := session.New(conn, "other", shareddoc.SessionInfo{ID: "b"}, session.Config{Clock: e.clock})
	if err := c.Run(context.Background(), e.reg); !errors.Is(err, shareddoc.ErrTooManyDocuments) {
		t.Fatalf("Run = %v", err)
	}
	if codes := conn.closeCodes(); len(codes) != 1 || codes[0] != 1013 {
		t.Fatalf("close codes %v", codes)
	}
	busy.Kick(session.DisconnectGoingAway)
	busyConn.hangUp()
	_ = wait(t, busyDone)
}
