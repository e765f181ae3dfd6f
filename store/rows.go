package store

// rowArena copies the rows of a long log into a few large chunks instead of one allocation per
// row: a load of 100,000 small updates then costs a few dozen allocations (and the garbage
// collector as many objects) instead of 100,000. Rows larger than a quarter chunk (a checkpoint,
// a big paste) get their own allocation, so that a chunk never wastes more than that.
type rowArena struct {
	chunk []byte
}

const arenaChunk = 256 << 10

// copy returns a copy of b that the caller may keep: it never aliases a driver's buffer.
func (a *rowArena) copy(b []byte) []byte {
	if len(b) == 0 {
		return []byte{}
	}
	if len(b) > arenaChunk/4 {
		return append(make([]byte, 0, len(b)), b...)
	}
	if len(a.chunk)+len(b) > cap(a.chunk) {
		a.chunk = make([]byte, 0, arenaChunk)
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	// Full slice expression: an append to one row must not run into the next.
	return a.chunk[start:len(a.chunk):len(a.chunk)]
}

// logCap is the capacity to give the slice of updates of a load: the rows between the
// checkpoint and the document's last seq (seqs are gap-free), bounded so that a wrong count
// costs little.
func logCap(lastSeq, cpSeq int64) int {
	n := lastSeq - cpSeq
	if n < 0 {
		return 0
	}
	return int(min(n, 1<<20))
}
