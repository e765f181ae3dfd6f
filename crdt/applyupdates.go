package crdt

import (
	"cmp"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/ysync/ysync/crdt/encoding"
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
// A log of typing is mostly updates of one inserted string each: those are read without
// allocating, and a string that continues the one read just before it (the same client, the
// next clock, inserted right after it with the same right origin) is appended to it, so that a
// run of typing is integrated as the one item the transaction's cleanup would have merged it
// into anyway (logReader.fast).
//
// A malformed update is left out — the others still apply — and reported in skipped. err is a
// failure of the integration itself; doc may then hold part of the updates, as with
// ApplyUpdate.
func ApplyUpdates(doc *Doc, updates [][]byte, origin any) (skipped []SkippedUpdate, err error) {
	return applyUpdates(doc, updates, origin, true)
}

// applyUpdates is ApplyUpdates; without fast every update is read by the general reader (tests
// compare the two).
func applyUpdates(doc *Doc, updates [][]byte, origin any, fast bool) (skipped []SkippedUpdate, err error) {
	r := newLogReader()
	for i, u := range updates {
		if !fast || !r.fast(u) {
			if rerr := r.general(u); rerr != nil {
				skipped = append(skipped, SkippedUpdate{Index: i, Err: rerr})
			}
		}
	}
	refs, ds := r.finish()
	r = nil
	doc.transact(func(tx *Transaction) {
		tx.Local = false
		doc.applyRefs(tx, refs, ds)
		if tx.err != nil {
			err = fmt.Errorf("apply updates: %w", tx.err)
		}
	}, origin, false)
	return skipped, err
}

// logReader collects the structs and deleted ranges of many updates (ApplyUpdates).
type logReader struct {
	refs     map[uint64][]abstractStruct // per client, in the order read
	unsorted map[uint64]bool             // clients whose list is not in clock order
	ds       *DeleteSet                  // every update's deleted ranges
	runs     map[uint64]*textRun         // per client, the string item last in its list
	scratch  map[uint64][]abstractStruct // one update's structs (general), reused
	raw      *encoding.Decoder           // fast's decoder, reset for every update
	dels     []rawDel                    // one update's deleted ranges (fast), reused
}

// textRun is a string item read by fast, last in its client's list, that the next strings may
// extend: its text is kept in buf until the run ends (close).
type textRun struct {
	it  *Item
	cs  *ContentString
	buf []byte
}

type rawDel struct {
	client       uint64
	clock, count int
}

func newLogReader() *logReader {
	return &logReader{
		refs:     make(map[uint64][]abstractStruct),
		unsorted: make(map[uint64]bool),
		ds:       newDeleteSet(),
		runs:     make(map[uint64]*textRun),
		scratch:  make(map[uint64][]abstractStruct),
		raw:      encoding.NewDecoder(nil),
	}
}

// general reads u with the general update reader and adds what it holds; a malformed update
// adds nothing.
func (r *logReader) general(u []byte) error {
	clear(r.scratch)
	structs, ds, err := readUpdateInto(u, false, r.scratch)
	if err != nil {
		return err
	}
	for client, list := range structs {
		r.closeRun(client)
		prev := r.refs[client]
		if len(prev) > 0 && list[0].id().Clock < prev[len(prev)-1].id().Clock {
			r.unsorted[client] = true
		}
		r.refs[client] = append(prev, list...)
	}
	for client, dels := range ds.clients {
		r.ds.clients[client] = append(r.ds.clients[client], dels...)
	}
	return nil
}

// fast reads u if it has the shape most of a typing log has: no structs, or one struct, a
// string item with an origin or a right origin (so no parent written), and any delete set; the
// string valid UTF-8 and not empty. It reports false, having added nothing, for any other
// update, well-formed or not (general then reads it, and reports it if malformed); what it adds
// for an update it takes is what general would.
func (r *logReader) fast(u []byte) bool {
	d := r.raw
	d.Reset(u)
	numClients := d.ReadVarUint()
	if numClients > 1 {
		return false
	}
	var (
		client, clock       uint64
		info                uint8
		origin, rightOrigin ID
		text                []byte
		units               int
	)
	if numClients == 1 {
		n := d.ReadVarUint()
		client = d.ReadVarUint()
		clock = d.ReadVarUint()
		info = d.ReadUint8()
		if n != 1 || info&0x1f != refString || info&0xc0 == 0 {
			return false
		}
		if info&0x80 != 0 {
			origin = ID{d.ReadVarUint(), int(d.ReadVarUint())}
		}
		if info&0x40 != 0 {
			rightOrigin = ID{d.ReadVarUint(), int(d.ReadVarUint())}
		}
		text = d.ReadVarUint8Array()
		if d.Err() != nil || len(text) == 0 || !utf8.Valid(text) {
			return false
		}
		units = utf16LenValid(text)
		if clock+uint64(units) > 1<<53 {
			return false
		}
	}
	// The delete set, checked as readDeleteSet checks it.
	r.dels = r.dels[:0]
	numDs := d.ReadVarUint()
	for i := uint64(0); i < numDs && d.Err() == nil; i++ {
		dsClient := d.ReadVarUint()
		n := d.ReadVarUint()
		if d.Err() != nil || n > uint64(d.Remaining()+1)*64 {
			return false
		}
		for j := uint64(0); j < n && d.Err() == nil; j++ {
			c, l := d.ReadVarUint(), d.ReadVarUint()
			if c > 1<<53 || l > 1<<53 {
				return false
			}
			if l > 0 {
				r.dels = append(r.dels, rawDel{dsClient, int(c), int(l)})
			}
		}
	}
	if d.Err() != nil {
		return false
	}
	if numClients == 1 {
		r.addString(client, int(clock), info, origin, rightOrigin, text, units)
	}
	for _, del := range r.dels {
		r.ds.add(del.client, del.clock, del.count)
	}
	return true
}

// addString adds a string item read by fast: appended to the run it continues, or as a new item
// (the run then ends and this one starts).
func (r *logReader) addString(client uint64, clock int, info uint8, origin, rightOrigin ID, text []byte, units int) {
	hasOrigin, hasRight := info&0x80 != 0, info&0x40 != 0
	run := r.runs[client]
	if run != nil && run.it != nil {
		it := run.it
		end := it.ID.Clock + it.Length
		if clock == end && hasOrigin && origin == (ID{client, end - 1}) &&
			sameOptID(it.rightOrigin, it.hasRightOrigin(), rightOrigin, hasRight) {
			// Typed right after the run, before what the run was typed before: integrated on its
			// own it would land right after the run and be merged into it.
			run.buf = append(run.buf, text...)
			it.Length += units
			run.cs.n += units
			return
		}
		r.closeRun(client)
	}
	if run == nil {
		run = &textRun{}
		r.runs[client] = run
	}
	it := &Item{ID: ID{client, clock}}
	it.setOrigin(origin, hasOrigin)
	it.setRightOrigin(rightOrigin, hasRight)
	run.cs = &ContentString{n: units}
	it.Content = run.cs
	it.Length = units
	it.info |= infoCountable
	run.it = it
	run.buf = append(run.buf[:0], text...)
	prev := r.refs[client]
	if len(prev) > 0 && clock < prev[len(prev)-1].id().Clock {
		r.unsorted[client] = true
	}
	r.refs[client] = append(prev, it)
}

// closeRun ends the client's run: its item gets its text.
func (r *logReader) closeRun(client uint64) {
	if run := r.runs[client]; run != nil && run.it != nil {
		run.cs.Str = string(run.buf)
		run.it, run.cs = nil, nil
	}
}

// finish ends the runs and returns the structs, per client in clock order, and the delete set,
// sorted and merged.
func (r *logReader) finish() (map[uint64][]abstractStruct, *DeleteSet) {
	for client := range r.runs {
		r.closeRun(client)
	}
	for client := range r.unsorted {
		// Stable: of structs starting at the same clock, the first one read is integrated and
		// the others are skipped or sliced, as when applied one by one.
		slices.SortStableFunc(r.refs[client], func(a, b abstractStruct) int { return cmp.Compare(a.id().Clock, b.id().Clock) })
	}
	r.ds.sortAndMerge()
	return r.refs, r.ds
}

// utf16LenValid is the length in UTF-16 units of valid UTF-8: a unit per rune, two for a rune
// beyond the BMP (the ones whose first byte is 0xF0 or above).
func utf16LenValid(b []byte) int {
	n := 0
	for _, c := range b {
		if c&0xc0 != 0x80 {
			n++
		}
		if c >= 0xf0 {
			n++
		}
	}
	return n
}
