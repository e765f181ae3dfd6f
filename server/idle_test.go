package server_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/server"
)

// The upgrader's read buffer is small (128 bytes, for memory per idle connection): a control
// frame of the largest size still fits, and a message far bigger than it, in many fragments,
// arrives whole.
func TestSmallReadBufferCarriesControlFramesAndBigMessages(t *testing.T) {
	_, hs := start(t, server.Config{})
	a, b := dial(t, hs, "small-read-buffer", "a"), dial(t, hs, "small-read-buffer", "b")
	syncOnce(t, a)
	syncOnce(t, b)

	ping := bytes.Repeat([]byte{'p'}, 125)
	pong := make(chan string, 1)
	a.SetPongHandler(func(s string) error { pong <- s; return nil })
	if err := a.WriteControl(websocket.PingMessage, ping, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	go func() { // the pong handler runs inside a read; a's reads end when the test closes it
		for {
			if _, _, err := a.ReadMessage(); err != nil {
				return
			}
		}
	}()
	select {
	case got := <-pong:
		if got != string(ping) {
			t.Fatalf("pong payload %d bytes, want the 125 of the ping", len(got))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong for a 125-byte ping")
	}

	text := strings.Repeat("x", 300<<10)
	update := syncproto.EncodeUpdate(textUpdate(t, 7, text))
	w, err := a.NextWriter(websocket.BinaryMessage)
	if err != nil {
		t.Fatal(err)
	}
	for rest := update; len(rest) > 0; { // many small fragments
		n := min(len(rest), 1000)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	readUntil(t, b, "the 300 KiB update from a", func(m syncproto.Message) bool {
		return m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncUpdate && bytes.Contains(m.Payload, []byte(text))
	})
}
