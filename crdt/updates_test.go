package crdt

// Tests of the document-less update utilities (updates.go) and of pending structs in encoded
// states (pending_encode.go). The golden cases in testdata/updates/ come from the reference yjs:
//
//	node scripts/gen-update-fixtures.mjs
//
// Fuzz targets:
//
//	go test -run '^$' -fuzz FuzzMergeUpdates -fuzztime 60s ./crdt/
//	go test -run '^$' -fuzz FuzzDiffUpdate -fuzztime 60s ./crdt/

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/ysync/ysync/crdt/encoding"
	"github.com/ysync/ysync/crdt/internal/allocbound"
)

type updateFixture struct {
	Name   string         `json:"name"`
	Op     string         `json:"op"`
	Inputs [][]byte       `json:"inputs"`
	SV     []byte         `json:"sv"`
	Output []byte         `json:"output"`
	From   map[string]int `json:"from"`
	To     map[string]int `json:"to"`
}

func loadUpdateFixtures(tb testing.TB) map[string][]updateFixture {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "updates", "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatal("no fixtures in testdata/updates (run node scripts/gen-update-fixtures.mjs)")
	}
	out := map[string][]updateFixture{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		var doc struct {
			Cases []updateFixture `json:"cases"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = doc.Cases
	}
	return out
}

func metaToStrings(m map[uint64]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[strconv.FormatUint(k, 10)] = v
	}
	return out
}

func runUpdateFixture(c updateFixture) ([]byte, error) {
	in := func() []byte {
		if len(c.Inputs) != 1 {
			panic(fmt.Sprintf("%s: want one input", c.Name))
		}
		return c.Inputs[0]
	}
	switch c.Op {
	case "merge":
		return MergeUpdates(c.Inputs)
	case "mergeV2":
		return MergeUpdatesV2(c.Inputs)
	case "diff":
		return DiffUpdate(in(), c.SV)
	case "diffV2":
		return DiffUpdateV2(in(), c.SV)
	case "sv":
		return EncodeStateVectorFromUpdate(in())
	case "svV2":
		return EncodeStateVectorFromUpdateV2(in())
	case "v1tov2":
		return ConvertUpdateFormatV1ToV2(in())
	case "v2tov1":
		return ConvertUpdateFormatV2ToV1(in())
	case "pending", "pendingV2":
		d := NewDoc(DocOptions{ClientID: 99})
		for i, u := range c.Inputs {
			if err := ApplyUpdate(d, u, nil); err != nil {
				return nil, fmt.Errorf("apply %d: %w", i, err)
			}
		}
		if c.Op == "pendingV2" {
			return EncodeStateAsUpdateV2(d, c.SV)
		}
		return EncodeStateAsUpdate(d, c.SV)
	}
	return nil, fmt.Errorf("unknown op %q", c.Op)
}

func TestUpdatesGolden(t *testing.T) {
	for file, cases := range loadUpdateFixtures(t) {
		t.Run(file, func(t *testing.T) {
			failed := 0
			for _, c := range cases {
				name := c.Op + ":" + c.Name
				if c.Op == "meta" || c.Op == "metaV2" {
					parse := ParseUpdateMeta
					if c.Op == "metaV2" {
						parse = ParseUpdateMetaV2
					}
					from, to, err := parse(c.Inputs[0])
					if err != nil {
						t.Errorf("%s: %v", name, err)
						failed++
						continue
					}
					if !reflect.DeepEqual(metaToStrings(from), c.From) || !reflect.DeepEqual(metaToStrings(to), c.To) {
						t.Errorf("%s: got from %v to %v, want from %v to %v", name, from, to, c.From, c.To)
						failed++
					}
					continue
				}
				got, err := runUpdateFixture(c)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					failed++
				} else if !bytes.Equal(got, c.Output) {
					t.Errorf("%s:\n got %x\nwant %x", name, got, c.Output)
					failed++
				}
				if failed > 20 {
					t.Fatal("too many failures")
				}
			}
			t.Logf("%d cases, %d failed", len(cases), failed)
		})
	}
}

// randomEdits makes a few documents edit concurrently and returns every update they emitted, in
// both formats (same order).
func randomEdits(t *testing.T, seed uint64, clients, steps int) (v1, v2 [][]byte, final *Doc) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	docs := make([]*Doc, clients)
	for i := range docs {
		d := NewDoc(DocOptions{ClientID: uint64(i + 1), DisableGC: i%2 == 1})
		d.ObserveUpdate(func(u []byte, _ any, _ *Transaction) { v1 = append(v1, bytes.Clone(u)) })
		d.ObserveUpdateV2(func(u []byte, _ any, _ *Transaction) { v2 = append(v2, bytes.Clone(u)) })
		docs[i] = d
	}
	for s := 0; s < steps; s++ {
		d := docs[r.IntN(clients)]
		txt := d.GetText("t")
		switch op := r.IntN(6); {
		case op < 3:
			n := txt.Len()
			if err := txt.Insert(r.IntN(n+1), fmt.Sprintf("s%d😀", s), nil); err != nil {
				t.Fatal(err)
			}
		case op == 3 && txt.Len() > 0:
			i := r.IntN(txt.Len())
			if err := txt.Delete(i, min(1+r.IntN(4), txt.Len()-i)); err != nil {
				t.Fatal(err)
			}
		case op == 4:
			if err := d.GetMap("m").Set(fmt.Sprintf("k%d", r.IntN(4)), float64(s)); err != nil {
				t.Fatal(err)
			}
		default:
			if err := d.GetArray("a").Push(s, "x"); err != nil {
				t.Fatal(err)
			}
		}
		if r.IntN(3) == 0 {
			// sync two random docs
			a, b := docs[r.IntN(clients)], docs[r.IntN(clients)]
			if a != b {
				syncDocs(t, a, b)
			}
		}
	}
	final = NewDoc(DocOptions{ClientID: 1000})
	for _, u := range v1 {
		mustApply(t, final, u)
	}
	return v1, v2, final
}

func syncDocs(t *testing.T, a, b *Doc) {
	t.Helper()
	ua, err := EncodeStateAsUpdate(a, EncodeStateVector(b))
	if err != nil {
		t.Fatal(err)
	}
	ub, err := EncodeStateAsUpdate(b, EncodeStateVector(a))
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, b, ua)
	mustApply(t, a, ub)
}

// applyAll applies updates to a fresh document and returns its encoded state.
func applyAll(t *testing.T, v2 bool, updates ...[]byte) []byte {
	t.Helper()
	d := NewDoc(DocOptions{ClientID: 1000})
	for _, u := range updates {
		var err error
		if v2 {
			err = ApplyUpdateV2(d, u, nil)
		} else {
			err = ApplyUpdate(d, u, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return stateOf(t, d)
}

func TestMergeUpdatesEquivalence(t *testing.T) {
	for seed := uint64(0); seed < 8; seed++ {
		v1, v2, final := randomEdits(t, seed, 3, 40)
		want := stateOf(t, final)
		for _, tc := range []struct {
			v2      bool
			updates [][]byte
			merge   func([][]byte) ([]byte, error)
		}{{false, v1, MergeUpdates}, {true, v2, MergeUpdatesV2}} {
			merged, err := tc.merge(tc.updates)
			if err != nil {
				t.Fatal(err)
			}
			if got := applyAll(t, tc.v2, merged); !bytes.Equal(got, want) {
				t.Fatalf("seed %d v2=%v: merged update gives a different document", seed, tc.v2)
			}
			// merging in halves, in any grouping, gives the same content
			h := len(tc.updates) / 2
			m1, err := tc.merge(tc.updates[:h])
			if err != nil {
				t.Fatal(err)
			}
			m2, err := tc.merge(tc.updates[h:])
			if err != nil {
				t.Fatal(err)
			}
			m12, err := tc.merge([][]byte{m2, m1})
			if err != nil {
				t.Fatal(err)
			}
			if got := applyAll(t, tc.v2, m12); !bytes.Equal(got, want) {
				t.Fatalf("seed %d v2=%v: merge of merges gives a different document", seed, tc.v2)
			}
			if got := applyAll(t, tc.v2, m1, m2); !bytes.Equal(got, want) {
				t.Fatalf("seed %d v2=%v: halves give a different document", seed, tc.v2)
			}
			// the state vector of a complete merge is the document's
			sv := EncodeStateVectorFromUpdate
			if tc.v2 {
				sv = EncodeStateVectorFromUpdateV2
			}
			gotSV, err := sv(merged)
			if err != nil {
				t.Fatal(err)
			}
			wantSV, _ := DecodeStateVector(EncodeStateVector(final))
			if dec, err := DecodeStateVector(gotSV); err != nil || !reflect.DeepEqual(dec, wantSV) {
				t.Fatalf("seed %d: state vector %v, want %v (%v)", seed, dec, wantSV, err)
			}
		}
	}
}

func TestDiffUpdateEquivalence(t *testing.T) {
	v1, v2, final := randomEdits(t, 42, 3, 50)
	want := stateOf(t, final)
	for _, f := range []struct {
		v2      bool
		updates [][]byte
		merge   func([][]byte) ([]byte, error)
		diff    func(u, sv []byte) ([]byte, error)
	}{{false, v1, MergeUpdates, DiffUpdate}, {true, v2, MergeUpdatesV2, DiffUpdateV2}} {
		all, err := f.merge(f.updates)
		if err != nil {
			t.Fatal(err)
		}
		for cut := 0; cut <= len(f.updates); cut += 3 {
			// a peer that has the first cut updates
			peer := applyAll(t, f.v2, f.updates[:cut]...)
			pd := NewDoc(DocOptions{ClientID: 1000})
			mustApply(t, pd, peer)
			d, err := f.diff(all, EncodeStateVector(pd))
			if err != nil {
				t.Fatal(err)
			}
			if f.v2 {
				err = ApplyUpdateV2(pd, d, nil)
			} else {
				err = ApplyUpdate(pd, d, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := stateOf(t, pd); !bytes.Equal(got, want) {
				t.Fatalf("v2=%v cut %d: peer + diff differs from the document", f.v2, cut)
			}
		}
	}
}

func TestConvertRoundTrip(t *testing.T) {
	v1, v2, final := randomEdits(t, 7, 3, 40)
	state := stateOf(t, final)
	stateV2, err := EncodeStateAsUpdateV2(final, nil)
	if err != nil {
		t.Fatal(err)
	}
	v1 = append(v1, state)
	v2 = append(v2, stateV2)
	for i, u := range v1 {
		c2, err := ConvertUpdateFormatV1ToV2(u)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ConvertUpdateFormatV2ToV1(c2)
		if err != nil {
			t.Fatal(err)
		}
		// Conversion drops the parent-sub flag of items that have an origin (as Yjs does: the
		// lazy reader does not read it), so the bytes are stable only after one conversion.
		c2again, err := ConvertUpdateFormatV1ToV2(back)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c2again, c2) {
			t.Fatalf("update %d: V1→V2→V1→V2 is not stable", i)
		}
		if a, b := applyAll(t, false, u), applyAll(t, true, c2); !bytes.Equal(a, b) {
			t.Fatalf("update %d: V1 and converted V2 give different documents", i)
		}
		if a, b := applyAll(t, true, v2[i]), applyAll(t, false, back); !bytes.Equal(a, b) {
			t.Fatalf("update %d: V2 and V1 round trip give different documents", i)
		}
		v1from2, err := ConvertUpdateFormatV2ToV1(v2[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(v1from2, back) {
			t.Fatalf("update %d: V2→V1 of the emitted V2 differs from V1→V2→V1", i)
		}
	}
}

// The V2 format cannot hold a client's delete ranges out of order; a V1 update with such a delete
// set is converted with the ranges sorted and merged.
func TestConvertUnorderedDeleteSet(t *testing.T) {
	enc := encoding.NewEncoder()
	for _, v := range []uint64{0, 1, 4, 3, 5, 2, 0, 2, 1, 3} {
		enc.WriteVarUint(v)
	}
	u := enc.Bytes() // no structs; client 4 deletes [5,7), [0,2), [1,4)
	v2, err := ConvertUpdateFormatV1ToV2(u)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ConvertUpdateFormatV2ToV1(v2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0, 1, 4, 2, 0, 4, 5, 2}; !bytes.Equal(back, want) {
		t.Fatalf("got %v want %v", back, want)
	}
	// V1 output keeps the delete set as it was
	if d, err := DiffUpdate(u, nil); err != nil || !bytes.Equal(d, u) {
		t.Fatalf("diff: %v %v", d, err)
	}
}

func TestMergeUpdatesSingleAndEmpty(t *testing.T) {
	v1, v2, _ := randomEdits(t, 3, 2, 10)
	for _, u := range v1 {
		got, err := MergeUpdates([][]byte{u})
		if err != nil || !bytes.Equal(got, u) {
			t.Fatalf("single V1 update: %v", err)
		}
	}
	for _, u := range v2 {
		got, err := MergeUpdatesV2([][]byte{u})
		if err != nil || !bytes.Equal(got, u) {
			t.Fatalf("single V2 update: %v", err)
		}
	}
	if got, err := MergeUpdates(nil); err != nil || !bytes.Equal(got, []byte{0, 0}) {
		t.Fatalf("empty merge: %x %v", got, err)
	}
	// merging an update with itself is idempotent (after one normalization)
	m, err := MergeUpdates(v1)
	if err != nil {
		t.Fatal(err)
	}
	mm, err := MergeUpdates([][]byte{m, m})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m, mm) {
		t.Fatal("merge(m, m) != m")
	}
}

func TestUpdatesMalformed(t *testing.T) {
	v1, v2, _ := randomEdits(t, 5, 2, 12)
	m1, _ := MergeUpdates(v1)
	m2, _ := MergeUpdatesV2(v2)
	type fns struct {
		v2 bool
		u  []byte
	}
	check := func(name string, err error) {
		t.Helper()
		if err != nil && !errors.Is(err, ErrMalformedUpdate) {
			t.Fatalf("%s: error %v does not wrap ErrMalformedUpdate", name, err)
		}
	}
	for _, f := range []fns{{false, m1}, {true, m2}} {
		for n := 0; n < len(f.u); n++ {
			u := f.u[:n]
			merge, diff, sv, conv := MergeUpdates, DiffUpdate, EncodeStateVectorFromUpdate, ConvertUpdateFormatV1ToV2
			if f.v2 {
				merge, diff, sv, conv = MergeUpdatesV2, DiffUpdateV2, EncodeStateVectorFromUpdateV2, ConvertUpdateFormatV2ToV1
			}
			_, err := merge([][]byte{u, f.u})
			check("merge", err)
			if err == nil && n < 2 {
				t.Fatalf("v2=%v: merge of a %d-byte prefix succeeded", f.v2, n)
			}
			_, err = diff(u, []byte{0})
			check("diff", err)
			_, err = sv(u)
			check("sv", err)
			_, err = conv(u)
			check("convert", err)
			_, _, err = parseUpdateMeta(u, f.v2)
			check("meta", err)
		}
	}
	bad := [][]byte{
		nil,
		{0xff},
		{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
		// 2^49 clients / structs in a few bytes
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 0},
		// a struct of length zero
		{1, 1, 1, 0, 0, 0, 0},
		// unknown content ref 10 with an origin bit
		{1, 1, 1, 0, 0x8a, 1, 0, 0},
		// a delete set with 2^49 ranges
		{0, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 1},
	}
	for i, u := range bad {
		if _, err := MergeUpdates([][]byte{u, {0, 0}}); !errors.Is(err, ErrMalformedUpdate) {
			t.Errorf("bad %d: merge: %v", i, err)
		}
		if _, err := MergeUpdates([][]byte{u}); !errors.Is(err, ErrMalformedUpdate) {
			t.Errorf("bad %d: single merge: %v", i, err)
		}
		if _, err := DiffUpdate(u, nil); !errors.Is(err, ErrMalformedUpdate) {
			t.Errorf("bad %d: diff: %v", i, err)
		}
		if _, err := EncodeStateVectorFromUpdate(u); !errors.Is(err, ErrMalformedUpdate) {
			t.Errorf("bad %d: sv: %v", i, err)
		}
		if _, err := ConvertUpdateFormatV1ToV2(u); !errors.Is(err, ErrMalformedUpdate) {
			t.Errorf("bad %d: convert: %v", i, err)
		}
		if _, err := MergeUpdatesV2([][]byte{u, m2}); !errors.Is(err, ErrMalformedUpdate) {
			t.Errorf("bad %d: mergeV2: %v", i, err)
		}
	}
	if _, err := DiffUpdate(m1, []byte{5, 1}); !errors.Is(err, ErrMalformedUpdate) {
		t.Errorf("bad state vector: %v", err)
	}
}

// A V2 update whose run-length columns repeat one GC for ever must be rejected quickly.
func TestMergeUpdatesV2RepeatedColumns(t *testing.T) {
	enc := encoding.NewUpdateEncoderV2()
	rest := enc.RestEncoder()
	rest.WriteVarUint(1)
	const n = 1 << 20
	rest.WriteVarUint(n) // structs
	enc.WriteClient(1)
	rest.WriteVarUint(0)
	for range n {
		enc.WriteInfo(0)
		enc.WriteLen(1)
	}
	rest.WriteVarUint(0)
	u := enc.Bytes()
	if len(u) > 64 {
		t.Fatalf("expected the columns to compress, got %d bytes", len(u))
	}
	if _, err := MergeUpdatesV2([][]byte{u, u}); !errors.Is(err, ErrMalformedUpdate) || !strings.Contains(err.Error(), "expands beyond") {
		t.Fatalf("got %v", err)
	}
}

// Pending structs and deletions are part of the encoded state, so a peer syncing from a document
// that waits for missing updates still receives them, and once the missing update arrives the
// result is the same document.
func TestEncodeStateWithPending(t *testing.T) {
	var v1, v2 [][]byte
	a := NewDoc(DocOptions{ClientID: 1})
	a.ObserveUpdate(func(u []byte, _ any, _ *Transaction) { v1 = append(v1, bytes.Clone(u)) })
	a.ObserveUpdateV2(func(u []byte, _ any, _ *Transaction) { v2 = append(v2, bytes.Clone(u)) })
	txt := a.GetText("t")
	for i, s := range []string{"hello", " world", "!"} {
		if err := txt.Insert(txt.Len(), s, nil); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if err := a.GetMap("m").Set("k", "v"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := txt.Delete(1, 3); err != nil {
		t.Fatal(err)
	}
	b := NewDoc(DocOptions{ClientID: 2})
	mustApply(t, b, stateOf(t, a))
	b.ObserveUpdate(func(u []byte, _ any, _ *Transaction) { v1 = append(v1, bytes.Clone(u)) })
	b.ObserveUpdateV2(func(u []byte, _ any, _ *Transaction) { v2 = append(v2, bytes.Clone(u)) })
	if err := b.GetText("t").Insert(3, "B", nil); err != nil {
		t.Fatal(err)
	}
	if err := b.GetText("t").Delete(0, 1); err != nil {
		t.Fatal(err)
	}
	want := stateOf(t, b)
	for _, f := range []struct {
		v2      bool
		updates [][]byte
	}{{false, v1}, {true, v2}} {
		d := NewDoc(DocOptions{ClientID: 1000})
		// everything but the first update: the rest waits for it
		for _, u := range f.updates[1:] {
			var err error
			if f.v2 {
				err = ApplyUpdateV2(d, u, nil)
			} else {
				err = ApplyUpdate(d, u, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if d.store.pending == nil || d.store.pendingDs == nil {
			t.Fatal("expected pending structs and deletions")
		}
		var st []byte
		var err error
		if f.v2 {
			st, err = EncodeStateAsUpdateV2(d, nil)
		} else {
			st, err = EncodeStateAsUpdate(d, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := applyAll(t, f.v2, st, f.updates[0]); !bytes.Equal(got, want) {
			t.Fatalf("v2=%v: state with pending + first update differs from the document", f.v2)
		}
		if got := applyAll(t, f.v2, f.updates[0], st); !bytes.Equal(got, want) {
			t.Fatalf("v2=%v: first update + state with pending differs from the document", f.v2)
		}
	}
}

func updateFuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, cases := range loadUpdateFixtures(f) {
		for _, c := range cases {
			if c.Op == "merge" || c.Op == "diff" || c.Op == "mergeV2" || c.Op == "diffV2" {
				seeds = append(seeds, c.Inputs...)
				seeds = append(seeds, c.Output)
			}
			if len(seeds) > 200 {
				return seeds
			}
		}
	}
	return seeds
}

func FuzzMergeUpdates(f *testing.F) {
	seeds := updateFuzzSeeds(f)
	for i := 0; i+1 < len(seeds); i += 2 {
		f.Add(seeds[i], seeds[i+1], i%4 == 0)
	}
	f.Fuzz(func(t *testing.T, a, b []byte, v2 bool) {
		merge, parse := MergeUpdates, false
		if v2 {
			merge, parse = MergeUpdatesV2, true
		}
		var out []byte
		var err error
		allocbound.Check(t, "merge", len(a)+len(b), parseBound, func() { out, err = merge([][]byte{a, b}) })
		if err != nil {
			if !errors.Is(err, ErrMalformedUpdate) {
				t.Fatalf("error does not wrap ErrMalformedUpdate: %v", err)
			}
			return
		}
		p, err := parseUpdate(out, parse)
		if err != nil {
			t.Fatalf("merged update does not parse: %v", err)
		}
		_ = p
		// merging again is stable
		again, err := merge([][]byte{out, out})
		if err != nil {
			t.Fatalf("re-merge: %v", err)
		}
		if _, err := parseUpdate(again, parse); err != nil {
			t.Fatalf("re-merged update does not parse: %v", err)
		}
	})
}

func FuzzDiffUpdate(f *testing.F) {
	seeds := updateFuzzSeeds(f)
	for i, s := range seeds {
		f.Add(s, []byte{1, byte(i), byte(i % 7)}, i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, u, sv []byte, v2 bool) {
		diff, sve, conv := DiffUpdate, EncodeStateVectorFromUpdate, ConvertUpdateFormatV1ToV2
		if v2 {
			diff, sve, conv = DiffUpdateV2, EncodeStateVectorFromUpdateV2, ConvertUpdateFormatV2ToV1
		}
		var out []byte
		var err error
		allocbound.Check(t, "diff", len(u)+len(sv), parseBound, func() { out, err = diff(u, sv) })
		if err != nil {
			if !errors.Is(err, ErrMalformedUpdate) {
				t.Fatalf("error does not wrap ErrMalformedUpdate: %v", err)
			}
			return
		}
		if _, err := parseUpdate(out, v2); err != nil {
			t.Fatalf("diffed update does not parse: %v", err)
		}
		if _, err := sve(u); err != nil {
			t.Fatalf("state vector of a parsable update: %v", err)
		}
		c, err := conv(u)
		if err != nil {
			t.Fatalf("convert of a parsable update: %v", err)
		}
		if _, err := parseUpdate(c, !v2); err != nil {
			t.Fatalf("converted update does not parse: %v", err)
		}
	})
}
