package shareddoc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/shareddoc"
)

// While the store fails, updates are applied, relayed and kept until the document's budget of
// unstored bytes is spent; then a new update is refused (its sender closed with CloseBacklog,
// the document unchanged) instead of growing memory. Once the store is back everything kept is
// stored and echoed, and the budget is free again.
func TestPendingBudgetRefusesInsteadOfGrowing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour, MaxPendingBytesPerDoc: 2000, MaxBacklogWait: -1})
	d, a := h.join("doc", "a")
	_, b := h.join("doc", "b")
	h.store.failing.Store(true)
	ca := newClient(1)
	for range 3 {
		send(t, d, "a", syncproto.EncodeUpdate(ca.insert(t, strings.Repeat("x", 500))))
	}
	eventually(t, func() bool { return b.count(t, syncproto.TypeSync, syncproto.SyncUpdate) == 3 }, "relayed while the store is down")
	if got := h.reg.Stats().PendingBytes.Load(); got < 1500 {
		t.Fatalf("pending bytes %d", got)
	}

	// The fourth 500-byte update would pass 2000 bytes: refused, a is closed to retry later.
	send(t, d, "a", syncproto.EncodeUpdate(ca.insert(t, strings.Repeat("y", 500))))
	eventually(t, func() bool { return a.closedWith() == shareddoc.CloseBacklog }, "a closed with CloseBacklog")
	if b.count(t, syncproto.TypeSync, syncproto.SyncUpdate) != 3 {
		t.Fatal("the refused update was relayed")
	}
	if h.reg.Stats().BacklogCloses.Load() != 1 {
		t.Fatal("backlog close not counted")
	}

	// Another peer's sync reply with nothing new is not refused (it adds nothing).
	send(t, d, "b", syncproto.EncodeSyncStep2([]byte{0, 0}))
	if b.closedWith() != 0 {
		t.Fatalf("b closed: %v", b.closedWith())
	}

	h.store.failing.Store(false)
	h.clock.Advance(time.Minute)
	eventually(t, func() bool { return h.reg.Stats().PendingBytes.Load() == 0 }, "everything stored")
	_, updates, _, err := h.store.Load(context.Background(), "doc")
	if err != nil || len(updates) != 3 {
		t.Fatalf("stored %d updates (err %v), want 3", len(updates), err)
	}
	// The budget is free again: b may edit.
	send(t, d, "b", syncproto.EncodeUpdate(newClient(2).insert(t, strings.Repeat("z", 500))))
	eventually(t, func() bool { return b.count(t, syncproto.TypeSync, syncproto.SyncUpdate) == 4 }, "b's echo")
}

// An update that would take the document past MaxDocBytes is answered with permission-denied
// and not applied; the session stays attached.
func TestMaxDocBytes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour, MaxDocBytes: 1000})
	d, a := h.join("doc", "a")
	_, b := h.join("doc", "b")
	ca := newClient(1)
	send(t, d, "a", syncproto.EncodeUpdate(ca.insert(t, strings.Repeat("x", 600))))
	send(t, d, "a", syncproto.EncodeUpdate(ca.insert(t, strings.Repeat("y", 600))))
	eventually(t, func() bool {
		for _, m := range a.messages(t) {
			if m.Type == syncproto.TypeAuth && m.Reason == shareddoc.ReasonTooLarge {
				return true
			}
		}
		return false
	}, "permission-denied")
	if n := b.count(t, syncproto.TypeSync, syncproto.SyncUpdate); n != 1 || a.closedWith() != 0 {
		t.Fatalf("b got %d updates, a closed %v", n, a.closedWith())
	}
	if h.reg.Stats().TooLargeRefusals.Load() != 1 {
		t.Fatal("refusal not counted")
	}
}
