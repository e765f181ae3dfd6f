package shareddoc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/store"
)

// FuzzApplyUpdate: a server-side update either applies or is refused with ErrMalformedUpdate;
// a refused one leaves the document as it was, and the document keeps working.
func FuzzApplyUpdate(f *testing.F) {
	c := newClient(3)
	_ = c.doc.GetText("t").Insert(0, "seed", map[string]any{"b": true})
	f.Add(c.updates[0], false)
	f.Add([]byte{0, 0}, false)
	f.Add([]byte{0xff}, true)
	reg := shareddoc.NewRegistry(shareddoc.Config{Store: store.NewMemory(), IdleTimeout: time.Hour})
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = reg.Shutdown(ctx)
	})
	d, _, err := reg.JoinOrCreate(context.Background(), "fuzz", shareddoc.JoinOptions{Session: shareddoc.SessionInfo{ID: "a"}, Peer: &fakePeer{id: "a"}})
	if err != nil {
		f.Fatal(err)
	}
	state := func() string {
		var s []byte
		_, _ = d.Edit(context.Background(), func(doc *crdt.Doc) (err error) { s, err = crdt.EncodeStateAsUpdate(doc, nil); return err })
		return string(s)
	}
	f.Fuzz(func(t *testing.T, update []byte, v2 bool) {
		before := state()
		_, err := d.ApplyUpdate(context.Background(), update, v2)
		if err != nil {
			if !errors.Is(err, crdt.ErrMalformedUpdate) {
				t.Fatalf("unexpected error %v", err)
			}
			if state() != before {
				t.Fatal("refused update changed the document")
			}
		}
		if _, err := d.Edit(context.Background(), func(*crdt.Doc) error { return nil }); err != nil {
			t.Fatalf("document broken after %x: %v", update, err)
		}
	})
}
