package shareddoc_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/shareddoc"
)

func TestSyncStep1AnsweredWithStep2Step1Awareness(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, a := h.join("doc", "a")
	c := newClient(1)
	send(t, d, "a", syncproto.EncodeUpdate(c.insert(t, "hello")))
	send(t, d, "a", syncproto.EncodeAwareness([]byte{1, 1, 1, 2, '{', '}'}))

	_, b := h.join("doc", "b")
	send(t, d, "b", syncproto.EncodeSyncStep1([]byte{0}))
	eventually(t, func() bool { return len(b.messages(t)) >= 3 }, "b's sync reply")
	msgs := b.messages(t)
	if msgs[0].Type != syncproto.TypeSync || msgs[0].SyncType != syncproto.SyncStep2 {
		t.Fatalf("first reply %v, want step2", msgs[0])
	}
	if msgs[1].Type != syncproto.TypeSync || msgs[1].SyncType != syncproto.SyncStep1 {
		t.Fatalf("second reply %v, want step1", msgs[1])
	}
	if msgs[2].Type != syncproto.TypeAwareness {
		t.Fatalf("third reply %v, want awareness", msgs[2])
	}
	if got := replay(t, msgs[:1]); got != "hello" {
		t.Fatalf("step2 holds %q", got)
	}
	_ = a
}

func TestUpdateBroadcastAtOnceEchoedWhenStored(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, a := h.join("doc", "a")
	_, b := h.join("doc", "b")
	h.store.close()
	c := newClient(1)
	u := c.insert(t, "x")
	send(t, d, "a", syncproto.EncodeUpdate(u))
	eventually(t, func() bool { return b.count(t, syncproto.TypeSync, syncproto.SyncUpdate) == 1 }, "broadcast to b")
	// The actor is not blocked by the stuck store: it still answers.
	if _, err := d.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := a.count(t, syncproto.TypeSync, syncproto.SyncUpdate); n != 0 {
		t.Fatalf("a got %d echoes before the update was stored", n)
	}
	h.store.open()
	eventually(t, func() bool { return a.count(t, syncproto.TypeSync, syncproto.SyncUpdate) == 1 }, "echo to a")
	if got := a.messages(t)[0].Payload; !bytes.Equal(got, u) {
		t.Fatalf("echo %x, want %x", got, u)
	}
	if n := b.count(t, syncproto.TypeSync, syncproto.SyncUpdate); n != 1 {
		t.Fatalf("b got %d updates, want 1 (no echo to others)", n)
	}
}

func TestMalformedUpdateClosesOnlySender(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, a := h.join("doc", "a")
	_, b := h.join("doc", "b")
	c := newClient(1)
	send(t, d, "b", syncproto.EncodeUpdate(c.insert(t, "ok")))
	send(t, d, "a", syncproto.EncodeUpdate([]byte{5, 200, 1, 9, 9, 9}))
	eventually(t, func() bool { return a.closedWith() == shareddoc.CloseBadUpdate }, "a closed")
	send(t, d, "a", syncproto.EncodeUpdate(c.insert(t, "ignored"))) // detached: dropped
	send(t, d, "b", syncproto.EncodeSyncStep1([]byte{0}))
	eventually(t, func() bool { return b.count(t, syncproto.TypeSync, syncproto.SyncStep2) == 1 }, "b's step2")
	var step2 []syncproto.Message
	for _, m := range b.messages(t) {
		if m.SyncType == syncproto.SyncStep2 {
			step2 = append(step2, m)
		}
	}
	if got := replay(t, step2); got != "ok" {
		t.Fatalf("document holds %q, want %q", got, "ok")
	}
	if b.closedWith() != 0 {
		t.Fatalf("b closed: %v", b.closedWith())
	}
	if n := h.reg.Stats().BadUpdateCloses.Load(); n != 1 {
		t.Fatalf("bad update closes = %d", n)
	}
}

func TestAwarenessRemovedOnLeaveAndWhenOutdated(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, a := h.join("doc", "a")
	_, b := h.join("doc", "b")
	_, c := h.join("doc", "c")
	// a introduces client 10, b client 20 (state {} at clock 1).
	send(t, d, "a", syncproto.EncodeAwareness([]byte{1, 10, 1, 2, '{', '}'}))
	send(t, d, "b", syncproto.EncodeAwareness([]byte{1, 20, 1, 2, '{', '}'}))
	eventually(t, func() bool { return c.count(t, syncproto.TypeAwareness, 0) == 2 }, "c sees both")

	d.Leave("a")
	eventually(t, func() bool { return c.count(t, syncproto.TypeAwareness, 0) == 3 }, "removal of a's client")
	last := c.messages(t)[2].Payload
	if !bytes.Equal(last, []byte{1, 10, 1, 4, 'n', 'u', 'l', 'l'}) {
		t.Fatalf("removal update %x", last)
	}
	if a.count(t, syncproto.TypeAwareness, 0) != 2 {
		t.Fatalf("a got frames after leaving")
	}

	// Query awareness: only b's client is left.
	send(t, d, "c", syncproto.EncodeQueryAwareness())
	eventually(t, func() bool { return c.count(t, syncproto.TypeAwareness, 0) == 4 }, "query answer")
	if got := c.messages(t)[3].Payload; !bytes.Equal(got, []byte{1, 20, 1, 2, '{', '}'}) {
		t.Fatalf("query answer %x", got)
	}

	// b's client goes silent: after the timeout the timer drops it and tells everyone.
	h.clock.Advance(31 * time.Second)
	eventually(t, func() bool { return c.count(t, syncproto.TypeAwareness, 0) == 5 }, "outdated removal")
	if got := c.messages(t)[4].Payload; !bytes.Equal(got, []byte{1, 20, 1, 4, 'n', 'u', 'l', 'l'}) {
		t.Fatalf("outdated removal %x", got)
	}
	_ = b
}

func TestConcurrentJoinsLoadOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	const n = 50
	var wg sync.WaitGroup
	created := make(chan bool, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &fakePeer{id: fmt.Sprint(i)}
			_, c, err := h.reg.JoinOrCreate(context.Background(), "same", shareddoc.JoinOptions{Session: shareddoc.SessionInfo{ID: p.id}, Peer: p})
			if err != nil {
				t.Error(err)
			}
			created <- c
		}()
	}
	wg.Wait()
	close(created)
	nc := 0
	for c := range created {
		if c {
			nc++
		}
	}
	if nc != 1 || h.store.loads.Load() != 1 || h.reg.Count() != 1 {
		t.Fatalf("created %d times, loaded %d times, %d documents", nc, h.store.loads.Load(), h.reg.Count())
	}
	in, err := h.reg.Get("same").Info(context.Background())
	if err != nil || len(in.Sessions) != n {
		t.Fatalf("sessions %d, err %v", len(in.Sessions), err)
	}
}

func TestUnloadCheckpointsAndReloads(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{}) // IdleTimeout 0: unload when the last session leaves
	d, a := h.join("doc", "a")
	c := newClient(1)
	send(t, d, "a", syncproto.EncodeUpdate(c.insert(t, "one ")))
	send(t, d, "a", syncproto.EncodeUpdate(c.insert(t, "two")))
	eventually(t, func() bool { return a.count(t, syncproto.TypeSync, syncproto.SyncUpdate) == 2 }, "echoes")
	d.Leave("a")
	eventually(t, func() bool { return h.reg.Count() == 0 }, "unload")
	<-d.Done()
	if h.store.compacts.Load() != 1 {
		t.Fatalf("compactions = %d", h.store.compacts.Load())
	}
	cp, log, _, err := h.store.Memory.Load(context.Background(), "doc")
	if err != nil || cp == nil || len(log) != 0 {
		t.Fatalf("after unload: checkpoint %d bytes, %d log entries, err %v", len(cp), len(log), err)
	}
	d2, b := h.join("doc", "b")
	if d2 == d {
		t.Fatal("got the unloaded document back")
	}
	send(t, d2, "b", syncproto.EncodeSyncStep1([]byte{0}))
	eventually(t, func() bool { return len(b.messages(t)) >= 1 }, "step2")
	if got := replay(t, b.messages(t)); got != "one two" {
		t.Fatalf("reloaded %q", got)
	}
}

func TestUnloadWaitsForPendingStorage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{})
	d, _ := h.join("doc", "a")
	h.store.close()
	send(t, d, "a", syncproto.EncodeUpdate(newClient(1).insert(t, "x")))
	d.Leave("a")
	in, err := d.Info(context.Background())
	if err != nil || in.PendingUpdates != 1 {
		t.Fatalf("info %+v err %v: document should stay loaded with its update pending", in, err)
	}
	h.store.open()
	eventually(t, func() bool { return h.reg.Count() == 0 }, "unload after the store caught up")
	_, log, _, _ := h.store.Memory.Load(context.Background(), "doc")
	cp, _, _, _ := h.store.Memory.Load(context.Background(), "doc")
	if cp == nil && len(log) == 0 {
		t.Fatal("nothing stored")
	}
}

func TestJoinRacingUnloadEndsOnLiveDoc(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{})
	c := newClient(1)
	for i := range 200 {
		d, a := h.join("race", "a")
		if i == 0 {
			send(t, d, "a", syncproto.EncodeUpdate(c.insert(t, "kept")))
			eventually(t, func() bool { return a.count(t, syncproto.TypeSync, syncproto.SyncUpdate) == 1 }, "echo")
		}
		done := make(chan struct{})
		var d2 *shareddoc.Doc
		var b *fakePeer
		go func() {
			defer close(done)
			d2, b = h.join("race", "b")
		}()
		d.Leave("a")
		<-done
		// b must be on a live document holding the state.
		send(t, d2, "b", syncproto.EncodeSyncStep1([]byte{0}))
		eventually(t, func() bool { return b.count(t, syncproto.TypeSync, syncproto.SyncStep2) == 1 }, "b's step2")
		if got := replay(t, b.messages(t)); got != "kept" {
			t.Fatalf("iteration %d: b sees %q", i, got)
		}
		d2.Leave("b")
		eventually(t, func() bool { return h.reg.Count() == 0 }, "unload")
	}
}

func TestIdleTimeoutUsesClock(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Minute})
	d, _ := h.join("doc", "a")
	timers := h.clock.Timers()
	d.Leave("a")
	eventually(t, func() bool { return h.clock.Timers() == timers+1 }, "idle timer armed")
	h.clock.Advance(59 * time.Second)
	if h.reg.Count() != 1 {
		t.Fatal("unloaded before the idle timeout")
	}
	h.clock.Advance(time.Second)
	eventually(t, func() bool { return h.reg.Count() == 0 }, "unload after the idle timeout")
}

func TestSlowPeerClosed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, a := h.join("doc", "a")
	slow := &fakePeer{id: "slow", budget: 2}
	if _, _, err := h.reg.JoinOrCreate(context.Background(), "doc", shareddoc.JoinOptions{Session: shareddoc.SessionInfo{ID: "slow"}, Peer: slow}); err != nil {
		t.Fatal(err)
	}
	c := newClient(1)
	for i := range 5 {
		send(t, d, "a", syncproto.EncodeUpdate(c.insert(t, fmt.Sprint(i))))
	}
	eventually(t, func() bool { return slow.closedWith() == shareddoc.CloseSlow }, "slow peer closed")
	eventually(t, func() bool { return a.count(t, syncproto.TypeSync, syncproto.SyncUpdate) == 5 }, "a keeps going")
	if h.reg.Stats().SlowCloses.Load() != 1 {
		t.Fatalf("slow closes = %d", h.reg.Stats().SlowCloses.Load())
	}
}

func TestServerSideUpdateGoesToEveryoneAndStore(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, a := h.join("doc", "a")
	_, b := h.join("doc", "b")
	err := d.Update(context.Background(), func(tx *crdt.Transaction) {
		if err := tx.Doc().GetText("t").Insert(0, "server", nil); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*fakePeer{a, b} {
		eventually(t, func() bool { return p.count(t, syncproto.TypeSync, syncproto.SyncUpdate) == 1 }, "server edit at "+p.id)
		if got := replay(t, p.messages(t)); got != "server" {
			t.Fatalf("%s sees %q", p.id, got)
		}
	}
	eventually(t, func() bool { return h.store.appends.Load() == 1 }, "stored")
}

func TestShutdownFlushesAndClosesSessions(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, a := h.join("doc", "a")
	h.store.close()
	send(t, d, "a", syncproto.EncodeUpdate(newClient(1).insert(t, "late")))
	// The update must be applied (and waiting for the closed store) before the shutdown starts;
	// otherwise a loaded machine may run the shutdown first and there is nothing to wait for.
	eventually(t, func() bool {
		in, err := d.Info(context.Background())
		return err == nil && in.PendingUpdates == 1
	}, "update pending")
	done := make(chan error, 1)
	go func() { done <- h.reg.Shutdown(context.Background()) }()
	eventually(t, func() bool { return a.closedWith() == shareddoc.CloseShutdown }, "session closed with shutdown")
	select {
	case err := <-done:
		t.Fatalf("shutdown returned before the update was stored: %v", err)
	default:
	}
	h.store.open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cp, log, _, _ := h.store.Memory.Load(context.Background(), "doc")
	if cp == nil || len(log) != 0 {
		t.Fatalf("after shutdown: checkpoint %d bytes, log %d", len(cp), len(log))
	}
	if _, _, err := h.reg.JoinOrCreate(context.Background(), "doc", shareddoc.JoinOptions{Session: shareddoc.SessionInfo{ID: "z"}, Peer: &fakePeer{}}); err == nil {
		t.Fatal("join after shutdown succeeded")
	}
}

func TestStoreFailureRetriedWithBackoff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, a := h.join("doc", "a")
	h.store.failing.Store(true)
	timers := h.clock.Timers()
	send(t, d, "a", syncproto.EncodeUpdate(newClient(1).insert(t, "x")))
	eventually(t, func() bool { return h.clock.Timers() == timers+1 }, "retry timer armed")
	if a.count(t, syncproto.TypeSync, syncproto.SyncUpdate) != 0 {
		t.Fatal("echo although the append failed")
	}
	h.store.failing.Store(false)
	h.clock.Advance(time.Second)
	eventually(t, func() bool { return a.count(t, syncproto.TypeSync, syncproto.SyncUpdate) == 1 }, "echo after retry")
	if h.reg.Stats().StoreErrors.Load() == 0 {
		t.Fatal("store error not counted")
	}
}
