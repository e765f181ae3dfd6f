package session

import (
	"bytes"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestInlineFramesWholeWhenSocketFills: deliveries written inline on the caller's goroutine stay
// whole and in order when the socket fills up under them — a frame the socket takes in part is
// finished by the writer before anything else — while the client keeps pinging (the pongs go
// through the writer too, never between the two halves of a frame).
func TestInlineFramesWholeWhenSocketFills(t *testing.T) {
	srv := newWSServer(t, false, false)
	conn, c := srv.dial(t, "a")
	defer conn.Close()
	idle := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.inline && !c.writing && len(c.queue) == 0 && c.partial == nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for !idle() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := c.wv.tcp.SetWriteBuffer(16 << 10); err != nil { // so that the socket fills soon
		t.Fatal(err)
	}
	// The client does not read yet: frames go inline until one only partly fits.
	var want [][]byte
	parts := func() int { c.mu.Lock(); defer c.mu.Unlock(); return c.inlineParts }
	for i := 0; len(want) < 2000 && (parts() == 0 || len(want) < 40); i++ {
		f := bytes.Repeat([]byte{byte(i)}, 3000+i%7*1000)
		if !c.Send(f) {
			t.Fatalf("frame %d refused", i)
		}
		want = append(want, f)
		for w := 0; w < 20 && !idle(); w++ {
			time.Sleep(100 * time.Microsecond)
		}
	}
	c.mu.Lock()
	whole, part := c.inlineWrites, c.inlineParts
	c.mu.Unlock()
	if whole == 0 || part == 0 {
		t.Fatalf("inline writes: %d whole, %d in part; the test wants both", whole, part)
	}
	// Ping while reading everything back.
	if err := conn.WriteControl(websocket.PingMessage, []byte("p1"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// The Kick below must come after the server read the ping, or the session is closing when
	// the ping is read and rightly sends no pong (1 run in ~15 failed so under -race). The
	// pong waits for the writer, which waits for us to read, so it is still pending here.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		pending := c.pong != nil
		c.mu.Unlock()
		if pending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not read the ping")
		}
	}
	pongs := 0
	conn.SetPongHandler(func(string) error { pongs++; return nil })
	for i, f := range want {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		mt, got, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("frame %d of %d: %v", i, len(want), err)
		}
		if mt != websocket.BinaryMessage || !bytes.Equal(got, f) {
			t.Fatalf("frame %d: %d bytes of %x..., want %d of %x", i, len(got), got[:min(4, len(got))], len(f), f[0])
		}
	}
	c.Kick(DisconnectNormal)
	readUntilClose(t, conn, int(DisconnectNormal.Code))
	if pongs == 0 { // read by now: it came after the frames queued before it, before the close
		t.Error("the ping was not answered")
	}
	t.Logf("%d frames, %d inline whole, %d inline in part", len(want), whole, part)
}

// TestPeerCloseAnsweredByWriter: with gorilla's close handler replaced (inline.go), the peer's
// close still gets its answer, with the peer's code.
func TestPeerCloseAnsweredByWriter(t *testing.T) {
	srv := newWSServer(t, false, false)
	conn, c := srv.dial(t, "a")
	defer conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		ok := c.inline
		c.mu.Unlock()
		if ok {
			break
		}
		time.Sleep(time.Millisecond)
	}
	msg := websocket.FormatCloseMessage(4000, "bye")
	if err := conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	readUntilClose(t, conn, 4000) // the server's answer to our close
}

// BenchmarkDelivery: one frame to a session with nothing queued, over real TCP to a client that
// reads everything — written inline, or by a writer goroutine started for it (as before inline.go).
// CPU per delivery: compare the two with -benchtime and the process's CPU time (-cpuprofile), not
// only ns/op, which the client's reading shares.
func BenchmarkDelivery(b *testing.B) {
	for _, inline := range []bool{true, false} {
		name := "writer-goroutine"
		if inline {
			name = "inline"
		}
		b.Run(name, func(b *testing.B) {
			srv := newWSServer(b, false, false)
			conn, c := srv.dial(b, "a")
			defer conn.Close()
			got := make(chan struct{}, 1024)
			go func() {
				for {
					if _, _, err := conn.ReadMessage(); err != nil {
						return
					}
					got <- struct{}{}
				}
			}()
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				c.mu.Lock()
				ok := c.inline
				c.inline = ok && inline
				c.mu.Unlock()
				if ok {
					break
				}
				time.Sleep(time.Millisecond)
			}
			frame := bytes.Repeat([]byte{1}, 60)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c.Send(frame)
				<-got // one at a time: every delivery finds the session idle
			}
			b.StopTimer()
			c.Kick(DisconnectNormal)
		})
	}
}
