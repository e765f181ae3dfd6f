package crdt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

func mustApply(t *testing.T, d *Doc, u []byte) {
	t.Helper()
	if err := ApplyUpdate(d, u, nil); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func stateOf(t *testing.T, d *Doc) []byte {
	t.Helper()
	u, err := EncodeStateAsUpdate(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMapBasic(t *testing.T) {
	d := NewDoc(DocOptions{ClientID: 1})
	m := d.GetMap("m")
	for _, kv := range []struct {
		k string
		v any
	}{{"a", 1}, {"", "empty key"}, {"b", true}, {"c", nil}, {"a", "overwritten"}} {
		if err := m.Set(kv.k, kv.v); err != nil {
			t.Fatal(err)
		}
	}
	m.Delete("b")
	want := map[string]any{"a": "overwritten", "": "empty key", "c": nil}
	if got := m.ToJSON(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	d2 := NewDoc(DocOptions{ClientID: 2})
	mustApply(t, d2, stateOf(t, d))
	if got := d2.GetMap("m").ToJSON(); !reflect.DeepEqual(got, want) {
		t.Fatalf("remote got %v want %v", got, want)
	}
	if !bytes.Equal(stateOf(t, d), stateOf(t, d2)) {
		t.Fatal("encoded states differ")
	}
}

func TestArrayAndNested(t *testing.T) {
	d := NewDoc(DocOptions{ClientID: 1})
	a := d.GetArray("a")
	inner := NewMap()
	_ = inner.Set("x", 1.5)
	txt := NewText("hi")
	if err := a.Push(1, "two", inner, []byte{1, 2}, txt, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Insert(1, "one-and-a-half"); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(0, 1); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(10, 1); err == nil {
		t.Fatal("delete beyond length succeeded")
	}
	got := jsonOf(t, a.ToJSON())
	want := `["one-and-a-half","two",{"x":1.5},"AQI=","hi",null]`
	if got != want {
		t.Fatalf("got %s want %s", got, want)
	}
	d2 := NewDoc(DocOptions{ClientID: 2})
	mustApply(t, d2, stateOf(t, d))
	if got2 := jsonOf(t, d2.GetArray("a").ToJSON()); got2 != want {
		t.Fatalf("remote got %s want %s", got2, want)
	}
}

func TestTextBasic(t *testing.T) {
	d := NewDoc(DocOptions{ClientID: 1})
	x := d.GetText("t")
	_ = x.Insert(0, "hello world", nil)
	_ = x.Insert(5, ",", nil)
	_ = x.Delete(0, 1)
	_ = x.Insert(0, "H", nil)
	_ = x.Insert(x.Len(), " 😀!", nil)
	if got := x.String(); got != "Hello, world 😀!" {
		t.Fatalf("got %q", got)
	}
	if x.Len() != 16 {
		t.Fatalf("len %d, want 16 UTF-16 units", x.Len())
	}
	d2 := NewDoc(DocOptions{ClientID: 2})
	mustApply(t, d2, stateOf(t, d))
	if got := d2.GetText("t").String(); got != "Hello, world 😀!" {
		t.Fatalf("remote got %q", got)
	}
}

func TestDeleteBeforeInsert(t *testing.T) {
	a := NewDoc(DocOptions{ClientID: 1})
	var updates [][]byte
	a.ObserveUpdate(func(u []byte, _ any, _ *Transaction) { updates = append(updates, u) })
	_ = a.GetText("t").Insert(0, "abc", nil)
	_ = a.GetText("t").Delete(1, 1)
	if len(updates) != 2 {
		t.Fatalf("%d updates", len(updates))
	}
	b := NewDoc(DocOptions{ClientID: 2})
	mustApply(t, b, updates[1]) // the delete first: held as pending
	if b.GetText("t").String() != "" {
		t.Fatal("delete applied without its insert")
	}
	mustApply(t, b, updates[0])
	if got := b.GetText("t").String(); got != "ac" {
		t.Fatalf("got %q want ac", got)
	}
}

func TestMissingDependencyHeld(t *testing.T) {
	a := NewDoc(DocOptions{ClientID: 1})
	var updates [][]byte
	a.ObserveUpdate(func(u []byte, _ any, _ *Transaction) { updates = append(updates, u) })
	for i := 0; i < 5; i++ {
		_ = a.GetArray("a").Push(i)
	}
	b := NewDoc(DocOptions{ClientID: 2})
	for i := len(updates) - 1; i >= 0; i-- {
		mustApply(t, b, updates[i])
	}
	if got := jsonOf(t, b.GetArray("a").ToJSON()); got != "[0,1,2,3,4]" {
		t.Fatalf("got %s", got)
	}
	if b.store.pending != nil || b.store.pendingDs != nil {
		t.Fatal("pending left over")
	}
}

// randomEdit makes one random edit on d.
func randomEdit(r *rand.Rand, d *Doc) {
	words := []string{"a", "bc", "😀", "ü", "xyz", "日本", " "}
	d.Transact(func(tx *Transaction) {
		for n := 1 + r.IntN(3); n > 0; n-- {
			switch r.IntN(6) {
			case 0, 1:
				x := d.GetText("text")
				if x.Len() > 0 && r.IntN(3) == 0 {
					i := r.IntN(x.Len())
					_ = x.Delete(i, min(1+r.IntN(3), x.Len()-i))
				} else {
					_ = x.Insert(r.IntN(x.Len()+1), words[r.IntN(len(words))], nil)
				}
			case 2, 3:
				a := d.GetArray("array")
				if a.Len() > 0 && r.IntN(3) == 0 {
					i := r.IntN(a.Len())
					_ = a.Delete(i, min(1+r.IntN(2), a.Len()-i))
				} else if r.IntN(4) == 0 {
					m := NewMap()
					_ = m.Set("k", r.IntN(100))
					_ = a.Insert(r.IntN(a.Len()+1), m)
				} else {
					_ = a.Insert(r.IntN(a.Len()+1), r.IntN(1000), "s")
				}
			default:
				m := d.GetMap("map")
				keys := []string{"", "a", "b", "c"}
				k := keys[r.IntN(len(keys))]
				if r.IntN(4) == 0 {
					m.Delete(k)
				} else {
					_ = m.Set(k, fmt.Sprint(r.IntN(50)))
				}
			}
		}
	}, nil)
}

func docJSON(t *testing.T, d *Doc) string {
	d.GetText("text")
	d.GetArray("array")
	d.GetMap("map")
	return jsonOf(t, d.ToJSON())
}

// TestRandomConvergence edits several docs concurrently, syncing at random moments, then
// delivers every update to a fresh doc in random order with duplicates; all must converge.
func TestRandomConvergence(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		docs := make([]*Doc, 3)
		var all [][]byte
		for i := range docs {
			docs[i] = NewDoc(DocOptions{ClientID: uint64(10 + i), DisableGC: seed%2 == 0})
			docs[i].ObserveUpdate(func(u []byte, origin any, _ *Transaction) {
				if origin == nil {
					all = append(all, u)
				}
			})
		}
		for step := 0; step < 30; step++ {
			randomEdit(r, docs[r.IntN(len(docs))])
			if r.IntN(4) == 0 {
				from, to := docs[r.IntN(3)], docs[r.IntN(3)]
				u, _ := EncodeStateAsUpdate(from, EncodeStateVector(to))
				if err := ApplyUpdate(to, u, "sync"); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
			}
		}
		for _, from := range docs {
			for _, to := range docs {
				u, _ := EncodeStateAsUpdate(from, EncodeStateVector(to))
				if err := ApplyUpdate(to, u, "sync"); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
			}
		}
		want := docJSON(t, docs[0])
		for i, d := range docs[1:] {
			if got := docJSON(t, d); got != want {
				t.Fatalf("seed %d: doc %d diverged:\n got %s\nwant %s", seed, i+1, got, want)
			}
		}
		// Shuffled delivery with duplicates into a fresh doc.
		order := r.Perm(len(all))
		fresh := NewDoc(DocOptions{ClientID: 99})
		for _, i := range order {
			if err := ApplyUpdate(fresh, all[i], nil); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			if r.IntN(5) == 0 {
				_ = ApplyUpdate(fresh, all[r.IntN(len(all))], nil)
			}
		}
		if got := docJSON(t, fresh); got != want {
			t.Fatalf("seed %d: shuffled delivery diverged:\n got %s\nwant %s", seed, got, want)
		}
		if fresh.store.pending != nil {
			t.Fatalf("seed %d: pending structs left", seed)
		}
		// The encoded state reproduces the content.
		re := NewDoc(DocOptions{ClientID: 98})
		mustApply(t, re, stateOf(t, fresh))
		if got := docJSON(t, re); got != want {
			t.Fatalf("seed %d: re-encoded state diverged", seed)
		}
		if !bytes.Equal(EncodeStateVector(re), EncodeStateVector(docs[0])) {
			t.Fatalf("seed %d: state vectors differ", seed)
		}
	}
}

func TestMalformedLeavesDocUnchanged(t *testing.T) {
	d := NewDoc(DocOptions{ClientID: 1})
	_ = d.GetText("t").Insert(0, "stable", nil)
	before := stateOf(t, d)
	src := NewDoc(DocOptions{ClientID: 2})
	_ = src.GetText("t").Insert(0, "more text here", nil)
	good := stateOf(t, src)
	for i := 0; i < len(good); i++ {
		if err := ApplyUpdate(d, good[:i], nil); err == nil && i > 0 {
			// Some prefixes can be valid updates on their own; that is fine only if they are
			// complete updates, which a strict prefix of this one is not.
			t.Fatalf("prefix of %d bytes accepted", i)
		}
		if !bytes.Equal(stateOf(t, d), before) {
			t.Fatalf("prefix of %d bytes changed the document", i)
		}
	}
	fired := 0
	d.ObserveUpdate(func([]byte, any, *Transaction) { fired++ })
	mustApply(t, d, good)
	if fired != 1 {
		t.Fatalf("observer fired %d times", fired)
	}
}

// TestRemoteChangeInvalidatesSearchMarkers: a search marker cached by a local read must not be
// trusted after a remote update moved content under it (seed 368 of the differential test split
// a neighbouring item when it was).
func TestRemoteChangeInvalidatesSearchMarkers(t *testing.T) {
	a := NewDoc(DocOptions{ClientID: 1})
	b := NewDoc(DocOptions{ClientID: 2})
	arrA := a.GetArray("a")
	for i := 0; i < 60; i++ {
		// Separate clients' items do not merge, so the list keeps many items.
		d := a
		if i%2 == 1 {
			d = b
			mustApply(t, b, stateOf(t, a))
		}
		_ = d.GetArray("a").Push(i)
		mustApply(t, a, stateOf(t, d))
	}
	mustApply(t, b, stateOf(t, a))
	if v, _ := arrA.Get(45); v != 45.0 { // caches a marker near index 45
		t.Fatalf("Get(45) = %v", v)
	}
	_ = b.GetArray("a").Delete(0, 30) // remote: everything before the marker moves
	u, _ := EncodeStateAsUpdate(b, EncodeStateVector(a))
	mustApply(t, a, u)
	if err := arrA.Insert(10, "x"); err != nil {
		t.Fatal(err)
	}
	mustApply(t, b, stateOf(t, a))
	got, want := jsonOf(t, arrA.ToJSON()), jsonOf(t, b.GetArray("a").ToJSON())
	if got != want {
		t.Fatalf("diverged:\n a %s\n b %s", got, want)
	}
	// ToJSON walks the list without markers, so it shows where the insert really went.
	if v := arrA.ToJSON()[10]; v != "x" {
		t.Fatalf("inserted at the wrong place: %s", got)
	}
}

// TestClientIDKeptOnRemoteUpdates: only a remote update carrying our own client id may make the
// doc pick a new one (Yjs's conflict rule); ordinary remote updates must not.
func TestClientIDKeptOnRemoteUpdates(t *testing.T) {
	a := NewDoc(DocOptions{ClientID: 7})
	b := NewDoc(DocOptions{ClientID: 8})
	_ = a.GetText("t").Insert(0, "mine", nil)
	_ = b.GetText("t").Insert(0, "theirs", nil)
	mustApply(t, a, stateOf(t, b))
	if a.ClientID() != 7 {
		t.Fatalf("client id changed to %d after an unrelated remote update", a.ClientID())
	}
	c := NewDoc(DocOptions{ClientID: 7}) // a second writer with the same id
	_ = c.GetText("t").Insert(0, "clash", nil)
	d := NewDoc(DocOptions{ClientID: 7})
	mustApply(t, d, stateOf(t, c))
	if d.ClientID() == 7 {
		t.Fatal("client id kept although a remote update used it")
	}
}

func TestObserveUpdateIf(t *testing.T) {
	d := NewDoc(DocOptions{ClientID: 1})
	var got []string
	d.ObserveUpdateIf(func(origin any) bool { return origin != "skip" }, func(u []byte, origin any, _ *Transaction) {
		got = append(got, fmt.Sprint(origin))
	})
	d.Transact(func(*Transaction) { _ = d.GetText("t").Insert(0, "a", nil) }, "skip")
	d.Transact(func(*Transaction) { _ = d.GetText("t").Insert(0, "b", nil) }, "keep")
	if len(got) != 1 || got[0] != "keep" {
		t.Fatalf("observer saw %v, want [keep]", got)
	}
}
