package shareddoc

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
)

// Tracking the contiguous prefix of the log.
//
// Several processes may append to one document's log (cluster mode, or two servers on one
// database). A document knows its prefix: the highest seq up to which it has applied every update
// of the log. Its own stored updates, updates announced by other nodes (Relay) and reads of the
// log (fills) advance it. A checkpoint covers at most the prefix, so it never deletes an update
// this process has not applied.
//
//   - seq = prefix + 1: apply, broadcast to the local sessions, advance (and absorb whatever
//     was waiting just behind);
//   - seq <= prefix: a duplicate, skipped;
//   - seq > prefix + 1: a gap. The update waits (bounded) and the missing range is read from the
//     log (LogReader.UpdatesAfter), applied in order; if compaction removed that range the
//     newest checkpoint and the tail after it are loaded (applying known state again is harmless
//     in Yjs) and only what they add is broadcast.
//
// The position check (Registry, every Config.PositionCheckInterval and on request) compares the
// prefix of each loaded document with the log's last seq, so a lost last message is found too.
//
// Messages from Redis are untrusted. Two rules keep a forged one from costing data:
//   - A checkpoint covers at most the verified prefix: every update up to it was read from the
//     log itself (load, fills) or made here. Updates applied from messages advance the prefix
//     but not the verified prefix; before checkpointing beyond it the document re-reads that
//     range from the log (a verify fill), so a forged update at seq N can never make a
//     checkpoint delete the real update N.
//   - A message claiming a seq the log does not have, by a read that started after the message
//     arrived, is dropped and counted, so a bogus seq cannot keep the document reading the log.

// Bounds of the prefix tracking.
const (
	// maxEarly bounds the updates held while a gap is being filled; beyond it they are dropped
	// and read from the log with the rest.
	maxEarly = 4096
	// fillLimit is the most updates one fill reads; a longer gap takes several.
	fillLimit = 1000
	// gapGrace is how long a gap seen in the relay's messages may stay open before the log is
	// read: messages of different nodes overtake each other by milliseconds, and the missing
	// one usually arrives meanwhile. Gaps found by the position check are read at once.
	gapGrace = 200 * time.Millisecond
)

// remoteOrigin is the transaction origin of updates from the log written by other processes:
// they are broadcast where they are applied and never stored again.
type remoteOrigin struct{}

// logPos is a document's position in its log. Owned by the actor goroutine.
type logPos struct {
	prefix   int64                 // every update with seq <= prefix is applied
	verified int64                 // <= prefix; every update up to it came from the log or from here
	own      map[int64]struct{}    // seqs > prefix + 1 of this process's stored updates
	early    map[int64]earlyUpdate // other nodes' updates > prefix + 1, waiting for the gap to fill
	known    int64                 // highest seq known to exist
	filling  bool                  // a fill is in flight
	want     bool                  // a fill is wanted once the current one (or the store batch) is back
	verify   bool                  // the next fill reads from verified, not prefix
	gen      int                   // fills started
	grace    Timer                 // armed while a gap seen in messages may still close by itself
}

// earlyUpdate is an announced update waiting behind a gap; gen is the number of fills started
// before it arrived.
type earlyUpdate struct {
	data []byte
	gen  int
}

// fillResult is the outcome of one read of the log.
type fillResult struct {
	after   int64
	gen     int  // which fill
	verify  bool // read from the verified prefix
	seqs    []int64
	updates [][]byte
	// reload: the range was compacted; checkpoint and updates are the whole stored document,
	// whose last seq is seq.
	reload     bool
	checkpoint []byte
	seq        int64
	err        error
}

type positionCmd struct{ last int64 }

func (c positionCmd) run(d *Doc) {
	if c.last > d.pos.known {
		d.pos.known = c.last
	}
	if c.last > d.pos.prefix {
		d.r.cluster.PositionCatchups.Add(1)
		d.pos.want = true
	}
}

// setPrefix moves the prefix and publishes it for the position check. trusted: the update
// at seq came from the log or from here, so the verified prefix follows when it was level.
func (d *Doc) setPrefix(seq int64, trusted bool) {
	if trusted && d.pos.verified >= d.pos.prefix {
		d.pos.verified = seq
	}
	d.pos.prefix = seq
	d.pos.known = max(d.pos.known, seq)
	d.prefixSeen.Store(seq)
}

// loadedAt sets both prefixes after reading the whole document from the store.
func (d *Doc) loadedAt(seq int64) {
	d.pos.verified = max(d.pos.verified, seq)
	d.setPrefix(max(d.pos.prefix, seq), true)
}

// ownStored records that this process's update got seq.
func (d *Doc) ownStored(seq int64) {
	switch {
	case seq <= d.pos.prefix:
		// A fill already read it from the log.
	case seq == d.pos.prefix+1:
		d.setPrefix(seq, true)
		d.absorb()
	default:
		if d.pos.own == nil {
			d.pos.own = make(map[int64]struct{})
		}
		d.pos.own[seq] = struct{}{}
		d.pos.known = max(d.pos.known, seq)
		d.gapSeen() // the seqs between were appended by someone else; their news is on its way
	}
}

// remoteUpdate takes another node's announcement that update was stored with seq.
func (d *Doc) remoteUpdate(seq int64, update []byte) {
	d.r.cluster.RemoteReceived.Add(1)
	if _, mine := d.pos.own[seq]; seq <= d.pos.prefix || mine {
		d.r.cluster.RemoteDuplicates.Add(1)
		return
	}
	if seq == d.pos.prefix+1 {
		d.applyRemote(update)
		d.r.cluster.RemoteApplied.Add(1)
		d.setPrefix(seq, false)
		d.absorb()
		return
	}
	d.pos.known = max(d.pos.known, seq)
	if _, dup := d.pos.early[seq]; dup {
		d.r.cluster.RemoteDuplicates.Add(1)
		return
	}
	d.r.cluster.GapsDetected.Add(1)
	if len(d.pos.early) < maxEarly {
		if d.pos.early == nil {
			d.pos.early = make(map[int64]earlyUpdate)
		}
		d.pos.early[seq] = earlyUpdate{data: update, gen: d.pos.gen}
	}
	d.gapSeen()
}

// gapSeen starts the grace period of a gap (once per gap).
func (d *Doc) gapSeen() {
	if d.pos.grace == nil {
		d.pos.grace = d.r.clock.NewTimer(gapGrace)
	}
}

// graceOver: the gap did not close by itself; read the log.
func (d *Doc) graceOver() {
	d.pos.grace = nil
	if d.pos.known > d.pos.prefix {
		d.pos.want = true
	}
}

// absorb advances the prefix over what is already applied (own updates) or waiting (early).
func (d *Doc) absorb() {
	for {
		next := d.pos.prefix + 1
		if _, ok := d.pos.own[next]; ok {
			delete(d.pos.own, next)
			d.setPrefix(next, true)
		} else if u, ok := d.pos.early[next]; ok {
			delete(d.pos.early, next)
			d.applyRemote(u.data)
			d.r.cluster.RemoteApplied.Add(1)
			d.setPrefix(next, false)
		} else {
			break
		}
	}
	if d.pos.known <= d.pos.prefix && d.pos.grace != nil {
		d.pos.grace.Stop() // closed by itself
		d.pos.grace = nil
	}
}

// prune forgets what the prefix now covers.
func (d *Doc) prune() {
	maps.DeleteFunc(d.pos.own, func(seq int64, _ struct{}) bool { return seq <= d.pos.prefix })
	maps.DeleteFunc(d.pos.early, func(seq int64, _ earlyUpdate) bool { return seq <= d.pos.prefix })
}

// applyRemote applies an update from the log that this process did not make and broadcasts it
// to every local session. The log has it already; it is not stored again.
func (d *Doc) applyRemote(update []byte) {
	if err := d.apply(update, remoteOrigin{}); err != nil {
		if d.corrupt {
			return
		}
		// The bytes are in the log and every node applies them alike; a client would reject
		// them too. Skip them rather than stall the document.
		d.r.cluster.RemoteBad.Add(1)
		d.log.Error("update from the log does not apply; skipped", "err", err)
		return
	}
	d.budget.size += int64(len(update))
	d.budget.sizeExact = false
	d.broadcast(syncproto.EncodeUpdate(update), nil)
}

// maybeFill starts a read of the log when a gap is known and no read is in flight. It waits for
// the store batch in flight, whose seqs may close the gap themselves.
func (d *Doc) maybeFill() {
	if !d.pos.want || d.pos.filling || len(d.storing) > 0 || d.state == stateClosed || d.r.logReader == nil {
		return
	}
	d.pos.want = false
	d.pos.filling = true
	d.pos.gen++
	d.r.cluster.Fills.Add(1)
	after, verify := d.pos.prefix, d.pos.verify && d.pos.verified < d.pos.prefix
	if verify {
		after = d.pos.verified
	}
	d.pos.verify = false
	lr, st, ctx, name, out, gen := d.r.logReader, d.r.cfg.Store, d.r.storeCtx, d.name, d.fills, d.pos.gen
	go func() {
		res := fillResult{after: after, gen: gen, verify: verify}
		res.seqs, res.updates, res.seq, res.err = lr.UpdatesAfter(ctx, name, after, fillLimit)
		if res.err == nil && res.seq > 0 {
			res.reload = true
			res.checkpoint, res.updates, res.seq, res.err = st.Load(ctx, name)
			res.seqs = nil
		}
		out <- res
	}()
}

// filled applies a read of the log.
func (d *Doc) filled(res fillResult) {
	d.pos.filling = false
	if res.err != nil {
		d.r.cluster.FillErrors.Add(1)
		d.log.Warn("reading the log to fill a gap failed; the next position check retries", "after", res.after, "err", res.err)
		return
	}
	complete := res.reload || len(res.seqs) < fillLimit
	switch {
	case res.reload:
		d.reloadFrom(res)
	case res.verify:
		d.verifyFrom(res)
	default:
		for i, seq := range res.seqs {
			if seq <= d.pos.prefix {
				continue
			}
			if seq != d.pos.prefix+1 {
				// Cannot happen with a gap-free log; read again rather than skip a seq.
				d.log.Error("log read is not contiguous", "prefix", d.pos.prefix, "seq", seq)
				d.pos.want = true
				break
			}
			if _, mine := d.pos.own[seq]; !mine {
				d.applyRemote(res.updates[i])
				if _, announced := d.pos.early[seq]; announced {
					d.r.cluster.RemoteApplied.Add(1)
				} else {
					d.r.cluster.FilledFromLog.Add(1)
				}
			}
			d.setPrefix(seq, true)
		}
	}
	if !complete {
		d.pos.want = true
	}
	d.prune()
	d.absorb()
	if complete {
		d.dropBogus(res.gen)
	}
	if d.pos.known > d.pos.prefix && d.pos.grace == nil {
		d.pos.want = true
	}
	if res.verify && d.logTooLong() {
		d.compact()
	}
}

// dropBogus forgets announced updates that a complete read of the log, started after they
// arrived, did not find: their seqs do not exist (a forged or corrupt message). known is
// recomputed from what is left, so they cannot keep the document reading the log.
func (d *Doc) dropBogus(gen int) {
	dropped := 0
	known := d.pos.prefix
	for seq, u := range d.pos.early {
		if u.gen < gen {
			delete(d.pos.early, seq)
			dropped++
			continue
		}
		known = max(known, seq)
	}
	for seq := range d.pos.own {
		known = max(known, seq)
	}
	d.pos.known = known
	if dropped > 0 {
		d.r.cluster.RemoteBad.Add(int64(dropped))
		d.log.Warn("announced updates are not in the log; dropped", "count", dropped, "prefix", d.pos.prefix)
	}
}

// verifyFrom re-applies the log from the verified prefix (the range was applied from messages)
// and sends the local sessions whatever that changed (nothing, when the messages were honest).
func (d *Doc) verifyFrom(res fillResult) {
	sv := crdt.EncodeStateVector(d.ydoc)
	for i, seq := range res.seqs {
		if seq != d.pos.verified+1 {
			d.log.Error("log read is not contiguous", "verified", d.pos.verified, "seq", seq)
			d.pos.want, d.pos.verify = true, true
			break
		}
		if err := d.apply(res.updates[i], remoteOrigin{}); err != nil {
			if d.corrupt {
				return
			}
			d.r.cluster.RemoteBad.Add(1)
			d.log.Error("stored update does not apply; skipped", "err", err)
		}
		d.pos.verified = seq
		if seq > d.pos.prefix {
			d.r.cluster.FilledFromLog.Add(1)
			d.pos.prefix = seq
			d.pos.known = max(d.pos.known, seq)
			d.prefixSeen.Store(seq)
		}
	}
	if len(res.seqs) == fillLimit {
		d.pos.want, d.pos.verify = true, true
	}
	if diff, err := crdt.EncodeStateAsUpdate(d.ydoc, sv); err == nil && !isEmptyUpdate(diff) {
		d.budget.size += int64(len(diff))
		d.budget.sizeExact = false
		d.broadcast(syncproto.EncodeUpdate(diff), nil)
	}
}

// reloadFrom applies the whole stored document (the gap was compacted away) and broadcasts only
// what it added.
func (d *Doc) reloadFrom(res fillResult) {
	d.r.cluster.FillReloads.Add(1)
	sv := crdt.EncodeStateVector(d.ydoc)
	all := res.updates
	if res.checkpoint != nil {
		all = append([][]byte{res.checkpoint}, all...)
	}
	for _, u := range all {
		if err := d.apply(u, remoteOrigin{}); err != nil {
			if d.corrupt {
				return
			}
			d.r.cluster.RemoteBad.Add(1)
			d.log.Error("stored update does not apply; skipped", "err", err)
		}
	}
	d.r.cluster.FilledFromLog.Add(int64(len(all)))
	if diff, err := crdt.EncodeStateAsUpdate(d.ydoc, sv); err == nil && !isEmptyUpdate(diff) {
		d.budget.size += int64(len(diff))
		d.budget.sizeExact = false
		d.broadcast(syncproto.EncodeUpdate(diff), nil)
	}
	d.loadedAt(res.seq)
}

// verifySync re-reads from the log, on the document's goroutine, the range the relay brought
// beyond the verified prefix, so that the final checkpoint can cover it. Only when nobody is
// served (the document is unloading). Best effort: on error the checkpoint covers less.
func (d *Doc) verifySync() {
	for d.r.logReader != nil && d.pos.verified < d.pos.prefix {
		seqs, updates, compactedTo, err := d.r.logReader.UpdatesAfter(d.r.storeCtx, d.name, d.pos.verified, fillLimit)
		if err != nil || compactedTo > 0 || len(seqs) == 0 {
			return // someone else checkpointed past us; ours would be stale anyway
		}
		d.verifyFrom(fillResult{seqs: seqs, updates: updates})
		if len(seqs) < fillLimit {
			return
		}
	}
}

func isEmptyUpdate(u []byte) bool { return len(u) == 0 || slices.Equal(u, emptyUpdate) }

// --- the registry's position check ---------------------------------------------------------

// startPositionCheck runs the periodic check when the store can be read by range.
func (r *Registry) startPositionCheck() {
	if r.logReader == nil || r.cfg.PositionCheckInterval <= 0 {
		return
	}
	stop, done := make(chan struct{}), make(chan struct{})
	r.posStop, r.posDone = stop, done
	go func() {
		defer close(done)
		t := r.clock.NewTimer(r.cfg.PositionCheckInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C():
			}
			ctx, cancel := context.WithTimeout(r.storeCtx, max(r.cfg.PositionCheckInterval, 5*time.Second))
			if err := r.CheckPositions(ctx); err != nil {
				r.log.Warn("position check failed", "err", err)
			}
			cancel()
			t.Reset(r.cfg.PositionCheckInterval)
		}
	}()
}

func (r *Registry) stopPositionCheck() {
	if r.posStop != nil {
		close(r.posStop)
		<-r.posDone
		r.posStop = nil
	}
}

// CheckPositions compares the contiguous prefix of every loaded document with the log's last seq
// and makes those behind read the missing updates. It returns once they were told (not once they
// caught up). The cluster calls it at once after the relay reconnects.
func (r *Registry) CheckPositions(ctx context.Context) error {
	if r.logReader == nil {
		return nil
	}
	r.mu.Lock()
	docs := make([]*Doc, 0, len(r.docs))
	names := make([]string, 0, len(r.docs))
	for name, d := range r.docs {
		docs = append(docs, d)
		names = append(names, name)
	}
	r.mu.Unlock()
	if len(names) == 0 {
		return nil
	}
	r.cluster.PositionChecks.Add(1)
	last, err := r.logReader.LastSeqs(ctx, names)
	if err != nil {
		return fmt.Errorf("position check: %w", err)
	}
	for _, d := range docs {
		if seq, ok := last[d.name]; ok && seq > d.prefixSeen.Load() {
			// Not blocking: a document whose queue is full is busy; the next check comes.
			d.trySend(positionCmd{last: seq})
		}
	}
	return nil
}

// trySend queues a command unless the queue is full or the document ended.
func (d *Doc) trySend(c command) bool {
	select {
	case d.cmds <- c:
		return true
	default:
		return false
	}
}
