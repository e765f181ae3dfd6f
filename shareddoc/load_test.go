package shareddoc

import (
	"context"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/store"
)

// storeRows appends rows to the document's log in order.
func storeRows(t *testing.T, s *store.Memory, name string, rows ...[]byte) {
	t.Helper()
	for _, r := range rows {
		if _, err := s.Append(context.Background(), name, r); err != nil {
			t.Fatal(err)
		}
	}
}

// loadedText loads the document in a fresh registry and returns the text a fresh client gets in
// its first sync, with the registry's StoreErrors.
func loadedText(t *testing.T, s *store.Memory, name string) (string, int64) {
	t.Helper()
	r := NewRegistry(Config{Store: s, IdleTimeout: time.Hour})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	p := &recPeer{}
	d, _, err := r.JoinOrCreate(context.Background(), name, JoinOptions{Session: SessionInfo{ID: "a"}, Peer: p})
	if err != nil {
		t.Fatal(err)
	}
	receive(t, d, "a", syncproto.EncodeSyncStep1([]byte{0}))
	waitFor(t, func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.frames) > 0 }, "SyncStep2")
	return p.text(t), r.Stats().StoreErrors.Load()
}

// TestLoadSkipsBadRow: a stored row that is not an update is skipped and counted; every other
// row of the log still applies (in the one-transaction replay).
func TestLoadSkipsBadRow(t *testing.T) {
	mem := store.NewMemory()
	client := crdt.NewDoc(crdt.DocOptions{ClientID: 7})
	storeRows(t, mem, "doc", textUpdate(t, client, "one "), []byte{0xff, 0xff, 0xff}, textUpdate(t, client, "two"))
	text, errs := loadedText(t, mem, "doc")
	if text != "one two" {
		t.Fatalf("loaded %q, want %q", text, "one two")
	}
	if errs != 1 {
		t.Fatalf("StoreErrors = %d, want 1 (the bad row)", errs)
	}
}

// TestLoadFallsBackRowByRow: when replaying the rows together fails half-way (an injected
// panic after a change), the document is rebuilt one row per transaction and loads complete.
func TestLoadFallsBackRowByRow(t *testing.T) {
	mem := store.NewMemory()
	client := crdt.NewDoc(crdt.DocOptions{ClientID: 7})
	storeRows(t, mem, "doc", textUpdate(t, client, "one "), textUpdate(t, client, "two"))
	panics := 0
	testHookLoadApplied = func(doc *crdt.Doc) {
		if panics == 0 {
			panics++
			if err := doc.GetText("t").Insert(0, "HALF", nil); err != nil {
				t.Error(err)
			}
			panic("injected: integration failed half-way")
		}
	}
	defer func() { testHookLoadApplied = nil }()
	text, errs := loadedText(t, mem, "doc")
	testHookLoadApplied = nil
	if panics != 1 {
		t.Fatalf("the fast path ran %d times with the hook, want 1", panics)
	}
	if text != "one two" {
		t.Fatalf("loaded %q, want %q", text, "one two")
	}
	if errs != 0 {
		t.Fatalf("StoreErrors = %d, want 0 (every row applied one by one)", errs)
	}
}
