package encoding

// Allocation bounds of the fuzz targets: what decoding may allocate per input byte, whatever
// counts and lengths the input declares (see crdt/internal/allocbound).

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/ysync/ysync/crdt/internal/allocbound"
)

var (
	// columnBound: run-length column decoders read in place; only an error message allocates.
	columnBound = allocbound.Bound{PerByte: 0, Base: 1 << 10}
	// stringColumnBound: the string column copies its text once, where invalid UTF-8 can triple
	// (each bad byte becomes a 3-byte U+FFFD), and a piece cut inside a surrogate pair gets a
	// U+FFFD of its own (at most fuzzReads pieces of 3 extra bytes).
	stringColumnBound = allocbound.Bound{PerByte: 4, Base: 8 << 10}
	// anyBound: Any values box every element (16 bytes per slot, 8 per number, a map entry per
	// key; every element takes at least one input byte, a key and its value at least two), and
	// each array starts with a small capacity however many elements it claims; nesting stops at
	// MaxNestingDepth, which bounds the unfilled capacities.
	anyBound = allocbound.Bound{PerByte: 96, Base: 256 << 10}
	// jsonBound: as anyBound for JSON text, where every element takes at least one byte too.
	jsonBound = allocbound.Bound{PerByte: 96, Base: 256 << 10}
)

// Arrays nested to the depth limit, each claiming every remaining byte as an element, then cut
// short: the claims must not be allocated.
func TestAllocAnyNestedClaims(t *testing.T) {
	const depth = MaxNestingDepth
	var in []byte
	for i := range depth {
		e := NewEncoder()
		e.WriteUint8(tagArray)
		e.WriteVarUint(uint64(2 * (depth - i - 1)))
		in = append(in, e.Bytes()...)
	}
	d := NewDecoder(in)
	allocbound.Check(t, "ReadAny", len(in), allocbound.Bound{PerByte: 64, Base: 16 << 10}, func() { d.ReadAny() })
	if d.Err() == nil {
		t.Fatal("truncated arrays accepted")
	}
}

// An object of many array-index keys in descending order decodes in linear time and keeps
// JavaScript's key order (indices ascending, then the other keys as inserted).
func TestObjectDescendingIndexKeys(t *testing.T) {
	const n = 100_000 // inserted in order one by one: ~5*10^9 moves (minutes); sorted once: well under a second
	e := NewEncoder()
	e.WriteUint8(tagObject)
	e.WriteVarUint(n + 1)
	e.WriteVarString("z")
	e.WriteUint8(tagNull)
	for i := n - 1; i >= 0; i-- {
		e.WriteVarString(strconv.Itoa(i))
		e.WriteUint8(tagTrue)
	}
	d := NewDecoder(e.Bytes())
	o, ok := d.ReadAny().(*Object)
	if !ok || d.Err() != nil {
		t.Fatalf("decode: %v", d.Err())
	}
	keys := o.Keys()
	if len(keys) != n+1 || keys[0] != "0" || keys[n-1] != strconv.Itoa(n-1) || keys[n] != "z" {
		t.Fatalf("key order: %d keys, %v ... %v", len(keys), keys[:3], keys[len(keys)-2:])
	}
	var sb strings.Builder
	sb.WriteString(`{"z":null`)
	for i := n - 1; i >= 0; i-- {
		fmt.Fprintf(&sb, `,"%d":true`, i)
	}
	sb.WriteString("}")
	v, err := ParseJSON(sb.String())
	if err != nil {
		t.Fatal(err)
	}
	if keys := v.(*Object).Keys(); keys[0] != "0" || keys[n] != "z" {
		t.Fatalf("JSON key order: %v ... %v", keys[:3], keys[len(keys)-2:])
	}
}
