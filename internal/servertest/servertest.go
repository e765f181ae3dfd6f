// Package servertest starts a real server.Server for tests of the packages it wires (server,
// workflowapi) and talks to it: over HTTP, and over WebSockets with y-websocket frames. Documents
// live in the in-memory store; tokens are HS256 JWTs signed with Secret.
package servertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/store"
)

// Secret signs the tokens of Token and is the key of JWTAuth.
var Secret = []byte("0123456789abcdef0123456789abcdef-test")

// Token returns a signed token of c; an empty subject becomes "user-1", a zero expiry one hour
// from now.
func Token(t *testing.T, c auth.Claims) string {
	t.Helper()
	if c.Subject == "" {
		c.Subject = "user-1"
	}
	if c.ExpiresAt == 0 {
		c.ExpiresAt = time.Now().Add(time.Hour).Unix()
	}
	tok, err := auth.SignHS256(Secret, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// JWTAuth is an authenticator that accepts the tokens of Token.
func JWTAuth(t *testing.T) *auth.JWT {
	t.Helper()
	j, err := auth.NewJWT(auth.JWTConfig{HS256Secret: Secret})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// Start serves a new server of cfg over an in-memory store on an httptest server; both are shut
// down when the test ends (a failed Shutdown fails the test).
func Start(t *testing.T, cfg server.Config) (*server.Server, *httptest.Server) {
	t.Helper()
	srv := server.New(cfg, store.NewMemory())
	return srv, Serve(t, srv)
}

// StartMem is Start with access to the memory store, returning the base URL.
func StartMem(t *testing.T, cfg server.Config) (*server.Server, *store.Memory, string) {
	t.Helper()
	st := store.NewMemory()
	srv := server.New(cfg, st)
	return srv, st, Serve(t, srv).URL
}

// Serve serves srv on an httptest server until the test ends, then shuts both down.
func Serve(t *testing.T, srv *server.Server) *httptest.Server {
	t.Helper()
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		hs.Close()
	})
	return hs
}

// Dial opens /ws/doc on an open server with ?user=user.
func Dial(t *testing.T, hs *httptest.Server, doc, user string) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws/" + doc + "?user=" + url.QueryEscape(user)
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// DialToken opens /ws/doc with ?token= (or none) and returns the connection or the HTTP status
// of the refused upgrade.
func DialToken(t *testing.T, base, doc, tok string, hdr http.Header) (*websocket.Conn, int) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(base, "http") + "/ws/" + doc
	if tok != "" {
		u += "?token=" + tok
	}
	c, resp, err := websocket.DefaultDialer.Dial(u, hdr)
	if err != nil {
		if resp == nil {
			t.Fatal(err)
		}
		return nil, resp.StatusCode
	}
	t.Cleanup(func() { c.Close() })
	return c, 101
}

// SyncOnce sends a SyncStep1 and reads until the step2 arrives, so the session is attached.
func SyncOnce(t *testing.T, c *websocket.Conn) {
	t.Helper()
	if err := c.WriteMessage(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0})); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if m, _ := syncproto.Decode(data); m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncStep2 {
			return
		}
	}
}
