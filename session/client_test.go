package session_test

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/session"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/store"
)

func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

type inFrame struct {
	typ  int
	data []byte
}

type ctrl struct {
	typ  int
	data []byte
}

// fakeConn is an in-memory WebSocket. Frames pushed with deliver are read by the session; what it
// writes is recorded. When the session writes a close frame the fake "peer" answers it, so the
// next read fails with a CloseError, as with a real client.
type fakeConn struct {
	in        chan inFrame
	peerClose chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
	pcOnce    sync.Once

	mu       sync.Mutex
	written  [][]byte
	controls []ctrl
	block    chan struct{} // non-nil: WriteMessage waits for it
	blocked  int           // writes that waited for block
}

// blockedWrites returns how many writes have waited for block.
func (c *fakeConn) blockedWrites() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blocked
}

func newFakeConn() *fakeConn {
	return &fakeConn{in: make(chan inFrame, 64), peerClose: make(chan struct{}), closed: make(chan struct{})}
}

// hangUp makes the fake peer close the connection (its next read fails with a CloseError).
func (c *fakeConn) hangUp() { c.pcOnce.Do(func() { close(c.peerClose) }) }

func (c *fakeConn) deliver(typ int, data []byte) { c.in <- inFrame{typ, data} }

func (c *fakeConn) ReadMessage() (int, []byte, error) {
	select {
	case f := <-c.in:
		return f.typ, f.data, nil
	case <-c.peerClose:
		return 0, nil, &websocket.CloseError{Code: 1000}
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c *fakeConn) WriteMessage(_ int, data []byte) error {
	c.mu.Lock()
	b := c.block
	if b != nil {
		c.blocked++
	}
	c.mu.Unlock()
	if b != nil {
		select {
		case <-b:
		case <-c.closed:
			return net.ErrClosed
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closed:
		return net.ErrClosed
	default:
	}
	c.written = append(c.written, append([]byte(nil), data...))
	return nil
}

func (c *fakeConn) WriteControl(typ int, data []byte, _ time.Time) error {
	c.mu.Lock()
	c.controls = append(c.controls, ctrl{typ, append([]byte(nil), data...)})
	c.mu.Unlock()
	if typ == websocket.CloseMessage {
		c.hangUp()
	}
	return nil
}

func (c *fakeConn) SetReadDeadline(time.Time) error         { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error        { return nil }
func (c *fakeConn) SetReadLimit(int64)                      {}
func (c *fakeConn) SetPongHandler(func(string) error)       {}
func (c *fakeConn) SetPingHandler(func(string) error)       {}
func (c *fakeConn) SetCloseHandler(func(int, string) error) {}
func (c *fakeConn) Close() error                            { c.closeOnce.Do(func() { close(c.closed) }); return nil }
func (c *fakeConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

func (c *fakeConn) messages(t *testing.T) []syncproto.Message {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []syncproto.Message
	for _, f := range c.written {
		m, err := syncproto.Decode(f)
		if err != nil {
			t.Fatalf("undecodable frame written: %v", err)
		}
		out = append(out, m)
	}
	return out
}

// closeCodes returns the codes of the close frames written.
func (c *fakeConn) closeCodes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var codes []int
	for _, k := range c.controls {
		if k.typ == websocket.CloseMessage && len(k.data) >= 2 {
			codes = append(codes, int(k.data[0])<<8|int(k.data[1]))
		}
	}
	return codes
}

func (c *fakeConn) pings() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.controls {
		if k.typ == websocket.PingMessage {
			n++
		}
	}
	return n
}

type env struct {
	reg   *shareddoc.Registry
	clock *shareddoc.FakeClock
	stats *session.Stats
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clock := shareddoc.NewFakeClock(time.Unix(1_700_000_000, 0))
	e := &env{
		reg:   shareddoc.NewRegistry(shareddoc.Config{Store: store.NewMemory(), Clock: clock, IdleTimeout: time.Hour}),
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
	return e
}

// start runs a session over a fake connection; the returned channel yields Run's error.
func (e *env) start(t *testing.T, doc, id string, cfg session.Config) (*session.Client, *fakeConn, chan error) {
	t.Helper()
	conn := newFakeConn()
	cfg.Clock = e.clock
	cfg.Stats = e.stats
	c := session.New(conn, doc, shareddoc.SessionInfo{ID: id, User: id}, cfg)
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background(), e.reg) }()
	eventually(t, func() bool {
		d := e.reg.Get(doc)
		if d == nil {
			return false
		}
		in, err := d.Info(context.Background())
		if err != nil {
			return false
		}
		for _, s := range in.Sessions {
			if s.ID == id {
				return true
			}
		}
		return false
	}, "joined")
	return c, conn, done
}

func wait(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("session did not end")
		return nil
	}
}

func update(t *testing.T, id uint64, s string) []byte {
	t.Helper()
	d := crdt.NewDoc(crdt.DocOptions{ClientID: id})
	var u []byte
	d.ObserveUpdate(func(b []byte, _ any, _ *crdt.Transaction) { u = append([]byte(nil), b...) })
	if err := d.GetText("t").Insert(0, s, nil); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSyncInOrderAndEcho(t *testing.T) {
	e := newEnv(t)
	_, conn, done := e.start(t, "doc", "a", session.Config{})
	u := update(t, 1, "hi")
	conn.deliver(websocket.BinaryMessage, syncproto.EncodeUpdate(u))
	conn.deliver(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0}))
	// The update was applied before the step1 was answered: the step2 contains it.
	eventually(t, func() bool { return len(conn.messages(t)) >= 3 }, "echo, step2, step1")
	var step2 []byte
	echo := false
	for _, m := range conn.messages(t) {
		switch {
		case m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncStep2:
			step2 = m.Payload
		case m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncUpdate:
			echo = true
		}
	}
	d := crdt.NewDoc(crdt.DocOptions{})
	if err := crdt.ApplyUpdate(d, step2, nil); err != nil || d.GetText("t").String() != "hi" || !echo {
		t.Fatalf("step2 text %q err %v echo %v", d.GetText("t").String(), err, echo)
	}
	conn.hangUp() // the client goes away
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if codes := conn.closeCodes(); len(codes) != 0 {
		t.Fatalf("close frames after the peer closed: %v", codes)
	}
}

func TestBadFramesCloseWithTableCodes(t *testing.T) {
	cases := []struct {
		name string
		typ  int
		data []byte
		code int
	}{
		{"text", websocket.TextMessage, []byte("hello"), 1003},
		{"empty", websocket.BinaryMessage, nil, 1007},
		{"unknown type", websocket.BinaryMessage, []byte{9}, 1003},
		{"truncated", websocket.BinaryMessage, []byte{0, 1, 10, 1}, 1007},
		{"bad update", websocket.BinaryMessage, []byte{0, 2, 3, 5, 200, 1}, 1007},
		{"bad awareness", websocket.BinaryMessage, []byte{1, 2, 1, 7}, 1007},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, good, goodDone := e.start(t, "doc", "good", session.Config{})
			_, bad, badDone := e.start(t, "doc", "bad", session.Config{})
			bad.deliver(tc.typ, tc.data)
			if err := wait(t, badDone); err != nil {
				t.Fatal(err)
			}
			if codes := bad.closeCodes(); len(codes) != 1 || codes[0] != tc.code {
				t.Fatalf("close codes %v, want [%d]", codes, tc.code)
			}
			// The good session still syncs.
			good.deliver(websocket.BinaryMessage, syncproto.EncodeUpdate(update(t, 2, "fine")))
			eventually(t, func() bool { return len(good.messages(t)) == 1 }, "echo to the good session")
			if good.isClosed() {
				t.Fatal("good session closed")
			}
			good.hangUp()
			_ = wait(t, goodDone)
		})
	}
}

func TestSlowConsumerClosed(t *testing.T) {
	e := newEnv(t)
	_, fast, fastDone := e.start(t, "doc", "fast", session.Config{})
	slowClient, slow, slowDone := e.start(t, "doc", "slow", session.Config{QueueBudget: 64})
	slow.mu.Lock()
	slow.block = make(chan struct{})
	unblock := slow.block
	slow.mu.Unlock()
	for i := range 20 {
		fast.deliver(websocket.BinaryMessage, syncproto.EncodeUpdate(update(t, uint64(10+i), "some text to fill the queue")))
	}
	eventually(t, func() bool { return slowClient.Disconnect().Code == session.DisconnectSlow.Code }, "slow close")
	close(unblock)
	if err := wait(t, slowDone); err != nil {
		t.Fatal(err)
	}
	if codes := slow.closeCodes(); len(codes) != 1 || codes[0] != 4508 {
		t.Fatalf("slow close codes %v", codes)
	}
	if e.stats.SlowCloses.Load() != 1 {
		t.Fatalf("slow closes = %d", e.stats.SlowCloses.Load())
	}
	eventually(t, func() bool { return len(fast.messages(t)) == 20 }, "fast session gets all echoes")
	fast.hangUp()
	_ = wait(t, fastDone)
}

func TestPingOnClock(t *testing.T) {
	e := newEnv(t)
	_, conn, done := e.start(t, "doc", "a", session.Config{PongWait: 10 * time.Second})
	// The keep-alive wheel's timer, due within the 9 s advanced below (the document may have armed
	// others, due later: waiting for any timer let the clock move before the wheel had joined).
	eventually(t, func() bool { return e.clock.TimersWithin(9*time.Second) >= 1 }, "ping timer armed")
	e.clock.Advance(9 * time.Second)
	eventually(t, func() bool { return conn.pings() == 1 }, "ping")
	e.clock.Advance(9 * time.Second)
	eventually(t, func() bool { return conn.pings() == 2 }, "second ping")
	conn.hangUp()
	_ = wait(t, done)
}

func TestKickFlushesThenClosesOnce(t *testing.T) {
	e := newEnv(t)
	c, conn, done := e.start(t, "doc", "a", session.Config{})
	conn.mu.Lock()
	conn.block = make(chan struct{})
	unblock := conn.block
	conn.mu.Unlock()
	conn.deliver(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0}))
	eventually(t, func() bool { return e.stats.MessagesIn.Load() == 1 }, "step1 read")
	// The document's answer is being written (the writer waits in the first write): reading the
	// step1 is not enough, a Kick before the document answered it left nothing to flush.
	eventually(t, func() bool { return conn.blockedWrites() >= 1 }, "answer being written")
	c.Kick(session.DisconnectGoingAway)
	c.Kick(session.DisconnectTerminated) // idempotent: the first reason wins
	c.Close(shareddoc.CloseSlow, nil)
	close(unblock)
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if codes := conn.closeCodes(); len(codes) != 1 || codes[0] != 1001 {
		t.Fatalf("close codes %v, want [1001]", codes)
	}
	if n := len(conn.messages(t)); n != 2 {
		t.Fatalf("%d frames flushed before the close, want 2 (step2, step1)", n)
	}
}

func TestJoinAfterShutdownGoingAway(t *testing.T) {
	e := newEnv(t)
	if err := e.reg.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	conn := newFakeConn()
	c := session.New(conn, "doc", shareddoc.SessionInfo{ID: "x"}, session.Config{Clock: e.clock})
	err := c.Run(context.Background(), e.reg)
	if !errors.Is(err, shareddoc.ErrClosed) {
		t.Fatalf("Run = %v", err)
	}
	if codes := conn.closeCodes(); len(codes) != 1 || codes[0] != 1001 {
		t.Fatalf("close codes %v", codes)
	}
}

// An idle session keeps no writer goroutine: one starts for a frame (or ping) and ends when the
// queue is drained.
func TestNoWriterWhileIdle(t *testing.T) {
	e := newEnv(t)
	_, conn, done := e.start(t, "idle", "a", session.Config{PongWait: 10 * time.Second})
	writers := func() int { return goroutinesIn("session.(*Client).writeLoop(") }
	conn.deliver(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0}))
	eventually(t, func() bool { return len(conn.messages(t)) == 2 }, "step2 and step1 written")
	eventually(t, func() bool { return writers() == 0 }, "writer gone once drained")
	eventually(t, func() bool { return e.clock.TimersWithin(9*time.Second) >= 1 }, "keep-alive armed")
	e.clock.Advance(9 * time.Second)
	eventually(t, func() bool { return conn.pings() == 1 }, "ping")
	eventually(t, func() bool { return writers() == 0 }, "writer gone after the ping")
	conn.hangUp()
	_ = wait(t, done)
}

// goroutinesIn counts the goroutines whose stack contains fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), fn)
}
