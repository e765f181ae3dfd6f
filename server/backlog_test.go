package server_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/internal/servertest"
	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/store"
)

// stalledStore is a store.Memory whose Appends wait until resume: the database is away.
type stalledStore struct {
	*store.Memory
	once sync.Once
	gate chan struct{}
}

func newStalledStore() *stalledStore {
	return &stalledStore{Memory: store.NewMemory(), gate: make(chan struct{})}
}

func (s *stalledStore) resume() { s.once.Do(func() { close(s.gate) }) }

func (s *stalledStore) Append(ctx context.Context, name string, update []byte) (int64, error) {
	select {
	case <-s.gate:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return s.Memory.Append(ctx, name, update)
}

func metricValue(t *testing.T, base, name string) float64 {
	t.Helper()
	f := scrape(t, base)[name]
	if f == nil || len(f.Metric) == 0 {
		t.Fatalf("no metric %s", name)
	}
	if g := f.Metric[0].GetGauge(); g != nil {
		return g.GetValue()
	}
	return f.Metric[0].GetCounter().GetValue()
}

func waitMetric(t *testing.T, base, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for metricValue(t, base, name) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, metricValue(t, base, name), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readUpdates reads a's frames until it has seen want as Update payloads, in order.
func readUpdates(t *testing.T, c *websocket.Conn, want ...[]byte) {
	t.Helper()
	for _, w := range want {
		readUntil(t, c, "an update", func(m syncproto.Message) bool {
			return m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncUpdate && bytes.Equal(m.Payload, w)
		})
	}
}

// Over the pending budget a writer's connection is paused, not closed with 1013: its update
// waits, the metrics say so, and once the database is back the update is applied, relayed and
// echoed on the same connection.
func TestBacklogPausesWriterOverWebSocket(t *testing.T) {
	st := newStalledStore()
	srv := server.New(server.Config{IdleTimeout: time.Hour, Limits: server.Limits{MaxPendingBytesPerDoc: 1000}}, st)
	hs := servertest.Serve(t, srv)
	t.Cleanup(st.resume) // before the server's shutdown (cleanups run last first)
	a, b := dial(t, hs, "backlog-doc", "a"), dial(t, hs, "backlog-doc", "b")
	syncOnce(t, a)
	syncOnce(t, b)

	u1 := textUpdate(t, 1, strings.Repeat("x", 600))
	if err := a.WriteMessage(websocket.BinaryMessage, syncproto.EncodeUpdate(u1)); err != nil {
		t.Fatal(err)
	}
	readUpdates(t, b, u1)
	u2 := textUpdate(t, 2, strings.Repeat("y", 600))
	if err := a.WriteMessage(websocket.BinaryMessage, syncproto.EncodeUpdate(u2)); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, hs.URL, "ysync_storage_backlog_paused_peers", 1)
	if v := metricValue(t, hs.URL, "ysync_storage_backlog_paused_total"); v != 1 {
		t.Fatalf("paused total %v", v)
	}
	if v := metricValue(t, hs.URL, "ysync_storage_backlog_closes_total"); v != 0 {
		t.Fatalf("backlog closes %v", v)
	}

	st.resume()
	readUpdates(t, b, u2)
	readUpdates(t, a, u1, u2) // the echoes, once stored: a was never closed
	waitMetric(t, hs.URL, "ysync_storage_backlog_paused_peers", 0)
	if v := metricValue(t, hs.URL, "ysync_storage_backlog_closes_total"); v != 0 {
		t.Fatalf("backlog closes %v", v)
	}
}

// With a negative MaxBacklogWait the writer is closed with 1013 at once, as before pausing
// existed.
func TestBacklogCloseAtOnceWhenNoWait(t *testing.T) {
	st := newStalledStore()
	srv := server.New(server.Config{IdleTimeout: time.Hour, Limits: server.Limits{MaxPendingBytesPerDoc: 1000, MaxBacklogWait: -1}}, st)
	hs := servertest.Serve(t, srv)
	t.Cleanup(st.resume)
	a := dial(t, hs, "backlog-doc", "a")
	syncOnce(t, a)
	for i, s := range []string{"x", "y"} {
		if err := a.WriteMessage(websocket.BinaryMessage, syncproto.EncodeUpdate(textUpdate(t, uint64(i+1), strings.Repeat(s, 600)))); err != nil {
			t.Fatal(err)
		}
	}
	_ = a.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := a.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, 1013) {
			t.Fatalf("read ended with %v, want close 1013", err)
		}
		break
	}
	if v := metricValue(t, hs.URL, "ysync_storage_backlog_closes_total"); v != 1 {
		t.Fatalf("backlog closes %v", v)
	}
	if v := metricValue(t, hs.URL, "ysync_storage_backlog_paused_total"); v != 0 {
		t.Fatalf("paused total %v", v)
	}
}
