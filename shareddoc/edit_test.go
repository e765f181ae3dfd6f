package shareddoc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/shareddoc"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// An Edit reaches connected sessions at once and returns only after the store has it.
func TestEditBroadcastsAndWaitsForStore(t *testing.T) {
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, p := h.join("doc", "a")
	h.store.close()
	type result struct {
		seq int64
		err error
	}
	res := make(chan result, 1)
	go func() {
		seq, err := d.Edit(ctxT(t), func(doc *crdt.Doc) error { return doc.GetText("t").Insert(0, "hello", nil) })
		res <- result{seq, err}
	}()
	eventually(t, func() bool { return replay(t, p.messages(t)) == "hello" }, "the session to receive the server edit")
	select {
	case r := <-res:
		t.Fatalf("Edit returned %+v before the store had the update", r)
	default:
	}
	h.store.open()
	r := <-res
	if r.err != nil || r.seq != 1 {
		t.Fatalf("Edit = %d, %v; want seq 1", r.seq, r.err)
	}
	if got := storedText(t, h, "doc"); got != "hello" {
		t.Fatalf("stored text %q", got)
	}
	// Nothing changed: the last stored seq, at once.
	seq, err := d.Edit(ctxT(t), func(*crdt.Doc) error { return nil })
	if err != nil || seq != 1 {
		t.Fatalf("empty Edit = %d, %v; want 1", seq, err)
	}
	// fn's error comes back; a panic becomes an error and the document goes on.
	boom := errors.New("boom")
	if _, err := d.Edit(ctxT(t), func(*crdt.Doc) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Edit error = %v, want boom", err)
	}
	if _, err := d.Edit(ctxT(t), func(*crdt.Doc) error { panic("kaboom") }); err == nil {
		t.Fatal("panicking Edit: no error")
	}
	seq, err = d.Edit(ctxT(t), func(doc *crdt.Doc) error { return doc.GetText("t").Insert(5, "!", nil) })
	if err != nil || seq != 2 {
		t.Fatalf("Edit after panic = %d, %v; want 2", seq, err)
	}
}

// Registry.Edit loads a document that is not loaded, without a session, and lets it unload after.
func TestRegistryEditHoldsWithoutSession(t *testing.T) {
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Minute})
	seq, err := h.reg.Edit(ctxT(t), "cold", func(doc *crdt.Doc) error { return doc.GetText("t").Insert(0, "x", nil) })
	if err != nil || seq != 1 {
		t.Fatalf("Edit = %d, %v", seq, err)
	}
	d := h.reg.Get("cold")
	if d == nil {
		t.Fatal("document not loaded after Edit")
	}
	in, err := d.Info(ctxT(t))
	if err != nil || len(in.Sessions) != 0 {
		t.Fatalf("Info = %+v, %v; want no sessions", in, err)
	}
	eventually(t, func() bool { h.clock.Advance(time.Minute); return h.reg.Get("cold") == nil }, "the held document to unload after release")
	if got := storedText(t, h, "cold"); got != "x" {
		t.Fatalf("stored %q", got)
	}
	// While held it does not unload.
	_, release, err := h.reg.Hold(ctxT(t), "cold")
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(2 * time.Minute)
	if _, err := h.reg.Get("cold").Info(ctxT(t)); err != nil {
		t.Fatalf("held document: %v", err)
	}
	if h.reg.Get("cold") == nil {
		t.Fatal("held document unloaded")
	}
	release()
	release() // idempotent
	eventually(t, func() bool { h.clock.Advance(time.Minute); return h.reg.Get("cold") == nil }, "unload after release")
}

// ApplyUpdate: a client's update reaches the sessions and the store; malformed or oversized
// updates are refused and change nothing.
func TestApplyUpdate(t *testing.T) {
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour, MaxDocBytes: 200})
	d, p := h.join("doc", "a")
	c := newClient(7)
	u := c.insert(t, "abc")
	seq, err := d.ApplyUpdate(ctxT(t), u, false)
	if err != nil || seq != 1 {
		t.Fatalf("ApplyUpdate = %d, %v", seq, err)
	}
	eventually(t, func() bool { return replay(t, p.messages(t)) == "abc" }, "session sees the update")
	// V2.
	u2 := c.insert(t, "d")
	v2, err := crdt.ConvertUpdateFormatV1ToV2(u2)
	if err != nil {
		t.Fatal(err)
	}
	if seq, err = d.ApplyUpdate(ctxT(t), v2, true); err != nil || seq != 2 {
		t.Fatalf("ApplyUpdate v2 = %d, %v", seq, err)
	}
	for _, bad := range [][]byte{nil, {0xff, 0xff, 0xff}, u[:len(u)-2]} {
		if _, err := d.ApplyUpdate(ctxT(t), bad, false); !errors.Is(err, crdt.ErrMalformedUpdate) {
			t.Errorf("ApplyUpdate(%x) = %v, want ErrMalformedUpdate", bad, err)
		}
	}
	if _, err := d.ApplyUpdate(ctxT(t), u, true); !errors.Is(err, crdt.ErrMalformedUpdate) {
		t.Errorf("V1 bytes as V2: %v, want ErrMalformedUpdate", err)
	}
	big := c.insert(t, string(make([]byte, 300)))
	if _, err := d.ApplyUpdate(ctxT(t), big, false); !errors.Is(err, shareddoc.ErrTooLarge) {
		t.Errorf("oversized update: %v, want ErrTooLarge", err)
	}
	var text string
	if _, err := d.Edit(ctxT(t), func(doc *crdt.Doc) error { text = doc.GetText("t").String(); return nil }); err != nil {
		t.Fatal(err)
	}
	if text != "abcd" {
		t.Fatalf("live text %q after refused updates, want abcd", text)
	}
	if got := storedText(t, h, "doc"); got != "abcd" {
		t.Fatalf("stored %q", got)
	}
	if p.closedWith() != 0 {
		t.Fatalf("session closed (%v) by refused server-side updates", p.closedWith())
	}
}

// Delete closes the sessions with CloseDeleted, runs del after the document stopped, and the next
// load is empty.
func TestDelete(t *testing.T) {
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, p := h.join("doc", "a")
	if _, err := d.Edit(ctxT(t), func(doc *crdt.Doc) error { return doc.GetText("t").Insert(0, "gone", nil) }); err != nil {
		t.Fatal(err)
	}
	ran := false
	err := h.reg.Delete(ctxT(t), "doc", func(ctx context.Context) error {
		ran = true
		if h.reg.Get("doc") != nil && h.reg.Get("doc") != d {
			t.Error("a new document loaded before del ran")
		}
		return h.store.Memory.Delete(ctx, "doc")
	})
	if err != nil || !ran {
		t.Fatalf("Delete = %v (ran %v)", err, ran)
	}
	if p.closedWith() != shareddoc.CloseDeleted {
		t.Fatalf("session closed with %v, want CloseDeleted", p.closedWith())
	}
	<-d.Done()
	d2, _ := h.join("doc", "b")
	var text string
	if _, err := d2.Edit(ctxT(t), func(doc *crdt.Doc) error { text = doc.GetText("t").String(); return nil }); err != nil {
		t.Fatal(err)
	}
	if text != "" {
		t.Fatalf("after delete the document has %q", text)
	}
	// Not loaded: del runs at once.
	ran = false
	if err := h.reg.Delete(ctxT(t), "never", func(context.Context) error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("Delete of unloaded = %v, ran %v", err, ran)
	}
}
