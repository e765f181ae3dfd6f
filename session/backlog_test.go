package session_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/session"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/store"
)

// countingConn is a fakeConn that counts the messages read.
type countingConn struct {
	*fakeConn
	reads atomic.Int64
}

func (c *countingConn) ReadMessage() (int, []byte, error) {
	mt, data, err := c.fakeConn.ReadMessage()
	if err == nil {
		c.reads.Add(1)
	}
	return mt, data, err
}

// blockedStore is a store.Memory whose Appends wait until it is opened: the database is away.
type blockedStore struct {
	*store.Memory
	gate chan struct{}
}

func (s *blockedStore) Append(ctx context.Context, name string, update []byte) (int64, error) {
	select {
	case <-s.gate:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return s.Memory.Append(ctx, name, update)
}

// gateWaiters counts readers waiting at a paused gate.
func gateWaiters() int { return goroutinesIn("session.(*readGate).wait(") }

// While the document holds a session's update for the storage backlog, the session's reader
// stops reading the socket (frames stay unread) instead of the session being closed with 1013;
// once the store catches up the reader goes on and every update is applied and echoed.
func TestReaderPausedForBacklog(t *testing.T) {
	st := &blockedStore{Memory: store.NewMemory(), gate: make(chan struct{})}
	clock := shareddoc.NewFakeClock(time.Unix(1_700_000_000, 0))
	reg := shareddoc.NewRegistry(shareddoc.Config{Store: st, Clock: clock, IdleTimeout: time.Hour, MaxPendingBytesPerDoc: 1000})
	opened := false
	open := func() {
		if !opened {
			opened = true
			close(st.gate)
		}
	}
	t.Cleanup(func() {
		open()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := reg.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	conn := &countingConn{fakeConn: newFakeConn()}
	c := session.New(conn, "doc", shareddoc.SessionInfo{ID: "a", User: "a"}, session.Config{Clock: clock})
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background(), reg) }()

	conn.deliver(websocket.BinaryMessage, syncproto.EncodeUpdate(update(t, 1, strings.Repeat("x", 600))))
	eventually(t, func() bool { return reg.Stats().PendingBytes.Load() >= 600 }, "first update pending")
	conn.deliver(websocket.BinaryMessage, syncproto.EncodeUpdate(update(t, 2, strings.Repeat("y", 600))))
	// The reader may have read on before the document held the update, and sit in its next
	// read when the pause comes: it passes on that frame too (the document holds it behind)
	// and then waits at the gate. Feed it until it does.
	sent := 2
	eventually(t, func() bool {
		if gateWaiters() == 1 {
			return true
		}
		if len(conn.in) == 0 {
			sent++
			conn.deliver(websocket.BinaryMessage, syncproto.EncodeUpdate(update(t, uint64(sent), "z")))
		}
		return false
	}, "reader paused")
	reads := conn.reads.Load()
	sent++
	conn.deliver(websocket.BinaryMessage, syncproto.EncodeUpdate(update(t, uint64(sent), "w")))
	if got := conn.reads.Load(); got != reads || len(conn.in) == 0 {
		t.Fatalf("reads %d → %d, %d frames unread: the paused reader read", reads, got, len(conn.in))
	}
	if codes := conn.closeCodes(); len(codes) != 0 {
		t.Fatalf("closed with %v while held", codes)
	}

	open()
	eventually(t, func() bool { return countUpdates(t, conn.fakeConn) == sent }, "every update echoed")
	if conn.reads.Load() != int64(sent) || len(conn.in) != 0 || gateWaiters() != 0 {
		t.Fatalf("reads %d, %d unread, %d waiting at the gate", conn.reads.Load(), len(conn.in), gateWaiters())
	}
	conn.hangUp()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if codes := conn.closeCodes(); len(codes) != 0 {
		t.Fatalf("close codes %v", codes)
	}
}

// Pause stops the reader before its next read and Resume lets it go on; a close while paused
// ends the reader at once.
func TestPauseResumeAndCloseWhilePaused(t *testing.T) {
	e := newEnv(t)
	conn := &countingConn{fakeConn: newFakeConn()}
	c := session.New(conn, "doc", shareddoc.SessionInfo{ID: "a", User: "a"}, session.Config{Clock: e.clock, Stats: e.stats})
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background(), e.reg) }()
	eventually(t, func() bool { return e.reg.Get("doc") != nil }, "joined")

	c.Pause()
	c.Pause() // counted: two documents' pauses need two resumes
	// Read by a read already waiting, if the reader sat in one.
	conn.deliver(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0}))
	eventually(t, func() bool { return gateWaiters() == 1 }, "reader paused")
	conn.deliver(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0}))
	unread := len(conn.in)
	if conn.reads.Load() > 1 || conn.reads.Load()+int64(unread) != 2 {
		t.Fatalf("reads %d, unread %d", conn.reads.Load(), unread)
	}
	c.Resume()
	if gateWaiters() != 1 || len(conn.in) != unread {
		t.Fatal("one resume of two opened the gate")
	}
	c.Resume()
	eventually(t, func() bool { return conn.reads.Load() == 2 && len(conn.in) == 0 }, "read after resume")
	c.Resume() // unbalanced: ignored

	c.Pause()
	conn.deliver(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0}))
	eventually(t, func() bool { return gateWaiters() == 1 }, "reader paused again")
	c.Kick(session.DisconnectTerminated)
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if codes := conn.closeCodes(); len(codes) != 1 || codes[0] != 4409 {
		t.Fatalf("close codes %v", codes)
	}
}

// A reader paused when its context ends stops and closes the session as going away.
func TestPausedReaderEndsWithContext(t *testing.T) {
	e := newEnv(t)
	conn := &countingConn{fakeConn: newFakeConn()}
	c := session.New(conn, "doc", shareddoc.SessionInfo{ID: "a", User: "a"}, session.Config{Clock: e.clock, Stats: e.stats})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, e.reg) }()
	eventually(t, func() bool { return e.reg.Get("doc") != nil }, "joined")
	c.Pause()
	conn.deliver(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0}))
	eventually(t, func() bool { return gateWaiters() == 1 }, "reader paused")
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if d := c.Disconnect(); d != session.DisconnectGoingAway {
		t.Fatalf("disconnect %v", d)
	}
}

// A Hocuspocus socket's reader pauses for any of its documents.
func TestHPPauseStopsSocketReader(t *testing.T) {
	e := newEnv(t)
	s, c, done := e.startHP(t, session.HPConfig{})
	c.deliver(websocket.BinaryMessage, syncproto.EncodeHPToken("d", "", ""))
	eventually(t, func() bool { return len(s.Sessions()) == 1 }, "document open")
	h := s.Sessions()[0]
	var _ shareddoc.Pauser = h
	h.Pause()
	hpSend(t, c, "d", syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncStep1, Payload: []byte{0}})
	eventually(t, func() bool { return gateWaiters() == 1 }, "socket reader paused")
	hpSend(t, c, "d", syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncStep1, Payload: []byte{0}})
	if n := len(c.in); n < 1 { // 2 if the reader stopped before the first
		t.Fatalf("%d frames unread", n)
	}
	h.Resume()
	eventually(t, func() bool { return len(c.in) == 0 && gateWaiters() == 0 }, "read after resume")
	c.hangUp()
	_ = wait(t, done)
}
