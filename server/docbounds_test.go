package server_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/crdt/encoding"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/server"
)

func awarenessMsg(client, clock uint64, state string) []byte {
	e := encoding.NewEncoder()
	e.WriteVarUint(1)
	e.WriteVarUint(client)
	e.WriteVarUint(clock)
	e.WriteVarString(state)
	return syncproto.EncodeAwareness(e.Bytes())
}

func send(t *testing.T, c *websocket.Conn, frame []byte) {
	t.Helper()
	if err := c.WriteMessage(websocket.BinaryMessage, frame); err != nil {
		t.Fatal(err)
	}
}

func metricsText(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return b.String()
}

// With authentication the token subject reaches the document: a second connection of the same
// user takes over its awareness client id at once; another user's is refused with
// permission-denied and leaves the state alone.
func TestAwarenessOwnershipFollowsTokenSubject(t *testing.T) {
	srv, _, base := startMem(t, server.Config{Authenticator: jwtAuth(t)})
	alice := token(t, auth.Claims{Subject: "alice", Docs: map[string]string{"*": "write"}})
	bob := token(t, auth.Claims{Subject: "bob", Docs: map[string]string{"*": "read"}})

	watcher, _ := dialToken(t, base, "doc", bob, nil)
	syncOnce(t, watcher)
	old, _ := dialToken(t, base, "doc", alice, nil)
	syncOnce(t, old)
	send(t, old, awarenessMsg(42, 1, `{"cursor":1}`))
	hasState := func(state string) func(syncproto.Message) bool {
		return func(m syncproto.Message) bool {
			return m.Type == syncproto.TypeAwareness && bytes.Contains(m.Payload, []byte(state))
		}
	}
	readUntil(t, watcher, "alice's first cursor", hasState(`{"cursor":1}`))

	// bob (a reader) reuses alice's id: refused, told so.
	send(t, watcher, awarenessMsg(42, 2, `{"cursor":"bob"}`))
	readUntil(t, watcher, "permission denied", func(m syncproto.Message) bool {
		return m.Type == syncproto.TypeAuth && m.Reason == "awareness client id owned by another session"
	})

	// alice reconnects while the old connection is still open: takeover.
	fresh, _ := dialToken(t, base, "doc", alice, nil)
	syncOnce(t, fresh)
	send(t, fresh, awarenessMsg(42, 3, `{"cursor":3}`))
	readUntil(t, watcher, "alice's cursor from the new connection", hasState(`{"cursor":3}`))
	_ = old.Close() // its leaving must not remove the cursor the new connection owns now
	deadline := time.Now().Add(10 * time.Second)
	for {
		in, err := srv.Registry().Get("doc").Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(in.Sessions) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old connection still attached: %d sessions", len(in.Sessions))
		}
		time.Sleep(10 * time.Millisecond) // polling the asynchronous leave
	}

	send(t, watcher, syncproto.EncodeQueryAwareness())
	readUntil(t, watcher, "query answer with the new cursor", hasState(`{"cursor":3}`))
	m := metricsText(t, base)
	for _, want := range []string{
		`ysync_awareness_takeovers_total{kind="same_user"} 1`,
		`ysync_awareness_entries_refused_total{reason="not_owner"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// Over --max-loaded-docs with every document in use, a new document's upgrade gets 503 and
// Retry-After; once one is idle it is evicted to make room.
func TestMaxLoadedDocsRefusesWith503UntilOneIsIdle(t *testing.T) {
	srv, _, base := startMem(t, server.Config{IdleTimeout: time.Hour, Limits: server.Limits{MaxLoadedDocs: 2}})
	a, _ := dialToken(t, base, "a", "", nil)
	syncOnce(t, a)
	b, _ := dialToken(t, base, "b", "", nil)
	syncOnce(t, b)
	u := "ws" + strings.TrimPrefix(base, "http") + "/ws/c"
	_, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the cap: err %v, resp %+v", err, resp)
	}
	// More connections to a loaded document are fine.
	a2, _ := dialToken(t, base, "a", "", nil)
	syncOnce(t, a2)

	_ = b.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _, err := websocket.DefaultDialer.Dial(u, nil)
		if err == nil {
			syncOnce(t, c)
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("c never admitted after b went idle: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // polling: b's leave is asynchronous
	}
	for srv.Registry().Get("b") != nil {
		if time.Now().After(deadline) {
			t.Fatalf("b not evicted: %v", srv.Registry().List())
		}
		time.Sleep(10 * time.Millisecond)
	}
	m := metricsText(t, base)
	for _, want := range []string{"ysync_document_evictions_total 1", "ysync_documents_refused_total ", "ysync_documents_loaded_limit 2"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(m, "ysync_documents_refused_total 0\n") {
		t.Error("refusal not counted")
	}
}
