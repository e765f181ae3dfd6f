package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/shareddoc"
)

// syncLog is a goroutine-safe log buffer.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func textUpdate(t *testing.T, client uint64, s string) []byte {
	t.Helper()
	d := crdt.NewDoc(crdt.DocOptions{ClientID: client})
	var u []byte
	d.ObserveUpdate(func(b []byte, _ any, _ *crdt.Transaction) { u = append([]byte(nil), b...) })
	if err := d.GetText("t").Insert(0, s, nil); err != nil {
		t.Fatal(err)
	}
	return u
}

// readUntil reads frames until pred accepts one; it fails on a read error or after 5 s.
func readUntil(t *testing.T, c *websocket.Conn, what string, pred func(syncproto.Message) bool) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if m, err := syncproto.Decode(data); err == nil && pred(m) {
			return
		}
	}
}

func isUpdate(m syncproto.Message) bool {
	return m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncUpdate
}

func TestUpgradeRefusedWithoutValidToken(t *testing.T) {
	logs := &syncLog{}
	_, _, base := startMem(t, server.Config{
		Authenticator: jwtAuth(t),
		Logger:        slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	other, err := auth.SignHS256([]byte("another-secret-another-secret-0123456789"), auth.Claims{Subject: "x", ExpiresAt: time.Now().Add(time.Hour).Unix(), Docs: map[string]string{"*": "write"}})
	if err != nil {
		t.Fatal(err)
	}
	expired := token(t, auth.Claims{ExpiresAt: time.Now().Add(-time.Hour).Unix(), Docs: map[string]string{"*": "write"}})
	cases := []struct {
		name, doc, tok string
		want           int
	}{
		{"no token", "d", "", 401},
		{"garbage", "d", "not-a-jwt", 401},
		{"bad signature", "d", other, 401},
		{"expired", "d", expired, 401},
		{"wrong document", "secret/doc", token(t, auth.Claims{Docs: map[string]string{"team-a/*": "write"}}), 403},
		{"carved out", "team-a/salaries", token(t, auth.Claims{Docs: map[string]string{"team-a/*": "write", "team-a/salaries": "none"}}), 403},
		{"good", "team-a/x", token(t, auth.Claims{Docs: map[string]string{"team-a/*": "write"}}), 101},
	}
	for _, tc := range cases {
		if _, code := dialToken(t, base, tc.doc, tc.tok, nil); code != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, code, tc.want)
		}
	}
	// The Authorization header works too.
	h := http.Header{"Authorization": {"Bearer " + token(t, auth.Claims{Admin: true})}}
	if _, code := dialToken(t, base, "any", "", h); code != 101 {
		t.Errorf("bearer header: status %d", code)
	}
	// Tokens never reach the logs.
	for _, tc := range cases {
		if tc.tok != "" && strings.Contains(logs.String(), tc.tok) {
			t.Fatalf("a token (%s) appears in the logs", tc.name)
		}
	}
	if !strings.Contains(logs.String(), "unauthorized") {
		t.Error("refusals are not logged")
	}
}

// A read session syncs and sees the writer's edits; its own edits are answered with
// permission-denied and reach neither the writer nor the store; it stays open.
func TestReadOnlyTokenCannotEdit(t *testing.T) {
	srv, st, base := startMem(t, server.Config{Authenticator: jwtAuth(t), IdleTimeout: time.Hour})
	doc := "team/handbook"
	w, _ := dialToken(t, base, doc, token(t, auth.Claims{Subject: "writer", Docs: map[string]string{"team/*": "write"}}), nil)
	r, _ := dialToken(t, base, doc, token(t, auth.Claims{Subject: "reader", Docs: map[string]string{"team/*": "read"}}), nil)
	syncOnce(t, w)
	syncOnce(t, r)

	if err := r.WriteMessage(websocket.BinaryMessage, syncproto.EncodeUpdate(textUpdate(t, 9, "vandalism"))); err != nil {
		t.Fatal(err)
	}
	readUntil(t, r, "permission-denied", func(m syncproto.Message) bool {
		return m.Type == syncproto.TypeAuth && m.Reason == "read-only"
	})
	hello := textUpdate(t, 1, "hello")
	if err := w.WriteMessage(websocket.BinaryMessage, syncproto.EncodeUpdate(hello)); err != nil {
		t.Fatal(err)
	}
	readUntil(t, r, "the writer's update", isUpdate) // still open, still syncing
	// The writer sees no update but the echo of its own.
	readUntil(t, w, "the writer's echo", func(m syncproto.Message) bool {
		if isUpdate(m) && !bytes.Equal(m.Payload, hello) {
			t.Fatal("the read-only session's update reached the writer")
		}
		return isUpdate(m)
	})

	_, updates, _, err := st.Load(context.Background(), doc)
	if err != nil {
		t.Fatal(err)
	}
	stored := crdt.NewDoc(crdt.DocOptions{})
	for _, u := range updates {
		if err := crdt.ApplyUpdate(stored, u, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := stored.GetText("t").String(); got != "hello" {
		t.Fatalf("stored text %q, want only the writer's", got)
	}
	if in, err := srv.Registry().Get(doc).Info(context.Background()); err != nil || len(in.Sessions) != 2 {
		t.Fatalf("sessions %v %v", in.Sessions, err)
	}
}

// An open session is closed with 4401 when its token expires (exp plus the 30 s leeway), on the
// injected clock.
func TestTokenExpiryCloses4401(t *testing.T) {
	clock := shareddoc.NewFakeClock(time.Now())
	_, _, base := startMem(t, server.Config{Authenticator: jwtAuth(t), Clock: clock, IdleTimeout: time.Hour})
	exp := time.Now().Add(2 * time.Minute).Truncate(time.Second)
	c, _ := dialToken(t, base, "d", token(t, auth.Claims{ExpiresAt: exp.Unix(), Docs: map[string]string{"*": "write"}}), nil)
	syncOnce(t, c)
	clock.Advance(time.Until(exp) + auth.DefaultLeeway + time.Second)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, 4401) {
			t.Fatalf("read: %v, want close 4401", err)
		}
		return
	}
}

func TestAdminEndpointsNeedAdmin(t *testing.T) {
	_, _, base := startMem(t, server.Config{Authenticator: jwtAuth(t)})
	get := func(tok string) int {
		req, _ := http.NewRequest("GET", base+"/api/sessions", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(""); code != 401 {
		t.Errorf("no token: %d", code)
	}
	if code := get("bogus"); code != 401 {
		t.Errorf("bad token: %d", code)
	}
	if code := get(token(t, auth.Claims{Docs: map[string]string{"*": "write"}})); code != 403 {
		t.Errorf("writer: %d", code)
	}
	if code := get(token(t, auth.Claims{Admin: true})); code != 200 {
		t.Errorf("admin: %d", code)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if code := getJSONStatus(t, base+p); code != 200 {
			t.Errorf("%s: %d", p, code)
		}
	}
}

func getJSONStatus(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestOriginAndConnectionLimits(t *testing.T) {
	_, _, base := startMem(t, server.Config{Limits: server.Limits{
		AllowedOrigins: []string{"https://app.example.com"},
		MaxConnsPerDoc: 2,
		MaxConns:       3,
	}})
	if _, code := dialToken(t, base, "d", "", http.Header{"Origin": {"https://evil.example"}}); code != 403 {
		t.Errorf("foreign origin: %d", code)
	}
	if _, code := dialToken(t, base, "d", "", http.Header{"Origin": {"https://app.example.com"}}); code != 101 {
		t.Errorf("allowed origin: %d", code)
	}
	if _, code := dialToken(t, base, "d", "", nil); code != 101 { // no Origin: not a browser
		t.Errorf("no origin: %d", code)
	}
	if _, code := dialToken(t, base, "d", "", nil); code != 503 {
		t.Errorf("third on the document: %d, want 503", code)
	}
	if _, code := dialToken(t, base, "e", "", nil); code != 101 {
		t.Errorf("other document: %d", code)
	}
	if _, code := dialToken(t, base, "f", "", nil); code != 503 {
		t.Errorf("fourth in the process: %d, want 503", code)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`ysync_upgrades_refused_total{reason="origin"} 1`, `ysync_upgrades_refused_total{reason="too_many_connections"} 2`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// An update that would take the document past MaxDocBytes is refused with permission-denied;
// smaller ones still go through.
func TestDocumentSizeLimit(t *testing.T) {
	_, _, base := startMem(t, server.Config{Limits: server.Limits{MaxDocBytes: 4096}})
	c, _ := dialToken(t, base, "big", "", nil)
	syncOnce(t, c)
	if err := c.WriteMessage(websocket.BinaryMessage, syncproto.EncodeUpdate(textUpdate(t, 1, strings.Repeat("x", 8000)))); err != nil {
		t.Fatal(err)
	}
	readUntil(t, c, "document too large", func(m syncproto.Message) bool {
		return m.Type == syncproto.TypeAuth && m.Reason == shareddoc.ReasonTooLarge
	})
	if err := c.WriteMessage(websocket.BinaryMessage, syncproto.EncodeUpdate(textUpdate(t, 2, "small"))); err != nil {
		t.Fatal(err)
	}
	readUntil(t, c, "echo of the small update", isUpdate)
}
