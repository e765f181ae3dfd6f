//go:build linux

package session

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/store"
)

// hpParkServer runs Hocuspocus sockets that park (Upgrade, ParkWhenIdle, Serve) behind a real
// HTTP server, as the ysync server does (server/hocuspocus.go).
type hpParkServer struct {
	srv   *httptest.Server
	reg   *shareddoc.Registry
	socks chan *HPSocket
	ended chan *HPSocket // each socket, once its done ran
	dones atomic.Int64   // done calls, all sockets
	wg    sync.WaitGroup
}

func newHPParkServer(t *testing.T, cfg HPConfig) *hpParkServer {
	t.Helper()
	reg := shareddoc.NewRegistry(shareddoc.Config{Store: store.NewMemory(), IdleTimeout: time.Hour})
	s := &hpParkServer{reg: reg, socks: make(chan *HPSocket, 64), ended: make(chan *HPSocket, 64)}
	up := websocket.Upgrader{WriteBufferSize: 32 << 10, WriteBufferPool: &sync.Pool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, br, err := Upgrade(&up, w, r)
		if err != nil {
			return
		}
		if br == nil {
			t.Error("Upgrade returned no reader")
		}
		sock := NewHPSocket(conn, "test", "tester", time.Now(), cfg)
		sock.ParkWhenIdle(br)
		s.wg.Add(1)
		s.socks <- sock
		go sock.Serve(context.Background(), reg, func(error) {
			s.dones.Add(1)
			s.ended <- sock
			s.wg.Done()
		})
	}))
	t.Cleanup(func() { closeTestServer(t, s.srv, &s.wg, reg) })
	return s
}

// dial connects a peer (silent: it does not answer the server's pings) and returns it with the
// server's socket.
func (s *hpParkServer) dial(t *testing.T, silent bool) (*peer, *HPSocket) {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.srv.URL, "http")+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := watchPeer(t, conn, silent)
	select {
	case sock := <-s.socks:
		return p, sock
	case <-time.After(10 * time.Second):
		t.Fatal("no socket")
	}
	return nil, nil
}

// hpSendTo sends one Hocuspocus frame for key.
func (p *peer) hpSendTo(t *testing.T, key string, m syncproto.Message) {
	t.Helper()
	f, err := syncproto.EncodeHP(key, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.conn.WriteMessage(websocket.BinaryMessage, f); err != nil {
		t.Fatal(err)
	}
}

// expectHP waits for a frame from the server that want accepts, skipping others (keep-alives).
func (p *peer) expectHP(t *testing.T, what string, want func(m syncproto.HPMessage) bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f := <-p.msgs:
			m, err := syncproto.DecodeHP(f)
			if err != nil {
				t.Fatalf("undecodable frame %x: %v", f, err)
			}
			if want(m) {
				return
			}
		case <-timeout:
			t.Fatalf("no %s", what)
		}
	}
}

// hpOpen opens key's document on the socket (Token, SyncStep1) and waits for the server's
// Authenticated and SyncStep2.
func (p *peer) hpOpen(t *testing.T, key string) {
	t.Helper()
	if err := p.conn.WriteMessage(websocket.BinaryMessage, syncproto.EncodeHPToken(key, "", "")); err != nil {
		t.Fatal(err)
	}
	p.expectHP(t, "Authenticated for "+key, func(m syncproto.HPMessage) bool {
		return m.Key == key && m.Type == syncproto.HPAuth && m.AuthType == syncproto.HPAuthAuthenticated
	})
	p.hpSync(t, key)
}

// hpSync sends key's SyncStep1 and waits for the SyncStep2 answering it.
func (p *peer) hpSync(t *testing.T, key string) {
	t.Helper()
	p.hpSendTo(t, key, syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncStep1, Payload: []byte{0}})
	p.expectHP(t, "SyncStep2 for "+key, func(m syncproto.HPMessage) bool {
		return m.Key == key && m.Type == syncproto.HPSync && m.Sync.SyncType == syncproto.SyncStep2
	})
}

// hpEdit sends an edit of key's text and waits for its SyncStatus(1): the document stored it.
func (p *peer) hpEdit(t *testing.T, key string, id uint64, text string) {
	t.Helper()
	p.hpSendTo(t, key, syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncUpdate, Payload: textUpdate(t, id, text)})
	p.expectHP(t, "SyncStatus for "+key, func(m syncproto.HPMessage) bool {
		return m.Key == key && m.Type == syncproto.HPSyncStatus && m.Status == 1
	})
}

// textUpdate is the update that inserts s into text "t" of a fresh document of client id (the
// external tests' update, client_test.go, for this package's own tests).
func textUpdate(t *testing.T, id uint64, s string) []byte {
	t.Helper()
	d := crdt.NewDoc(crdt.DocOptions{ClientID: id})
	var u []byte
	d.ObserveUpdate(func(b []byte, _ any, _ *crdt.Transaction) { u = append([]byte(nil), b...) })
	if err := d.GetText("t").Insert(0, s, nil); err != nil {
		t.Fatal(err)
	}
	return u
}

// docTextOf is text "t" of the loaded document name.
func docTextOf(t *testing.T, reg *shareddoc.Registry, name string) string {
	t.Helper()
	d := reg.Get(name)
	if d == nil {
		t.Fatalf("document %s not loaded", name)
	}
	var s string
	if err := d.Update(context.Background(), func(tx *crdt.Transaction) { s = tx.Doc().GetText("t").String() }); err != nil {
		t.Fatal(err)
	}
	return s
}

// hpReaderGoroutines counts goroutines inside a socket's read loop.
func hpReaderGoroutines() int { return goroutinesIn("session.(*HPSocket).readLoop") }

// TestHPParkedSocketKeepsNoGoroutine: idle sockets keep no goroutine in their read loop and no
// read buffer; a frame resumes the reader (it is served), after which the socket parks again.
func TestHPParkedSocketKeepsNoGoroutine(t *testing.T) {
	s := newHPParkServer(t, HPConfig{})
	type pair struct {
		p    *peer
		sock *HPSocket
	}
	var socks []pair
	for range 5 {
		p, sock := s.dial(t, false)
		socks = append(socks, pair{p, sock})
	}
	for i, x := range socks {
		x.p.hpOpen(t, "doc"+string(rune('a'+i)))
		waitParked(t, x.sock)
		// (That the parked socket gave its read buffer back is internal/idlemem's test: a
		// reader may resume at any time, so the test cannot look at the buffer without a race.)
	}
	if n := hpReaderGoroutines(); n != 0 {
		t.Fatalf("%d goroutines in a socket's read loop with every socket idle", n)
	}
	for round := range 3 {
		for i, x := range socks {
			x.p.hpEdit(t, "doc"+string(rune('a'+i)), uint64(10*round+i+1), "x")
		}
		for _, x := range socks {
			waitParked(t, x.sock) // busy after an edit: parked once the wheel ends its linger
		}
		if n := hpReaderGoroutines(); n != 0 {
			t.Fatalf("round %d: %d goroutines in a read loop after the edits", round, n)
		}
	}
	for i := range socks {
		if got := docTextOf(t, s.reg, "doc"+string(rune('a'+i))); got != "xxx" {
			t.Fatalf("document %d has %q, want the three edits", i, got)
		}
	}
	if n := s.dones.Load(); n != 0 {
		t.Fatalf("%d sockets ended", n)
	}
}

// TestHPParkedSeveralDocuments: a socket with several documents open parks between frames of
// any of them and resumes for each: edits, awareness and a fresh sync of each document are
// served in turn, and the socket parks after each.
func TestHPParkedSeveralDocuments(t *testing.T) {
	s := newHPParkServer(t, HPConfig{})
	p, sock := s.dial(t, false)
	keys := []string{"one", "two", "three"}
	for _, k := range keys {
		p.hpOpen(t, k)
	}
	waitParked(t, sock)
	if n := len(sock.Sessions()); n != 3 {
		t.Fatalf("%d sessions, want 3", n)
	}
	for i, k := range keys {
		p.hpEdit(t, k, uint64(i+1), k)
		waitParked(t, sock)
		if n := hpReaderGoroutines(); n != 0 {
			t.Fatalf("%d readers after an edit of %s", n, k)
		}
	}
	// An awareness update (busy, as an edit) of one document; the others' peers see nothing of
	// it, and the reader parks.
	p.hpSendTo(t, "two", syncproto.Message{Type: syncproto.TypeAwareness, Payload: awarenessUpdate(7, `{"x":1}`)})
	deadline := time.Now().Add(10 * time.Second)
	for docInfo(t, s.reg, "two").AwarenessStates != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the awareness update never reached its document")
		}
		time.Sleep(time.Millisecond)
	}
	waitParked(t, sock)
	if n := docInfo(t, s.reg, "one").AwarenessStates + docInfo(t, s.reg, "three").AwarenessStates; n != 0 {
		t.Fatalf("%d awareness states in the other documents", n)
	}
	for _, k := range keys {
		p.hpSync(t, k) // answered after the park: the reader resumed for it
		waitParked(t, sock)
	}
	for _, k := range keys {
		if got := docTextOf(t, s.reg, k); got != k {
			t.Fatalf("document %s has %q", k, got)
		}
	}
}

// awarenessUpdate is an awareness update of one client: clock 1, state js (id and len(js) below
// 128: each number is one byte).
func awarenessUpdate(id byte, js string) []byte {
	return append([]byte{1, id, 1, byte(len(js))}, js...)
}

// docInfo describes the loaded document name.
func docInfo(t *testing.T, reg *shareddoc.Registry, name string) shareddoc.Info {
	t.Helper()
	d := reg.Get(name)
	if d == nil {
		t.Fatalf("document %s not loaded", name)
	}
	in, err := d.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestHPParkedBusyLingers: after an edit the reader waits parkAfter on its goroutine (an
// editing peer never pays for parking); after the sync handshake it parks at once.
func TestHPParkedBusyLingers(t *testing.T) {
	t.Cleanup(func() { parkAfter = 20 * time.Millisecond }) // after the server's cleanup
	parkAfter = time.Hour
	s := newHPParkServer(t, HPConfig{Keepalive: 100 * time.Millisecond}) // a 10 ms wheel tick
	p, sock := s.dial(t, false)
	p.hpOpen(t, "a")
	waitParked(t, sock) // the handshake alone: at once, although parkAfter is an hour
	for i := range 5 {
		p.hpEdit(t, "a", uint64(i+1), "y")
		time.Sleep(50 * time.Millisecond)
		if sock.pk.state.Load() == readerParked {
			t.Fatal("parked 50 ms after an edit, with parkAfter an hour")
		}
	}
	// An awareness update is busy too.
	p.hpSendTo(t, "a", syncproto.Message{Type: syncproto.TypeAwareness, Payload: awarenessUpdate(9, `{}`)})
	time.Sleep(50 * time.Millisecond)
	if sock.pk.state.Load() == readerParked {
		t.Fatal("parked 50 ms after an awareness update, with parkAfter an hour")
	}
	p.hpSync(t, "a") // still answered; after this handshake message the reader parks at once
	waitParked(t, sock)
}

// TestHPBusyReaderParksOnTheWheel: a busy socket reader that falls quiet is parked by the
// socket's housekeeping wheel once parkAfter passed (interruptLinger), keeps its real deadline
// (pings and pongs go on for several pong waits without a close) and still serves frames.
func TestHPBusyReaderParksOnTheWheel(t *testing.T) {
	s := newHPParkServer(t, HPConfig{Config: Config{PongWait: 500 * time.Millisecond}})
	p, sock := s.dial(t, false)
	p.hpOpen(t, "a")
	for i := range 3 {
		p.hpEdit(t, "a", uint64(i+1), "w")
		waitParked(t, sock)
	}
	time.Sleep(time.Second) // two pong waits: the deadline the linger moved was put back
	p.hpSync(t, "a")
	select {
	case <-s.ended:
		t.Fatal("socket ended")
	default:
	}
	if got := docTextOf(t, s.reg, "a"); got != "www" {
		t.Fatalf("document has %q", got)
	}
}

// TestHPParkedPingPong: a parked socket answers WebSocket pings (the pong echoes the payload)
// and stays parked; a ping and a frame in one segment either way round are both served.
func TestHPParkedPingPong(t *testing.T) {
	s := newHPParkServer(t, HPConfig{})
	p, sock := s.dial(t, false)
	p.hpOpen(t, "a")
	waitParked(t, sock)
	for _, payload := range []string{"", "hello", strings.Repeat("z", 125)} {
		if err := p.conn.WriteControl(websocket.PingMessage, []byte(payload), time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		p.expectPong(t, payload)
		waitParked(t, sock)
		if n := hpReaderGoroutines(); n != 0 {
			t.Fatalf("%d readers after a ping", n)
		}
	}
	step1, err := syncproto.EncodeHP("a", syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncStep1, Payload: []byte{0}})
	if err != nil {
		t.Fatal(err)
	}
	isStep2 := func(m syncproto.HPMessage) bool {
		return m.Key == "a" && m.Type == syncproto.HPSync && m.Sync.SyncType == syncproto.SyncStep2
	}
	p.raw(t, append(maskedFrame(websocket.PingMessage, []byte("one")), maskedFrame(websocket.BinaryMessage, step1)...))
	p.expectPong(t, "one")
	p.expectHP(t, "SyncStep2", isStep2)
	p.raw(t, append(maskedFrame(websocket.BinaryMessage, step1), maskedFrame(websocket.PingMessage, []byte("two"))...))
	p.expectHP(t, "SyncStep2", isStep2)
	p.expectPong(t, "two")
	waitParked(t, sock)
}

// TestHPParkedDeadline: a parked socket keeps its read deadline. Pongs, consumed by the parked
// reader, extend it; once they stop, the deadline timer wakes the reader, which closes the
// socket within about the pong wait, its documents left and done called once.
func TestHPParkedDeadline(t *testing.T) {
	const wait = 400 * time.Millisecond
	s := newHPParkServer(t, HPConfig{Config: Config{PongWait: wait}})
	p, sock := s.dial(t, true)
	p.hpOpen(t, "a")
	waitParked(t, sock)
	pongsThenSilence(t, p, wait, s.ended, sock)
	if n := len(docInfo(t, s.reg, "a").Sessions); n != 0 {
		t.Fatalf("%d sessions still in the document", n)
	}
	time.Sleep(50 * time.Millisecond)
	if n := s.dones.Load(); n != 1 {
		t.Fatalf("done called %d times", n)
	}
}

// TestHPParkedKickAndPeerClose: closing a parked socket sends the close frame and ends it (done
// once); a peer's close frame to a parked reader ends it too.
func TestHPParkedKickAndPeerClose(t *testing.T) {
	s := newHPParkServer(t, HPConfig{})
	a, sa := s.dial(t, false)
	b, sb := s.dial(t, false)
	a.hpOpen(t, "a")
	b.hpOpen(t, "b")
	waitParked(t, sa)
	waitParked(t, sb)

	sa.Kick(DisconnectGoingAway)
	sa.Kick(DisconnectGoingAway) // idempotent
	a.expectClose(t, int(DisconnectGoingAway.Code))
	if got := <-s.ended; got != sa {
		t.Fatal("wrong socket ended")
	}

	if err := b.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	b.expectClose(t, 4000)
	if got := <-s.ended; got != sb {
		t.Fatal("wrong socket ended")
	}
	if d := sb.Disconnect(); d.Code != DisconnectPeerClosed.Code {
		t.Fatalf("closed as %v, want %v", d, DisconnectPeerClosed)
	}
	for _, k := range []string{"a", "b"} {
		if n := len(docInfo(t, s.reg, k).Sessions); n != 0 {
			t.Fatalf("document %s keeps %d sessions", k, n)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := s.dones.Load(); n != 2 {
		t.Fatalf("done called %d times for 2 sockets", n)
	}
}

// TestHPParkedBadFrames: what a parked socket's reader does not handle itself goes to gorilla,
// which refuses it as it always did (an unmasked ping, reserved bits, a fragmented ping, an
// oversized ping payload), and only that socket closes: a socket beside it, parked too, still
// has its edits stored.
func TestHPParkedBadFrames(t *testing.T) {
	s := newHPParkServer(t, HPConfig{})
	good, goodSock := s.dial(t, false)
	good.hpOpen(t, "good")
	waitParked(t, goodSock) // then lingering after its edits: the wheel parks it only on its tick
	for i, bad := range badControlFrames {
		p, sock := s.dial(t, false)
		p.hpOpen(t, "bad")
		waitParked(t, sock)
		p.raw(t, bad)
		p.expectClose(t, websocket.CloseProtocolError)
		select {
		case got := <-s.ended:
			if got != sock {
				t.Fatalf("case %d: another socket ended", i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("case %d: the socket did not end", i)
		}
		good.hpEdit(t, "good", uint64(100+i), "x")
	}
	if got := docTextOf(t, s.reg, "good"); got != "xxxx" {
		t.Fatalf("good document %q, want xxxx", got)
	}
}

// TestHPParkingUnderLoad: many sockets sending pings and syncs at once, their readers parking
// and resuming all the time (run with -race): every ping is echoed and every SyncStep1 answered,
// and all park again at the end.
func TestHPParkingUnderLoad(t *testing.T) {
	s := newHPParkServer(t, HPConfig{})
	const sockets, rounds = 12, 60
	type pair struct {
		p    *peer
		sock *HPSocket
		key  string
	}
	var ps []pair
	for i := range sockets {
		p, sock := s.dial(t, false)
		key := string(rune('a' + i))
		p.hpOpen(t, key)
		ps = append(ps, pair{p, sock, key})
	}
	var wg sync.WaitGroup
	for i, x := range ps {
		step1, err := syncproto.EncodeHP(x.key, syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncStep1, Payload: []byte{0}})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pingRounds(t, x.p, i, rounds, step1, func() bool {
				for {
					select {
					case f := <-x.p.msgs:
						m, err := syncproto.DecodeHP(f)
						if err != nil {
							t.Errorf("undecodable frame %x: %v", f, err)
							return false
						}
						if m.Key != x.key {
							t.Errorf("socket %s got a frame for %s", x.key, m.Key)
							return false
						}
						if m.Type == syncproto.HPSync && m.Sync.SyncType == syncproto.SyncStep2 {
							return true
						}
						// a keep-alive, or the SyncStep1 the server asks back with
					case <-time.After(10 * time.Second):
						t.Error("no SyncStep2")
						return false
					}
				}
			})
		}()
	}
	wg.Wait()
	for _, x := range ps {
		waitParked(t, x.sock)
	}
}
