package crdt

// Fuzz targets for the update decoders. Seeded from the golden fixtures (testdata/golden, made by
// the reference yjs) and from updates made here. Property: applying arbitrary bytes to a document
// that already has content never panics; when it fails, the document's encoded state is unchanged;
// a valid update applied afterwards still integrates and reaches the update observer; and applying
// allocates at most applyBoundV1/V2 (alloc_test.go) for the input's length, whatever it declares.
//
//	go test -run '^$' -fuzz FuzzApplyUpdate$ -fuzztime 60s ./crdt/
//	go test -run '^$' -fuzz FuzzApplyUpdateV2 -fuzztime 60s ./crdt/

import (
	"bytes"
	"testing"

	"github.com/ysync/ysync/crdt/internal/allocbound"
)

// fuzzValidClients are client ids for the "later valid update"; the fuzzed bytes could in theory
// already use one, so the first one the document does not know is taken.
var fuzzValidClients = []uint64{0x7ffffff1, 0x7ffffff3, 0x7ffffff5, 0x7ffffff7}

// fuzzBaseDoc returns a document with content of every common kind, made by two clients so the
// fuzzed bytes have existing items to refer to.
func fuzzBaseDoc(tb testing.TB) *Doc {
	a := NewDoc(DocOptions{ClientID: 1})
	m := a.GetMap("map")
	_ = m.Set("k", "v")
	_ = m.Set("n", 42.0)
	arr := a.GetArray("array")
	_ = arr.Push(1.0, "two", true, nil, []byte{1, 2, 3})
	nested := NewMap()
	_ = nested.Set("x", 1.5)
	_ = arr.Push(nested)
	txt := a.GetText("text")
	_ = txt.Insert(0, "hello world", nil)
	_ = txt.Delete(2, 3)
	b := NewDoc(DocOptions{ClientID: 2})
	st, err := EncodeStateAsUpdate(a, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := ApplyUpdate(b, st, nil); err != nil {
		tb.Fatal(err)
	}
	_ = b.GetText("text").Insert(1, "AB", nil)
	_ = b.GetArray("array").Delete(1, 2)
	b.GetMap("map").Delete("k")
	st, err = EncodeStateAsUpdate(b, nil)
	if err != nil {
		tb.Fatal(err)
	}
	d := NewDoc(DocOptions{ClientID: 3})
	if err := ApplyUpdate(d, st, nil); err != nil {
		tb.Fatal(err)
	}
	return d
}

// fuzzLocalSeeds returns updates made by the Go core (V1 or V2): full states, incremental updates,
// and updates with missing dependencies.
func fuzzLocalSeeds(tb testing.TB, v2 bool) [][]byte {
	var out [][]byte
	src := NewDoc(DocOptions{ClientID: 5})
	obs := src.ObserveUpdate
	if v2 {
		obs = src.ObserveUpdateV2
	}
	obs(func(u []byte, _ any, _ *Transaction) { out = append(out, append([]byte(nil), u...)) })
	_ = src.GetText("text").Insert(0, "fuzz seed", nil)
	_ = src.GetText("text").Delete(1, 2)
	_ = src.GetMap("map").Set("k", "other")
	_ = src.GetArray("array").Push(3.25, int64(7), "s")
	_ = src.GetArray("array").Delete(0, 1)
	enc := EncodeStateAsUpdate
	if v2 {
		enc = EncodeStateAsUpdateV2
	}
	if st, err := enc(src, nil); err == nil {
		out = append(out, st)
	}
	base := fuzzBaseDoc(tb)
	if st, err := enc(base, nil); err == nil {
		out = append(out, st)
	}
	return out
}

func FuzzApplyUpdate(f *testing.F)   { fuzzApply(f, false) }
func FuzzApplyUpdateV2(f *testing.F) { fuzzApply(f, true) }

func fuzzApply(f *testing.F, v2 bool) {
	seeds := fuzzLocalSeeds(f, v2)
	for _, g := range loadGoldenFilesQuiet() {
		if v2 {
			seeds = append(seeds, g.UpdatesV2...)
			seeds = append(seeds, g.StateV2)
		} else {
			seeds = append(seeds, g.Updates...)
			seeds = append(seeds, g.State)
		}
	}
	for _, s := range seeds {
		if len(s) == 0 {
			continue
		}
		f.Add(s)
		if len(s) > 4 {
			f.Add(s[:len(s)/2]) // truncated
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0})
	apply, encode, bound := ApplyUpdate, EncodeStateAsUpdate, applyBoundV1
	if v2 {
		apply, encode, bound = ApplyUpdateV2, EncodeStateAsUpdateV2, applyBoundV2
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := fuzzBaseDoc(t)
		before, err := EncodeStateAsUpdate(d, nil)
		if err != nil {
			t.Fatal(err)
		}
		var applyErr error
		allocbound.Check(t, "apply", len(data), bound, func() { applyErr = apply(d, data, "fuzz") })
		if err := applyErr; err != nil {
			after, err2 := EncodeStateAsUpdate(d, nil)
			if err2 != nil {
				t.Fatalf("encode after failed apply: %v", err2)
			}
			if !bytes.Equal(before, after) {
				t.Fatalf("apply failed (%v) but changed the document state:\nbefore %x\nafter  %x", err, before, after)
			}
		}
		// A valid update from a client the document does not know still integrates and fires.
		sv := d.StateVector()
		var client uint64
		for _, c := range fuzzValidClients {
			if _, ok := sv[c]; !ok {
				client = c
				break
			}
		}
		if client == 0 {
			return
		}
		src := NewDoc(DocOptions{ClientID: client})
		_ = src.GetMap("fuzz-check").Set("ok", true)
		valid, err := encode(src, nil)
		if err != nil {
			t.Fatal(err)
		}
		fired := 0
		unobserve := d.ObserveUpdate(func([]byte, any, *Transaction) { fired++ })
		defer unobserve()
		if err := apply(d, valid, "valid"); err != nil {
			t.Fatalf("valid update after fuzzed input: %v", err)
		}
		if fired == 0 {
			t.Fatalf("valid update after fuzzed input did not fire the update observer")
		}
		if v, ok := d.GetMap("fuzz-check").Get("ok"); !ok || v != true {
			t.Fatalf("valid update after fuzzed input: fuzz-check.ok = %v, %v", v, ok)
		}
	})
}

// FuzzDecodeStateVector: a state vector from the network (a peer's SyncStep1, the after field of
// the HTTP save and reset routes) decodes within svBound, and answering it with the document's
// state allocates nothing for the clients the document does not have.
func FuzzDecodeStateVector(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{1, 1, 5})
	f.Add([]byte{2, 3, 4, 1, 9})
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 1, 1})
	f.Add(EncodeStateVector(fuzzBaseDoc(f)))
	f.Fuzz(func(t *testing.T, sv []byte) {
		var m map[uint64]int
		var err error
		allocbound.Check(t, "DecodeStateVector", len(sv), svBound, func() { m, err = DecodeStateVector(sv) })
		if err == nil && len(m) > len(sv)/2 {
			t.Fatalf("%d entries from %d bytes", len(m), len(sv))
		}
		d := fuzzBaseDoc(t)
		var out []byte
		var encErr error
		allocbound.Check(t, "EncodeStateAsUpdate", len(sv), stateForSVBound, func() { out, encErr = EncodeStateAsUpdate(d, sv) })
		if (err == nil) != (encErr == nil) && len(sv) > 0 {
			t.Fatalf("DecodeStateVector: %v, EncodeStateAsUpdate: %v", err, encErr)
		}
		if encErr == nil {
			if err := ApplyUpdate(NewDoc(DocOptions{ClientID: 99}), out, nil); err != nil {
				t.Fatalf("state for the vector does not apply: %v", err)
			}
		}
	})
}
