package session_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/session"
)

// startHP runs a Hocuspocus socket over a fake connection.
func (e *env) startHP(t *testing.T, cfg session.HPConfig) (*session.HPSocket, *fakeConn, chan error) {
	t.Helper()
	conn := newFakeConn()
	cfg.Clock = e.clock
	cfg.Stats = e.stats
	s := session.NewHPSocket(conn, "test", "tester", time.Now(), cfg)
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), e.reg) }()
	return s, conn, done
}

// hpWritten decodes what the socket wrote.
func hpWritten(t *testing.T, c *fakeConn) []syncproto.HPMessage {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []syncproto.HPMessage
	for _, f := range c.written {
		m, err := syncproto.DecodeHP(f)
		if err != nil {
			t.Fatalf("undecodable frame written: %x: %v", f, err)
		}
		out = append(out, m)
	}
	return out
}

func hpHas(t *testing.T, c *fakeConn, pred func(m syncproto.HPMessage) bool) bool {
	for _, m := range hpWritten(t, c) {
		if pred(m) {
			return true
		}
	}
	return false
}

func hpSend(t *testing.T, c *fakeConn, key string, m syncproto.Message) {
	t.Helper()
	f, err := syncproto.EncodeHP(key, m)
	if err != nil {
		t.Fatal(err)
	}
	c.deliver(websocket.BinaryMessage, f)
}

func statuses(t *testing.T, c *fakeConn, key string) []uint64 {
	var out []uint64
	for _, m := range hpWritten(t, c) {
		if m.Type == syncproto.HPSyncStatus && m.Key == key {
			out = append(out, m.Status)
		}
	}
	return out
}

func docText(t *testing.T, e *env, name string, c *fakeConn, key string) string {
	t.Helper()
	_ = c
	d := e.reg.Get(name)
	if d == nil {
		return ""
	}
	var s string
	if err := d.Update(context.Background(), func(tx *crdt.Transaction) { s = tx.Doc().GetText("t").String() }); err != nil {
		t.Fatal(err)
	}
	return s
}

// Frames sent before a document's Token are held and applied, in order, after it; the
// Authenticated answer comes first; each stored update is acked with SyncStatus(1).
func TestHPHeldUntilAuthenticatedThenAcked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, c, done := e.startHP(t, session.HPConfig{})
	u1, u2 := update(t, 7, "one"), update(t, 8, "two")
	hpSend(t, c, "d", syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncUpdate, Payload: u1})
	hpSend(t, c, "d", syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncUpdate, Payload: u2})
	c.deliver(websocket.BinaryMessage, syncproto.EncodeHPToken("d", "", ""))
	eventually(t, func() bool { return len(statuses(t, c, "d")) == 2 }, "two acks")
	w := hpWritten(t, c)
	if w[0].Type != syncproto.HPAuth || w[0].AuthType != syncproto.HPAuthAuthenticated || w[0].Text != syncproto.HPScopeReadWrite {
		t.Fatalf("first frame %+v, want Authenticated read-write", w[0])
	}
	for _, st := range statuses(t, c, "d") {
		if st != 1 {
			t.Fatalf("statuses %v", statuses(t, c, "d"))
		}
	}
	if got := docText(t, e, "d", c, "d"); got != "twoone" && got != "onetwo" {
		t.Fatalf("document text %q", got)
	}
	if n := len(s.Sessions()); n != 1 {
		t.Fatalf("%d sessions", n)
	}
	c.hangUp()
	_ = wait(t, done)
}

// A read-only grant: Authenticated "readonly", updates refused with SyncStatus(0) and not
// applied; an empty SyncStep2 acked.
func TestHPReadOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, c, done := e.startHP(t, session.HPConfig{Authenticate: func(_ context.Context, doc, token string) (session.HPGrant, error) {
		return session.HPGrant{User: "r", Trust: session.Trust{ReadOnly: true}}, nil
	}})
	c.deliver(websocket.BinaryMessage, syncproto.EncodeHPToken("d", "t", ""))
	hpSend(t, c, "d", syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncStep1, Payload: []byte{0}})
	hpSend(t, c, "d", syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncStep2, Payload: []byte{0, 0}})
	hpSend(t, c, "d", syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncUpdate, Payload: update(t, 9, "no")})
	eventually(t, func() bool { return len(statuses(t, c, "d")) == 2 }, "two statuses")
	if st := statuses(t, c, "d"); st[0] != 1 || st[1] != 0 {
		t.Fatalf("statuses %v, want [1 0]", st)
	}
	if !hpHas(t, c, func(m syncproto.HPMessage) bool {
		return m.AuthType == syncproto.HPAuthAuthenticated && m.Text == "readonly"
	}) {
		t.Fatal("no readonly scope")
	}
	if got := docText(t, e, "d", c, "d"); got != "" {
		t.Fatalf("read-only edit applied: %q", got)
	}
	c.hangUp()
	_ = wait(t, done)
}

// Refusals are per document: PermissionDenied with the reason, the socket and its other
// documents stay; an authenticator failure closes the socket for a retry.
func TestHPRefusalPerDocument(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, c, done := e.startHP(t, session.HPConfig{Authenticate: func(_ context.Context, doc, token string) (session.HPGrant, error) {
		switch token {
		case "ok":
			return session.HPGrant{User: "u"}, nil
		case "broken":
			return session.HPGrant{}, errors.New("jwks down")
		}
		return session.HPGrant{}, &session.HPRefusal{Reason: session.HPReasonForbidden}
	}})
	c.deliver(websocket.BinaryMessage, syncproto.EncodeHPToken("no", "nope", ""))
	hpSend(t, c, "no", syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncUpdate, Payload: update(t, 3, "x")})
	c.deliver(websocket.BinaryMessage, syncproto.EncodeHPToken("yes", "ok", ""))
	hpSend(t, c, "yes", syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncUpdate, Payload: update(t, 4, "y")})
	eventually(t, func() bool { return len(statuses(t, c, "yes")) == 1 }, "ack on the good document")
	if !hpHas(t, c, func(m syncproto.HPMessage) bool {
		return m.Key == "no" && m.AuthType == syncproto.HPAuthPermissionDenied && m.Text == session.HPReasonForbidden
	}) {
		t.Fatal("no PermissionDenied for the refused document")
	}
	if e.reg.Get("no") != nil || len(statuses(t, c, "no")) != 0 {
		t.Fatal("the refused document was opened")
	}
	c.deliver(websocket.BinaryMessage, syncproto.EncodeHPToken("third", "broken", ""))
	_ = wait(t, done)
	if d := s.Disconnect(); d != session.DisconnectAuthUnavailable {
		t.Fatalf("closed with %v", d)
	}
}

// Held frames and documents are bounded: past them the socket closes with 1008.
func TestHPHeldBounds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, c, done := e.startHP(t, session.HPConfig{MaxHeldFrames: 3})
	for i := 0; i < 4; i++ {
		hpSend(t, c, "d", syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncUpdate, Payload: update(t, uint64(10+i), "x")})
	}
	_ = wait(t, done)
	if d := s.Disconnect(); d != session.DisconnectHPHeldFrames || c.closeCodes()[0] != 1008 {
		t.Fatalf("closed with %v %v", d, c.closeCodes())
	}

	s, c, done = e.startHP(t, session.HPConfig{MaxDocuments: 2})
	for _, k := range []string{"a", "b", "c"} {
		c.deliver(websocket.BinaryMessage, syncproto.EncodeHPToken(k, "", ""))
	}
	_ = wait(t, done)
	if d := s.Disconnect(); d != session.DisconnectHPDocuments {
		t.Fatalf("closed with %v", d)
	}
}

// A provider's Close ends that document's session only; the socket's other document goes on.
// Opening and closing documents does not use up MaxDocuments.
func TestHPCloseOneDocument(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, c, done := e.startHP(t, session.HPConfig{MaxDocuments: 2})
	for _, k := range []string{"a", "b"} {
		c.deliver(websocket.BinaryMessage, syncproto.EncodeHPToken(k, "", ""))
	}
	eventually(t, func() bool { return len(s.Sessions()) == 2 }, "two sessions")
	c.deliver(websocket.BinaryMessage, append(syncproto.AppendHPKey(nil, "a"), byte(syncproto.HPClose)))
	eventually(t, func() bool { return len(s.Sessions()) == 1 }, "a closed")
	hpSend(t, c, "b", syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncUpdate, Payload: update(t, 5, "b")})
	eventually(t, func() bool { return len(statuses(t, c, "b")) == 1 }, "b still acks")
	in, err := e.reg.Get("a").Info(context.Background())
	if err != nil || len(in.Sessions) != 0 {
		t.Fatalf("a still has sessions %v (%v)", in.Sessions, err)
	}
	// It opens again with a new Token.
	c.deliver(websocket.BinaryMessage, syncproto.EncodeHPToken("a", "", ""))
	eventually(t, func() bool { return len(s.Sessions()) == 2 }, "a reopened")
	for i := 0; i < 5; i++ {
		c.deliver(websocket.BinaryMessage, append(syncproto.AppendHPKey(nil, "a"), byte(syncproto.HPClose)))
		c.deliver(websocket.BinaryMessage, syncproto.EncodeHPToken("a", "", ""))
	}
	hpSend(t, c, "a", syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncUpdate, Payload: update(t, 6, "a")})
	eventually(t, func() bool { return len(statuses(t, c, "a")) == 1 }, "a acks after reopening")
	if s.Disconnect().Code != 0 {
		t.Fatalf("socket closed %v", s.Disconnect())
	}
	c.hangUp()
	_ = wait(t, done)
}

// Token lifetime on the fake clock: a fresh token is asked for before expiry, a new one keeps
// the document open, and without one the document (only) is closed at expiry.
func TestHPTokenRefreshAndExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	exp := map[string]time.Time{"t1": e.clock.Now().Add(10 * time.Minute), "t2": e.clock.Now().Add(20 * time.Minute)}
	s, c, done := e.startHP(t, session.HPConfig{TokenRefresh: time.Minute, Keepalive: time.Hour, Authenticate: func(_ context.Context, doc, token string) (session.HPGrant, error) {
		return session.HPGrant{User: "u", Trust: session.Trust{ExpiresAt: exp[token]}}, nil
	}})
	c.deliver(websocket.BinaryMessage, syncproto.EncodeHPToken("d", "t1", ""))
	c.deliver(websocket.BinaryMessage, syncproto.EncodeHPToken("other", "", "")) // never expires
	eventually(t, func() bool { return len(s.Sessions()) == 2 }, "open")
	asked := func() int {
		n := 0
		for _, m := range hpWritten(t, c) {
			if m.Type == syncproto.HPAuth && m.AuthType == syncproto.HPAuthToken && m.Key == "d" {
				n++
			}
		}
		return n
	}
	e.clock.Advance(8 * time.Minute)
	if asked() != 0 {
		t.Fatal("asked too early")
	}
	e.clock.Advance(time.Minute + time.Second)
	eventually(t, func() bool { return asked() == 1 }, "token request")
	c.deliver(websocket.BinaryMessage, syncproto.EncodeHPToken("d", "t2", ""))
	eventually(t, func() bool {
		n := 0
		for _, m := range hpWritten(t, c) {
			if m.AuthType == syncproto.HPAuthAuthenticated && m.Key == "d" {
				n++
			}
		}
		return n == 2
	}, "re-authenticated")
	e.clock.Advance(2 * time.Minute) // past t1's expiry
	hpSend(t, c, "d", syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncUpdate, Payload: update(t, 5, "x")})
	eventually(t, func() bool { return len(statuses(t, c, "d")) == 1 }, "still writable")
	e.clock.Advance(10 * time.Minute) // past t2's: no fresh token came this time
	eventually(t, func() bool {
		return hpHas(t, c, func(m syncproto.HPMessage) bool { return m.Type == syncproto.HPClose && m.Key == "d" })
	}, "document closed")
	if len(s.Sessions()) != 1 || s.Disconnect().Code != 0 {
		t.Fatalf("sessions %d, socket %v", len(s.Sessions()), s.Disconnect())
	}
	c.hangUp()
	_ = wait(t, done)
}

// The keep-alive: an idle socket gets an empty awareness update (v3) or a Ping (v4).
func TestHPKeepalive(t *testing.T) {
	t.Parallel()
	for _, v4 := range []bool{false, true} {
		e := newEnv(t)
		s, c, done := e.startHP(t, session.HPConfig{Keepalive: 10 * time.Second})
		version := ""
		if v4 {
			version = "4.8.0"
		}
		c.deliver(websocket.BinaryMessage, syncproto.EncodeHPToken("d", "", version))
		eventually(t, func() bool { return len(s.Sessions()) == 1 }, "open")
		eventually(t, func() bool { return len(hpWritten(t, c)) == 1 }, "authenticated written")
		e.clock.Advance(11 * time.Second)
		eventually(t, func() bool {
			for _, m := range hpWritten(t, c) {
				if v4 && m.Type == syncproto.HPPing {
					return true
				}
				if !v4 && m.Type == syncproto.HPAwareness && bytes.Equal(m.Sync.Payload, []byte{0}) {
					return true
				}
			}
			return false
		}, "keep-alive")
		c.hangUp()
		_ = wait(t, done)
	}
}

// A v4 provider with sessionAwareness keys its frames "name\x00session": the document is
// "name" and the answers carry the same key. A SyncReply (4) is served as sync.
func TestHPSessionKeyAndSyncReply(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, c, done := e.startHP(t, session.HPConfig{})
	key := "doc\x00sess-1"
	c.deliver(websocket.BinaryMessage, syncproto.EncodeHPToken(key, "", "4.8.0"))
	f, err := syncproto.Encode(syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncStep1, Payload: []byte{0}})
	if err != nil {
		t.Fatal(err)
	}
	f[0] = byte(syncproto.HPSyncReply)
	c.deliver(websocket.BinaryMessage, append(syncproto.AppendHPKey(nil, key), f...))
	eventually(t, func() bool {
		return hpHas(t, c, func(m syncproto.HPMessage) bool {
			return m.Key == key && m.Type == syncproto.HPSync && m.Sync.SyncType == syncproto.SyncStep2
		})
	}, "step 2 under the session key")
	if ss := s.Sessions(); len(ss) != 1 || ss[0].Doc() != "doc" || e.reg.Get("doc") == nil {
		t.Fatalf("sessions %v", ss)
	}
	c.hangUp()
	_ = wait(t, done)
}

// A socket that authenticates no document within the handshake timeout is closed with 4408.
func TestHPHandshakeTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := session.HPConfig{Keepalive: time.Second}
	cfg.Trust.HandshakeTimeout = 5 * time.Second
	s, c, done := e.startHP(t, cfg)
	hpSend(t, c, "d", syncproto.Message{Type: syncproto.TypeAwareness, Payload: []byte{0}}) // held, not authenticated
	eventually(t, func() bool { return e.clock.Timers() > 0 }, "wheel armed")
	// Advance until the wheel, whenever it runs, sees the timeout passed.
	eventually(t, func() bool { e.clock.Advance(time.Second); return s.Disconnect().Code != 0 }, "handshake timeout")
	_ = wait(t, done)
	if d := s.Disconnect(); d != session.DisconnectHandshakeTimeout {
		t.Fatalf("closed with %v", d)
	}
}
