package shareddoc_test

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/shareddoc"
)

// pausePeer is a fakePeer that can be paused (shareddoc.Pauser), as a session's reader can.
type pausePeer struct {
	fakePeer
	pauses, resumes atomic.Int64
}

func (p *pausePeer) Pause()  { p.pauses.Add(1) }
func (p *pausePeer) Resume() { p.resumes.Add(1) }

func (p *pausePeer) paused() bool { return p.pauses.Load() > p.resumes.Load() }

// pauseAckPeer is a pausePeer that acknowledges updates, as a Hocuspocus session does.
type pauseAckPeer struct {
	ackPeer
	pauses, resumes atomic.Int64
}

func (p *pauseAckPeer) Pause()  { p.pauses.Add(1) }
func (p *pauseAckPeer) Resume() { p.resumes.Add(1) }

func (h *harness) joinPeer(name, id string, p shareddoc.Peer) *shareddoc.Doc {
	h.t.Helper()
	d, _, err := h.reg.JoinOrCreate(context.Background(), name, shareddoc.JoinOptions{
		Session: shareddoc.SessionInfo{ID: id, User: "u-" + id},
		Peer:    p,
	})
	if err != nil {
		h.t.Fatalf("join %s: %v", id, err)
	}
	return d
}

// updatesOf returns the payloads of the Update messages p received, in order.
func updatesOf(t *testing.T, p *fakePeer) [][]byte {
	var out [][]byte
	for _, m := range p.messages(t) {
		if m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncUpdate {
			out = append(out, m.Payload)
		}
	}
	return out
}

// fillBudget makes writer a's three 500-byte updates pending in a document whose store does not
// answer (2000 bytes per document), so that the next one is over budget.
func fillBudget(t *testing.T, h *harness, d *shareddoc.Doc, id string, c *client, b *fakePeer) {
	t.Helper()
	h.store.close()
	for range 3 {
		send(t, d, id, syncproto.EncodeUpdate(c.insert(t, strings.Repeat("x", 500))))
	}
	eventually(t, func() bool { return b.count(t, syncproto.TypeSync, syncproto.SyncUpdate) == 3 }, "relayed while the store is down")
}

// fullBudget joins a pausable writer a and a reader b to "doc" (2000 pending bytes per
// document) and fills the budget with a's updates (fillBudget): a's next update is held.
func fullBudget(t *testing.T) (*harness, *shareddoc.Doc, *pausePeer, *fakePeer, *client) {
	t.Helper()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour, MaxPendingBytesPerDoc: 2000})
	a := &pausePeer{fakePeer: fakePeer{id: "a"}}
	d := h.joinPeer("doc", "a", a)
	_, b := h.join("doc", "b")
	ca := newClient(1)
	fillBudget(t, h, d, "a", ca, b)
	return h, d, a, b, ca
}

// Over the pending budget a writer is held and paused, not closed: its update and everything it
// sends after it wait in order, while a reader and an awareness-only session go on. Once the
// store catches up the held frames go through in order — applied, broadcast, stored, echoed —
// and the writer resumes.
func TestBacklogHoldsWriterInsteadOfClosing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour, MaxPendingBytesPerDoc: 2000})
	a := &pausePeer{fakePeer: fakePeer{id: "a"}}
	d := h.joinPeer("doc", "a", a)
	_, b := h.join("doc", "b")
	_, c := h.join("doc", "c") // sends only awareness
	ca := newClient(1)
	fillBudget(t, h, d, "a", ca, b)

	u4 := ca.insert(t, strings.Repeat("y", 500))
	send(t, d, "a", syncproto.EncodeUpdate(u4))
	eventually(t, func() bool { return h.reg.Stats().BacklogPausedPeers.Load() == 1 }, "a held")
	if !a.paused() {
		t.Fatal("a not paused")
	}
	send(t, d, "a", aw(1, 1, `{"a":1}`))
	u5 := ca.insert(t, strings.Repeat("z", 10))
	send(t, d, "a", syncproto.EncodeUpdate(u5))
	send(t, d, "c", aw(3, 1, `{"c":1}`))
	settle(t, d)

	if a.closedWith() != 0 || b.closedWith() != 0 || c.closedWith() != 0 {
		t.Fatalf("closed: a %v b %v c %v", a.closedWith(), b.closedWith(), c.closedWith())
	}
	if n := b.count(t, syncproto.TypeSync, syncproto.SyncUpdate); n != 3 {
		t.Fatalf("b got %d updates while a is held, want 3", n)
	}
	// c's awareness goes on, to everyone (a included: it is paused for reading only); a's
	// awareness waits behind its held update.
	for _, p := range []*fakePeer{&a.fakePeer, b, c} {
		if got := p.awareness(t); len(got) != 1 || !bytes.Equal(got[0], awPayload(3, 1, `{"c":1}`)) {
			t.Fatalf("%s saw awareness %q, want only c's", p.id, got)
		}
	}
	// A reader's sync goes on too.
	send(t, d, "b", syncproto.EncodeSyncStep1([]byte{0}))
	settle(t, d)
	if n := b.count(t, syncproto.TypeSync, syncproto.SyncStep2); n != 1 {
		t.Fatalf("b got %d sync step 2 answers", n)
	}
	if got := h.reg.Stats().BacklogCloses.Load(); got != 0 {
		t.Fatalf("backlog closes %d", got)
	}

	h.store.open()
	eventually(t, func() bool { return a.resumes.Load() == 1 }, "a resumed")
	eventually(t, func() bool { return h.reg.Stats().PendingBytes.Load() == 0 }, "everything stored")
	if a.pauses.Load() != 1 || h.reg.Stats().BacklogPausedPeers.Load() != 0 || h.reg.Stats().BacklogPauses.Load() != 1 {
		t.Fatalf("pauses %d, paused now %d, counted %d", a.pauses.Load(), h.reg.Stats().BacklogPausedPeers.Load(), h.reg.Stats().BacklogPauses.Load())
	}
	// b got a's held frames in a's order: u4, a's awareness, u5.
	var order []string
	for _, m := range b.messages(t) {
		switch {
		case m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncUpdate && bytes.Equal(m.Payload, u4):
			order = append(order, "u4")
		case m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncUpdate && bytes.Equal(m.Payload, u5):
			order = append(order, "u5")
		case m.Type == syncproto.TypeAwareness && bytes.Equal(m.Payload, awPayload(1, 1, `{"a":1}`)):
			order = append(order, "aw")
		}
	}
	if strings.Join(order, " ") != "u4 aw u5" {
		t.Fatalf("b got a's held frames as %v", order)
	}
	want := strings.Repeat("x", 1500) + strings.Repeat("y", 500) + strings.Repeat("z", 10)
	if got := replay(t, b.messages(t)); got != want {
		t.Fatalf("b's text has %d runes, want %d", len(got), len(want))
	}
	// Every update of a's is stored and echoed to it.
	_, stored, _, err := h.store.Load(context.Background(), "doc")
	if err != nil || len(stored) != 5 {
		t.Fatalf("stored %d updates (err %v), want 5", len(stored), err)
	}
	eventually(t, func() bool { return len(updatesOf(t, &a.fakePeer)) == 5 }, "five echoes")
	if echoes := updatesOf(t, &a.fakePeer); !bytes.Equal(echoes[3], u4) || !bytes.Equal(echoes[4], u5) {
		t.Fatal("held updates echoed out of order")
	}
	if a.closedWith() != 0 {
		t.Fatalf("a closed: %v", a.closedWith())
	}
}

// A peer held longer than MaxBacklogWait (on the registry's clock) is closed with CloseBacklog;
// its held updates are dropped, never applied, and an Acker is told each failed. Other sessions
// stay.
func TestBacklogCloseAfterMaxWait(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour, MaxPendingBytesPerDoc: 2000, MaxBacklogWait: 5 * time.Second})
	a := &pauseAckPeer{ackPeer: ackPeer{fakePeer: fakePeer{id: "a"}}}
	d := h.joinPeer("doc", "a", a)
	_, b := h.join("doc", "b")
	ca := newClient(1)
	fillBudget(t, h, d, "a", ca, b)
	send(t, d, "a", syncproto.EncodeUpdate(ca.insert(t, strings.Repeat("y", 500))))
	send(t, d, "a", syncproto.EncodeUpdate(ca.insert(t, "z")))
	eventually(t, func() bool { return h.reg.Stats().BacklogPausedPeers.Load() == 1 }, "a held")

	h.clock.Advance(4 * time.Second) // rechecks only: still over budget
	settle(t, d)
	if a.closedWith() != 0 || len(a.got()) != 0 {
		t.Fatalf("a closed %v / acked %v before MaxBacklogWait", a.closedWith(), a.got())
	}
	h.clock.Advance(time.Second)
	eventually(t, func() bool { return a.closedWith() == shareddoc.CloseBacklog }, "a closed with CloseBacklog")
	if got := a.got(); len(got) != 2 || got[0] || got[1] {
		t.Fatalf("acks %v, want two failures", got)
	}
	st := h.reg.Stats()
	if st.BacklogCloses.Load() != 1 || st.BacklogPausedPeers.Load() != 0 || a.pauses.Load() != a.resumes.Load() {
		t.Fatalf("closes %d, paused now %d, pauses %d resumes %d", st.BacklogCloses.Load(), st.BacklogPausedPeers.Load(), a.pauses.Load(), a.resumes.Load())
	}
	if b.closedWith() != 0 {
		t.Fatalf("b closed: %v", b.closedWith())
	}

	h.store.open()
	eventually(t, func() bool { return st.PendingBytes.Load() == 0 }, "everything stored")
	_, stored, _, err := h.store.Load(context.Background(), "doc")
	if err != nil || len(stored) != 3 {
		t.Fatalf("stored %d updates (err %v), want the 3 applied before the hold", len(stored), err)
	}
	if n := b.count(t, syncproto.TypeSync, syncproto.SyncUpdate); n != 3 {
		t.Fatalf("b got %d updates", n)
	}
}

// A held peer that leaves takes its held frames with it: nothing is applied, the pause is
// undone and the document unloads as usual.
func TestBacklogHeldPeerLeaves(t *testing.T) {
	t.Parallel()
	h, d, a, b, ca := fullBudget(t)
	send(t, d, "a", syncproto.EncodeUpdate(ca.insert(t, strings.Repeat("y", 500))))
	send(t, d, "a", aw(1, 1, `{"a":1}`))
	eventually(t, func() bool { return h.reg.Stats().BacklogPausedPeers.Load() == 1 }, "a held")

	d.Leave("a")
	if a.resumes.Load() != 1 || h.reg.Stats().BacklogPausedPeers.Load() != 0 {
		t.Fatalf("resumes %d, paused now %d", a.resumes.Load(), h.reg.Stats().BacklogPausedPeers.Load())
	}
	h.store.open()
	eventually(t, func() bool { return h.reg.Stats().PendingBytes.Load() == 0 }, "everything stored")
	settle(t, d)
	_, stored, _, err := h.store.Load(context.Background(), "doc")
	if err != nil || len(stored) != 3 {
		t.Fatalf("stored %d updates (err %v), want 3", len(stored), err)
	}
	if n := b.count(t, syncproto.TypeSync, syncproto.SyncUpdate); n != 3 || len(b.awareness(t)) != 0 {
		t.Fatalf("b got %d updates and %d awareness frames of a's", n, len(b.awareness(t)))
	}
	if a.closedWith() != 0 || h.reg.Stats().BacklogCloses.Load() != 0 {
		t.Fatalf("a closed %v", a.closedWith())
	}
}

// A held peer that keeps sending past the held-bytes cap is closed with CloseBacklog.
func TestBacklogHeldBytesBounded(t *testing.T) {
	t.Parallel()
	h, d, a, b, ca := fullBudget(t)
	send(t, d, "a", syncproto.EncodeUpdate(ca.insert(t, strings.Repeat("y", 500))))
	eventually(t, func() bool { return h.reg.Stats().BacklogPausedPeers.Load() == 1 }, "a held")
	if err := d.Receive(context.Background(), "a", syncproto.Message{Type: syncproto.TypeAwareness, Payload: make([]byte, 16<<20)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return a.closedWith() == shareddoc.CloseBacklog }, "a closed with CloseBacklog")
	if h.reg.Stats().BacklogCloses.Load() != 1 || h.reg.Stats().BacklogPausedPeers.Load() != 0 || b.closedWith() != 0 {
		t.Fatalf("closes %d, paused now %d, b closed %v", h.reg.Stats().BacklogCloses.Load(), h.reg.Stats().BacklogPausedPeers.Load(), b.closedWith())
	}
}

// Held for the process-wide budget, a peer is replayed when another document's store frees it:
// the document has no store result of its own, so its recheck timer looks again.
func TestBacklogProcessBudgetRecheck(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour, MaxPendingBytes: 2000})
	d1, b1 := h.join("one", "b1")
	_, r1 := h.join("one", "r1")
	fillBudget(t, h, d1, "b1", newClient(1), r1)
	a := &pausePeer{fakePeer: fakePeer{id: "a"}}
	d2 := h.joinPeer("two", "a", a)
	_, r := h.join("two", "r")
	send(t, d2, "a", syncproto.EncodeUpdate(newClient(2).insert(t, strings.Repeat("y", 600))))
	eventually(t, func() bool { return h.reg.Stats().BacklogPausedPeers.Load() == 1 }, "a held")

	h.store.open()
	eventually(t, func() bool { return h.reg.Stats().PendingBytes.Load() == 0 }, "one stored")
	settle(t, d2)
	if r.count(t, syncproto.TypeSync, syncproto.SyncUpdate) != 0 || !a.paused() {
		t.Fatal("replayed without a store result or recheck")
	}
	h.clock.Advance(time.Second)
	eventually(t, func() bool { return r.count(t, syncproto.TypeSync, syncproto.SyncUpdate) == 1 }, "a's update after the recheck")
	eventually(t, func() bool { return !a.paused() }, "a resumed")
	if a.closedWith() != 0 || b1.closedWith() != 0 {
		t.Fatalf("closed: a %v b1 %v", a.closedWith(), b1.closedWith())
	}
}

// A document stopping with a held peer closes it as any other (CloseShutdown, not
// CloseBacklog): its held frames are dropped and its pause undone.
func TestBacklogHeldPeerAtShutdown(t *testing.T) {
	t.Parallel()
	h, d, a, _, ca := fullBudget(t)
	send(t, d, "a", syncproto.EncodeUpdate(ca.insert(t, strings.Repeat("y", 500))))
	eventually(t, func() bool { return h.reg.Stats().BacklogPausedPeers.Load() == 1 }, "a held")

	done := make(chan error, 1)
	go func() { done <- h.reg.Shutdown(context.Background()) }() // waits for the store
	eventually(t, func() bool { return a.closedWith() != 0 }, "a closed")
	if a.closedWith() != shareddoc.CloseShutdown || h.reg.Stats().BacklogPausedPeers.Load() != 0 || a.paused() {
		t.Fatalf("a closed %v, paused now %d, a paused %v", a.closedWith(), h.reg.Stats().BacklogPausedPeers.Load(), a.paused())
	}
	h.store.open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The final flush checkpointed: what is stored is the three updates applied before the hold.
	cp, stored, _, err := h.store.Load(context.Background(), "doc")
	if err != nil {
		t.Fatal(err)
	}
	got := crdt.NewDoc(crdt.DocOptions{})
	for _, u := range append([][]byte{cp}, stored...) {
		if u != nil {
			if err := crdt.ApplyUpdate(got, u, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if txt := got.GetText("t").String(); txt != strings.Repeat("x", 1500) {
		t.Fatalf("stored text of %d runes, want the 1500 applied before the hold", len(txt))
	}
	if h.reg.Stats().BacklogCloses.Load() != 0 {
		t.Fatal("counted as a backlog close")
	}
}
