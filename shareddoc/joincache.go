package shareddoc

import (
	"bytes"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
)

// joinCache holds the answers most joiners get to their SyncStep1, each encoded at most once per
// change of the document and then shared read-only by every joiner's queue: in a join storm
// (a class opening one document, a reconnect after a deploy) the state is encoded once instead of
// once per joiner, and the queues hold one buffer instead of a copy each. Owned by the actor.
//
// Which state vectors hit it: the empty one (a new client: Yjs sends the single byte 0, a
// hand-written one nothing) gets the whole state; one byte-equal to the document's own encoded
// state vector (a reconnecting client that has everything) gets the diff with no structs, which
// still carries the whole delete set and costs a walk of the store to encode. Byte equality
// is enough: Yjs and crdt both write the clients highest first, and equal bytes decode to the
// same vector, so the cached diff is the one safeDiff would compute. Any other vector is diffed
// as before.
//
// Invalidation: every way the crdt.Doc changes ends here (see changed). Live applies all go
// through Doc.apply (sessions, server ApplyUpdate, other nodes, fills), and every transaction that
// changes the document — any origin, server edits (Doc.Edit, Doc.Update) included — passes the
// want filter of the observer watchJoinCache registers on that crdt.Doc before the first frame
// is cached. A load builds a new crdt.Doc, and frames encoded from another crdt.Doc are never
// served (watched). apply invalidates
// even when the transaction reports no change, since structs or deletions that went pending
// change the encoded state without changing the transaction's before/after state; it skips only
// the empty update (no structs, no deletions), which every joining y-websocket client sends as
// its SyncStep2 and which can only change the state by retrying pending structs — and a retry
// that integrates anything is a change the observer sees.
//
// Memory: at most one whole state, one delete set and one state vector per document, and only
// while someone is attached: the cache is dropped when the last session leaves (detach), so an
// idle or unloaded document holds none. While sessions are attached and
// nobody joins, the frames stay (the whole state is about the size of the document's stored
// checkpoint); dropping them after a quiet while would need a timer per document, and the next
// change drops them anyway. The frames are not reused after invalidation: queues may still hold
// them. The SyncStep2 frames are encoded in place (safeStep2Frame): the state is not copied into
// its frame.
type joinCache struct {
	watched *crdt.Doc // the crdt.Doc the frames come from, whose observer calls changed
	full    []byte    // SyncStep2 with the whole state
	same    []byte    // SyncStep2 for a state vector equal to sv
	sv      []byte    // the document's encoded state vector
	step1   []byte    // SyncStep1 carrying sv
}

// changed drops every cached frame: the document changed (or is about to).
func (c *joinCache) changed() {
	c.full, c.same, c.sv, c.step1 = nil, nil, nil, nil
}

// watchJoinCache makes sure the document's current crdt.Doc reports its changes to the cache,
// and that nothing cached from an earlier crdt.Doc is served.
func (d *Doc) watchJoinCache() {
	c := &d.joins
	if c.watched == d.ydoc {
		return
	}
	c.changed()
	c.watched = d.ydoc
	ydoc := d.ydoc
	// The crdt core calls an observer's want filter exactly for the transactions that changed
	// the document (and only encodes their update when some filter accepts): an after-change
	// hook at the cost of a function call. It refuses every update.
	ydoc.ObserveUpdateIf(func(any) bool {
		if c.watched == ydoc {
			c.changed()
		}
		return false
	}, func([]byte, any, *crdt.Transaction) {})
}

// joinCacheVector returns the document's encoded state vector, cached until the next change.
func (d *Doc) joinCacheVector() []byte {
	d.watchJoinCache()
	c := &d.joins
	if c.sv == nil {
		c.sv = crdt.EncodeStateVector(d.ydoc)
	}
	return c.sv
}

// syncStep2For returns the SyncStep2 frame answering a SyncStep1 that carried sv: from the
// cache when sv is empty or equal to the document's own, else encoded afresh.
func (d *Doc) syncStep2For(sv []byte) ([]byte, error) {
	own := d.joinCacheVector()
	c := &d.joins
	switch {
	case len(sv) == 0 || (len(sv) == 1 && sv[0] == 0):
		if c.full == nil {
			frame, err := safeStep2Frame(d.ydoc, nil)
			if err != nil {
				return nil, err
			}
			c.full = frame
		}
		return c.full, nil
	case bytes.Equal(sv, own):
		if c.same == nil {
			frame, err := safeStep2Frame(d.ydoc, own)
			if err != nil {
				return nil, err
			}
			c.same = frame
		}
		return c.same, nil
	}
	return safeStep2Frame(d.ydoc, sv)
}

// syncStep1Frame returns the SyncStep1 frame carrying the document's state vector.
func (d *Doc) syncStep1Frame() []byte {
	sv := d.joinCacheVector()
	c := &d.joins
	if c.step1 == nil {
		c.step1 = syncproto.EncodeSyncStep1(sv)
	}
	return c.step1
}
