package crdt

import (
	"cmp"
	"fmt"
	"slices"
)

// SkippedUpdate is an update ApplyUpdates left out, with the reason.
type SkippedUpdate struct {
	Index int // position in the updates given
	Err   error
}

// ApplyUpdates applies V1 updates to doc as one: the document ends up as if they were applied
// one by one with ApplyUpdate (CRDT updates commute), but at about the cost of applying their
// merged state, which makes replaying a long log (a document loaded from storage) cheap. Every
// update is read first; their structs are combined per client in clock order (what
// MergeUpdates does, without writing and reading the result again) and their delete sets
// merged, then everything is integrated in one transaction, so that the struct store is merged
// and garbage-collected once, structs that arrived out of order (a log's batches are appended
// concurrently) do not wait as pending ones, and update observers see one update.
//
// A malformed update is left out — the others still apply — and reported in skipped. err is a
// failure of the integration itself; doc may then hold part of the updates, as with
// ApplyUpdate.
func ApplyUpdates(doc *Doc, updates [][]byte, origin any) (skipped []SkippedUpdate, err error) {
	refs := make(map[uint64][]abstractStruct)
	unsorted := make(map[uint64]bool)
	var dss []*DeleteSet
	scratch := make(map[uint64][]abstractStruct) // one update's structs, reused
	for i, u := range updates {
		clear(scratch)
		r, ds, rerr := readUpdateInto(u, false, scratch)
		if rerr != nil {
			skipped = append(skipped, SkippedUpdate{Index: i, Err: rerr})
			continue
		}
		for client, list := range r {
			prev := refs[client]
			if len(prev) > 0 && list[0].id().Clock < prev[len(prev)-1].id().Clock {
				unsorted[client] = true
			}
			refs[client] = append(prev, list...)
		}
		if !ds.empty() {
			dss = append(dss, ds)
		}
	}
	for client := range unsorted {
		// Stable: of structs starting at the same clock, the first one read is integrated and
		// the others are skipped or sliced, as when applied one by one.
		slices.SortStableFunc(refs[client], func(a, b abstractStruct) int { return cmp.Compare(a.id().Clock, b.id().Clock) })
	}
	ds := mergeDeleteSets(dss...)
	dss = nil
	doc.transact(func(tx *Transaction) {
		tx.Local = false
		doc.applyRefs(tx, refs, ds)
		if tx.err != nil {
			err = fmt.Errorf("apply updates: %w", tx.err)
		}
	}, origin, false)
	return skipped, err
}
