package shareddoc

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/store"
)

// recPeer records frames and the close reason.
type recPeer struct {
	mu     sync.Mutex
	frames [][]byte
	closed CloseReason
}

func (p *recPeer) Send(f []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frames = append(p.frames, append([]byte(nil), f...))
	return true
}

func (p *recPeer) Close(r CloseReason, _ error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed == 0 {
		p.closed = r
	}
}

func (p *recPeer) reason() CloseReason {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// text applies every sync payload p received to a fresh doc.
func (p *recPeer) text(t *testing.T) string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	d := crdt.NewDoc(crdt.DocOptions{})
	for _, f := range p.frames {
		m, err := syncproto.Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == syncproto.TypeSync && m.SyncType != syncproto.SyncStep1 {
			if err := crdt.ApplyUpdate(d, m.Payload, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	return d.GetText("t").String()
}

func textUpdate(t *testing.T, c *crdt.Doc, s string) []byte {
	t.Helper()
	var u []byte
	c.ObserveUpdate(func(b []byte, _ any, _ *crdt.Transaction) { u = append([]byte(nil), b...) })
	txt := c.GetText("t")
	if err := txt.Insert(len([]rune(txt.String())), s, nil); err != nil {
		t.Fatal(err)
	}
	return u
}

func receive(t *testing.T, d *Doc, id string, frame []byte) {
	t.Helper()
	m, err := syncproto.Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Receive(context.Background(), id, m); err != nil {
		t.Fatal(err)
	}
}

func storedText(t *testing.T, s *store.Memory, name string) string {
	t.Helper()
	state, updates, _, err := s.Load(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	d := crdt.NewDoc(crdt.DocOptions{})
	for _, u := range append([][]byte{state}, updates...) {
		if len(u) == 0 {
			continue
		}
		if err := crdt.ApplyUpdate(d, u, nil); err != nil {
			t.Fatal(err)
		}
	}
	return d.GetText("t").String()
}

// TestHalfAppliedUpdateReloadsDocument: an update whose integration panics after it changed the
// crdt.Doc must not be served, broadcast, stored or checkpointed: the document's sessions close
// with CloseInternal, the next join loads exactly the stored state, other documents go on.
func TestHalfAppliedUpdateReloadsDocument(t *testing.T) {
	mem := store.NewMemory()
	r := NewRegistry(Config{Store: mem, IdleTimeout: time.Hour})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	join := func(name, id string) (*Doc, *recPeer) {
		p := &recPeer{}
		d, _, err := r.JoinOrCreate(context.Background(), name, JoinOptions{Session: SessionInfo{ID: id}, Peer: p})
		if err != nil {
			t.Fatal(err)
		}
		return d, p
	}
	d, a := join("doc", "a")
	_, b := join("doc", "b")
	other, c := join("other", "c")

	client := crdt.NewDoc(crdt.DocOptions{ClientID: 7})
	receive(t, d, "a", syncproto.EncodeUpdate(textUpdate(t, client, "good")))
	waitFor(t, func() bool { return storedText(t, mem, "doc") == "good" }, "first edit stored")

	testHookAfterApply = func(origin any) {
		if _, ok := origin.(*peer); ok {
			panic("injected: integration failed half-way")
		}
	}
	receive(t, d, "a", syncproto.EncodeUpdate(textUpdate(t, client, "BAD")))
	waitFor(t, func() bool { return a.reason() == CloseInternal && b.reason() == CloseInternal }, "sessions closed with CloseInternal")
	testHookAfterApply = nil
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		t.Fatal("corrupt document did not stop")
	}
	if got := b.text(t); got != "good" {
		t.Errorf("other session was sent %q, want only %q", got, "good")
	}
	if got := storedText(t, mem, "doc"); got != "good" {
		t.Errorf("store holds %q, want %q (half-applied state stored or checkpointed)", got, "good")
	}

	d2, fresh := join("doc", "fresh")
	if d2 == d {
		t.Fatal("join got the corrupt document")
	}
	receive(t, d2, "fresh", syncproto.EncodeSyncStep1(nil))
	waitFor(t, func() bool { return fresh.text(t) == "good" }, "fresh join sees the stored state")

	if c.reason() != 0 {
		t.Errorf("session of another document closed: %v", c.reason())
	}
	receive(t, other, "c", syncproto.EncodeUpdate(textUpdate(t, crdt.NewDoc(crdt.DocOptions{ClientID: 9}), "x")))
	waitFor(t, func() bool { return storedText(t, mem, "other") == "x" }, "other document still stores")
}

// TestHalfAppliedServerEditReloadsDocument: the same for a server-side update (Doc.ApplyUpdate,
// the HTTP update route's path): the caller gets the error, the sessions close with
// CloseInternal, and with a checkpoint due after every append (CompactAfter 1) the store still
// holds only what was applied in full.
func TestHalfAppliedServerEditReloadsDocument(t *testing.T) {
	mem := store.NewMemory()
	r := NewRegistry(Config{Store: mem, IdleTimeout: time.Hour, CompactAfter: 1})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	a := &recPeer{}
	d, _, err := r.JoinOrCreate(context.Background(), "doc", JoinOptions{Session: SessionInfo{ID: "a"}, Peer: a})
	if err != nil {
		t.Fatal(err)
	}
	client := crdt.NewDoc(crdt.DocOptions{ClientID: 7})
	if _, err := d.ApplyUpdate(context.Background(), textUpdate(t, client, "good"), false); err != nil {
		t.Fatal(err)
	}
	testHookAfterApply = func(origin any) {
		if _, ok := origin.(loadOrigin); ok {
			panic("injected: integration failed half-way")
		}
	}
	defer func() { testHookAfterApply = nil }()
	if _, err := d.ApplyUpdate(context.Background(), textUpdate(t, client, "BAD"), false); err == nil {
		t.Fatal("half-applied server update reported success")
	}
	waitFor(t, func() bool { return a.reason() == CloseInternal }, "session closed with CloseInternal")
	testHookAfterApply = nil
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		t.Fatal("corrupt document did not stop")
	}
	if got := storedText(t, mem, "doc"); got != "good" {
		t.Errorf("store holds %q, want %q (half-applied state stored or checkpointed)", got, "good")
	}
}
