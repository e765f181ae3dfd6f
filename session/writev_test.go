package session

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/limits"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/store"
)

// wsServer runs sessions behind a real HTTP server and hands each new Client to the test.
type wsServer struct {
	srv     *httptest.Server
	clients chan *Client
	done    chan struct{} // closed when every session's Run returned
	wg      sync.WaitGroup
}

func newWSServer(t testing.TB, tlsOn, wrapListener bool) *wsServer {
	t.Helper()
	reg := shareddoc.NewRegistry(shareddoc.Config{Store: store.NewMemory(), IdleTimeout: time.Hour})
	s := &wsServer{clients: make(chan *Client, 4), done: make(chan struct{})}
	up := websocket.Upgrader{ReadBufferSize: 1 << 10, WriteBufferSize: 32 << 10, WriteBufferPool: &sync.Pool{}}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := New(conn, "doc", shareddoc.SessionInfo{ID: r.URL.Query().Get("id")}, Config{})
		s.wg.Add(1)
		defer s.wg.Done()
		s.clients <- c
		_ = c.Run(context.Background(), reg)
	}))
	if wrapListener {
		s.srv.Listener = limits.NewListener(s.srv.Listener, limits.ListenerConfig{})
	}
	if tlsOn {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	t.Cleanup(func() { closeTestServer(t, s.srv, &s.wg, reg) })
	return s
}

// closeTestServer closes srv, waits for its sessions (wg) and shuts reg down.
func closeTestServer(t testing.TB, srv *httptest.Server, wg *sync.WaitGroup, reg *shareddoc.Registry) {
	srv.Close()
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := reg.Shutdown(ctx); err != nil {
		t.Error(err)
	}
}

func (s *wsServer) dial(t testing.TB, id string) (*websocket.Conn, *Client) {
	t.Helper()
	d := websocket.Dialer{}
	if s.srv.TLS != nil {
		d.TLSClientConfig = s.srv.Client().Transport.(*http.Transport).TLSClientConfig
	}
	u := "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/?id=" + id
	conn, _, err := d.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-s.clients:
		return conn, c
	case <-time.After(10 * time.Second):
		t.Fatal("no session")
		return nil, nil
	}
}

// payloads returns frames of every header length: 7-bit, 16-bit (126…65535) and 64-bit
// lengths, one larger than a batch, and many small ones.
func payloads() [][]byte {
	sizes := []int{1, 2, 125, 126, 127, 1000, 65535, 65536, 70_000, 300_000, maxBatchBytes + 5}
	for i := range 3000 {
		sizes = append(sizes, 1+i%200)
	}
	out := make([][]byte, len(sizes))
	for i, n := range sizes {
		f := make([]byte, n)
		for j := range f {
			f[j] = byte(i + j*7)
		}
		out[i] = f
	}
	return out
}

// TestWritevFramesParsedByGorilla: a gorilla client over real TCP receives every frame the
// writev path sent, whole and in order — all header lengths, batches of many frames, frames
// over a batch's byte bound — while it pings the server without pause, so that pong replies
// from the reader goroutine are written between (never inside) the batches.
func TestWritevFramesParsedByGorilla(t *testing.T) {
	for _, tc := range []struct {
		name          string
		tls, wrap     bool
		wantWritev    bool
		wantTCPOfConn bool
	}{
		{name: "tcp", wantWritev: true},
		{name: "tcp behind limits.Listener", wrap: true, wantWritev: true},
		{name: "tls falls back to WriteMessage", tls: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newWSServer(t, tc.tls, tc.wrap)
			conn, c := srv.dial(t, "a")
			defer conn.Close()
			var pongs atomic.Int64
			conn.SetPongHandler(func(string) error { pongs.Add(1); return nil })

			want := payloads()
			stopPing := make(chan struct{})
			pingDone := make(chan struct{})
			go func() {
				defer close(pingDone)
				for {
					select {
					case <-stopPing:
						return
					default:
					}
					if conn.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second)) != nil {
						return
					}
					time.Sleep(50 * time.Microsecond)
				}
			}()
			// Several rounds, each queued at once: the writer takes them in a few batches.
			for round := range 3 {
				for _, f := range want {
					if !c.Send(f) {
						t.Fatalf("round %d: Send refused", round)
					}
				}
				for i, f := range want {
					_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
					mt, got, err := conn.ReadMessage()
					if err != nil {
						t.Fatalf("round %d frame %d: %v", round, i, err)
					}
					if mt != websocket.BinaryMessage || !bytes.Equal(got, f) {
						t.Fatalf("round %d frame %d: got type %d, %d bytes; want %d bytes", round, i, mt, len(got), len(f))
					}
				}
			}
			close(stopPing)
			<-pingDone
			if pongs.Load() == 0 && tc.wantWritev {
				t.Error("no pong came back: pings were not answered during the writes")
			}
			c.Kick(DisconnectNormal)
			readUntilClose(t, conn, int(DisconnectNormal.Code))
			conn.Close()
			srv.wg.Wait() // Run returned: the writer's state is safe to read
			if got := c.wv.tcp != nil; got != tc.wantWritev {
				t.Errorf("writev path used: %v, want %v", got, tc.wantWritev)
			}
		})
	}
}

// readUntilClose reads (and drops) messages until the connection ends, and fails the test
// unless it ended with a close frame carrying code.
func readUntilClose(t *testing.T, conn *websocket.Conn, code int) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, code) {
				t.Errorf("close: %v, want close %d", err, code)
			}
			return
		}
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

// TestWriteBatchAllocs: once its scratch has grown, a batch allocates nothing per frame (the
// headers and the iovec list are reused; the frames are not copied).
func TestWriteBatchAllocs(t *testing.T) {
	a, b := tcpPair(t)
	go func() { _, _ = io.Copy(io.Discard, b) }()
	w := batchWriter{init: true, tcp: a}
	frames := make([][]byte, 64)
	for i := range frames {
		frames[i] = make([]byte, 40+i)
	}
	deadline := time.Now().Add(time.Minute)
	if _, err := w.writeBatch(frames, deadline); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := w.writeBatch(frames, deadline); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("a batch of %d frames allocates %.1f times, want none", len(frames), allocs)
	}
}

// TestAppendHeader: the three length encodings of RFC 6455 §5.2, unmasked, FIN and binary.
func TestAppendHeader(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "8200"}, {125, "827d"}, {126, "827e007e"}, {65535, "827effff"},
		{65536, "827f0000000000010000"}, {1 << 32, "827f0000000100000000"},
	} {
		if got := fmt.Sprintf("%x", appendHeader(nil, tc.n)); got != tc.want {
			t.Errorf("header for %d bytes: %s, want %s", tc.n, got, tc.want)
		}
	}
}

// BenchmarkWriteBatch: one writev of 16 small frames (a busy document's wake-up) over loopback.
func BenchmarkWriteBatch(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	w := batchWriter{init: true, tcp: conn.(*net.TCPConn)}
	frames := make([][]byte, 16)
	for i := range frames {
		frames[i] = make([]byte, 60)
	}
	deadline := time.Now().Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.writeBatch(frames, deadline); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDeliveryAllocs: delivering a frame to an idle session — Send, the writer it starts, the
// writev — allocates nothing once the session's arrays exist (the frame itself is the
// document's, shared by all peers). The client end reads raw bytes, so that its own decoding is
// not counted.
func TestDeliveryAllocs(t *testing.T) {
	srv := newWSServer(t, false, false)
	conn, c := srv.dial(t, "a")
	go func() { _, _ = io.Copy(io.Discard, conn.UnderlyingConn()) }()
	frame := make([]byte, 80)
	deliver := func() {
		want := c.cfg.Stats.MessagesOut.Load() + 1
		if !c.Send(frame) {
			t.Fatal("Send refused")
		}
		for c.cfg.Stats.MessagesOut.Load() < want {
			runtime.Gosched()
		}
	}
	for range 10 {
		deliver()
	}
	if allocs := testing.AllocsPerRun(200, deliver); allocs >= 1 {
		t.Errorf("a delivery allocates %.2f times, want none", allocs)
	}
	c.Kick(DisconnectNormal)
	conn.Close()
}
