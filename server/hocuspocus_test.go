package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/session"
)

func dialHP(t *testing.T, hs string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs, "http")+"/ws?user=carol", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readHP reads frames until pred holds for one.
func readHP(t *testing.T, c *websocket.Conn, what string, pred func(syncproto.HPMessage) bool) syncproto.HPMessage {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		m, err := syncproto.DecodeHP(data)
		if err != nil {
			t.Fatalf("bad frame %x: %v", data, err)
		}
		if pred(m) {
			return m
		}
	}
}

// GET /ws speaks Hocuspocus; each document of the socket is listed with its protocol, an admin
// DELETE closes that document only, and /metrics counts by protocol.
func TestHocuspocusAdminAndMetrics(t *testing.T) {
	srv, hs := start(t, server.Config{IdleTimeout: time.Minute})
	c := dialHP(t, hs.URL)
	for _, k := range []string{"doc-a", "doc-b"} {
		if err := c.WriteMessage(websocket.BinaryMessage, syncproto.EncodeHPToken(k, "", "")); err != nil {
			t.Fatal(err)
		}
		readHP(t, c, "authenticated "+k, func(m syncproto.HPMessage) bool {
			return m.Key == k && m.Type == syncproto.HPAuth && m.AuthType == syncproto.HPAuthAuthenticated
		})
	}
	var sessions []struct {
		ID, Doc, User, Protocol string
	}
	if code := getJSON(t, hs.URL+"/api/sessions", &sessions); code != 200 || len(sessions) != 2 {
		t.Fatalf("sessions %d %+v", code, sessions)
	}
	var aID string
	for _, s := range sessions {
		if s.Protocol != session.ProtocolHocuspocus || s.User != "carol" {
			t.Fatalf("session %+v", s)
		}
		if s.Doc == "doc-a" {
			aID = s.ID
		}
	}
	var room struct {
		Sessions []struct{ Protocol string } `json:"sessions"`
	}
	if code := getJSON(t, hs.URL+"/api/rooms/doc-b", &room); code != 200 || len(room.Sessions) != 1 || room.Sessions[0].Protocol != session.ProtocolHocuspocus {
		t.Fatalf("room %d %+v", code, room)
	}
	req, _ := http.NewRequest(http.MethodDelete, hs.URL+"/api/sessions/"+aID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %v %v", resp, err)
	}
	resp.Body.Close()
	readHP(t, c, "close of doc-a", func(m syncproto.HPMessage) bool {
		return m.Key == "doc-a" && m.Type == syncproto.HPClose && m.Text == session.HPReasonTerminated
	})
	// doc-b is still served on the same socket.
	if err := c.WriteMessage(websocket.BinaryMessage, append(syncproto.AppendHPKey(nil, "doc-b"), byte(syncproto.HPQueryAwareness))); err != nil {
		t.Fatal(err)
	}
	readHP(t, c, "awareness of doc-b", func(m syncproto.HPMessage) bool { return m.Key == "doc-b" && m.Type == syncproto.HPAwareness })

	// The stateless broadcast reaches the socket's remaining document.
	if err := srv.BroadcastStateless(context.Background(), "doc-b", "hello"); err != nil {
		t.Fatal(err)
	}
	readHP(t, c, "stateless", func(m syncproto.HPMessage) bool { return m.Type == syncproto.HPStateless && m.Text == "hello" })
	// An RPC over the stateless channel (an unknown method: answered with an error, and timed
	// like a y-websocket RPC in ysync_rpc_duration_seconds).
	if err := c.WriteMessage(websocket.BinaryMessage, syncproto.EncodeHPStateless("doc-b", `{"id":7,"method":"no-such-method"}`)); err != nil {
		t.Fatal(err)
	}
	readHP(t, c, "rpc reply", func(m syncproto.HPMessage) bool {
		return m.Type == syncproto.HPStateless && strings.Contains(m.Text, `"id":7`) && strings.Contains(m.Text, `"error"`)
	})

	resp, err = http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`ysync_protocol_connections{protocol="hocuspocus"} 1`,
		`ysync_protocol_sessions{protocol="hocuspocus"} 1`,
		`ysync_hocuspocus_document_closes_total 1`,
		`ysync_rpc_duration_seconds_count 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// --max-conns-per-doc counts Hocuspocus sessions: over it a document is refused with
// PermissionDenied, and a closed session gives its place back.
func TestHocuspocusConnsPerDoc(t *testing.T) {
	_, hs := start(t, server.Config{IdleTimeout: time.Minute, Limits: server.Limits{MaxConnsPerDoc: 1}})
	a, b := dialHP(t, hs.URL), dialHP(t, hs.URL)
	authed := func(m syncproto.HPMessage) bool {
		return m.Key == "d" && m.Type == syncproto.HPAuth && m.AuthType == syncproto.HPAuthAuthenticated
	}
	if err := a.WriteMessage(websocket.BinaryMessage, syncproto.EncodeHPToken("d", "", "")); err != nil {
		t.Fatal(err)
	}
	readHP(t, a, "a authenticated", authed)
	if err := b.WriteMessage(websocket.BinaryMessage, syncproto.EncodeHPToken("d", "", "")); err != nil {
		t.Fatal(err)
	}
	readHP(t, b, "b refused", func(m syncproto.HPMessage) bool {
		return m.Key == "d" && m.AuthType == syncproto.HPAuthPermissionDenied && m.Text == session.HPReasonTooMany
	})
	if err := a.WriteMessage(websocket.BinaryMessage, append(syncproto.AppendHPKey(nil, "d"), byte(syncproto.HPClose))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := b.WriteMessage(websocket.BinaryMessage, syncproto.EncodeHPToken("d", "", "")); err != nil {
			t.Fatal(err)
		}
		m := readHP(t, b, "b's answer", func(m syncproto.HPMessage) bool { return m.Key == "d" && m.Type == syncproto.HPAuth })
		if m.AuthType == syncproto.HPAuthAuthenticated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b never admitted after a closed its document")
		}
		time.Sleep(20 * time.Millisecond) // a's Close may still be on its way
	}
}
