package pubsub

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ysync/ysync/internal/redistest"
)

// The Redis implementation: two brokers (two nodes) bridged through one channel. An event
// published on one reaches the other's subscribers with Node set, local subscribers get it once,
// and junk on the channel is counted and dropped.
func TestRedisBridge(t *testing.T) {
	url := redistest.URL(t)
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	channel := redistest.Prefix(t) + "events"
	a, b := New(16), New(16)
	ra, err := Bridge(a, rdb, channel, "node-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	rb, err := Bridge(b, rdb, channel, "node-b", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	if _, err := Bridge(a, rdb, channel, "again", nil); err == nil {
		t.Fatal("a broker was bridged twice")
	}

	atB, cancel := b.Subscribe("workflows")
	defer cancel()
	atA, cancelA := a.Subscribe("workflows")
	defer cancelA()
	// SUBSCRIBE is asynchronous: publish until b sees one.
	deadline := time.Now().Add(30 * time.Second)
	var got Event
	for got.Type == "" {
		a.Publish("workflows", Event{Type: EventSaved, ID: "w1", LockVersion: 3})
		select {
		case got = <-atB:
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("event never reached the other node")
		}
	}
	if got != (Event{Type: EventSaved, ID: "w1", LockVersion: 3, Node: "node-a"}) {
		t.Fatalf("b got %+v", got)
	}
	if ev := <-atA; ev.Node != "" {
		t.Fatalf("a's own subscriber got %+v, want the local event without Node", ev)
	}
	for _, junk := range []string{"", "{", `{"node":"x"}`, `{"node":"x","topic":"t","event":{"type":1}}`, "\xff"} {
		if err := rdb.Publish(context.Background(), channel, junk).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for time.Now().Before(deadline) && rb.Malformed.Load() < 5 {
		time.Sleep(10 * time.Millisecond)
	}
	if n := rb.Malformed.Load(); n != 5 {
		t.Fatalf("malformed = %d, want 5", n)
	}
}

// FuzzWireEvent: events come from Redis, untrusted. Decoding never panics and accepts only
// events with node, topic and type.
func FuzzWireEvent(f *testing.F) {
	good, _ := json.Marshal(wireEvent{Node: "n", Topic: "workflows", Event: Event{Type: "saved", ID: "x", LockVersion: 1}})
	f.Add(good)
	f.Add([]byte(`{"node":"n","topic":"t","event":{"type":"saved","lock_version":1e999}}`))
	f.Add([]byte("null"))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := decodeWireEvent(b)
		if err == nil && (w.Node == "" || w.Topic == "" || w.Event.Type == "") {
			t.Fatalf("accepted %+v", w)
		}
	})
}
