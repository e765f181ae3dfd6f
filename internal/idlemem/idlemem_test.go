package idlemem_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ysync/ysync/internal/idlemem"
	"github.com/ysync/ysync/server"
)

var newServer = idlemem.Ysync(slog.New(slog.NewTextHandler(io.Discard, nil)))

// What an idle y-websocket connection holds: no goroutine (its reader parked, session/park.go)
// and nothing of net/http (the handler returned after the upgrade), no read buffer (the parked
// reader gave it back), no pre-rendered log attributes, no principal. The breakdown itself is
// docs/load.md's; this keeps its structure from regressing.
func TestIdleConnectionHoldsNoGoroutine(t *testing.T) {
	const n = 200
	// Idle for longer than a reader waits before it parks (session.parkAfter, 2 s).
	rep, err := idlemem.Measure(context.Background(), idlemem.Config{Clients: n, Docs: 10, Idle: 3 * time.Second, Sites: true}, newServer)
	if err != nil {
		t.Fatal(err)
	}
	added := func(fn string) int { return rep.IdleGC.ByCreator[fn] - rep.Before.ByCreator[fn] }
	if got := added("server.(*Server).runSession") + added("session.(*connCore).wake"); got > 0 {
		t.Errorf("%d session goroutines for %d idle connections, want none (parked readers)", got, n)
	}
	var others []string
	for fn, c := range rep.IdleGC.ByCreator {
		if d := c - rep.Before.ByCreator[fn]; d > 0 && fn != "shareddoc.(*Doc).run" && fn != "session.joinPoller" {
			others = append(others, fn)
		}
	}
	if len(others) > 0 {
		t.Errorf("idle connections hold other goroutines too: %v", others)
	}
	site := func(prefix string) int64 {
		var b int64
		for k, v := range rep.IdleGC.HeapBySite {
			if strings.HasPrefix(k, prefix) {
				b += v - rep.Before.HeapBySite[k]
			}
		}
		return b / n
	}
	if b := site("bufio.NewReaderSize ← session.(*ownReader).Hijack"); b == 0 || b > 128 {
		t.Errorf("gorilla's bufio.Reader: %d bytes per connection, want its struct without the buffer (≤ 128)", b)
	}
	if b := site("bufio.NewReaderSize ← websocket.newConn"); b != 0 {
		t.Errorf("gorilla made a read buffer of its own: %d bytes per connection", b)
	}
	for _, s := range []string{"slog.(*commonHandler).clone", "auth.", "http."} {
		if b := site(s); b > 8 {
			t.Errorf("%s…: %d bytes per idle connection still live", s, b)
		}
	}
	var out bytes.Buffer
	rep.Format(&out)
	for _, want := range []string{"VmRSS", "goroutine stacks", "websocket.newConn"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// Idle Hocuspocus sockets sync, then hold what an idle y-websocket connection holds: no
// goroutine (the reader parked, session/park.go; the server's goroutine for the socket ended)
// and no read buffer.
func TestHocuspocusClientsSync(t *testing.T) {
	const n = 20
	rep, err := idlemem.Measure(context.Background(), idlemem.Config{Clients: n, Docs: 5, Protocol: "hocuspocus", Idle: 500 * time.Millisecond, Sites: true}, newServer)
	if err != nil {
		t.Fatal(err)
	}
	var others []string
	for fn, c := range rep.IdleGC.ByCreator {
		if d := c - rep.Before.ByCreator[fn]; d > 0 && fn != "shareddoc.(*Doc).run" && fn != "session.joinPoller" {
			others = append(others, fn)
		}
	}
	if len(others) > 0 {
		t.Errorf("%d idle Hocuspocus sockets hold goroutines, want none (parked readers): %v", n, others)
	}
	var b int64
	for k, v := range rep.IdleGC.HeapBySite {
		if strings.HasPrefix(k, "bufio.NewReaderSize ← session.(*ownReader).Hijack") {
			b += v - rep.Before.HeapBySite[k]
		}
	}
	if b /= n; b == 0 || b > 128 {
		t.Errorf("gorilla's bufio.Reader: %d bytes per socket, want its struct without the buffer (≤ 128)", b)
	}
}

// An idle socket keeps no reader stack: its reader parked. (Before sockets parked, this made
// sure the reader kept the 4 KiB stack a y-websocket reader has: opening a document (token,
// admission, join, first sync) still runs off it, for the reader that lingers or cannot park.)
func TestHocuspocusReaderStackStaysSmall(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's frames are bigger: stack sizes say nothing")
	}
	const n = 400
	rep, err := idlemem.Measure(context.Background(), idlemem.Config{Clients: n, Docs: 10, Protocol: "hocuspocus", Idle: 50 * time.Millisecond}, newServer)
	if err != nil {
		t.Fatal(err)
	}
	perConn := (float64(rep.IdleGC.Stacks) - float64(rep.Before.Stacks)) / n
	t.Logf("stack per idle Hocuspocus socket: %.0f B", perConn)
	if perConn > 1<<10 {
		t.Errorf("%.0f B of stack per idle socket, want none: the reader did not park", perConn)
	}
}

// With parking off (server.Config.NoParking, `ysync serve --park-idle-readers=false`) every idle
// connection of either protocol keeps its reader goroutine, and the clients still sync: the way
// back from parking works, and the switch reaches both kinds of connection.
func TestNoParkingKeepsAReaderPerConnection(t *testing.T) {
	blocking := idlemem.YsyncWith(server.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoParking: true})
	for proto, creator := range map[string]string{
		"y-websocket": "server.(*Server).runSession",
		"hocuspocus":  "session.(*HPSocket).Serve",
	} {
		const n = 30
		rep, err := idlemem.Measure(context.Background(), idlemem.Config{Clients: n, Docs: 5, Protocol: proto, Idle: 100 * time.Millisecond, Sites: true}, blocking)
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		if got := rep.IdleGC.ByCreator[creator] - rep.Before.ByCreator[creator]; got < n {
			t.Errorf("%s: %d goroutines made by %s for %d idle connections, want one each (readers not parked); all: %v", proto, got, creator, n, rep.IdleGC.ByCreator)
		}
		if got := rep.IdleGC.ByCreator["session.(*connCore).wake"] - rep.Before.ByCreator["session.(*connCore).wake"]; got != 0 {
			t.Errorf("%s: %d resumed parked readers with parking off", proto, got)
		}
	}
}
