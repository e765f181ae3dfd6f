package crdt

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/ysync/ysync/crdt/encoding"
)

// ErrMalformedUpdate wraps every decoding failure of an update or state vector.
var ErrMalformedUpdate = errors.New("crdt: malformed update")

type pendingStructs struct {
	// missing is, per client, the lowest clock some pending struct waits for.
	missing map[uint64]int
	refs    map[uint64][]abstractStruct
}

// The memory an update may make the decoder hold is bounded by its length: structs are charged
// what they keep on the heap (structCost), and an update of n bytes may spend
// n*maxStructBytesPerByte + structBytesBase. Every struct of a V1 update takes at least two bytes
// (info and a length) and an item at least four (info, origin client and clock, content), so the
// densest V1 update, a chain of nested types, costs 4 bytes of input for ~340 bytes of heap
// (~85 per byte): a V1 update is never refused by this bound. V2's run-length columns can repeat
// a struct for free (a chain of 100k nested arrays encodes in 39 bytes), so without the bound a
// 16 MiB V2 update could declare a billion structs; with it, V2 costs at most what the densest V1
// does. The base lets small V2 updates carry a few thousand free structs.
const (
	maxStructBytesPerByte = 128
	structBytesBase       = 1 << 20
	// minStructCost is what the cheapest struct costs: a GC (24 bytes), its interface slot
	// (16), rounded up. It bounds a declared struct count before any struct is read.
	minStructCost = 48
)

// structBudget is the heap the structs of an update of updateLen bytes may take.
func structBudget(updateLen int) int { return updateLen*maxStructBytesPerByte + structBytesBase }

// structCost estimates the heap a decoded struct holds: the struct, its slot in a list, its
// content and, for a nested type, the type and its search markers.
func structCost(st abstractStruct) int {
	it, ok := st.(*Item)
	if !ok {
		return minStructCost
	}
	cost := 160 // Item (128), list slot (16), content header
	switch c := it.Content.(type) {
	case *ContentType:
		cost += 176 // AbstractType (128), search markers (32), ContentType
	case *ContentString:
		cost += len(c.Str)
	case *ContentBinary:
		cost += len(c.Data)
	case *ContentAny:
		cost += 16 * len(c.Arr)
	case *ContentJSON:
		cost += 16 * len(c.Arr)
	}
	return cost
}

// readClientsStructRefs parses the struct section of an update without touching the document.
// A declared count is checked against the budget and never allocated beyond what the update's
// length justifies. Runs of GC structs are merged as they are read (integrating them together
// or one by one gives the same store), so a V2 column repeating a GC costs nothing.
func readClientsStructRefs(dec encoding.UpdateDecoder, updateLen int) (map[uint64][]abstractStruct, error) {
	return readClientsStructRefsInto(dec, updateLen, make(map[uint64][]abstractStruct))
}

// readClientsStructRefsInto is readClientsStructRefs filling refs (empty), so that a caller
// reading many updates (ApplyUpdates) reuses one map.
func readClientsStructRefsInto(dec encoding.UpdateDecoder, updateLen int, refs map[uint64][]abstractStruct) (map[uint64][]abstractStruct, error) {
	rest := dec.RestDecoder()
	budget := structBudget(updateLen)
	// Lists are sized up front from one allowance for the whole update: a V1 struct takes at
	// least two bytes, so a V1 update never holds more than updateLen/2 of them and its lists
	// are allocated exactly once; counts beyond the allowance (hostile, or V2's free repeats)
	// grow by append as structs are actually read.
	reserve := uint64(updateLen/2 + 1)
	numClients := rest.ReadVarUint()
	for i := uint64(0); i < numClients && dec.Err() == nil; i++ {
		n := rest.ReadVarUint()
		client := dec.ReadClient()
		clock := int(rest.ReadVarUint())
		if dec.Err() != nil {
			break
		}
		if n > uint64(budget/minStructCost) {
			return nil, fmt.Errorf("%w: %d structs in %d bytes", ErrMalformedUpdate, n, updateLen)
		}
		c := min(n, reserve)
		reserve -= c
		list := make([]abstractStruct, 0, c)
		for j := uint64(0); j < n; j++ {
			info := dec.ReadInfo()
			if dec.Err() != nil {
				break
			}
			var st abstractStruct
			switch info & 0x1f {
			case refGC:
				st = &GC{ID: ID{client, clock}, Length: int(dec.ReadLen())}
			case refSkip:
				st = &Skip{ID: ID{client, clock}, Length: int(rest.ReadVarUint())}
			default:
				it := readLazyItem(dec, ID{client, clock}, info)
				if it == nil {
					break
				}
				st = it
			}
			if err := dec.Err(); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrMalformedUpdate, err)
			}
			if st.length() <= 0 {
				return nil, fmt.Errorf("%w: empty struct at %v", ErrMalformedUpdate, st.id())
			}
			clock += st.length()
			if clock > 1<<53 {
				return nil, fmt.Errorf("%w: clock overflow", ErrMalformedUpdate)
			}
			if g, ok := st.(*GC); ok && len(list) > 0 {
				if last, ok := list[len(list)-1].(*GC); ok {
					last.Length += g.Length
					continue
				}
			}
			if budget -= structCost(st); budget < 0 {
				return nil, fmt.Errorf("%w: update of %d bytes expands beyond %d bytes of structs", ErrMalformedUpdate, updateLen, structBudget(updateLen))
			}
			list = append(list, st)
		}
		if len(list) > 0 {
			// A client listed twice: keep both runs, in clock order.
			refs[client] = mergeRefLists(refs[client], list)
		}
	}
	if err := dec.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedUpdate, err)
	}
	return refs, nil
}

// mergeRefLists combines two clock-ordered struct lists of one client.
func mergeRefLists(a, b []abstractStruct) []abstractStruct {
	if len(a) == 0 {
		return b
	}
	out := append(a, b...)
	slices.SortStableFunc(out, func(x, y abstractStruct) int { return cmp.Compare(x.id().Clock, y.id().Clock) })
	// Drop exact duplicates (the same update delivered twice).
	j := 1
	for i := 1; i < len(out); i++ {
		p, c := out[j-1], out[i]
		if p.id() == c.id() && p.length() == c.length() {
			continue
		}
		out[j] = c
		j++
	}
	return out[:j]
}

type structRefs struct {
	i    int
	refs []abstractStruct
}

// integrateStructs integrates as many refs as their dependencies allow and returns the rest.
func integrateStructs(tx *Transaction, store *structStore, clientRefs map[uint64]*structRefs) *pendingStructs {
	ids := make([]uint64, 0, len(clientRefs))
	for c := range clientRefs {
		ids = append(ids, c)
	}
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	next := func() *structRefs {
		for len(ids) > 0 {
			t := clientRefs[ids[len(ids)-1]]
			if t != nil && t.i < len(t.refs) {
				return t
			}
			ids = ids[:len(ids)-1]
		}
		return nil
	}
	cur := next()
	if cur == nil {
		return nil
	}
	var stack []abstractStruct
	// rest and missingSV stay nil unless something cannot be applied: the common case.
	var rest map[uint64][]abstractStruct
	var missingSV map[uint64]int
	updateMissing := func(client uint64, clock int) {
		if missingSV == nil {
			missingSV = make(map[uint64]int)
		}
		if m, ok := missingSV[client]; !ok || m > clock {
			missingSV[client] = clock
		}
	}
	state := make(map[uint64]int, len(ids))
	addStackToRest := func() {
		if rest == nil {
			rest = make(map[uint64][]abstractStruct)
		}
		for _, st := range stack {
			client := st.id().Client
			if inapplicable, ok := clientRefs[client]; ok {
				// Step back: the struct we failed on was already taken from the list.
				inapplicable.i--
				rest[client] = inapplicable.refs[inapplicable.i:]
				delete(clientRefs, client)
				inapplicable.i = 0
				inapplicable.refs = nil
			} else if _, ok := rest[client]; !ok {
				rest[client] = []abstractStruct{st}
			}
			ids = slices.DeleteFunc(ids, func(c uint64) bool { return c == client })
		}
		stack = stack[:0]
	}
	head := cur.refs[cur.i]
	cur.i++
	for {
		if _, skip := head.(*Skip); !skip {
			hid := head.id()
			local, ok := state[hid.Client]
			if !ok {
				local = store.getState(hid.Client)
				state[hid.Client] = local
			}
			offset := local - hid.Clock
			if offset < 0 {
				// Structs of the same client are missing.
				stack = append(stack, head)
				updateMissing(hid.Client, hid.Clock-1)
				addStackToRest()
			} else {
				var missing uint64
				isMissing := false
				if it, ok := head.(*Item); ok {
					missing, isMissing = it.getMissing(tx, store)
				}
				if isMissing {
					stack = append(stack, head)
					sr := clientRefs[missing]
					if sr == nil || sr.i == len(sr.refs) {
						// Depends on an update we have not received yet.
						updateMissing(missing, store.getState(missing))
						addStackToRest()
					} else {
						head = sr.refs[sr.i]
						sr.i++
						continue
					}
				} else if offset == 0 || offset < head.length() {
					switch s := head.(type) {
					case *Item:
						s.integrate(tx, offset)
					case *GC:
						s.integrate(tx, offset)
					}
					state[hid.Client] = head.id().Clock + head.length()
				}
			}
		}
		switch {
		case len(stack) > 0:
			head = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
		case cur != nil && cur.i < len(cur.refs):
			head = cur.refs[cur.i]
			cur.i++
		default:
			cur = next()
			if cur == nil {
				if len(rest) > 0 {
					return &pendingStructs{missing: missingSV, refs: rest}
				}
				return nil
			}
			head = cur.refs[cur.i]
			cur.i++
		}
	}
}

func toStructRefs(refs map[uint64][]abstractStruct) map[uint64]*structRefs {
	out := make(map[uint64]*structRefs, len(refs))
	for c, r := range refs {
		out[c] = &structRefs{refs: r}
	}
	return out
}

// applyRefs integrates parsed structs and deletions, keeping what cannot be applied yet as
// pending, and retries pending structs whose dependencies arrived.
func (d *Doc) applyRefs(tx *Transaction, refs map[uint64][]abstractStruct, ds *DeleteSet) {
	store := d.store
	for {
		rest := integrateStructs(tx, store, toStructRefs(refs))
		retry := false
		if p := store.pending; p != nil {
			for client, clock := range p.missing {
				if clock < store.getState(client) {
					retry = true
					break
				}
			}
			if rest != nil {
				for client, clock := range rest.missing {
					if m, ok := p.missing[client]; !ok || m > clock {
						p.missing[client] = clock
					}
				}
				for client, list := range rest.refs {
					p.refs[client] = mergeRefLists(p.refs[client], list)
				}
			}
		} else {
			store.pending = rest
		}
		if ds != nil {
			dsRest := ds.apply(tx)
			if store.pendingDs != nil {
				dsRest2 := store.pendingDs.apply(tx)
				switch {
				case dsRest != nil && dsRest2 != nil:
					store.pendingDs = mergeDeleteSets(dsRest, dsRest2)
				case dsRest != nil:
					store.pendingDs = dsRest
				default:
					store.pendingDs = dsRest2
				}
			} else {
				store.pendingDs = dsRest
			}
			if store.pendingDs != nil {
				store.pendingDs.sortAndMerge()
			}
		}
		if !retry {
			return
		}
		p := store.pending
		store.pending = nil
		refs = p.refs
		ds = newDeleteSet()
	}
}

// ApplyUpdate applies a V1 update to doc. Malformed input returns an error wrapping
// ErrMalformedUpdate and leaves the document unchanged. Updates whose dependencies are missing are
// kept and applied once the dependencies arrive.
func ApplyUpdate(doc *Doc, update []byte, origin any) error {
	return doc.applyUpdate(update, origin, false)
}

// ApplyUpdateV2 applies a V2 update to doc.
func ApplyUpdateV2(doc *Doc, update []byte, origin any) error {
	return doc.applyUpdate(update, origin, true)
}

func newUpdateDecoder(update []byte, v2 bool) encoding.UpdateDecoder {
	if v2 {
		return encoding.NewUpdateDecoderV2(update)
	}
	return encoding.NewUpdateDecoderV1(update)
}

func readUpdate(update []byte, v2 bool) (map[uint64][]abstractStruct, *DeleteSet, error) {
	return readUpdateInto(update, v2, make(map[uint64][]abstractStruct))
}

// readUpdateInto is readUpdate filling refs (empty) with the structs.
func readUpdateInto(update []byte, v2 bool, refs map[uint64][]abstractStruct) (map[uint64][]abstractStruct, *DeleteSet, error) {
	dec := newUpdateDecoder(update, v2)
	if err := dec.Err(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformedUpdate, err)
	}
	refs, err := readClientsStructRefsInto(dec, len(update), refs)
	if err != nil {
		return nil, nil, err
	}
	ds := readDeleteSet(dec)
	if err := dec.Err(); err != nil {
		return nil, nil, fmt.Errorf("%w: delete set: %w", ErrMalformedUpdate, err)
	}
	ds.sortAndMerge()
	return refs, ds, nil
}

func (d *Doc) applyUpdate(update []byte, origin any, v2 bool) error {
	refs, ds, err := readUpdate(update, v2)
	if err != nil {
		return err
	}
	var txErr error
	d.transact(func(tx *Transaction) {
		tx.Local = false
		d.applyRefs(tx, refs, ds)
		txErr = tx.err
	}, origin, false)
	return txErr
}

// writeClientsStructs writes every struct the store has beyond the state vector sv, highest
// client first (as Yjs does).
func writeClientsStructs(enc encoding.UpdateEncoder, store *structStore, sv map[uint64]int) {
	type entry struct {
		client uint64
		clock  int
	}
	var entries []entry
	for client, clock := range sv {
		if store.getState(client) > clock {
			entries = append(entries, entry{client, clock})
		}
	}
	for client, structs := range store.clients {
		if _, ok := sv[client]; !ok && len(structs) > 0 {
			entries = append(entries, entry{client, 0})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(b.client, a.client) })
	rest := enc.RestEncoder()
	rest.WriteVarUint(uint64(len(entries)))
	for _, e := range entries {
		writeStructs(enc, store.clients[e.client], e.client, e.clock)
	}
}

func writeStructs(enc encoding.UpdateEncoder, structs []abstractStruct, client uint64, clock int) {
	clock = max(clock, structs[0].id().Clock)
	start := findIndexSS(structs, clock)
	rest := enc.RestEncoder()
	rest.WriteVarUint(uint64(len(structs) - start))
	enc.WriteClient(client)
	rest.WriteVarUint(uint64(clock))
	first := structs[start]
	first.write(enc, clock-first.id().Clock)
	for _, st := range structs[start+1:] {
		st.write(enc, 0)
	}
}

// DecodeStateVector parses an encoded state vector.
func DecodeStateVector(sv []byte) (map[uint64]int, error) { return decodeStateVector(sv, nil) }

// decodeStateVector parses an encoded state vector, keeping only the clients keep accepts (nil:
// all). The whole input is validated either way. Entries take at least two bytes each, and the map
// grows as they are read: a count claiming millions of entries allocates nothing, and a peer's
// state vector full of clients the reader does not know costs the reader nothing either.
func decodeStateVector(sv []byte, keep func(client uint64) bool) (map[uint64]int, error) {
	dec := encoding.NewDecoder(sv)
	n := dec.ReadVarUint()
	if n > uint64(dec.Remaining()/2) {
		return nil, fmt.Errorf("%w: state vector declares %d entries in %d bytes", ErrMalformedUpdate, n, len(sv))
	}
	out := make(map[uint64]int, min(n, 64))
	for i := uint64(0); i < n && dec.Err() == nil; i++ {
		client := dec.ReadVarUint()
		clock := dec.ReadVarUint()
		if keep == nil || keep(client) {
			out[client] = int(clock)
		}
	}
	if err := dec.Err(); err != nil {
		return nil, fmt.Errorf("%w: state vector: %w", ErrMalformedUpdate, err)
	}
	return out, nil
}

// EncodeStateVectorFromMap encodes a state vector, highest client first.
func EncodeStateVectorFromMap(sv map[uint64]int) []byte {
	enc := encoding.NewEncoder()
	enc.WriteVarUint(uint64(len(sv)))
	for _, client := range sortedClientsDesc(sv) {
		enc.WriteVarUint(client)
		enc.WriteVarUint(uint64(sv[client]))
	}
	return enc.Bytes()
}

// EncodeStateVector returns the document's encoded state vector.
func EncodeStateVector(doc *Doc) []byte { return EncodeStateVectorFromMap(doc.store.stateVector()) }

// StateVector returns client → next expected clock.
func (d *Doc) StateVector() map[uint64]int { return d.store.stateVector() }

// EncodeStateAsUpdate encodes everything doc has that a peer with the encoded state vector sv
// lacks, as a V1 update. A nil or empty sv means the whole document.
func EncodeStateAsUpdate(doc *Doc, sv []byte) ([]byte, error) {
	return doc.encodeStateAsUpdate(sv, false, 0)
}

// EncodeStateAsUpdateReserved is EncodeStateAsUpdate with reserve free bytes in front of the
// update, in the same buffer: buf[:reserve] is the caller's (zeroed), buf[reserve:] the update. A
// caller that frames the update (a sync message's type and length) can then write the header in
// place instead of copying a big state into a second buffer.
func EncodeStateAsUpdateReserved(doc *Doc, sv []byte, reserve int) (buf []byte, err error) {
	return doc.encodeStateAsUpdate(sv, false, reserve)
}

// EncodeStateAsUpdateV2 is EncodeStateAsUpdate in the V2 format.
func EncodeStateAsUpdateV2(doc *Doc, sv []byte) ([]byte, error) {
	return doc.encodeStateAsUpdate(sv, true, 0)
}

func newUpdateEncoder(v2 bool) encoding.UpdateEncoder {
	if v2 {
		return encoding.NewUpdateEncoderV2()
	}
	return encoding.NewUpdateEncoderV1()
}

// encodeStateAsUpdate encodes what the document has beyond svBytes; with reserve > 0 (V1 only)
// the result starts with reserve zero bytes (EncodeStateAsUpdateReserved).
func (d *Doc) encodeStateAsUpdate(svBytes []byte, v2 bool, reserve int) ([]byte, error) {
	sv := map[uint64]int{}
	if len(svBytes) > 0 {
		// Only the clients this document has matter: the others' structs are not here to send.
		known := func(client uint64) bool { _, ok := d.store.clients[client]; return ok }
		var err error
		if sv, err = decodeStateVector(svBytes, known); err != nil {
			return nil, err
		}
	}
	enc := newUpdateEncoder(v2)
	if !v2 {
		// A sixteenth over the low estimate: the deletes, and a text's structs, fit without
		// a last growth (which would briefly hold both buffers).
		h := encodedSizeHint(d.store, sv)
		rest := enc.RestEncoder()
		rest.Grow(reserve + h + h/16 + 64)
		for range reserve {
			rest.WriteUint8(0)
		}
	}
	writeClientsStructs(enc, d.store, sv)
	deleteSetFromStore(d.store).write(enc)
	buf := enc.Bytes()
	update, err := d.withPending(buf[reserve:], svBytes, v2)
	if err != nil || reserve == 0 {
		return update, err
	}
	if len(update) > 0 && &update[0] == &buf[reserve] && len(update) == len(buf)-reserve {
		return buf, nil // no pending structs: the update is where it was encoded
	}
	// Merged with pending structs into a new buffer: copy once behind a fresh reservation.
	out := make([]byte, reserve+len(update))
	copy(out[reserve:], update)
	return out, nil
}
