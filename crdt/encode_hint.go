package crdt

// encodedSizeHint is a low estimate of the V1 encoding of what store has beyond sv: the text of
// string items plus a few bytes per struct. The encoder is sized with it up front, so that the
// whole-state encode of a big document (a fresh client's first sync, a checkpoint) allocates its
// buffer about once: grown by append, a 50 MB update leaves some 200 MB of outgrown buffers
// behind, and the heap peaks at several times the document before they are collected.
func encodedSizeHint(store *structStore, sv map[uint64]int) int {
	const perStruct = 8 // info, a var-uint origin and a length, at the least
	n := 0
	for client, structs := range store.clients {
		from := sv[client]
		for i := len(structs) - 1; i >= 0; i-- {
			st := structs[i]
			if structEnd(st) <= from {
				break // sorted by clock: everything before is known to the peer
			}
			n += perStruct
			if it, ok := st.(*Item); ok {
				if c, ok := it.Content.(*ContentString); ok {
					n += len(c.Str)
				}
			}
		}
	}
	return n
}
