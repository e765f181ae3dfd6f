package crdt

// encodedSizeHint is a low estimate of the V1 encoding of what store has beyond sv: the text of
// string items plus the fewest bytes a struct takes. The encoder is sized with it up front, so
// that the whole-state encode of a big document (a fresh client's first sync, a checkpoint)
// allocates its buffer about once: grown by append, a 50 MB update leaves some 200 MB of
// outgrown buffers behind, and the heap peaks at several times the document before they are
// collected. Low rather than high: a low estimate costs one last growth, a high one unused
// capacity in an update that may be kept (a join cache).
func encodedSizeHint(store *structStore, sv map[uint64]int) int {
	const (
		perItem  = 5 // info, an origin (client and clock) and a content length
		perOther = 2 // a GC or Skip: info and a length
	)
	n := 0
	for client, structs := range store.clients {
		from := sv[client]
		for i := len(structs) - 1; i >= 0; i-- {
			st := structs[i]
			if structEnd(st) <= from {
				break // sorted by clock: everything before is known to the peer
			}
			it, ok := st.(*Item)
			if !ok {
				n += perOther
				continue
			}
			n += perItem
			if c, ok := it.Content.(*ContentString); ok {
				n += len(c.Str)
			}
		}
	}
	return n
}
