//go:build linux

package session

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/store"
)

// The tests want readers to park soon; a short linger also makes every other test of the
// package over real sockets park and resume its readers all the time.
func init() { parkAfter = 20 * time.Millisecond }

// parkServer runs parking sessions (Upgrade, ParkWhenIdle, Serve) behind a real HTTP server, as
// the ysync server does.
type parkServer struct {
	srv     *httptest.Server
	clients chan *Client
	ended   chan *Client // each session, once its done ran
	wg      sync.WaitGroup
}

func newParkServer(t *testing.T, cfg Config) *parkServer {
	t.Helper()
	reg := shareddoc.NewRegistry(shareddoc.Config{Store: store.NewMemory(), IdleTimeout: time.Hour})
	s := &parkServer{clients: make(chan *Client, 64), ended: make(chan *Client, 64)}
	up := websocket.Upgrader{WriteBufferSize: 32 << 10, WriteBufferPool: &sync.Pool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, br, err := Upgrade(&up, w, r)
		if err != nil {
			return
		}
		if br == nil {
			t.Error("Upgrade returned no reader")
		}
		c := New(conn, "doc", shareddoc.SessionInfo{ID: r.URL.Query().Get("id")}, cfg)
		c.ParkWhenIdle(br)
		s.wg.Add(1)
		s.clients <- c
		go c.Serve(context.Background(), reg, func(error) { s.ended <- c; s.wg.Done() })
	}))
	t.Cleanup(func() { closeTestServer(t, s.srv, &s.wg, reg) })
	return s
}

// peer is a test client: a gorilla connection whose reader collects what the server sends.
type peer struct {
	conn   *websocket.Conn
	c      *Client // the server's session
	msgs   chan []byte
	pongs  chan string
	closed chan int // the close code, once
}

func (s *parkServer) dial(t *testing.T, id string) *peer { return s.dialWith(t, id, false) }

// dialWith dials; a silent peer does not answer the server's pings.
func (s *parkServer) dialWith(t *testing.T, id string, silent bool) *peer {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.srv.URL, "http")+"/?id="+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := watchPeer(t, conn, silent)
	select {
	case p.c = <-s.clients:
	case <-time.After(10 * time.Second):
		t.Fatal("no session")
	}
	return p
}

// watchPeer makes conn a test peer: its reader collects what the server sends.
func watchPeer(t *testing.T, conn *websocket.Conn, silent bool) *peer {
	t.Cleanup(func() { conn.Close() })
	p := &peer{conn: conn, msgs: make(chan []byte, 1024), pongs: make(chan string, 1024), closed: make(chan int, 1)}
	conn.SetPongHandler(func(d string) error { p.pongs <- d; return nil })
	if silent {
		conn.SetPingHandler(func(string) error { return nil })
	}
	go func() {
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				code := -1
				if errors.As(err, &ce) {
					code = ce.Code
				}
				p.closed <- code
				return
			}
			p.msgs <- data
		}
	}()
	return p
}

// isParked reports whether the connection's reader is parked (tests only).
func (k *connCore) isParked() bool { return k.pk.state.Load() == readerParked }

// waitParked waits until the connection's reader (a *Client's or a *HPSocket's) is parked.
func waitParked(t *testing.T, k interface{ isParked() bool }) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !k.isParked() {
		if time.Now().After(deadline) {
			t.Fatal("reader not parked")
		}
		time.Sleep(time.Millisecond)
	}
}

// readerGoroutines counts goroutines inside a y-websocket session's read loop.
func readerGoroutines() int { return goroutinesIn("session.(*Client).readLoop") }

// goroutinesIn counts goroutines whose stack holds fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 4<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), fn)
}

// syncReply sends a SyncStep1 with the empty state vector and waits for the SyncStep2.
func (p *peer) syncReply(t *testing.T) {
	t.Helper()
	if err := p.conn.WriteMessage(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0})); err != nil {
		t.Fatal(err)
	}
	p.expectStep2(t)
}

func (p *peer) expectStep2(t *testing.T) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-p.msgs:
			if len(m) >= 2 && m[0] == 0 && m[1] == byte(syncproto.SyncStep2) {
				return
			}
		case <-timeout:
			t.Fatal("no SyncStep2")
		}
	}
}

func (p *peer) expectPong(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-p.pongs:
		if got != want {
			t.Fatalf("pong %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no pong %q", want)
	}
}

func (p *peer) expectClose(t *testing.T, code int) {
	t.Helper()
	select {
	case got := <-p.closed:
		if got != code {
			t.Fatalf("closed with %d, want %d", got, code)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("not closed (want %d)", code)
	}
}

// maskedFrame is a frame as a client sends it: final, masked with a random key.
func maskedFrame(op byte, payload []byte) []byte {
	f := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	default:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	f = append(f, key[:]...)
	for i, b := range payload {
		f = append(f, b^key[i%4])
	}
	return f
}

// raw writes bytes on the client's socket, bypassing gorilla's writer.
func (p *peer) raw(t *testing.T, b []byte) {
	t.Helper()
	_ = p.conn.NetConn().SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := p.conn.NetConn().Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestParkedReaderKeepsNoGoroutine: idle sessions keep no goroutine in their read loop, and a
// message resumes the reader (it is answered), after which it parks again.
func TestParkedReaderKeepsNoGoroutine(t *testing.T) {
	s := newParkServer(t, Config{})
	var peers []*peer
	for i := range 10 {
		peers = append(peers, s.dial(t, string(rune('a'+i))))
	}
	for _, p := range peers {
		p.syncReply(t)
		waitParked(t, p.c)
	}
	if n := readerGoroutines(); n != 0 {
		t.Fatalf("%d goroutines in a read loop with every session idle", n)
	}
	for round := range 3 {
		for _, p := range peers {
			p.syncReply(t)
		}
		for _, p := range peers {
			waitParked(t, p.c)
		}
		if n := readerGoroutines(); n != 0 {
			t.Fatalf("round %d: %d goroutines in a read loop after the answers", round, n)
		}
	}
}

// TestBusyReaderLingers: a reader whose last message was an edit waits parkAfter for the next
// one on its goroutine before it parks, so a peer that keeps typing never pays for parking; a
// reader whose last message was the sync handshake parks at once.
func TestBusyReaderLingers(t *testing.T) {
	t.Cleanup(func() { parkAfter = 20 * time.Millisecond }) // after the server's cleanup
	parkAfter = time.Hour
	s := newParkServer(t, Config{})
	p := s.dial(t, "a")
	p.syncReply(t)
	waitParked(t, p.c) // the handshake alone: at once, although parkAfter is an hour
	empty, err := syncproto.Encode(syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncUpdate, Payload: []byte{0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := p.conn.WriteMessage(websocket.BinaryMessage, empty); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if p.c.pk.state.Load() == readerParked {
			t.Fatal("parked 50 ms after an edit, with parkAfter an hour")
		}
	}
	p.syncReply(t) // the reader still answers, and after this handshake message parks at once
	waitParked(t, p.c)
}

// TestBusyReaderParksOnTheWheel: a busy reader that then falls quiet is parked by the
// keep-alive wheel once parkAfter passed (its tick is a tenth of the ping period), and still
// answers and stays open afterwards.
func TestBusyReaderParksOnTheWheel(t *testing.T) {
	s := newParkServer(t, Config{PongWait: 500 * time.Millisecond})
	p := s.dial(t, "a")
	empty, err := syncproto.Encode(syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncUpdate, Payload: []byte{0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := p.conn.WriteMessage(websocket.BinaryMessage, empty); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		waitParked(t, p.c)
	}
	time.Sleep(time.Second) // pings and pongs go on; the real deadline was put back each time
	p.syncReply(t)
	select {
	case <-s.ended:
		t.Fatal("session ended")
	default:
	}
}

// TestParkedPingPong: a parked reader answers pings itself (the pong echoes the payload) and
// stays parked; a ping and a message in one segment, a ping split across segments, and a
// fragmented message with a ping in between are all handled.
func TestParkedPingPong(t *testing.T) {
	s := newParkServer(t, Config{})
	p := s.dial(t, "a")
	p.syncReply(t)
	waitParked(t, p.c)

	if err := p.conn.WriteControl(websocket.PingMessage, []byte("hello"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	p.expectPong(t, "hello")
	waitParked(t, p.c)
	if n := readerGoroutines(); n != 0 {
		t.Fatalf("%d readers after a ping", n)
	}

	// Every payload length, and pongs (unanswered) between them.
	for n := 0; n <= 125; n += 25 {
		payload := bytes.Repeat([]byte{'x'}, n)
		p.raw(t, append(maskedFrame(websocket.PongMessage, []byte("u")), maskedFrame(websocket.PingMessage, payload)...))
		p.expectPong(t, string(payload))
	}

	// A ping, then a SyncStep1, in one write: the ping is read from gorilla's buffer or the socket,
	// the message goes to gorilla.
	p.raw(t, append(maskedFrame(websocket.PingMessage, []byte("one")), maskedFrame(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0}))...))
	p.expectPong(t, "one")
	p.expectStep2(t)

	// A SyncStep1, then a ping, in one write: the ping waits in gorilla's buffer after the message.
	p.raw(t, append(maskedFrame(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0})), maskedFrame(websocket.PingMessage, []byte("two"))...))
	p.expectStep2(t)
	p.expectPong(t, "two")
	waitParked(t, p.c)

	// A ping split across two segments: gorilla reads it (the first part is not a whole frame).
	f := maskedFrame(websocket.PingMessage, []byte("split"))
	p.raw(t, f[:3])
	time.Sleep(20 * time.Millisecond)
	p.raw(t, f[3:])
	p.expectPong(t, "split")
	p.syncReply(t)

	// A fragmented message with a ping between its fragments.
	msg := syncproto.EncodeSyncStep1([]byte{0})
	first := maskedFrame(websocket.BinaryMessage, msg[:1])
	first[0] &^= 0x80 // not final
	last := maskedFrame(0 /* continuation */, msg[1:])
	p.raw(t, first)
	time.Sleep(20 * time.Millisecond)
	p.raw(t, maskedFrame(websocket.PingMessage, []byte("mid")))
	time.Sleep(20 * time.Millisecond)
	p.raw(t, last)
	p.expectPong(t, "mid")
	p.expectStep2(t)
	waitParked(t, p.c)
}

// TestParkedDeadline: a parked connection still has a read deadline. Pongs (consumed by the
// parked reader) extend it; once they stop, the session is closed within about the pong wait.
func TestParkedDeadline(t *testing.T) {
	const wait = 400 * time.Millisecond
	s := newParkServer(t, Config{PongWait: wait})
	p := s.dialWith(t, "a", true)
	waitParked(t, p.c)
	pongsThenSilence(t, p, wait, s.ended, p.c)
}

// pongsThenSilence sends pongs to a parked connection for three pong waits and checks they kept
// it open, then stops and checks that the deadline timer closes want (as broken, reported on
// ended) no sooner than about the pong wait after the last pong.
func pongsThenSilence[T interface {
	comparable
	Disconnect() Disconnect
}](t *testing.T, p *peer, wait time.Duration, ended <-chan T, want T) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 3*wait {
		p.raw(t, maskedFrame(websocket.PongMessage, nil))
		time.Sleep(wait / 4)
	}
	select {
	case <-ended:
		t.Fatal("closed although pongs kept coming")
	default:
	}
	stopped := time.Now()
	select {
	case got := <-ended:
		if got != want {
			t.Fatal("another connection ended")
		}
		if d := got.Disconnect(); d.Code != DisconnectBroken.Code {
			t.Fatalf("closed as %v, want %v", d, DisconnectBroken)
		}
		if took := time.Since(stopped); took < wait/2 {
			t.Fatalf("closed %v after the last pong, before the pong wait (%v)", took, wait)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a silent parked connection was never closed")
	}
}

// TestParkedKickAndPeerClose: closing a parked session sends the close frame and ends it; a
// peer's close frame to a parked reader is answered and ends it too.
func TestParkedKickAndPeerClose(t *testing.T) {
	s := newParkServer(t, Config{})
	a, b := s.dial(t, "a"), s.dial(t, "b")
	waitParked(t, a.c)
	waitParked(t, b.c)

	a.c.Kick(DisconnectGoingAway)
	a.expectClose(t, int(DisconnectGoingAway.Code))
	if c := <-s.ended; c != a.c {
		t.Fatal("wrong session ended")
	}

	if err := b.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	b.expectClose(t, 4000)
	if c := <-s.ended; c != b.c {
		t.Fatal("wrong session ended")
	}
	if d := b.c.Disconnect(); d.Code != DisconnectPeerClosed.Code {
		t.Fatalf("closed as %v, want %v", d, DisconnectPeerClosed)
	}
}

// badControlFrames are control frames a parked reader leaves to gorilla, which refuses them.
var badControlFrames = [][]byte{
	{0x89, 0x00},                         // unmasked ping
	{0xC9, 0x80, 1, 2, 3, 4},             // ping with RSV1
	{0x09, 0x80, 1, 2, 3, 4},             // fragmented ping
	{0x89, 0xFE, 0x00, 0x80, 1, 2, 3, 4}, // ping with 128 payload bytes (16-bit length)
}

// TestParkedBadFrames: what the parked reader does not handle itself goes to gorilla, which
// refuses it as it always did: an unmasked ping, reserved bits, an oversized ping payload.
func TestParkedBadFrames(t *testing.T) {
	s := newParkServer(t, Config{})
	for i, bad := range badControlFrames {
		p := s.dial(t, string(rune('a'+i)))
		waitParked(t, p.c)
		p.raw(t, bad)
		p.expectClose(t, websocket.CloseProtocolError)
		<-s.ended
	}
}

// TestParkingUnderLoad: many peers sending messages and pings at once, with the readers parking
// and resuming all the time (run with -race): every message is answered, every ping echoed.
func TestParkingUnderLoad(t *testing.T) {
	s := newParkServer(t, Config{})
	const peers, rounds = 12, 60
	var ps []*peer
	for i := range peers {
		ps = append(ps, s.dial(t, string(rune('a'+i))))
	}
	step1 := syncproto.EncodeSyncStep1([]byte{0})
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pingRounds(t, p, i, rounds, step1, func() bool {
				select {
				case <-p.msgs:
					return true
				case <-time.After(10 * time.Second):
					t.Error("no answer")
					return false
				}
			})
		}()
	}
	wg.Wait()
	for _, p := range ps {
		waitParked(t, p.c)
	}
}

// pingRounds is one peer's part of a parking-under-load test (run on a goroutine of its own):
// rounds of a ping, with the data frame msg after it in the same write every other round; each
// ping's pong must come back, and answered must say (reporting with t.Error) that msg was
// answered. It stops at the first failure.
func pingRounds(t *testing.T, p *peer, i, rounds int, msg []byte, answered func() bool) {
	for r := range rounds {
		ping := []byte{byte(i), byte(r)}
		b := maskedFrame(websocket.PingMessage, ping)
		if r%2 == 0 {
			b = append(b, maskedFrame(websocket.BinaryMessage, msg)...)
		}
		if _, err := p.conn.NetConn().Write(b); err != nil {
			t.Error(err)
			return
		}
		select {
		case got := <-p.pongs:
			if got != string(ping) {
				t.Errorf("pong %q, want %q", got, ping)
				return
			}
		case <-time.After(10 * time.Second):
			t.Error("no pong")
			return
		}
		if r%2 == 0 && !answered() {
			return
		}
		if r%7 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// TestDropBuffer: a parked reader's buffer goes back to the pool and a fresh one takes over
// where the stream left off; the bytes gorilla reads are the bytes sent, in order.
func TestDropBuffer(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	want := make([]byte, 10_000)
	_, _ = rand.Read(want)
	go func() {
		for i := 0; i < len(want); i += 100 {
			if _, err := a.Write(want[i : i+100]); err != nil {
				return
			}
		}
	}()
	c := &Client{}
	c.pk.br, c.pk.src = bufio.NewReaderSize(b, ReadBufferSize), b
	var got []byte
	chunk := make([]byte, 100)
	for len(got) < len(want) {
		if _, err := io.ReadFull(c.pk.br, chunk); err != nil {
			t.Fatal(err)
		}
		got = append(got, chunk...)
		if c.pk.br.Buffered() == 0 {
			c.dropBuffer()
			if c.pk.br.Size() != 0 {
				t.Fatal("the buffer was kept")
			}
			c.takeBuffer()
			if c.pk.br.Size() != ReadBufferSize {
				t.Fatalf("buffer of %d bytes after takeBuffer", c.pk.br.Size())
			}
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the stream changed across buffer swaps")
	}
}

// TestControlFrameLen: control frames as gorilla's client writes them are recognised whole and
// unmasked to their payload; any prefix is not a frame; other frames are left alone.
func TestControlFrameLen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		// Answer the handshake by hand, then pass every byte on.
		buf := make([]byte, 4096)
		n, _ := nc.Read(buf)
		key := ""
		for _, line := range strings.Split(string(buf[:n]), "\r\n") {
			if name, value, ok := strings.Cut(line, ": "); ok && strings.EqualFold(name, "Sec-WebSocket-Key") {
				key = value
			}
		}
		_, _ = nc.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptKey(key) + "\r\n\r\n"))
		for {
			n, err := nc.Read(buf)
			if err != nil {
				return
			}
			got <- append([]byte(nil), buf[:n]...)
		}
	}()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &Client{}
	var pinged string
	c.pk.ping = func(s string) error { pinged = s; return nil }
	for n := 0; n <= 125; n++ {
		payload := make([]byte, n)
		_, _ = rand.Read(payload)
		for _, op := range []int{websocket.PingMessage, websocket.PongMessage} {
			if err := conn.WriteControl(op, payload, time.Now().Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			f := <-got
			if l := controlFrameLen(f); l != len(f) {
				t.Fatalf("op %d, %d bytes: length %d, want %d", op, n, l, len(f))
			}
			for i := range len(f) {
				if controlFrameLen(f[:i]) != 0 {
					t.Fatalf("op %d: a %d-byte prefix taken for a frame", op, i)
				}
			}
			if op == websocket.PingMessage {
				pinged = ""
				c.handleControl(f)
				if pinged != string(payload) {
					t.Fatalf("ping payload %x, want %x", pinged, payload)
				}
			}
		}
	}
	if err := conn.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if controlFrameLen(<-got) != 0 {
		t.Fatal("a binary frame taken for a control frame")
	}
}

// FuzzControlFrameLen: any bytes; a frame is found only where a valid client ping or pong is.
func FuzzControlFrameLen(f *testing.F) {
	f.Add([]byte{0x89, 0x80, 1, 2, 3, 4})
	f.Add([]byte{0x8A, 0x82, 1, 2, 3, 4, 5, 6, 7})
	f.Add([]byte{0x89, 0xFD})
	f.Add(maskedFrame(websocket.PingMessage, bytes.Repeat([]byte{7}, 125)))
	f.Fuzz(func(t *testing.T, p []byte) {
		n := controlFrameLen(p)
		if n == 0 {
			return
		}
		if n < 6 || n > maxControlFrame || n > len(p) {
			t.Fatalf("length %d of %d bytes", n, len(p))
		}
		if (p[0] != 0x89 && p[0] != 0x8A) || p[1]&0x80 == 0 || n != 6+int(p[1]&0x7f) {
			t.Fatalf("%x taken for a control frame", p[:2])
		}
		c := &Client{}
		c.pk.ping = func(string) error { return nil }
		c.cfg.PongWait = time.Second
		c.conf = &c.cfg
		c.conn = deadlineConn{}
		c.handleControl(p[:n])
	})
}

// deadlineConn is a Conn that only takes read deadlines.
type deadlineConn struct{ Conn }

func (deadlineConn) SetReadDeadline(time.Time) error { return nil }

// acceptKey is the Sec-WebSocket-Accept answer to key (RFC 6455 section 4.2.2).
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}
