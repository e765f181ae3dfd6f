package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/store"
)

// countingListener counts accepted TCP connections: each WebSocket (re)connection attempt of a
// provider is a new one.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// startCounted runs an in-process server behind a counting listener.
func startCounted(t *testing.T, cfg server.Config) (base string, ln *countingListener) {
	t.Helper()
	st := store.NewMemory()
	srv := server.New(cfg, st)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln = &countingListener{Listener: raw}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = st.Close()
	})
	return "ws://" + raw.Addr().String() + "/ws", ln
}

// reconnectResult runs reconnect.mjs; onSynced (if set) runs once the provider synced.
func runReconnect(t *testing.T, base, doc, mode string, window time.Duration, onSynced func()) (closes []int, forGood bool) {
	t.Helper()
	nodeBin, root := node(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, filepath.Join(root, "e2e", "reconnect.mjs"), base, doc, mode, fmt.Sprint(window.Milliseconds()))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var last string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		last = sc.Text()
		if last == `{"synced":true}` && onSynced != nil {
			onSynced()
			onSynced = nil
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("reconnect.mjs: %v; last line %s\nstderr:\n%s", err, last, stderr.String())
	}
	var res struct {
		OK            bool
		Closes        []*int
		ClosedForGood bool
	}
	if err := json.Unmarshal([]byte(last), &res); err != nil || !res.OK {
		t.Fatalf("reconnect.mjs result %q: %v", last, err)
	}
	for _, c := range res.Closes {
		if c == nil {
			closes = append(closes, -1)
		} else {
			closes = append(closes, *c)
		}
	}
	return closes, res.ClosedForGood
}

// A real y-websocket provider stops reconnecting after a close in 4400-4499: over 3 s after
// 4404, 4409 and 4429 the server sees no connection but the first. The control case (1009, a
// close the provider retries) shows that the count does see reconnections.
func TestProviderStopsReconnecting(t *testing.T) {
	const window = 3 * time.Second
	t.Run("4404", func(t *testing.T) {
		t.Parallel()
		base, ln := startCounted(t, server.Config{Hooks: shareddoc.Hooks{
			LoadState: func(_ context.Context, name string, _ *crdt.Doc) error {
				return fmt.Errorf("no such thing: %w", shareddoc.ErrNotFound)
			},
		}})
		closes, _ := runReconnect(t, base, "missing/doc", "wait", window, nil)
		checkStopped(t, closes, 4404, ln.n.Load())
	})
	t.Run("4409", func(t *testing.T) {
		t.Parallel()
		base, ln := startCounted(t, server.Config{})
		api := "http://" + strings.TrimSuffix(strings.TrimPrefix(base, "ws://"), "/ws")
		closes, _ := runReconnect(t, base, "kicked/doc", "wait", window, func() { deleteSessions(t, api) })
		// The API calls came on their own connections; count WebSocket ones only.
		checkStopped(t, closes, 4409, ln.n.Load()-apiConns)
	})
	t.Run("4429", func(t *testing.T) {
		t.Parallel()
		base, ln := startCounted(t, server.Config{Limits: server.Limits{
			MessageRate: 20, MessageBurst: 20, MaxThrottle: 300 * time.Millisecond,
		}})
		closes, _ := runReconnect(t, base, "flood/doc", "flood", window, nil)
		checkStopped(t, closes, 4429, ln.n.Load())
	})
	t.Run("1009 control: retried", func(t *testing.T) {
		t.Parallel()
		base, ln := startCounted(t, server.Config{ReadLimit: 16 << 10})
		closes, _ := runReconnect(t, base, "big/doc", "big", window, nil)
		if len(closes) == 0 || closes[0] != 1009 {
			t.Fatalf("closes %v, want 1009 first", closes)
		}
		if n := ln.n.Load(); n < 3 {
			t.Fatalf("%d connections for a provider closed with 1009, want it to reconnect (>= 3)", n)
		}
	})
}

func checkStopped(t *testing.T, closes []int, code int, conns int64) {
	t.Helper()
	if len(closes) != 1 || closes[0] != code {
		t.Fatalf("provider saw closes %v, want exactly one %d", closes, code)
	}
	if conns != 1 {
		t.Fatalf("server accepted %d WebSocket connections, want 1 (no reconnect after %d)", conns, code)
	}
}

// apiConns is how many TCP connections deleteSessions opens.
const apiConns = 2

// deleteSessions closes every session with DELETE /api/sessions/{id} (4409), on fresh
// connections so that the count stays exact.
func deleteSessions(t *testing.T, api string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(api + "/api/sessions")
	if err != nil {
		t.Error(err)
		return
	}
	var sessions []struct{ ID string }
	err = json.NewDecoder(resp.Body).Decode(&sessions)
	resp.Body.Close()
	if err != nil || len(sessions) != 1 {
		t.Errorf("sessions %v, %v; want one", sessions, err)
		return
	}
	req, _ := http.NewRequest(http.MethodDelete, api+"/api/sessions/"+sessions[0].ID, nil)
	resp, err = client.Do(req)
	if err != nil {
		t.Error(err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE session: %d", resp.StatusCode)
	}
}

// A join that fails (here 4404) must not end in a reset: a y-websocket client is still
// sending its first frames (SyncStep1, awareness) when the close frame comes, and a reset makes
// Node's ws report 1006 instead of 4404, so the provider reconnects (seen in
// TestProviderStopsReconnecting on a loaded machine). The server keeps reading after its close
// frame until the client closes too (or a grace period ends). Here the client reads the close
// frame, then sends more, as a browser might: the connection must still end with a FIN.
func TestJoinFailureCloseSurvivesLateInput(t *testing.T) {
	base, _ := startCounted(t, server.Config{Hooks: shareddoc.Hooks{
		LoadState: func(context.Context, string, *crdt.Doc) error {
			return fmt.Errorf("no such thing: %w", shareddoc.ErrNotFound)
		},
	}})
	c, _, err := websocket.DefaultDialer.Dial(base+"/missing", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4404 {
			t.Fatalf("client read %v, want the 4404 close frame", err)
		}
		break
	}
	// Late input: the frames a client had queued before it saw the close.
	raw := c.UnderlyingConn()
	time.Sleep(100 * time.Millisecond) // not synchronisation: gives a server that closed at once time to do so
	if _, err := raw.Write(syncproto.EncodeSyncStep1(make([]byte, 4096))); err != nil {
		t.Fatalf("late write: %v", err)
	}
	buf := make([]byte, 1024)
	for {
		_, err := raw.Read(buf)
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) {
			t.Fatalf("after the close frame the connection ended with %v, want EOF (a clean close, no reset)", err)
		}
		return
	}
}
