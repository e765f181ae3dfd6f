package crdt

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// EncodeStateAsUpdateReserved is EncodeStateAsUpdate behind reserve zero bytes, for whole and
// partial state vectors, with and without pending structs (which take the merge-and-copy way).
func TestEncodeStateAsUpdateReserved(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	a := NewDoc(DocOptions{ClientID: 1})
	var updates [][]byte
	a.ObserveUpdate(func(u []byte, _ any, _ *Transaction) { updates = append(updates, u) })
	b := NewDoc(DocOptions{ClientID: 2})
	var early []byte
	for i := 0; i < 60; i++ {
		randomEdit(r, a)
		randomEdit(r, b)
		if i == 30 {
			early = EncodeStateVector(b)
		}
	}
	// b gets a's last update without the ones before it: pending structs.
	mustApply(t, b, updates[len(updates)-1])
	if b.store.pending == nil {
		t.Fatal("test set-up: b has no pending structs")
	}
	for _, d := range []*Doc{a, b} {
		for _, sv := range [][]byte{nil, {0}, early, EncodeStateVector(d)} {
			want, err := EncodeStateAsUpdate(d, sv)
			if err != nil {
				t.Fatal(err)
			}
			for _, reserve := range []int{0, 1, 12} {
				got, err := EncodeStateAsUpdateReserved(d, sv, reserve)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) < reserve || !bytes.Equal(got[:reserve], make([]byte, reserve)) {
					t.Fatalf("reserve %d: head %x not zero", reserve, got[:min(reserve, len(got))])
				}
				if !bytes.Equal(got[reserve:], want) {
					t.Fatalf("reserve %d, sv %x: update differs from EncodeStateAsUpdate", reserve, sv)
				}
			}
		}
	}
}
