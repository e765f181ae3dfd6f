package crdt

import (
	"cmp"
	"slices"

	"github.com/ysync/ysync/crdt/encoding"
)

type deleteItem struct {
	Clock int
	Len   int
}

// DeleteSet records deleted ranges per client. After sortAndMerge the ranges of each client are
// sorted and do not touch or overlap.
type DeleteSet struct {
	clients map[uint64][]deleteItem
}

func newDeleteSet() *DeleteSet { return &DeleteSet{clients: make(map[uint64][]deleteItem)} }

func (ds *DeleteSet) add(client uint64, clock, length int) {
	if length <= 0 {
		return
	}
	if ds.clients == nil {
		ds.clients = make(map[uint64][]deleteItem, 1)
	}
	ds.clients[client] = append(ds.clients[client], deleteItem{clock, length})
}

func (ds *DeleteSet) empty() bool { return len(ds.clients) == 0 }

// sortAndMerge sorts each client's ranges and merges touching or overlapping ones.
func (ds *DeleteSet) sortAndMerge() {
	for client, dels := range ds.clients {
		ds.clients[client] = sortAndMergeRanges(dels)
	}
}

func sortAndMergeRanges(dels []deleteItem) []deleteItem {
	if !slices.IsSortedFunc(dels, func(a, b deleteItem) int { return cmp.Compare(a.Clock, b.Clock) }) {
		slices.SortFunc(dels, func(a, b deleteItem) int { return cmp.Compare(a.Clock, b.Clock) })
	}
	j := 1
	for i := 1; i < len(dels); i++ {
		left, right := &dels[j-1], dels[i]
		if left.Clock+left.Len >= right.Clock {
			left.Len = max(left.Len, right.Clock+right.Len-left.Clock)
		} else {
			dels[j] = right
			j++
		}
	}
	if len(dels) > 0 {
		dels = dels[:j]
	}
	return dels
}

// isDeleted reports whether id is in the (sorted and merged) delete set.
func (ds *DeleteSet) isDeleted(id ID) bool {
	dels := ds.clients[id.Client]
	i, found := slices.BinarySearchFunc(dels, id.Clock, func(d deleteItem, clock int) int {
		if clock < d.Clock {
			return 1
		}
		if clock >= d.Clock+d.Len {
			return -1
		}
		return 0
	})
	_ = i
	return found
}

// mergeDeleteSets unions delete sets into a new sorted and merged one.
func mergeDeleteSets(dss ...*DeleteSet) *DeleteSet {
	out := &DeleteSet{clients: make(map[uint64][]deleteItem)}
	for _, ds := range dss {
		for client, dels := range ds.clients {
			out.clients[client] = append(out.clients[client], dels...)
		}
	}
	out.sortAndMerge()
	return out
}

// deleteSetFromStore builds the delete set of everything deleted in the store.
func deleteSetFromStore(s *structStore) *DeleteSet {
	ds := &DeleteSet{clients: make(map[uint64][]deleteItem)}
	for client, structs := range s.clients {
		var dels []deleteItem
		for i := 0; i < len(structs); i++ {
			st := structs[i]
			if !st.deleted() {
				continue
			}
			clock := st.id().Clock
			n := st.length()
			for i+1 < len(structs) && structs[i+1].deleted() {
				i++
				n += structs[i].length()
			}
			dels = append(dels, deleteItem{clock, n})
		}
		if len(dels) > 0 {
			ds.clients[client] = dels
		}
	}
	return ds
}

// sortedClientsDesc returns the clients of m, highest first (the order Yjs writes them in).
func sortedClientsDesc[V any](m map[uint64]V) []uint64 {
	clients := make([]uint64, 0, len(m))
	for c := range m {
		clients = append(clients, c)
	}
	slices.SortFunc(clients, func(a, b uint64) int { return cmp.Compare(b, a) })
	return clients
}

func (ds *DeleteSet) write(enc encoding.DSEncoder) {
	rest := enc.RestEncoder()
	rest.WriteVarUint(uint64(len(ds.clients)))
	for _, client := range sortedClientsDesc(ds.clients) {
		dels := ds.clients[client]
		enc.ResetDsCurVal()
		rest.WriteVarUint(client)
		rest.WriteVarUint(uint64(len(dels)))
		for _, d := range dels {
			enc.WriteDsClock(uint64(d.Clock))
			enc.WriteDsLen(uint64(d.Len))
		}
	}
}

// readDeleteSet parses a delete set. Malformed input sets the decoder's error.
func readDeleteSet(dec encoding.DSDecoder) *DeleteSet {
	ds := newDeleteSet()
	rest := dec.RestDecoder()
	numClients := rest.ReadVarUint()
	for i := uint64(0); i < numClients && dec.Err() == nil; i++ {
		dec.ResetDsCurVal()
		client := rest.ReadVarUint()
		n := rest.ReadVarUint()
		if dec.Err() != nil {
			break
		}
		// Every range takes at least one byte in V1; in V2 a column may repeat, so bound by a
		// generous multiple of the input instead of trusting n.
		if n > uint64(rest.Remaining()+1)*64 {
			rest.Failf("delete set: %d ranges exceed input", n)
			break
		}
		dels := ds.clients[client]
		for j := uint64(0); j < n && dec.Err() == nil; j++ {
			clock := dec.ReadDsClock()
			length := dec.ReadDsLen()
			if clock > 1<<53 || length > 1<<53 {
				rest.Failf("delete set: range out of bounds")
				break
			}
			if length > 0 {
				dels = append(dels, deleteItem{int(clock), int(length)})
			}
		}
		if len(dels) > 0 {
			if ds.clients == nil {
				ds.clients = make(map[uint64][]deleteItem, 1)
			}
			ds.clients[client] = dels
		}
	}
	return ds
}

// apply deletes everything in ds that the store has; the ranges beyond the store's state are
// returned so they can wait for their structs.
func (ds *DeleteSet) apply(tx *Transaction) *DeleteSet {
	store := tx.doc.store
	var unapplied *DeleteSet
	for _, client := range sortedClientsDesc(ds.clients) {
		state := store.getState(client)
		for _, d := range ds.clients[client] {
			clock, end := d.Clock, d.Clock+d.Len
			if clock >= state {
				if unapplied == nil {
					unapplied = newDeleteSet()
				}
				unapplied.add(client, clock, end-clock)
				continue
			}
			if state < end {
				if unapplied == nil {
					unapplied = newDeleteSet()
				}
				unapplied.add(client, state, end-state)
			}
			structs := store.clients[client]
			index := findIndexSS(structs, clock)
			if index < 0 {
				continue
			}
			if it, ok := structs[index].(*Item); ok && !it.Deleted() && it.ID.Clock < clock {
				structs = slices.Insert(structs, index+1, abstractStruct(splitItem(tx, it, clock-it.ID.Clock)))
				store.clients[client] = structs
				index++
			}
			for index < len(structs) {
				st := structs[index]
				index++
				if st.id().Clock >= end {
					break
				}
				it, ok := st.(*Item)
				if !ok || it.Deleted() {
					continue
				}
				if end < it.ID.Clock+it.Length {
					structs = slices.Insert(structs, index, abstractStruct(splitItem(tx, it, end-it.ID.Clock)))
					store.clients[client] = structs
				}
				it.delete(tx)
			}
		}
	}
	return unapplied
}
