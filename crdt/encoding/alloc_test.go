package encoding

// Allocation bounds of the fuzz targets: what decoding may allocate per input byte, whatever
// counts and lengths the input declares (see crdt/internal/allocbound).

import (
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
