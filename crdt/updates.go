package crdt

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/ysync/ysync/crdt/encoding"
)

// Document-less update utilities: merging, diffing and converting encoded updates without loading
// them into a Doc. They follow Yjs's utils/updates.js (the lazy struct reader and writer) and
// produce the same bytes as Yjs for the same input.
//
// Unlike Yjs, which reads structs lazily from a generator, an update is parsed up front into a
// flat list of structs in wire order (parseUpdate). Writing it back in the same order through the
// same encoder calls yields identical bytes; the list is bounded by the input size.

// parsedUpdate is an update read in wire order.
type parsedUpdate struct {
	// structs in the order they appear on the wire (clients as listed, Skips included).
	structs []abstractStruct
	// ds is the delete set as read: per client in wire order, not sorted or merged. Ranges of
	// length zero are dropped (Yjs keeps them, but cannot write them in V2).
	ds *DeleteSet
}

// parseUpdate reads a whole update. Every failure wraps ErrMalformedUpdate.
func parseUpdate(update []byte, v2 bool) (*parsedUpdate, error) {
	dec := newUpdateDecoder(update, v2)
	if err := dec.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedUpdate, err)
	}
	structs, err := readStructStream(dec, len(update))
	if err != nil {
		return nil, err
	}
	ds, err := readDeleteSetRaw(dec, len(update))
	if err != nil {
		return nil, err
	}
	return &parsedUpdate{structs: structs, ds: ds}, nil
}

// readStructStream reads the struct section as Yjs's lazyStructReaderGenerator does: info 10 is a
// Skip, any other info with a content ref is an Item, the rest are GCs.
func readStructStream(dec encoding.UpdateDecoder, updateLen int) ([]abstractStruct, error) {
	rest := dec.RestDecoder()
	// V2 run-length columns can repeat values for free, so the structs are bounded by the heap
	// a multiple of the input length justifies (structBudget) rather than by the counts the
	// input declares.
	budget := structBudget(updateLen)
	var out []abstractStruct
	numClients := rest.ReadVarUint()
	for i := uint64(0); i < numClients && dec.Err() == nil; i++ {
		n := rest.ReadVarUint()
		client := dec.ReadClient()
		clock := int(rest.ReadVarUint())
		for j := uint64(0); j < n && dec.Err() == nil; j++ {
			if budget < 0 {
				return nil, fmt.Errorf("%w: update of %d bytes expands beyond %d bytes of structs", ErrMalformedUpdate, updateLen, structBudget(updateLen))
			}
			id := ID{client, clock}
			info := dec.ReadInfo()
			var st abstractStruct
			switch {
			case dec.Err() != nil:
			case info == refSkip:
				st = &Skip{ID: id, Length: int(rest.ReadVarUint())}
			case info&0x1f != 0:
				st = readLazyItem(dec, id, info)
			default:
				st = &GC{ID: id, Length: int(dec.ReadLen())}
			}
			if err := dec.Err(); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrMalformedUpdate, err)
			}
			if st == nil {
				return nil, fmt.Errorf("%w: bad struct at %v", ErrMalformedUpdate, id)
			}
			// Yjs itself never writes empty structs; rejecting them keeps every later slice in range.
			if st.length() <= 0 {
				return nil, fmt.Errorf("%w: empty struct at %v", ErrMalformedUpdate, id)
			}
			clock += st.length()
			if clock > 1<<53 {
				return nil, fmt.Errorf("%w: clock overflow", ErrMalformedUpdate)
			}
			budget -= structCost(st)
			out = append(out, st)
		}
	}
	if err := dec.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedUpdate, err)
	}
	if budget < 0 {
		return nil, fmt.Errorf("%w: update of %d bytes expands beyond %d bytes of structs", ErrMalformedUpdate, updateLen, structBudget(updateLen))
	}
	return out, nil
}

// readLazyItem reads an item the way the lazy reader does: the parent is kept as written (a root
// name or an id) and the parent sub only read when the parent is written.
func readLazyItem(dec encoding.UpdateDecoder, id ID, info uint8) *Item {
	it := &Item{ID: id}
	if info&0x80 != 0 {
		c, k := dec.ReadLeftID()
		it.setOrigin(ID{c, int(k)}, true)
	}
	if info&0x40 != 0 {
		c, k := dec.ReadRightID()
		it.setRightOrigin(ID{c, int(k)}, true)
	}
	if info&0xc0 == 0 {
		if dec.ReadParentInfo() {
			it.ref = &parentRef{key: dec.ReadString(), isKey: true}
		} else {
			c, k := dec.ReadLeftID()
			it.ref = &parentRef{id: ID{c, int(k)}}
		}
		if info&0x20 != 0 {
			it.setParentSub(dec.ReadString(), true)
		}
	}
	if dec.Err() != nil {
		return nil
	}
	c := readContent(dec, info)
	if c == nil || dec.Err() != nil {
		return nil
	}
	it.Content = c
	it.Length = c.Len()
	if c.Countable() {
		it.info |= infoCountable
	}
	return it
}

// readDeleteSetRaw reads a delete set as written (Yjs's readDeleteSet), without sorting it.
func readDeleteSetRaw(dec encoding.DSDecoder, updateLen int) (*DeleteSet, error) {
	ds := newDeleteSet()
	rest := dec.RestDecoder()
	budget := updateLen + 64
	numClients := rest.ReadVarUint()
	for i := uint64(0); i < numClients && dec.Err() == nil; i++ {
		dec.ResetDsCurVal()
		client := rest.ReadVarUint()
		n := rest.ReadVarUint()
		if n == 0 || dec.Err() != nil {
			continue
		}
		dels := ds.clients[client]
		for j := uint64(0); j < n && dec.Err() == nil; j++ {
			// Both values come from the rest decoder, so each range costs input bytes.
			if budget--; budget < 0 {
				return nil, fmt.Errorf("%w: delete set too long", ErrMalformedUpdate)
			}
			clock := dec.ReadDsClock()
			length := dec.ReadDsLen()
			if clock > 1<<53 || length > 1<<53 {
				return nil, fmt.Errorf("%w: delete set range out of bounds", ErrMalformedUpdate)
			}
			if dec.Err() == nil && length > 0 {
				dels = append(dels, deleteItem{int(clock), int(length)})
			}
		}
		if len(dels) > 0 {
			ds.clients[client] = dels
		}
	}
	if err := dec.Err(); err != nil {
		return nil, fmt.Errorf("%w: delete set: %w", ErrMalformedUpdate, err)
	}
	return ds, nil
}

// writeRawDeleteSet writes a delete set as read. The V2 format stores each range's clock as the
// distance from the previous range's end, so it cannot hold a client's ranges out of order (Yjs
// writes garbage then); such a delete set, only possible in a V1 input, is sorted and merged
// first.
func writeRawDeleteSet(enc encoding.UpdateEncoder, ds *DeleteSet, v2 bool) {
	if v2 && !deleteSetOrdered(ds) {
		ds = mergeDeleteSets(ds)
	}
	ds.write(enc)
}

// deleteSetOrdered reports whether every client's ranges are sorted and do not overlap.
func deleteSetOrdered(ds *DeleteSet) bool {
	for _, dels := range ds.clients {
		end := 0
		for _, d := range dels {
			if d.Clock < end {
				return false
			}
			end = d.Clock + d.Len
		}
	}
	return true
}

// writeOp is one struct handed to the lazy struct writer, written from offset on.
type writeOp struct {
	st     abstractStruct
	offset int
}

// lazyWriter collects structs and writes them as Yjs's LazyStructWriter does: consecutive structs
// of one client form a run (count, client, start clock, structs). Yjs buffers the rest encoder per
// run because it does not know the counts in advance; collecting the structs first and writing
// afterwards produces the same bytes.
type lazyWriter struct {
	ops []writeOp
}

func (w *lazyWriter) write(st abstractStruct, offset int) {
	w.ops = append(w.ops, writeOp{st, offset})
}

// finish writes the collected structs to enc (finishLazyStructWriting).
func (w *lazyWriter) finish(enc encoding.UpdateEncoder) {
	rest := enc.RestEncoder()
	runs := 0
	for i, op := range w.ops {
		if i == 0 || op.st.id().Client != w.ops[i-1].st.id().Client {
			runs++
		}
	}
	rest.WriteVarUint(uint64(runs))
	for i := 0; i < len(w.ops); {
		client := w.ops[i].st.id().Client
		j := i + 1
		for j < len(w.ops) && w.ops[j].st.id().Client == client {
			j++
		}
		rest.WriteVarUint(uint64(j - i))
		enc.WriteClient(client)
		rest.WriteVarUint(uint64(w.ops[i].st.id().Clock + w.ops[i].offset))
		for _, op := range w.ops[i:j] {
			op.st.write(enc, op.offset)
		}
		i = j
	}
}

func structEnd(s abstractStruct) int { return s.id().Clock + s.length() }

func isSkip(s abstractStruct) bool {
	_, ok := s.(*Skip)
	return ok
}

// sliceStruct returns the part of s from diff on (Yjs's sliceStruct). Unlike Yjs it leaves s
// untouched: item content is copied before it is split.
func sliceStruct(s abstractStruct, diff int) abstractStruct {
	id := s.id()
	switch s := s.(type) {
	case *GC:
		return &GC{ID: ID{id.Client, id.Clock + diff}, Length: s.Length - diff}
	case *Skip:
		return &Skip{ID: ID{id.Client, id.Clock + diff}, Length: s.Length - diff}
	case *Item:
		it := &Item{ID: ID{id.Client, id.Clock + diff}, ref: s.ref}
		it.setOrigin(ID{id.Client, id.Clock + diff - 1}, true)
		it.setRightOrigin(s.rightOrigin, s.hasRightOrigin())
		it.setParentSub(s.parentSub, s.hasParentSub())
		it.Content = s.Content.copyContent().Splice(diff)
		it.Length = it.Content.Len()
		if it.Content.Countable() {
			it.info |= infoCountable
		}
		return it
	}
	return s
}

// ownStruct returns a struct the merge may modify in place: GCs and Skips are copied (their
// lengths grow when neighbours are merged into them); items are never modified.
func ownStruct(s abstractStruct) abstractStruct {
	switch s := s.(type) {
	case *GC:
		return &GC{ID: s.ID, Length: s.Length}
	case *Skip:
		return &Skip{ID: s.ID, Length: s.Length}
	}
	return s
}

// lazyMergeWith is mergeWith as it behaves in the merge: GCs merge with GCs and Skips with
// Skips; items never merge because their right neighbour is not set.
func lazyMergeWith(left, right abstractStruct) bool {
	switch l := left.(type) {
	case *GC:
		if r, ok := right.(*GC); ok {
			l.Length += r.Length
			return true
		}
	case *Skip:
		if r, ok := right.(*Skip); ok {
			l.Length += r.Length
			return true
		}
	}
	return false
}

// structCursor walks one update's structs with Skips filtered out.
type structCursor struct {
	structs []abstractStruct
	i       int
	// stamp breaks ties between cursors at the same id: the one moved most recently comes
	// first (see cursorHeap).
	stamp int
}

func (c *structCursor) curr() abstractStruct {
	if c.i < len(c.structs) {
		return c.structs[c.i]
	}
	return nil
}

func (c *structCursor) next() abstractStruct {
	c.i++
	return c.curr()
}

// cursorHeap orders the cursors of a merge as Yjs does: highest client first, then lowest clock.
// Yjs re-sorts its cursor list with JavaScript's stable sort after every step, and only the
// first cursor ever moves; so among cursors at the same id the one that moved last is first
// (the moved cursor was at the front and stays in front of its equals), and cursors that never
// moved keep the order of their updates. A stamp that grows with every step, starting below
// zero in update order, gives a min-heap the same order: a merge of k updates costs log k per
// struct instead of a sort per struct.
type cursorHeap []*structCursor

func (h cursorHeap) less(a, b int) bool {
	ai, bi := h[a].curr().id(), h[b].curr().id()
	if ai.Client != bi.Client {
		return ai.Client > bi.Client
	}
	if ai.Clock != bi.Clock {
		return ai.Clock < bi.Clock
	}
	return h[a].stamp > h[b].stamp
}

func (h cursorHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// fixTop restores the order after the first cursor moved, dropping it when it is done.
func (h *cursorHeap) fixTop() {
	if (*h)[0].curr() == nil {
		last := len(*h) - 1
		(*h)[0] = (*h)[last]
		(*h)[last] = nil
		*h = (*h)[:last]
	}
	if len(*h) > 0 {
		h.down(0)
	}
}

// mergeStructStreams is the struct part of Yjs's mergeUpdatesV2. Each stream is one update's
// structs in wire order.
func mergeStructStreams(streams [][]abstractStruct, w *lazyWriter) {
	cursors := make(cursorHeap, 0, len(streams))
	for _, s := range streams {
		filtered := slices.DeleteFunc(slices.Clone(s), isSkip)
		if len(filtered) > 0 {
			cursors = append(cursors, &structCursor{structs: filtered, stamp: -1 - len(cursors)})
		}
	}
	for i := len(cursors)/2 - 1; i >= 0; i-- {
		cursors.down(i)
	}
	var currWrite abstractStruct
	for step := 0; len(cursors) > 0; step++ {
		cd := cursors[0]
		// Whatever happens below, only cd moves: put it back in order before the next step.
		cd.stamp = step
		mergeStep(cd, &currWrite, w)
		cursors.fixTop()
	}
	if currWrite != nil {
		w.write(currWrite, 0)
	}
}

// mergeStep is one round of Yjs's merge loop on the first cursor cd.
func mergeStep(cd *structCursor, currWritePtr *abstractStruct, w *lazyWriter) {
	currWrite := *currWritePtr
	defer func() { *currWritePtr = currWrite }()
	firstClient := cd.curr().id().Client
	if currWrite != nil {
		curr := cd.curr()
		iterated := false
		// Skip what was written already (higher clients are written first).
		for curr != nil && structEnd(curr) <= structEnd(currWrite) && curr.id().Client >= currWrite.id().Client {
			curr = cd.next()
			iterated = true
		}
		if curr == nil || curr.id().Client != firstClient ||
			(iterated && curr.id().Clock > structEnd(currWrite)) {
			return
		}
		if firstClient != currWrite.id().Client {
			w.write(currWrite, 0)
			currWrite = ownStruct(curr)
			cd.next()
		} else if end := structEnd(currWrite); end < curr.id().Clock {
			// A gap: fill it with a Skip.
			if skip, ok := currWrite.(*Skip); ok {
				skip.Length = structEnd(curr) - skip.ID.Clock
			} else {
				w.write(currWrite, 0)
				currWrite = &Skip{ID: ID{firstClient, end}, Length: curr.id().Clock - end}
			}
		} else {
			if diff := end - curr.id().Clock; diff > 0 {
				if skip, ok := currWrite.(*Skip); ok {
					// Prefer slicing the Skip: the other struct carries more information.
					skip.Length -= diff
				} else {
					curr = sliceStruct(curr, diff)
				}
			}
			if !lazyMergeWith(currWrite, curr) {
				w.write(currWrite, 0)
				currWrite = ownStruct(curr)
				cd.next()
			}
		}
	} else {
		currWrite = ownStruct(cd.curr())
		cd.next()
	}
	for next := cd.curr(); next != nil && next.id().Client == firstClient &&
		next.id().Clock == structEnd(currWrite) && !isSkip(next); next = cd.next() {
		w.write(currWrite, 0)
		currWrite = ownStruct(next)
	}
}

func mergeUpdates(updates [][]byte, v2 bool) ([]byte, error) {
	parsed := make([]*parsedUpdate, len(updates))
	for i, u := range updates {
		p, err := parseUpdate(u, v2)
		if err != nil {
			return nil, fmt.Errorf("update %d: %w", i, err)
		}
		parsed[i] = p
	}
	if len(updates) == 1 {
		// Yjs returns a single update unchanged.
		return bytes.Clone(updates[0]), nil
	}
	streams := make([][]abstractStruct, len(parsed))
	dss := make([]*DeleteSet, len(parsed))
	for i, p := range parsed {
		streams[i] = p.structs
		dss[i] = p.ds
	}
	return encodeMerged(streams, mergeDeleteSets(dss...), v2), nil
}

// encodeMerged merges struct streams and writes them with ds (already merged).
func encodeMerged(streams [][]abstractStruct, ds *DeleteSet, v2 bool) []byte {
	var w lazyWriter
	mergeStructStreams(streams, &w)
	enc := newUpdateEncoder(v2)
	w.finish(enc)
	ds.write(enc)
	return enc.Bytes()
}

// MergeUpdates merges V1 updates into one V1 update without loading them into a document, like
// Y.mergeUpdates. The result contains every struct and deletion of the inputs; gaps between
// structs of one client are marked with Skip structs. A single update is returned unchanged (after
// validation).
func MergeUpdates(updates [][]byte) ([]byte, error) { return mergeUpdates(updates, false) }

// MergeUpdatesV2 is MergeUpdates for V2 updates.
func MergeUpdatesV2(updates [][]byte) ([]byte, error) { return mergeUpdates(updates, true) }

// diffStructs is the struct part of Yjs's diffUpdateV2.
func diffStructs(structs []abstractStruct, state map[uint64]int, w *lazyWriter) {
	for i := 0; i < len(structs); {
		curr := structs[i]
		client := curr.id().Client
		svClock := state[client]
		if isSkip(curr) {
			// The first struct written must not be a Skip.
			i++
			continue
		}
		if structEnd(curr) > svClock {
			w.write(curr, max(svClock-curr.id().Clock, 0))
			for i++; i < len(structs) && structs[i].id().Client == client; i++ {
				w.write(structs[i], 0)
			}
		} else {
			// Read on until something new comes up.
			for i < len(structs) && structs[i].id().Client == client && structEnd(structs[i]) <= svClock {
				i++
			}
		}
	}
}

func diffUpdate(update, sv []byte, v2 bool) ([]byte, error) {
	p, err := parseUpdate(update, v2)
	if err != nil {
		return nil, err
	}
	// Only the clients of the update matter: a state vector of millions of others costs nothing.
	clients := make(map[uint64]struct{})
	for _, st := range p.structs {
		clients[st.id().Client] = struct{}{}
	}
	state := map[uint64]int{}
	if len(sv) > 0 {
		state, err = decodeStateVector(sv, func(c uint64) bool { _, ok := clients[c]; return ok })
		if err != nil {
			return nil, err
		}
	}
	var w lazyWriter
	diffStructs(p.structs, state, &w)
	enc := newUpdateEncoder(v2)
	w.finish(enc)
	writeRawDeleteSet(enc, p.ds, v2)
	return enc.Bytes(), nil
}

// DiffUpdate returns the part of a V1 update that a peer with the encoded state vector sv lacks,
// like Y.diffUpdate. The delete set is always kept whole. An empty sv stands for the empty state
// vector.
func DiffUpdate(update, sv []byte) ([]byte, error) { return diffUpdate(update, sv, false) }

// DiffUpdateV2 is DiffUpdate for V2 updates.
func DiffUpdateV2(update, sv []byte) ([]byte, error) { return diffUpdate(update, sv, true) }

func encodeStateVectorFromUpdate(update []byte, v2 bool) ([]byte, error) {
	p, err := parseUpdate(update, v2)
	if err != nil {
		return nil, err
	}
	body := encoding.NewEncoder()
	size := 0
	if len(p.structs) > 0 {
		curr := p.structs[0]
		currClient := curr.id().Client
		stopCounting := curr.id().Clock != 0 // must start at 0
		currClock := 0
		if !stopCounting {
			currClock = structEnd(curr)
		}
		for _, curr := range p.structs {
			if curr.id().Client != currClient {
				if currClock != 0 {
					size++
					body.WriteVarUint(currClient)
					body.WriteVarUint(uint64(currClock))
				}
				currClient = curr.id().Client
				currClock = 0
				stopCounting = curr.id().Clock != 0
			}
			if isSkip(curr) {
				stopCounting = true
			}
			if !stopCounting {
				currClock = structEnd(curr)
			}
		}
		if currClock != 0 {
			size++
			body.WriteVarUint(currClient)
			body.WriteVarUint(uint64(currClock))
		}
	}
	out := encoding.NewEncoder()
	out.WriteVarUint(uint64(size))
	out.WriteUint8Array(body.Bytes())
	return out.Bytes(), nil
}

// EncodeStateVectorFromUpdate computes the state vector of a V1 update, like
// Y.encodeStateVectorFromUpdate: per client, the end of the structs that start at clock 0 without
// a gap. Clients whose structs do not start at 0 are left out.
func EncodeStateVectorFromUpdate(update []byte) ([]byte, error) {
	return encodeStateVectorFromUpdate(update, false)
}

// EncodeStateVectorFromUpdateV2 is EncodeStateVectorFromUpdate for V2 updates.
func EncodeStateVectorFromUpdateV2(update []byte) ([]byte, error) {
	return encodeStateVectorFromUpdate(update, true)
}

func convertUpdateFormat(update []byte, fromV2, toV2 bool) ([]byte, error) {
	p, err := parseUpdate(update, fromV2)
	if err != nil {
		return nil, err
	}
	var w lazyWriter
	for _, st := range p.structs {
		w.write(st, 0)
	}
	enc := newUpdateEncoder(toV2)
	w.finish(enc)
	writeRawDeleteSet(enc, p.ds, toV2)
	return enc.Bytes(), nil
}

// ConvertUpdateFormatV1ToV2 re-encodes a V1 update in the V2 format.
func ConvertUpdateFormatV1ToV2(update []byte) ([]byte, error) {
	return convertUpdateFormat(update, false, true)
}

// ConvertUpdateFormatV2ToV1 re-encodes a V2 update in the V1 format.
func ConvertUpdateFormatV2ToV1(update []byte) ([]byte, error) {
	return convertUpdateFormat(update, true, false)
}

func parseUpdateMeta(update []byte, v2 bool) (from, to map[uint64]int, err error) {
	p, err := parseUpdate(update, v2)
	if err != nil {
		return nil, nil, err
	}
	from, to = map[uint64]int{}, map[uint64]int{}
	if len(p.structs) == 0 {
		return from, to, nil
	}
	currClient := p.structs[0].id().Client
	currClock := p.structs[0].id().Clock
	from[currClient] = currClock
	for _, curr := range p.structs {
		if curr.id().Client != currClient {
			to[currClient] = currClock
			from[curr.id().Client] = curr.id().Clock
			currClient = curr.id().Client
		}
		currClock = structEnd(curr)
	}
	to[currClient] = currClock
	return from, to, nil
}

// ParseUpdateMeta returns, per client, the first clock (from) and the clock after the last struct
// (to) that a V1 update covers, like Y.parseUpdateMeta. Skips count as covered.
func ParseUpdateMeta(update []byte) (from, to map[uint64]int, err error) {
	return parseUpdateMeta(update, false)
}

// ParseUpdateMetaV2 is ParseUpdateMeta for V2 updates.
func ParseUpdateMetaV2(update []byte) (from, to map[uint64]int, err error) {
	return parseUpdateMeta(update, true)
}
