package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/server"
)

func getJSON(t *testing.T, u string, v any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

func TestAdminAPI(t *testing.T) {
	_, hs := start(t, server.Config{IdleTimeout: time.Minute})
	a := dial(t, hs, "workflow:abc/def", "alice")
	syncOnce(t, a)
	b := dial(t, hs, "workflow:abc/def", "bob")
	syncOnce(t, b)

	var rooms []map[string]any
	if code := getJSON(t, hs.URL+"/api/rooms", &rooms); code != 200 || len(rooms) != 1 || rooms[0]["name"] != "workflow:abc/def" {
		t.Fatalf("rooms %d %v", code, rooms)
	}
	var room struct {
		Name        string   `json:"name"`
		Users       []string `json:"users"`
		Bytes       int      `json:"bytes"`
		StateVector string   `json:"state_vector"`
	}
	if code := getJSON(t, hs.URL+"/api/rooms/workflow:abc/def", &room); code != 200 || len(room.Users) != 2 || room.StateVector == "" {
		t.Fatalf("room %d %+v", code, room)
	}
	if code := getJSON(t, hs.URL+"/api/rooms/nope", nil); code != 404 {
		t.Fatalf("unknown room: %d", code)
	}

	var sessions []struct {
		ID, Doc, User, Remote string
		ConnectedAt           time.Time `json:"connected_at"`
	}
	if code := getJSON(t, hs.URL+"/api/sessions", &sessions); code != 200 || len(sessions) != 2 {
		t.Fatalf("sessions %d %+v", code, sessions)
	}
	var bobID string
	for _, s := range sessions {
		if s.User == "bob" {
			bobID = s.ID
		}
		if s.Doc != "workflow:abc/def" || s.Remote == "" || s.ConnectedAt.IsZero() {
			t.Fatalf("session %+v", s)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, hs.URL+"/api/sessions/"+bobID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := b.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, 4409) {
				t.Fatalf("bob's connection ended with %v, want close 4409", err)
			}
			break
		}
	}
	// Once bob's session has ended it is gone from the list, and deleting it again is a 404.
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ = http.NewRequest(http.MethodDelete, hs.URL+"/api/sessions/"+bobID, nil)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second delete: %d", resp.StatusCode)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code := getJSON(t, hs.URL+"/api/sessions", &sessions); code != 200 || len(sessions) != 1 || sessions[0].User != "alice" {
		t.Fatalf("sessions after delete %+v", sessions)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	_, hs := start(t, server.Config{})
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(hs.URL + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, resp.StatusCode, err)
		}
		resp.Body.Close()
	}
	c := dial(t, hs, "m", "u")
	syncOnce(t, c)
	resp, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"# TYPE ysync_connections gauge\nysync_connections 1\n",
		"ysync_documents_loaded 1\n",
		"ysync_messages_received_total 1\n",
		"# TYPE ysync_store_append_duration_seconds histogram\n",
		`ysync_store_append_duration_seconds_bucket{le="+Inf"} `,
		"ysync_slow_consumer_closes_total 0\n",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

func TestReadLimitClosesWith1009(t *testing.T) {
	_, hs := start(t, server.Config{ReadLimit: 1024})
	c := dial(t, hs, "big", "u")
	big := syncproto.EncodeUpdate(make([]byte, 4096))
	if err := c.WriteMessage(websocket.BinaryMessage, big); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
				t.Fatalf("got %v, want close 1009", err)
			}
			return
		}
	}
}

func TestShutdownClosesSessionsWith1001AndRefusesUpgrades(t *testing.T) {
	srv, hs := start(t, server.Config{IdleTimeout: time.Minute})
	c := dial(t, hs, "d", "u")
	syncOnce(t, c)
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
				t.Fatalf("got %v, want 1001", err)
			}
			break
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if srv.Registry().Count() != 0 {
		t.Fatal("documents still loaded after shutdown")
	}
	u := "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws/d"
	if _, resp, err := websocket.DefaultDialer.Dial(u, nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("upgrade after shutdown: err %v resp %v", err, resp)
	}
}
