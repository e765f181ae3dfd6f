package shareddoc

import (
	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/encoding"
	"github.com/ysync/ysync/crdt/syncproto"
)

// ReasonTooLarge is the reason of the permission-denied auth message a peer gets when its update
// would take the document past Config.MaxDocBytes.
const ReasonTooLarge = "document too large"

// budget is a document's account of the bytes it holds that the store does not have yet, and of
// its own encoded size. Owned by the actor goroutine.
//
// Pending bytes bound what a store outage can cost in memory: updates keep being applied and
// relayed while the store retries, until the document (or the process) holds its budget of
// unstored bytes; then a peer's new update is held, with everything the peer sends after it, and
// the peer paused until the store catches up, or closed with CloseBacklog after
// Config.MaxBacklogWait so that it reconnects later and sends the edit again (backlog.go).
// Nothing acknowledged is ever dropped: an update is only echoed to its sender once stored.
//
// The size is an upper estimate (the last measured encoding plus every update applied since)
// measured again, by encoding the whole document, only when the estimate would pass the bound.
type budget struct {
	pending   int64 // bytes in pending + storing; its share of Stats.PendingBytes
	size      int64 // estimated encoded size
	sizeExact bool  // size was measured and nothing was applied since
	measured  bool  // size has been measured at least once
}

// enqueue queues an applied update for the store and accounts for it.
func (d *Doc) enqueue(u pendingUpdate) {
	d.pending = append(d.pending, u)
	n := int64(len(u.update))
	d.budget.pending += n
	d.r.stats.PendingBytes.Add(n)
	d.budget.size += n
	d.budget.sizeExact = false
}

// recountPending recomputes the pending bytes after a store result (stored updates left the
// queues; failed ones went back; cancelled ones were dropped).
func (d *Doc) recountPending() {
	var n int64
	for _, u := range d.pending {
		n += int64(len(u.update))
	}
	for _, u := range d.storing {
		n += int64(len(u.update))
	}
	d.r.stats.PendingBytes.Add(n - d.budget.pending)
	d.budget.pending = n
}

// releaseBudget gives the document's share of the process's pending bytes back when it ends.
func (d *Doc) releaseBudget() {
	d.r.stats.PendingBytes.Add(-d.budget.pending)
	d.budget.pending = 0
}

// admitUpdate decides, before applying it, whether a peer's update may be applied. A refused
// update is not applied and the peer is told: permission-denied for a document over its size;
// for a store that is behind the update is held and the peer paused (holdUpdate).
func (d *Doc) admitUpdate(p *peer, update []byte) bool {
	n := int64(len(update))
	if n <= int64(len(emptyUpdate)) {
		return true
	}
	if d.overPendingBudget(n) && d.bringsNew(update) {
		d.holdUpdate(p, update) // held until the store catches up, or closed (backlog.go)
		return false
	}
	if lim := d.r.cfg.MaxDocBytes; lim > 0 && (!d.budget.measured || d.budget.size+n > lim) {
		// Measured once after load (the stored state counts too), then only near the bound.
		if !d.budget.sizeExact || !d.budget.measured {
			d.measure()
		}
		if d.budget.size+n > lim && d.bringsNew(update) {
			d.r.stats.TooLargeRefusals.Add(1)
			d.log.Info("update refused: document too large", "session", p.info.ID, "bytes", d.budget.size, "update_bytes", n, "limit", lim)
			if a, ok := p.p.(Acker); ok {
				d.ack(p, a, false)
			} else {
				d.sendTo(p, syncproto.EncodePermissionDenied(ReasonTooLarge))
			}
			return false
		}
	}
	return true
}

func (d *Doc) overPendingBudget(n int64) bool {
	if lim := d.r.cfg.MaxPendingBytesPerDoc; lim > 0 && d.budget.pending > 0 && d.budget.pending+n > lim {
		return true
	}
	total := d.r.stats.PendingBytes.Load()
	lim := d.r.cfg.MaxPendingBytes
	return lim > 0 && total > 0 && total+n > lim
}

// measure encodes the document to learn its exact size.
func (d *Doc) measure() {
	state, err := safeDiff(d.ydoc, nil)
	if err != nil {
		return // keep the estimate
	}
	d.budget.size = int64(len(state))
	d.budget.sizeExact = true
	d.budget.measured = true
}

// bringsNew reports whether update may change the document: it has structs the document does not
// have yet, or it is a delete set (small; whether it deletes anything new would take applying
// it). Only consulted when a budget is exceeded, so that a reconnecting client's SyncStep2 with
// nothing new is not refused for a backlog it does not add to.
func (d *Doc) bringsNew(update []byte) (yes bool) {
	dec := encoding.NewDecoder(update)
	if dec.ReadVarUint() == 0 && dec.Err() == nil {
		return true // only a delete set
	}
	defer func() {
		if recover() != nil {
			yes = true
		}
	}()
	_, to, err := crdt.ParseUpdateMeta(update)
	if err != nil {
		return true // refused or rejected either way
	}
	sv, err := crdt.DecodeStateVector(crdt.EncodeStateVector(d.ydoc))
	if err != nil {
		return true
	}
	for client, clock := range to {
		if clock > sv[client] {
			return true
		}
	}
	return false
}
