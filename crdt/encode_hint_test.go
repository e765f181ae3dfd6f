package crdt

import (
	"strings"
	"testing"
)

// TestEncodedSizeHintIsLow: the hint never exceeds the encoded size (the update keeps no unused
// capacity beyond it), and for a big text it is close enough that the encode allocates its
// buffer once. Not parallel: AllocsPerRun.
func TestEncodedSizeHintIsLow(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		_, _, d := randomEdits(t, seed, 3, 60)
		u := stateOf(t, d)
		if h := encodedSizeHint(d.store, map[uint64]int{}); h > len(u) {
			t.Fatalf("seed %d: hint %d > encoded %d", seed, h, len(u))
		}
		sv, _ := DecodeStateVector(EncodeStateVector(d))
		if h := encodedSizeHint(d.store, sv); h != 0 {
			t.Fatalf("seed %d: hint %d for a peer that has everything, want 0", seed, h)
		}
	}
	d := NewDoc(DocOptions{ClientID: 2946758011})
	text := d.GetText("t")
	for i := range 200 {
		if err := text.Insert((i*7919)%(text.Len()+1), strings.Repeat("word ", 800), nil); err != nil {
			t.Fatal(err)
		}
	}
	u := stateOf(t, d)
	if h := encodedSizeHint(d.store, map[uint64]int{}); h > len(u) || h < len(u)*9/10 {
		t.Fatalf("hint %d for %d encoded bytes of text, want within 90%%", h, len(u))
	}
	if cap(u) > len(u)*11/10 {
		t.Fatalf("encoded %d bytes into a buffer of %d: grown, not sized", len(u), cap(u))
	}
	// Grown by append, the buffer would be reallocated some 30 times on the way to 800 KB.
	if n := testing.AllocsPerRun(3, func() { stateOf(t, d) }); n > 12 {
		t.Fatalf("a whole-state encode of %d bytes made %.0f allocations, want <= 12", len(u), n)
	}
}
