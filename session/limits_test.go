package session_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/limits"
	"github.com/ysync/ysync/session"
)

func hasDenied(t *testing.T, conn *fakeConn, reason string) bool {
	for _, m := range conn.messages(t) {
		if m.Type == syncproto.TypeAuth && m.AuthType == syncproto.AuthPermissionDenied && m.Reason == reason {
			return true
		}
	}
	return false
}

func countUpdates(t *testing.T, conn *fakeConn) int {
	n := 0
	for _, m := range conn.messages(t) {
		if m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncUpdate {
			n++
		}
	}
	return n
}

// A read-only session syncs, but its edits are answered with permission-denied, never applied,
// never relayed, never stored; it stays open.
func TestReadOnlySessionEditsRefused(t *testing.T) {
	e := newEnv(t)
	_, writer, writerDone := e.start(t, "doc", "w", session.Config{})
	ro, reader, readerDone := e.start(t, "doc", "r", session.Config{Trust: session.Trust{ReadOnly: true}})
	if ro.CanWrite() || ro.Permission() != "read" {
		t.Fatalf("read-only session: CanWrite %v, Permission %q", ro.CanWrite(), ro.Permission())
	}
	reader.deliver(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0}))
	reader.deliver(websocket.BinaryMessage, syncproto.EncodeSyncStep2(update(t, 7, "offline edit")))
	reader.deliver(websocket.BinaryMessage, syncproto.EncodeUpdate(update(t, 8, "sneaky")))
	eventually(t, func() bool { return e.stats.Trust.DeniedWrites.Load() == 2 }, "two denied writes")
	eventually(t, func() bool { return hasDenied(t, reader, session.ReasonReadOnly) }, "permission-denied frame")

	// The writer's edit still reaches the reader.
	writer.deliver(websocket.BinaryMessage, syncproto.EncodeUpdate(update(t, 1, "hello")))
	eventually(t, func() bool { return countUpdates(t, reader) == 1 }, "reader gets the writer's update")
	in, err := e.reg.Get("doc").Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if countUpdates(t, writer) != 1 { // its own echo only
		t.Fatalf("writer got %d updates, want only its echo", countUpdates(t, writer))
	}
	if in.Bytes == 0 || in.StateVector == "" {
		t.Fatalf("info %+v", in)
	}
	if codes := reader.closeCodes(); len(codes) != 0 {
		t.Fatalf("read-only session closed: %v", codes)
	}
	reader.hangUp()
	writer.hangUp()
	wait(t, readerDone)
	wait(t, writerDone)
}

// The session closes with 4401 when its credentials expire; CanWrite is false from then on.
func TestSessionClosesWhenTokenExpires(t *testing.T) {
	e := newEnv(t)
	c, conn, done := e.start(t, "doc", "a", session.Config{Trust: session.Trust{ExpiresAt: e.clock.Now().Add(time.Minute)}})
	conn.deliver(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0}))
	if !c.CanWrite() {
		t.Fatal("CanWrite before expiry")
	}
	e.clock.Advance(59 * time.Second)
	if len(conn.closeCodes()) != 0 {
		t.Fatal("closed before expiry")
	}
	e.clock.Advance(time.Second)
	wait(t, done)
	if codes := conn.closeCodes(); !slices.Equal(codes, []int{4401}) {
		t.Fatalf("close codes %v, want [4401]", codes)
	}
	if c.CanWrite() {
		t.Fatal("CanWrite after expiry")
	}
}

// A connection that never starts the sync handshake is closed with 4408; one that did is not.
func TestHandshakeTimeout(t *testing.T) {
	e := newEnv(t)
	cfg := session.Config{Trust: session.Trust{HandshakeTimeout: 10 * time.Second}}
	_, silent, silentDone := e.start(t, "doc", "silent", cfg)
	_, good, goodDone := e.start(t, "doc", "good", cfg)
	good.deliver(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0}))
	eventually(t, func() bool { return len(good.messages(t)) >= 2 }, "good synced")
	e.clock.Advance(10 * time.Second)
	wait(t, silentDone)
	if codes := silent.closeCodes(); !slices.Equal(codes, []int{4408}) {
		t.Fatalf("silent close codes %v", codes)
	}
	if len(good.closeCodes()) != 0 {
		t.Fatal("good session closed")
	}
	good.hangUp()
	wait(t, goodDone)
}

// Frames over the rate wait (on the injected clock); a connection held back for longer than the
// max wait is closed with 4429.
func TestRateLimitThrottlesThenCloses(t *testing.T) {
	e := newEnv(t)
	lim := limits.NewConnLimiter(10, 0, 10, 0, time.Second, e.clock.Now())
	_, conn, done := e.start(t, "doc", "flood", session.Config{Trust: session.Trust{Limiter: lim}})
	for range 40 {
		conn.deliver(websocket.BinaryMessage, syncproto.EncodeQueryAwareness())
	}
	eventually(t, func() bool { return e.stats.Trust.ThrottledFrames.Load() == 1 }, "a frame held back")
	for i := 0; i < 100 && len(conn.closeCodes()) == 0; i++ {
		e.clock.Advance(100 * time.Millisecond)
		time.Sleep(time.Millisecond)
	}
	wait(t, done)
	if codes := conn.closeCodes(); !slices.Equal(codes, []int{4429}) {
		t.Fatalf("close codes %v, want [4429]", codes)
	}
	if n := e.stats.Trust.ThrottledFrames.Load(); n < 5 {
		t.Fatalf("only %d frames throttled before the close", n)
	}
	if e.stats.Trust.RateLimitCloses.Load() != 1 {
		t.Fatal("rate limit close not counted")
	}
}

// A session's deadlines (credentials expiry, handshake timeout) are timer callbacks: no goroutine
// waits on them, so a session with a JWT expiry keeps no goroutine but its reader for as long as
// it lives, and the deadlines still close it.
func TestDeadlinesKeepNoGoroutine(t *testing.T) {
	e := newEnv(t)
	exp := e.clock.Now().Add(time.Minute)
	cfg := session.Config{Trust: session.Trust{HandshakeTimeout: 10 * time.Second, ExpiresAt: exp}}
	_, conn, done := e.start(t, "doc", "a", cfg)
	eventually(t, func() bool { return e.clock.Timers() >= 2 }, "deadlines armed")
	if n := goroutinesIn("session.(*Client).startWatch"); n != 0 {
		t.Fatalf("%d goroutines watching the session's deadlines, want none", n)
	}
	conn.deliver(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0}))
	eventually(t, func() bool { return len(conn.messages(t)) >= 2 }, "synced")
	e.clock.Advance(10 * time.Second) // past the handshake timeout: synced, so nothing happens
	time.Sleep(10 * time.Millisecond)
	if codes := conn.closeCodes(); len(codes) != 0 {
		t.Fatalf("closed with %v after the handshake came", codes)
	}
	e.clock.Advance(time.Minute)
	wait(t, done)
	if codes := conn.closeCodes(); !slices.Equal(codes, []int{4401}) {
		t.Fatalf("close codes %v, want [4401]", codes)
	}
}
