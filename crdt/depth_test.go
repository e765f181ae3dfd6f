package crdt

// Deeply nested documents: a client decides how deeply types nest (one update can hold millions of
// arrays, each inside the previous one), so nothing that walks nested types may recurse. These
// tests lower the Go stack limit so that a modest depth would overflow it if anything did; an
// overflow is a fatal error, so a regression kills the test binary instead of failing politely.

import (
	"errors"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/ysync/ysync/crdt/encoding"
)

// depthTestStack is the stack limit the depth tests run under. The testing framework needs far less;
// every recursive walk this package used to have needed about 100-300 bytes of stack per level, so
// depthTestDepth levels would need well over this.
const (
	depthTestStack = 1 << 20
	depthTestDepth = 100_000
)

// lowStack lowers the maximum goroutine stack for the rest of the test. It applies to every
// goroutine of the process, so tests using it must not run in parallel with others.
func lowStack(t *testing.T) {
	old := debug.SetMaxStack(depthTestStack)
	t.Cleanup(func() { debug.SetMaxStack(old) })
}

// writeDeepChain writes, as one update, structs [from, to) of a chain of nested types of kind made
// by client: struct 0 sits in the root type "root", struct i inside the type of struct i-1 (under
// key "k" when the parent is a map). It is what a hostile client sends, built by hand, since
// building it through a Doc would need the memory of the whole chain first.
func writeDeepChain(enc encoding.UpdateEncoder, client uint64, kind uint8, from, to int) []byte {
	rest := enc.RestEncoder()
	rest.WriteVarUint(1)
	rest.WriteVarUint(uint64(to - from))
	enc.WriteClient(client)
	rest.WriteVarUint(uint64(from))
	for c := from; c < to; c++ {
		info := uint8(refType)
		if kind == KindMap {
			info |= 0x20
		}
		enc.WriteInfo(info)
		enc.WriteParentInfo(c == 0)
		if c == 0 {
			enc.WriteString("root")
		} else {
			enc.WriteLeftID(client, uint64(c-1))
		}
		if kind == KindMap {
			enc.WriteString("k")
		}
		enc.WriteTypeRef(kind)
		if kind == KindXmlElement {
			enc.WriteKey("p")
		}
	}
	rest.WriteVarUint(0) // no deletions
	return enc.Bytes()
}

// deleteRangeUpdate is an update deleting [clock, clock+n) of client and nothing else.
func deleteRangeUpdate(enc encoding.UpdateEncoder, client uint64, clock, n int) []byte {
	rest := enc.RestEncoder()
	rest.WriteVarUint(0) // no structs
	rest.WriteVarUint(1)
	enc.ResetDsCurVal()
	rest.WriteVarUint(client)
	rest.WriteVarUint(1)
	enc.WriteDsClock(uint64(clock))
	enc.WriteDsLen(uint64(n))
	return enc.Bytes()
}

func newEnc(v2 bool) encoding.UpdateEncoder {
	if v2 {
		return encoding.NewUpdateEncoderV2()
	}
	return encoding.NewUpdateEncoderV1()
}

func applyAny(doc *Doc, u []byte, v2 bool) error {
	if v2 {
		return ApplyUpdateV2(doc, u, nil)
	}
	return ApplyUpdate(doc, u, nil)
}

// rootOf returns the root "root" as the kind the chain uses.
func rootOf(doc *Doc, kind uint8) *AbstractType {
	switch kind {
	case KindMap:
		return doc.GetMap("root").AbstractType
	case KindXmlElement:
		return doc.GetXmlFragment("root").AbstractType
	}
	return doc.GetArray("root").AbstractType
}

// chainDepth follows the chain from the root and returns how many nested types are live.
func chainDepth(doc *Doc, kind uint8) int {
	t := rootOf(doc, kind)
	n := 0
	for {
		var it *Item
		if kind == KindMap {
			it = t.m["k"]
		} else {
			it = t.start
		}
		if it == nil || it.Deleted() {
			return n
		}
		ct, ok := it.Content.(*ContentType)
		if !ok {
			return n
		}
		n++
		t = ct.Type
	}
}

func TestDeepChainApplyRenderEncodeDelete(t *testing.T) {
	lowStack(t)
	kinds := []struct {
		name string
		kind uint8
	}{{"array", KindArray}, {"map", KindMap}, {"xml", KindXmlElement}}
	for _, k := range kinds {
		for _, v2 := range []bool{false, true} {
			for _, gc := range []bool{true, false} {
				name := k.name
				if v2 {
					name += "/v2"
				}
				if !gc {
					name += "/nogc"
				}
				t.Run(name, func(t *testing.T) { deepChainCase(t, k.kind, v2, gc) })
			}
		}
	}
}

func deepChainCase(t *testing.T, kind uint8, v2, gc bool) {
	const client = 7
	depth := depthTestDepth
	u := writeDeepChain(newEnc(v2), client, kind, 0, depth)
	doc := NewDoc(DocOptions{ClientID: 1, DisableGC: !gc})
	if err := applyAny(doc, u, v2); err != nil {
		// V2's run-length columns write this chain in a few dozen bytes: far more structs than
		// the bytes received justify, so it may be refused, but only as a whole.
		if !v2 || !errors.Is(err, ErrMalformedUpdate) {
			t.Fatalf("apply chain: %v", err)
		}
		if sv := doc.StateVector(); len(sv) != 0 {
			t.Fatalf("refused update changed the state vector: %v", sv)
		}
		t.Logf("refused: %v", err)
		return
	}
	if got := chainDepth(doc, kind); got != depth {
		t.Fatalf("chain depth %d, want %d", got, depth)
	}
	// Render: every level appears once.
	switch kind {
	case KindXmlElement:
		s := doc.GetXmlFragment("root").String()
		if want := depth * len("<p></p>"); len(s) != want || !strings.HasPrefix(s, "<p><p>") || !strings.HasSuffix(s, "</p></p>") {
			t.Fatalf("xml string of %d bytes, want %d", len(s), want)
		}
	default:
		j := doc.ToJSON()["root"]
		n := 0
		for v := j; ; n++ {
			switch x := v.(type) {
			case []any:
				if len(x) == 0 {
					v = nil
				} else {
					v = x[0]
				}
			case map[string]any:
				v = x["k"]
			default:
				v = nil
			}
			if v == nil {
				break
			}
		}
		if n != depth {
			t.Fatalf("ToJSON nests %d levels, want %d", n, depth)
		}
	}
	// Encode the state in both formats and check another document rebuilds the same chain; merge
	// and diff the update without a document.
	st, err := EncodeStateAsUpdate(doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	st2, err := EncodeStateAsUpdateV2(doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []struct {
		u  []byte
		v2 bool
	}{{st, false}, {st2, true}} {
		other := NewDoc(DocOptions{ClientID: 2})
		if err := applyAny(other, enc.u, enc.v2); err != nil {
			if enc.v2 && errors.Is(err, ErrMalformedUpdate) {
				continue // as above: the V2 form is too compact to be accepted
			}
			t.Fatalf("apply encoded state (v2=%v): %v", enc.v2, err)
		}
		if got := chainDepth(other, kind); got != depth {
			t.Fatalf("copy has depth %d, want %d", got, depth)
		}
	}
	half1 := writeDeepChain(encoding.NewUpdateEncoderV1(), client, kind, 0, depth/2)
	half2 := writeDeepChain(encoding.NewUpdateEncoderV1(), client, kind, depth/2, depth)
	merged, err := MergeUpdates([][]byte{half2, half1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DiffUpdate(merged, EncodeStateVectorFromMap(map[uint64]int{client: depth / 2})); err != nil {
		t.Fatal(err)
	}
	// Delete the outermost item: everything under it goes, and with GC on becomes GC structs.
	if err := applyAny(doc, deleteRangeUpdate(newEnc(v2), client, 0, 1), v2); err != nil {
		t.Fatalf("apply delete: %v", err)
	}
	if got := chainDepth(doc, kind); got != 0 {
		t.Fatalf("after deleting the root item %d levels are live", got)
	}
	sv := doc.StateVector()
	if sv[client] != depth {
		t.Fatalf("state vector after delete: %v", sv)
	}
	if gc {
		// The deleted item keeps its place as deleted content; everything nested in it is GC.
		structs := doc.store.clients[client]
		first, ok := structs[0].(*Item)
		if !ok {
			t.Fatalf("first struct is %T", structs[0])
		}
		if _, ok := first.Content.(*ContentDeleted); !ok {
			t.Fatalf("first struct holds %T after GC", first.Content)
		}
		for _, st := range structs[1:] {
			if _, ok := st.(*GC); !ok {
				t.Fatalf("struct %v is %T after GC", st.id(), st)
			}
		}
	}
	// The deleted state still encodes and rebuilds an equal document.
	st, err = EncodeStateAsUpdate(doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := NewDoc(DocOptions{ClientID: 3})
	if err := ApplyUpdate(other, st, nil); err != nil {
		t.Fatal(err)
	}
	if got := chainDepth(other, kind); got != 0 {
		t.Fatalf("copy of the deleted chain has %d live levels", got)
	}
	if got, want := EncodeStateVector(other), EncodeStateVector(doc); string(got) != string(want) {
		t.Fatalf("state vectors differ after delete")
	}
}

// A chain split over many updates that arrive out of order: the later parts wait as pending
// structs and integrate when their parents arrive; then one deletion removes the lot.
func TestDeepChainSplitOutOfOrder(t *testing.T) {
	lowStack(t)
	const client, parts = 9, 10
	depth := depthTestDepth
	doc := NewDoc(DocOptions{ClientID: 1})
	for p := parts - 1; p >= 0; p-- {
		u := writeDeepChain(encoding.NewUpdateEncoderV1(), client, KindArray, p*depth/parts, (p+1)*depth/parts)
		if err := ApplyUpdate(doc, u, nil); err != nil {
			t.Fatalf("part %d: %v", p, err)
		}
	}
	if got := chainDepth(doc, KindArray); got != depth {
		t.Fatalf("depth %d, want %d", got, depth)
	}
	// Delete from the middle: the outer half stays.
	if err := ApplyUpdate(doc, deleteRangeUpdate(encoding.NewUpdateEncoderV1(), client, depth/2, 1), nil); err != nil {
		t.Fatal(err)
	}
	if got := chainDepth(doc, KindArray); got != depth/2 {
		t.Fatalf("depth after deleting level %d: %d", depth/2, got)
	}
	if err := ApplyUpdate(doc, deleteRangeUpdate(encoding.NewUpdateEncoderV1(), client, 0, 1), nil); err != nil {
		t.Fatal(err)
	}
	if got := chainDepth(doc, KindArray); got != 0 {
		t.Fatalf("depth after deleting the root item: %d", got)
	}
}

// Deep chains built through the API, locally: deleting the outer type deletes every level, and
// the update observers get an update another document applies.
func TestDeepChainLocalDelete(t *testing.T) {
	lowStack(t)
	const depth = 20_000 // one transaction per level: keep it quick
	doc := NewDoc(DocOptions{ClientID: 1})
	var updates [][]byte
	doc.ObserveUpdate(func(u []byte, _ any, _ *Transaction) { updates = append(updates, u) })
	cur := doc.GetArray("root")
	for range depth {
		a := NewArray()
		if err := cur.Push(a); err != nil {
			t.Fatal(err)
		}
		cur = a
	}
	if err := doc.GetArray("root").Delete(0, 1); err != nil {
		t.Fatal(err)
	}
	if got := chainDepth(doc, KindArray); got != 0 {
		t.Fatalf("%d levels live after the delete", got)
	}
	merged, err := MergeUpdates(updates)
	if err != nil {
		t.Fatal(err)
	}
	other := NewDoc(DocOptions{ClientID: 2})
	if err := ApplyUpdate(other, merged, nil); err != nil {
		t.Fatal(err)
	}
	if got := chainDepth(other, KindArray); got != 0 {
		t.Fatalf("replica has %d levels live", got)
	}
	if got, want := EncodeStateVector(other), EncodeStateVector(doc); string(got) != string(want) {
		t.Fatal("state vectors differ")
	}
}
