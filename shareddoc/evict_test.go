package shareddoc_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/shareddoc"
)

// visit opens name with a session and leaves again: the document stays loaded, idle.
func (h *harness) visit(name string) {
	h.t.Helper()
	d, _ := h.join(name, "visitor-"+name)
	d.Leave("visitor-" + name)
	settle(h.t, d)
}

// storedText loads name from the store into a fresh document and returns its text.
func (h *harness) storedText(name string) string {
	h.t.Helper()
	cp, updates, _, err := h.store.Memory.Load(context.Background(), name)
	if err != nil {
		h.t.Fatal(err)
	}
	doc := crdt.NewDoc(crdt.DocOptions{})
	for _, u := range append([][]byte{cp}, updates...) {
		if u == nil {
			continue
		}
		if err := crdt.ApplyUpdate(doc, u, nil); err != nil {
			h.t.Fatal(err)
		}
	}
	return doc.GetText("t").String()
}

func TestIdleTimersShareOneWheel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Minute})
	for i := range 100 {
		h.visit(fmt.Sprintf("early-%d", i))
	}
	h.clock.Advance(30 * time.Second)
	for i := range 100 {
		h.visit(fmt.Sprintf("late-%d", i))
	}
	if n := h.reg.Count(); n != 200 {
		t.Fatalf("%d loaded", n)
	}
	// 200 idle documents, one timer (the wheel's); none for awareness, none per document.
	eventually(t, func() bool { return h.clock.Timers() == 1 }, "one armed timer")
	h.clock.Advance(30 * time.Second)
	eventually(t, func() bool { return h.reg.Count() == 100 }, "the early half unloaded")
	for _, n := range h.reg.List() {
		if n[:4] != "late" {
			t.Fatalf("%s still loaded", n)
		}
	}
	h.clock.Advance(29 * time.Second)
	if n := h.reg.Count(); n != 100 {
		t.Fatalf("late half unloaded early: %d left", n)
	}
	h.clock.Advance(time.Second)
	eventually(t, func() bool { return h.reg.Count() == 0 }, "the late half unloaded")
	eventually(t, func() bool { return h.clock.Timers() == 0 }, "the wheel stopped with nothing to count")
}

func TestJoinCancelsIdleCountdown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Minute})
	h.visit("doc")
	h.clock.Advance(50 * time.Second)
	d, _ := h.join("doc", "b") // cancels the countdown due at 60 s
	eventually(t, func() bool { return h.clock.Timers() == 0 }, "countdown cancelled")
	h.clock.Advance(20 * time.Second)
	settle(t, d)
	if h.reg.Count() != 1 {
		t.Fatal("unloaded with a session attached")
	}
	d.Leave("b") // a new countdown: 70 s + 60 s
	eventually(t, func() bool { return h.clock.Timers() == 1 }, "countdown restarted")
	h.clock.Advance(59 * time.Second)
	settle(t, d)
	if h.reg.Count() != 1 {
		t.Fatal("unloaded before the new countdown ended")
	}
	h.clock.Advance(time.Second)
	eventually(t, func() bool { return h.reg.Count() == 0 }, "unload")
}

func TestEvictionLeastRecentlyUsedFirst(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour, MaxLoadedDocs: 3})
	for _, n := range []string{"a", "b", "c"} {
		h.visit(n)
		h.clock.Advance(time.Second)
	}
	h.visit("a") // a is now the most recently used
	h.clock.Advance(time.Second)
	want := func(names ...string) {
		t.Helper()
		eventually(t, func() bool { return slices.Equal(h.reg.List(), names) }, fmt.Sprintf("loaded = %v (have %v)", names, h.reg.List()))
	}
	h.visit("d")
	want("a", "c", "d")
	h.clock.Advance(time.Second)
	h.visit("e")
	want("a", "d", "e")
	if n := h.reg.Stats().Evictions.Load(); n != 2 {
		t.Fatalf("evictions = %d", n)
	}
	// The idle timeout still applies to documents under the cap.
	h.clock.Advance(time.Hour)
	eventually(t, func() bool { return h.reg.Count() == 0 }, "idle unload")
}

func TestEvictedDocumentStoredBeforeItLeaves(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour, MaxLoadedDocs: 1})
	c := newClient(7)
	d, _ := h.join("a", "w")
	send(t, d, "w", syncproto.EncodeUpdate(c.insert(t, "stored ")))
	eventually(t, func() bool { return h.store.appends.Load() == 1 }, "first edit stored")
	// The store stalls: the next edit is applied and waits to be stored when the session leaves.
	h.store.close()
	send(t, d, "w", syncproto.EncodeUpdate(c.insert(t, "pending")))
	d.Leave("w")
	settle(t, d)
	// b needs a's slot: a is evicted, but only leaves once its pending edit is stored.
	_, _ = h.join("b", "x")
	if n := h.reg.Stats().Evictions.Load(); n != 1 {
		t.Fatalf("evictions = %d", n)
	}
	settle(t, d)
	select {
	case <-d.Done():
		t.Fatal("evicted document ended with an edit not stored")
	default:
	}
	compacts := h.store.compacts.Load()
	h.store.open()
	<-d.Done()
	if h.store.compacts.Load() != compacts+1 {
		t.Fatal("evicted document did not checkpoint before leaving")
	}
	if got := h.storedText("a"); got != "stored pending" {
		t.Fatalf("stored text %q", got)
	}
	// b has a session, so nothing is idle: a cannot come back until b is idle.
	if _, _, err := h.reg.JoinOrCreate(context.Background(), "a", shareddoc.JoinOptions{Session: shareddoc.SessionInfo{ID: "y"}, Peer: &fakePeer{id: "y"}}); !errors.Is(err, shareddoc.ErrTooManyDocuments) {
		t.Fatalf("join a while b is busy: %v", err)
	}
}

func TestNewDocumentsRefusedWhenNoneIsIdle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour, MaxLoadedDocs: 2})
	_, _ = h.join("a", "1")
	db, _ := h.join("b", "2")
	if h.reg.CanLoad("c") || !h.reg.CanLoad("a") {
		t.Fatalf("CanLoad c %v, a %v", h.reg.CanLoad("c"), h.reg.CanLoad("a"))
	}
	_, _, err := h.reg.JoinOrCreate(context.Background(), "c", shareddoc.JoinOptions{Session: shareddoc.SessionInfo{ID: "3"}, Peer: &fakePeer{id: "3"}})
	if !errors.Is(err, shareddoc.ErrTooManyDocuments) {
		t.Fatalf("join over the cap: %v", err)
	}
	if n := h.reg.Stats().DocumentsRefused.Load(); n != 1 {
		t.Fatalf("refused = %d", n)
	}
	// A second session on a loaded document is always fine.
	_, _ = h.join("a", "4")
	db.Leave("2")
	settle(t, db)
	if !h.reg.CanLoad("c") {
		t.Fatal("CanLoad false with an idle document to evict")
	}
	_, _ = h.join("c", "5")
	eventually(t, func() bool { return slices.Equal(h.reg.List(), []string{"a", "c"}) }, "b evicted for c")
}
