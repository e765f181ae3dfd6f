package shareddoc

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/store"
)

// actorCmd runs a test's function on the document's goroutine.
type actorCmd func(d *Doc)

func (c actorCmd) run(d *Doc) { c(d) }

// onActor runs fn on d's goroutine, between commands, and waits for it.
func onActor(t *testing.T, d *Doc, fn func(d *Doc)) {
	t.Helper()
	done := make(chan struct{})
	if err := d.send(context.Background(), actorCmd(func(d *Doc) { defer close(done); fn(d) })); err != nil {
		t.Fatal(err)
	}
	<-done
}

// checkJoinCache compares every answer the join cache gives with a fresh encode of the live
// state, for the empty state vectors, the document's own and the extra ones.
func checkJoinCache(t *testing.T, d *Doc, extra ...[]byte) {
	t.Helper()
	onActor(t, d, func(d *Doc) {
		svs := append([][]byte{nil, {}, {0}, crdt.EncodeStateVector(d.ydoc)}, extra...)
		for _, sv := range svs {
			diff, err := safeDiff(d.ydoc, sv)
			if err != nil {
				t.Errorf("fresh diff for %x: %v", sv, err)
				continue
			}
			got, err := d.syncStep2For(sv)
			if err != nil {
				t.Errorf("cached diff for %x: %v", sv, err)
				continue
			}
			if want := syncproto.EncodeSyncStep2(diff); !bytes.Equal(got, want) {
				t.Errorf("SyncStep2 for state vector %x: cache gave %d bytes, a fresh encode %d", sv, len(got), len(want))
			}
		}
		if got, want := d.syncStep1Frame(), syncproto.EncodeSyncStep1(crdt.EncodeStateVector(d.ydoc)); !bytes.Equal(got, want) {
			t.Errorf("SyncStep1: cache gave %x, a fresh encode %x", got, want)
		}
	})
}

func newCacheRegistry(t *testing.T) *Registry {
	t.Helper()
	r := NewRegistry(Config{Store: store.NewMemory(), IdleTimeout: time.Hour})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return r
}

func joinRec(t *testing.T, r *Registry, name, id string) (*Doc, *recPeer) {
	t.Helper()
	p := &recPeer{}
	d, _, err := r.JoinOrCreate(context.Background(), name, JoinOptions{Session: SessionInfo{ID: id}, Peer: p})
	if err != nil {
		t.Fatal(err)
	}
	return d, p
}

// replica is a client-side Yjs document whose updates the test delivers, possibly late.
type replica struct {
	doc  *crdt.Doc
	last []byte
}

func newReplica(id uint64) *replica {
	r := &replica{doc: crdt.NewDoc(crdt.DocOptions{ClientID: id})}
	r.doc.ObserveUpdate(func(u []byte, _ any, _ *crdt.Transaction) { r.last = bytes.Clone(u) })
	return r
}

// edit makes a random insert or delete and returns its update.
func (r *replica) edit(t *testing.T, rnd *rand.Rand) []byte {
	t.Helper()
	r.last = nil
	txt := r.doc.GetText("t")
	n := len([]rune(txt.String()))
	var err error
	if n > 0 && rnd.IntN(3) == 0 {
		i := rnd.IntN(n)
		err = txt.Delete(i, 1+rnd.IntN(min(4, n-i)))
	} else {
		err = txt.Insert(rnd.IntN(n+1), fmt.Sprintf("<%d>", rnd.IntN(1000)), nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return r.last
}

// TestJoinCacheMatchesFreshEncode: after any sequence of changes — peers' updates (some out of
// order, so that structs wait as pending), empty updates, server edits, server-side updates,
// updates from other nodes — every join answer from the cache is byte for byte what a fresh
// encode gives, and joins in between (which fill the cache) never leave a stale answer behind.
func TestJoinCacheMatchesFreshEncode(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(seed, 14))
			r := newCacheRegistry(t)
			d, _ := joinRec(t, r, "doc", "a")
			joinRec(t, r, "doc", "b")
			reps := []*replica{newReplica(101), newReplica(102), newReplica(103)}
			var held [][]byte // updates delivered later, out of order
			var oldSVs [][]byte
			deliver := func(u []byte) {
				for _, o := range reps {
					if err := crdt.ApplyUpdate(o.doc, u, nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			for step := range 150 {
				switch op := rnd.IntN(8); op {
				case 0, 1: // a peer's update
					rep := reps[rnd.IntN(len(reps))]
					u := rep.edit(t, rnd)
					deliver(u)
					if rnd.IntN(4) == 0 {
						held = append(held, u)
					} else {
						receive(t, d, "a", syncproto.EncodeUpdate(u))
					}
				case 2: // the held updates, newest first
					for i := len(held) - 1; i >= 0; i-- {
						receive(t, d, "b", syncproto.EncodeUpdate(held[i]))
					}
					held = held[:0]
				case 3: // a joiner's empty SyncStep2
					receive(t, d, "b", syncproto.EncodeSyncStep2(emptyUpdate))
				case 4: // a server edit
					if _, err := d.Edit(context.Background(), func(doc *crdt.Doc) error {
						return doc.GetMap("m").Set(fmt.Sprint("k", rnd.IntN(5)), float64(step))
					}); err != nil {
						t.Fatal(err)
					}
				case 5: // a server-side update (HTTP API)
					rep := reps[rnd.IntN(len(reps))]
					u := rep.edit(t, rnd)
					deliver(u)
					if _, err := d.ApplyUpdate(context.Background(), u, false); err != nil {
						t.Fatal(err)
					}
				case 6: // another node's update
					rep := reps[rnd.IntN(len(reps))]
					u := rep.edit(t, rnd)
					deliver(u)
					onActor(t, d, func(d *Doc) {
						if err := d.apply(u, remoteOrigin{}); err != nil {
							t.Error(err)
						}
					})
				case 7: // a real join through the sync path
					receive(t, d, "a", syncproto.EncodeSyncStep1(nil))
				}
				extra := append([][]byte{crdt.EncodeStateVector(reps[0].doc)}, oldSVs...)
				checkJoinCache(t, d, extra...)
				if t.Failed() {
					t.Fatalf("cache differs from a fresh encode after step %d", step)
				}
				if step%20 == 0 {
					onActor(t, d, func(d *Doc) { oldSVs = append(oldSVs, crdt.EncodeStateVector(d.ydoc)) })
				}
			}
		})
	}
}

// TestJoinCacheInvalidation: each kind of change drops what the cache holds, and without a
// change two joins get the very same buffer (shared, not copied).
func TestJoinCacheInvalidation(t *testing.T) {
	r := newCacheRegistry(t)
	d, _ := joinRec(t, r, "doc", "a")
	rep := newReplica(7)
	receive(t, d, "a", syncproto.EncodeUpdate(rep.edit(t, rand.New(rand.NewPCG(1, 1)))))

	type frames struct{ full, same, step1 []byte }
	snapshot := func() frames {
		var f frames
		onActor(t, d, func(d *Doc) {
			var err error
			if f.full, err = d.syncStep2For([]byte{0}); err != nil {
				t.Error(err)
			}
			if f.same, err = d.syncStep2For(crdt.EncodeStateVector(d.ydoc)); err != nil {
				t.Error(err)
			}
			f.step1 = d.syncStep1Frame()
		})
		return f
	}
	same := func(a, b []byte) bool { return len(a) > 0 && len(b) > 0 && &a[0] == &b[0] }

	a, b := snapshot(), snapshot()
	if !same(a.full, b.full) || !same(a.same, b.same) || !same(a.step1, b.step1) {
		t.Fatal("two joins without a change did not share the cached frames")
	}
	rnd := rand.New(rand.NewPCG(2, 2))
	pendingFirst := rep.edit(t, rnd)
	pendingSecond := rep.edit(t, rnd)
	changes := []struct {
		name   string
		change func()
		step1  bool // the state vector changes too
	}{
		{"peer update", func() { receive(t, d, "a", syncproto.EncodeUpdate(rep.edit(t, rnd))) }, true},
		{"server edit", func() {
			if _, err := d.Edit(context.Background(), func(doc *crdt.Doc) error { return doc.GetMap("m").Set("k", "v") }); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"server update", func() {
			if _, err := d.ApplyUpdate(context.Background(), rep.edit(t, rnd), false); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"Doc.Update", func() {
			if err := d.Update(context.Background(), func(tx *crdt.Transaction) {
				if err := tx.Doc().GetMap("m").Set("k", "w"); err != nil {
					t.Error(err)
				}
			}); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"remote update", func() {
			u := rep.edit(t, rnd)
			onActor(t, d, func(d *Doc) {
				if err := d.apply(u, remoteOrigin{}); err != nil {
					t.Error(err)
				}
			})
		}, true},
		// Structs whose predecessor is missing wait as pending: the state vector stays, the
		// whole state carries them.
		{"pending update", func() { receive(t, d, "a", syncproto.EncodeUpdate(pendingSecond)) }, false},
		{"pending resolved", func() { receive(t, d, "a", syncproto.EncodeUpdate(pendingFirst)) }, true},
		{"new crdt.Doc (load)", func() {
			onActor(t, d, func(d *Doc) {
				fresh := crdt.NewDoc(crdt.DocOptions{})
				if err := crdt.ApplyUpdate(fresh, pendingFirst, loadOrigin{}); err != nil {
					t.Error(err)
				}
				d.ydoc = fresh
			})
		}, true},
	}
	for _, c := range changes {
		before := snapshot()
		c.change()
		after := snapshot()
		if same(before.full, after.full) {
			t.Errorf("%s: the whole-state frame was not re-encoded", c.name)
		}
		if c.step1 && same(before.step1, after.step1) {
			t.Errorf("%s: the SyncStep1 frame was not re-encoded", c.name)
		}
		checkJoinCache(t, d)
	}

	// The empty update every y-websocket joiner sends changes nothing and keeps the cache.
	before := snapshot()
	receive(t, d, "a", syncproto.EncodeSyncStep2(emptyUpdate))
	if after := snapshot(); !same(before.full, after.full) {
		t.Error("an empty update dropped the cache")
	}
}

// TestJoinCacheServesJoiners: joiners with an empty state vector get the same SyncStep2 buffer
// (not a copy each), and a joiner that has everything gets the cached diff for its vector.
func TestJoinCacheServesJoiners(t *testing.T) {
	r := newCacheRegistry(t)
	d, _ := joinRec(t, r, "doc", "a")
	rep := newReplica(7)
	receive(t, d, "a", syncproto.EncodeUpdate(rep.edit(t, rand.New(rand.NewPCG(1, 1)))))
	// recPeer copies frames; a peer that keeps them shows the sharing.
	var got [][]byte
	for i := range 3 {
		p := &keepPeer{}
		id := fmt.Sprint("j", i)
		if _, _, err := r.JoinOrCreate(context.Background(), "doc", JoinOptions{Session: SessionInfo{ID: id}, Peer: p}); err != nil {
			t.Fatal(err)
		}
		receive(t, d, id, syncproto.EncodeSyncStep1([]byte{0}))
		onActor(t, d, func(*Doc) {}) // the answer is queued
		if len(p.frames) < 2 {
			t.Fatalf("joiner %d got %d frames", i, len(p.frames))
		}
		got = append(got, p.frames[0])
	}
	for i := 1; i < len(got); i++ {
		if &got[i][0] != &got[0][0] {
			t.Errorf("joiner %d got its own copy of the state", i)
		}
	}
	if got := replayText(t, got[0]); got != rep.doc.GetText("t").String() {
		t.Errorf("joiner's state has text %q, want %q", got, rep.doc.GetText("t").String())
	}
}

// keepPeer keeps the frames it is sent (shared buffers, as a session's queue does). Only read
// after onActor returned.
type keepPeer struct{ frames [][]byte }

func (p *keepPeer) Send(f []byte) bool                { p.frames = append(p.frames, f); return true }
func (p *keepPeer) Close(reason CloseReason, _ error) {}

func replayText(t *testing.T, frame []byte) string {
	t.Helper()
	m, err := syncproto.Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	doc := crdt.NewDoc(crdt.DocOptions{})
	if err := crdt.ApplyUpdate(doc, m.Payload, nil); err != nil {
		t.Fatal(err)
	}
	return doc.GetText("t").String()
}
