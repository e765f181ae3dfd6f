package crdt

// Allocation bounded by the bytes received: the attacks of issue 8 (an update claiming millions
// of structs and failing at the first, a state vector claiming millions of entries, delete sets
// and strings claiming huge counts, V2 columns repeating structs for free, a delete set cutting one
// long run at every element), each checked to allocate less than a fixed bound. A decoder that
// sized a slice or map by a declared count allocated gigabytes here.

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ysync/ysync/crdt/encoding"
	"github.com/ysync/ysync/crdt/internal/allocbound"
)

// applyBound is what applying an update may allocate per input byte: the decoded structs
// (structBudget: at most maxStructBytesPerByte), as much again for integrating them (struct-store
// slices growing, split items, the transaction's sets), and a base for the fixed costs of a
// transaction on a small document (measured: under 15 KiB for every seed and golden update;
// valid updates above 512 bytes allocate 19-26 bytes per byte). V2 may also spend the budget's
// base on structs its columns repeat for free.
var (
	applyBoundV1 = allocbound.Bound{PerByte: 2 * maxStructBytesPerByte, Base: 64 << 10}
	applyBoundV2 = allocbound.Bound{PerByte: 2 * maxStructBytesPerByte, Base: 2*structBytesBase + 64<<10}
	// parseBound is for decoding without a document (MergeUpdates, DiffUpdate, conversions),
	// whose structs are bounded by the same budget and which write an output at most as large.
	parseBound = allocbound.Bound{PerByte: 2 * maxStructBytesPerByte, Base: 2*structBytesBase + 64<<10}
	// svBound is what decoding a state vector may allocate: its map, whose entries take at least
	// two input bytes each (a Go map entry of two words costs ~40 bytes with its growth). The base
	// is 16 KiB: under the fuzzing engine a 3-byte, one-entry vector was once charged 5,512 bytes,
	// allocation the measurement picks up from the engine's own goroutines (testdata seed).
	svBound = allocbound.Bound{PerByte: 32, Base: 16 << 10}
	// stateForSVBound is what encoding fuzzBaseDoc's state for a peer's state vector may
	// allocate: the state (well under 16 KiB) and nothing per entry of the vector, whose clients
	// the document mostly does not have.
	stateForSVBound = allocbound.Bound{PerByte: 0, Base: 64 << 10}
	// listBound is what a huge declared struct count may cost before the first struct fails:
	// the struct lists are sized up front by what the update's length could hold (a V1 struct
	// takes two bytes; a slot is 16), never by the count.
	listBound = allocbound.Bound{PerByte: 8, Base: 1 << 20}
	// attackBound is what a hostile input that fails early may allocate: nothing proportional
	// to the counts it claims.
	attackBound = allocbound.Bound{PerByte: 0, Base: 1 << 20}
)

// hugeStructCountV1 is a V1 update of size bytes declaring as many structs as the struct-count
// check lets through, whose first struct is malformed (an unknown content ref).
func hugeStructCountV1(size int) []byte {
	enc := encoding.NewEncoder()
	enc.WriteVarUint(1)
	enc.WriteVarUint(uint64(structBudget(size)/minStructCost - 1))
	enc.WriteVarUint(1) // client
	enc.WriteVarUint(0) // clock
	b := enc.Bytes()
	return append(b, bytes.Repeat([]byte{0x1f}, size-len(b))...)
}

// hugeStructCountV2 is hugeStructCountV1 in V2: empty info column, so the first struct fails.
func hugeStructCountV2(size int) []byte {
	enc := encoding.NewUpdateEncoderV2()
	rest := enc.RestEncoder()
	rest.WriteVarUint(1)
	rest.WriteVarUint(uint64(structBudget(size)/minStructCost - 1))
	enc.WriteClient(1)
	rest.WriteVarUint(0)
	b := enc.Bytes()
	return append(b, make([]byte, size-len(b))...)
}

func TestAllocHugeStructCount(t *testing.T) {
	const size = 4 << 20
	for _, tc := range []struct {
		name string
		u    []byte
		v2   bool
	}{{"v1", hugeStructCountV1(size), false}, {"v2", hugeStructCountV2(size), true}} {
		t.Run(tc.name, func(t *testing.T) {
			doc := NewDoc(DocOptions{ClientID: 1})
			var err error
			allocbound.Check(t, "apply", len(tc.u), listBound, func() { err = applyAny(doc, tc.u, tc.v2) })
			if !errors.Is(err, ErrMalformedUpdate) {
				t.Fatalf("apply: %v", err)
			}
			merge, diff, sv := MergeUpdates, DiffUpdate, EncodeStateVectorFromUpdate
			if tc.v2 {
				merge, diff, sv = MergeUpdatesV2, DiffUpdateV2, EncodeStateVectorFromUpdateV2
			}
			allocbound.Check(t, "merge", len(tc.u), attackBound, func() { _, err = merge([][]byte{tc.u, tc.u}) })
			if err == nil {
				t.Fatal("merge accepted it")
			}
			allocbound.Check(t, "diff", len(tc.u), attackBound, func() { _, err = diff(tc.u, nil) })
			if err == nil {
				t.Fatal("diff accepted it")
			}
			allocbound.Check(t, "state vector", len(tc.u), attackBound, func() { _, err = sv(tc.u) })
			if err == nil {
				t.Fatal("state vector accepted it")
			}
		})
	}
}

func TestAllocHugeStateVector(t *testing.T) {
	const size = 4 << 20
	doc := fuzzBaseDoc(t)
	state, err := EncodeStateAsUpdate(doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Claims as many entries as the bytes could hold (two each), but its entries take four:
	// truncated half way, after reading a million entries of one client.
	claim := encoding.NewEncoder()
	claim.WriteVarUint(size/2 - 8)
	truncated := append(claim.Bytes(), bytes.Repeat([]byte{0x80, 0x80, 0x01, 0x00}, size/4)...)
	// Really holds ~1M distinct clients: what a read-only peer can send as its SyncStep1.
	many := encoding.NewEncoder()
	const n = 1 << 20
	many.WriteVarUint(n)
	for i := range n {
		many.WriteVarUint(uint64(1000 + i)) // none of them known to the document
		many.WriteVarUint(1)
	}
	distinct := many.Bytes()

	for _, tc := range []struct {
		name  string
		sv    []byte
		valid bool
	}{{"truncated", truncated, false}, {"distinct", distinct, true}} {
		t.Run(tc.name, func(t *testing.T) {
			var got []byte
			var err error
			allocbound.Check(t, "EncodeStateAsUpdate", len(tc.sv), attackBound, func() { got, err = EncodeStateAsUpdate(doc, tc.sv) })
			if tc.valid {
				if err != nil || !bytes.Equal(got, state) {
					t.Fatalf("state for a vector of unknown clients: %v (%d bytes, want the whole state)", err, len(got))
				}
			} else if !errors.Is(err, ErrMalformedUpdate) {
				t.Fatalf("truncated vector: %v", err)
			}
			allocbound.Check(t, "EncodeStateAsUpdateV2", len(tc.sv), attackBound, func() { _, err = EncodeStateAsUpdateV2(doc, tc.sv) })
			allocbound.Check(t, "DiffUpdate", len(tc.sv), attackBound, func() { _, err = DiffUpdate(state, tc.sv) })
			if tc.valid != (err == nil) {
				t.Fatalf("DiffUpdate: %v", err)
			}
			// Decoding the whole vector keeps every entry: proportional to the input, no more.
			var sv map[uint64]int
			allocbound.Check(t, "DecodeStateVector", len(tc.sv), allocbound.Bound{PerByte: 32, Base: 64 << 10}, func() { sv, err = DecodeStateVector(tc.sv) })
			if tc.valid && len(sv) != n {
				t.Fatalf("decoded %d entries, want %d (%v)", len(sv), n, err)
			}
		})
	}
}

func TestAllocHugeDeleteSetCounts(t *testing.T) {
	const size = 4 << 20
	// One client claiming as many ranges as the check allows, all empty (skipped).
	enc := encoding.NewEncoder()
	enc.WriteVarUint(0) // no structs
	enc.WriteVarUint(1)
	enc.WriteVarUint(5)
	enc.WriteVarUint(uint64(size) * 60)
	ranges := append(enc.Bytes(), make([]byte, size)...)
	// As many clients as there are bytes, then nothing.
	enc = encoding.NewEncoder()
	enc.WriteVarUint(0)
	enc.WriteVarUint(1 << 50)
	clients := append(enc.Bytes(), 1, 1, 0)
	for _, u := range [][]byte{ranges, clients} {
		doc := fuzzBaseDoc(t)
		allocbound.Check(t, "apply", len(u), attackBound, func() { _ = ApplyUpdate(doc, u, nil) })
		allocbound.Check(t, "merge", len(u), attackBound, func() { _, _ = MergeUpdates([][]byte{u, u}) })
	}
}

func TestAllocHugeStringLength(t *testing.T) {
	// An item whose root name claims 2^40 bytes, then one whose string content does.
	for _, claimRoot := range []bool{true, false} {
		enc := encoding.NewEncoder()
		enc.WriteVarUint(1)
		enc.WriteVarUint(1)
		enc.WriteVarUint(1)
		enc.WriteVarUint(0)
		enc.WriteUint8(refString)
		enc.WriteVarUint(1) // parent is a root type
		if claimRoot {
			enc.WriteVarUint(1 << 40)
		} else {
			enc.WriteVarString("text")
			enc.WriteVarUint(1 << 40)
		}
		u := append(enc.Bytes(), make([]byte, 1<<20)...)
		doc := NewDoc(DocOptions{ClientID: 1})
		var err error
		allocbound.Check(t, "apply", len(u), attackBound, func() { err = ApplyUpdate(doc, u, nil) })
		if !errors.Is(err, ErrMalformedUpdate) {
			t.Fatalf("apply: %v", err)
		}
	}
}

// V2 columns that repeat one struct for ever cost the sender nothing: GC runs are merged as they
// are read, and items are charged against the struct budget.
func TestAllocV2RepeatedColumns(t *testing.T) {
	build := func(n int, deletedItems bool) []byte {
		enc := encoding.NewUpdateEncoderV2()
		rest := enc.RestEncoder()
		rest.WriteVarUint(1)
		rest.WriteVarUint(uint64(n))
		enc.WriteClient(1)
		rest.WriteVarUint(0)
		enc.WriteInfo(refGC)
		enc.WriteLen(1)
		for i := 1; i < n; i++ {
			if deletedItems {
				// Deleted content, origin = the previous struct: all from run-length columns.
				enc.WriteInfo(0x80 | refDeleted)
				enc.WriteLeftID(1, uint64(i-1))
			} else {
				enc.WriteInfo(refGC)
			}
			enc.WriteLen(1)
		}
		rest.WriteVarUint(0)
		return enc.Bytes()
	}
	// GCs: merged into one as read, so a count just under the struct-count check applies.
	gcs := build(20_000, false)
	doc := NewDoc(DocOptions{ClientID: 2})
	allocbound.Check(t, "apply GC run", len(gcs), attackBound, func() {
		if err := ApplyUpdateV2(doc, gcs, nil); err != nil {
			t.Errorf("GC run: %v", err)
		}
	})
	if got := doc.StateVector()[1]; got != 20_000 {
		t.Fatalf("state after the GC run: %d", got)
	}
	if n := len(doc.store.clients[1]); n != 1 {
		t.Fatalf("GC run kept as %d structs", n)
	}
	// Deleted items cannot be merged as read: past the budget the update is refused.
	items := build(20_000, true)
	if len(items) > 64 {
		t.Fatalf("columns did not compress: %d bytes", len(items))
	}
	var err error
	allocbound.Check(t, "apply item run", len(items), applyBoundV2, func() { err = ApplyUpdateV2(NewDoc(DocOptions{}), items, nil) })
	if !errors.Is(err, ErrMalformedUpdate) {
		t.Fatalf("item run: %v", err)
	}
	allocbound.Check(t, "merge item run", len(items), parseBound, func() { _, err = MergeUpdatesV2([][]byte{items, items}) })
	if !errors.Is(err, ErrMalformedUpdate) {
		t.Fatalf("merge item run: %v", err)
	}
}

// A delete set cutting one long array run at every other element: each cut used to copy the rest
// of the run, which made the update quadratic in allocation.
func TestAllocDeleteSetCutsLongRun(t *testing.T) {
	const n = 20_000
	src := NewDoc(DocOptions{ClientID: 1})
	vals := make([]any, n)
	for i := range vals {
		vals[i] = float64(i)
	}
	if err := src.GetArray("a").Push(vals...); err != nil {
		t.Fatal(err)
	}
	st, err := EncodeStateAsUpdate(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	enc := encoding.NewEncoder()
	enc.WriteVarUint(0)
	enc.WriteVarUint(1)
	enc.WriteVarUint(1)
	enc.WriteVarUint(n / 2)
	for i := 0; i < n; i += 2 {
		enc.WriteVarUint(uint64(i))
		enc.WriteVarUint(1)
	}
	cuts := enc.Bytes()
	for _, gc := range []bool{true, false} {
		doc := NewDoc(DocOptions{ClientID: 2, DisableGC: !gc})
		if err := ApplyUpdate(doc, st, nil); err != nil {
			t.Fatal(err)
		}
		allocbound.Check(t, "apply cuts", len(cuts), applyBoundV1, func() {
			if err := ApplyUpdate(doc, cuts, nil); err != nil {
				t.Errorf("cuts: %v", err)
			}
		})
		got := doc.GetArray("a").ToArray()
		if len(got) != n/2 || got[0] != 1.0 || got[len(got)-1] != float64(n-1) {
			t.Fatalf("after the cuts: %d values, first %v", len(got), got[0])
		}
	}
}

// The deep chain, valid V1 that expands into the most heap per byte: within the apply bound.
func TestAllocDeepChainWithinBound(t *testing.T) {
	u := writeDeepChain(encoding.NewUpdateEncoderV1(), 7, KindArray, 0, 50_000)
	doc := NewDoc(DocOptions{ClientID: 1})
	got := allocbound.Check(t, "apply chain", len(u), applyBoundV1, func() {
		if err := ApplyUpdate(doc, u, nil); err != nil {
			t.Errorf("chain: %v", err)
		}
	})
	t.Logf("chain of %d bytes allocated %d bytes (%.0f per byte)", len(u), got, float64(got)/float64(len(u)))
}

// The same cuts through a text of astral characters, each cut inside a surrogate pair: Yjs gives
// each half a lone surrogate (U+FFFD here); the right half must not copy the rest of the run.
func TestAllocDeleteSetCutsSurrogatePairs(t *testing.T) {
	const n = 20_000 // emoji, 2 UTF-16 units each
	src := NewDoc(DocOptions{ClientID: 1})
	if err := src.GetText("t").Insert(0, strings.Repeat("😀", n), nil); err != nil {
		t.Fatal(err)
	}
	st, err := EncodeStateAsUpdate(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Delete the second half of every other emoji: each cut splits a pair.
	enc := encoding.NewEncoder()
	enc.WriteVarUint(0)
	enc.WriteVarUint(1)
	enc.WriteVarUint(1)
	enc.WriteVarUint(n / 2)
	for i := 0; i < n; i += 2 {
		enc.WriteVarUint(uint64(2*i + 1))
		enc.WriteVarUint(1)
	}
	cuts := enc.Bytes()
	doc := NewDoc(DocOptions{ClientID: 2})
	if err := ApplyUpdate(doc, st, nil); err != nil {
		t.Fatal(err)
	}
	allocbound.Check(t, "apply cuts", len(cuts), applyBoundV1, func() {
		if err := ApplyUpdate(doc, cuts, nil); err != nil {
			t.Errorf("cuts: %v", err)
		}
	})
	if got, want := doc.GetText("t").Len(), 2*n-n/2; got != want {
		t.Fatalf("text length %d, want %d", got, want)
	}
}
