package pubsub_test

import (
	"sync"
	"testing"

	"github.com/ysync/ysync/pubsub"
)

func TestPublishSubscribe(t *testing.T) {
	t.Parallel()
	b := pubsub.New(4)
	a, cancelA := b.Subscribe("workflows")
	one, cancelOne := b.Subscribe("workflow:1")
	defer cancelOne()

	b.Publish("workflows", pubsub.Event{Type: pubsub.EventSaved, ID: "1", LockVersion: 2})
	b.Publish("workflow:1", pubsub.Event{Type: pubsub.EventSaved, ID: "1", LockVersion: 2})
	b.Publish("other", pubsub.Event{Type: pubsub.EventDeleted, ID: "2"})

	if ev := <-a; ev != (pubsub.Event{Type: "saved", ID: "1", LockVersion: 2}) {
		t.Fatalf("workflows got %+v", ev)
	}
	if ev := <-one; ev.Type != "saved" || ev.ID != "1" {
		t.Fatalf("workflow:1 got %+v", ev)
	}
	select {
	case ev := <-a:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}

	cancelA()
	cancelA() // idempotent
	if _, ok := <-a; ok {
		t.Fatal("channel open after cancel")
	}
	if n := b.Subscribers("workflows"); n != 0 {
		t.Fatalf("Subscribers = %d after cancel", n)
	}
	b.Publish("workflows", pubsub.Event{Type: pubsub.EventReset}) // no subscriber: fine
}

func TestOrderAndSlowSubscriberClosed(t *testing.T) {
	t.Parallel()
	b := pubsub.New(3)
	slow, cancelSlow := b.Subscribe("t")
	defer cancelSlow()
	fast, cancelFast := b.Subscribe("t")
	defer cancelFast()

	var got []int
	for i := 1; i <= 5; i++ {
		b.Publish("t", pubsub.Event{Type: pubsub.EventUpdated, LockVersion: i})
		ev := <-fast
		got = append(got, ev.LockVersion)
	}
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("fast subscriber got %v, want 1..5 in order", got)
		}
	}
	// The slow one kept the first 3 events, then was closed: it sees them, then the close.
	var slowGot []int
	for ev := range slow {
		slowGot = append(slowGot, ev.LockVersion)
	}
	if len(slowGot) != 3 || slowGot[0] != 1 || slowGot[2] != 3 {
		t.Fatalf("slow subscriber got %v, want [1 2 3] then closed", slowGot)
	}
	if n := b.Subscribers("t"); n != 1 {
		t.Fatalf("Subscribers = %d, want 1 (slow one removed)", n)
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	b := pubsub.New(0)
	ch, cancel := b.Subscribe("t")
	b.Close()
	b.Close()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after Close")
	}
	cancel()
	ch2, cancel2 := b.Subscribe("t")
	defer cancel2()
	if _, ok := <-ch2; ok {
		t.Fatal("Subscribe after Close gave an open channel")
	}
	b.Publish("t", pubsub.Event{})
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	b := pubsub.New(1000)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch, cancel := b.Subscribe("t")
			for j := 0; j < 100; j++ {
				b.Publish("t", pubsub.Event{LockVersion: j})
			}
			cancel()
			for range ch {
			}
		}()
	}
	wg.Wait()
	if n := b.Subscribers("t"); n != 0 {
		t.Fatalf("Subscribers = %d", n)
	}
}
