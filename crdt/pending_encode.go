package crdt

import (
	"cmp"
	"slices"

	"github.com/ysync/ysync/crdt/encoding"
)

// withPending adds the document's pending structs and deletions to an encoded state, as Yjs's
// encodeStateAsUpdateV2 does, so a peer receives everything this document has seen.
//
// Yjs keeps both as V2 updates: the pending deletions as an update without structs, the pending
// structs as an update that is diffed against the target state vector. When there is anything
// pending, the three are merged; for a V1 result the pending parts are converted to V1 first.
func (d *Doc) withPending(update, sv []byte, v2 bool) ([]byte, error) {
	store := d.store
	updates := [][]byte{update}
	if ds := store.pendingDs; ds != nil && !ds.empty() {
		enc := encoding.NewUpdateEncoderV2()
		enc.RestEncoder().WriteVarUint(0) // no structs
		ds.write(enc)
		updates = append(updates, enc.Bytes())
	}
	if p := store.pending; p != nil && len(p.refs) > 0 {
		diffed, err := diffUpdate(encodePendingRefs(p.refs), sv, true)
		if err != nil {
			return nil, err
		}
		updates = append(updates, diffed)
	}
	if len(updates) == 1 {
		return update, nil
	}
	if v2 {
		return mergeUpdates(updates, true)
	}
	for i := 1; i < len(updates); i++ {
		u, err := convertUpdateFormat(updates[i], true, false)
		if err != nil {
			return nil, err
		}
		updates[i] = u
	}
	return mergeUpdates(updates, false)
}

// encodePendingRefs encodes pending structs as a V2 update without deletions. Yjs keeps them as
// the merge of the updates they came from; here every client's list is a stream of the merge,
// which cuts overlaps and marks gaps with Skips the same way. The refs are not modified.
func encodePendingRefs(refs map[uint64][]abstractStruct) []byte {
	streams := make([][]abstractStruct, 0, len(refs))
	for _, client := range sortedClientsDesc(refs) {
		list := refs[client]
		if !slices.IsSortedFunc(list, func(a, b abstractStruct) int { return cmp.Compare(a.id().Clock, b.id().Clock) }) {
			list = slices.Clone(list)
			slices.SortStableFunc(list, func(a, b abstractStruct) int { return cmp.Compare(a.id().Clock, b.id().Clock) })
		}
		streams = append(streams, list)
	}
	return encodeMerged(streams, newDeleteSet(), true)
}
