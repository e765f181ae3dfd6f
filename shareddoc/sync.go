package shareddoc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
)

// serverEdit reports whether a transaction's update must be broadcast and stored by observe.
// Peers' updates are handled where they are applied (their raw bytes are broadcast, stored and
// echoed) and loading replays stored bytes, so the crdt core need not encode those at all.
func serverEdit(origin any) bool {
	switch origin.(type) {
	case *peer, loadOrigin, remoteOrigin:
		return false
	}
	return true
}

// observe sees every server-side edit of the crdt.Doc (see serverEdit).
func (d *Doc) observe(update []byte, origin any, _ *crdt.Transaction) {
	u := bytes.Clone(update)
	frame := syncproto.EncodeUpdate(u)
	d.broadcast(frame, nil)
	d.enqueue(pendingUpdate{update: u, frame: frame, ack: d.edits.attach()})
}

// safeApply applies an update, turning a panic in the CRDT code into an error: a hostile frame
// must not take the process down.
func safeApply(doc *crdt.Doc, update []byte, origin any) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %w: panic: %v", errHalfApplied, crdt.ErrMalformedUpdate, v)
		}
	}()
	if err := crdt.ApplyUpdate(doc, update, origin); err != nil {
		return err
	}
	if testHookAfterApply != nil {
		testHookAfterApply(origin)
	}
	return nil
}

// apply applies an update to the live document with safeApply. An update whose integration
// failed half-way takes the document out of service (failCorrupt) whichever path it came by — a
// session, a server-side edit or another node — since its state no longer matches what was stored
// and broadcast. The error is returned either way; after failCorrupt, d.corrupt is set.
func (d *Doc) apply(update []byte, origin any) error {
	if !isEmptyUpdate(update) {
		d.joins.changed() // see joinCache for why not only after changing transactions
	}
	err := safeApply(d.ydoc, update, origin)
	if errors.Is(err, errHalfApplied) {
		d.failCorrupt(err)
	}
	return err
}

// errHalfApplied marks an update whose integration panicked: the crdt.Doc may hold part of it,
// so it no longer matches what was stored and broadcast.
var errHalfApplied = errors.New("update integration failed half-way")

// testHookAfterApply, set only by tests, runs inside safeApply after the CRDT applied an update
// (a panic there stands for one half-way through integration).
var testHookAfterApply func(origin any)

func safeDiff(doc *crdt.Doc, sv []byte) (diff []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("encode state: panic: %v", v)
		}
	}()
	return crdt.EncodeStateAsUpdate(doc, sv)
}

// safeStep2Frame is safeDiff encoded straight into its SyncStep2 frame: the update is written
// behind room for the frame header (crdt.EncodeStateAsUpdateReserved), so a big state is not
// copied into a second buffer — at a first sync of a big document that copy was a whole encoded
// state more in the heap.
func safeStep2Frame(doc *crdt.Doc, sv []byte) (frame []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			frame, err = nil, fmt.Errorf("encode state: panic: %v", v)
		}
	}()
	buf, err := crdt.EncodeStateAsUpdateReserved(doc, sv, syncproto.SyncStep2Reserve)
	if err != nil {
		return nil, err
	}
	return syncproto.FrameSyncStep2InPlace(buf, syncproto.SyncStep2Reserve), nil
}

// emptyUpdate is a V1 update with no structs and an empty delete set, what a client with nothing
// to contribute answers to SyncStep1.
var emptyUpdate = []byte{0, 0}

type joinCmd struct {
	info  SessionInfo
	peer  Peer
	reply chan error
}

func (c joinCmd) run(d *Doc) {
	d.r.mu.Lock()
	d.joining--
	d.r.endEvictionLocked(d) // joined again before it could unload: no longer evicted
	d.r.mu.Unlock()
	if d.stopping() {
		c.reply <- ErrClosed
		return
	}
	if _, dup := d.peers[c.info.ID]; dup {
		c.reply <- fmt.Errorf("session %q already attached", c.info.ID)
		return
	}
	d.peers[c.info.ID] = &peer{info: c.info, p: c.peer, clients: make(map[uint64]struct{})}
	d.r.wheel.cancel(d)
	d.revive()
	c.reply <- nil
}

type msgCmd struct {
	id  string
	msg syncproto.Message
	at  time.Time // when Receive was called, for the propagation histogram
}

func (c msgCmd) run(d *Doc) {
	p := d.peers[c.id]
	if p == nil {
		return // detached (closed as slow or bad) while the message was on its way
	}
	if d.holdBehind(p, c) {
		return // behind an update held for the storage backlog (backlog.go)
	}
	d.recvAt = c.at
	defer func() { d.recvAt = time.Time{} }()
	m := c.msg
	switch m.Type {
	case syncproto.TypeSync:
		switch m.SyncType {
		case syncproto.SyncStep1:
			// Frames shared with other joiners (joincache.go): queues never modify them.
			step2, err := d.syncStep2For(m.Payload)
			if err != nil {
				d.kick(p, CloseBadUpdate, fmt.Errorf("sync step 1: %w", err))
				return
			}
			if !d.sendTo(p, step2) || !d.sendTo(p, d.syncStep1Frame()) {
				return
			}
			if d.aw.Len() > 0 {
				d.sendTo(p, d.awarenessFrame())
			}
		case syncproto.SyncStep2, syncproto.SyncUpdate:
			d.applyFromPeer(p, m.Payload)
		}
	case syncproto.TypeAwareness:
		d.applyAwareness(p, m.Payload)
	case syncproto.TypeQueryAwareness:
		d.sendTo(p, d.awarenessFrame())
	}
}

func (d *Doc) applyFromPeer(p *peer, update []byte) {
	if !d.admitUpdate(p, update) {
		return
	}
	if err := d.apply(update, p); err != nil {
		if !d.corrupt {
			d.kick(p, CloseBadUpdate, err)
		}
		return
	}
	if bytes.Equal(update, emptyUpdate) || len(update) == 0 {
		return
	}
	frame := syncproto.EncodeUpdate(update)
	d.broadcast(frame, p)
	if !d.recvAt.IsZero() {
		d.r.stats.PropagationLatency.Observe(time.Since(d.recvAt))
	}
	d.enqueue(pendingUpdate{update: update, frame: frame, origin: p.info.ID})
}

// --- peers -------------------------------------------------------------------------------------

// sendTo queues frame for p; a peer over budget is detached and closed as slow.
func (d *Doc) sendTo(p *peer, frame []byte) bool {
	if p.p.Send(frame) {
		return true
	}
	d.r.stats.SlowCloses.Add(1)
	d.kick(p, CloseSlow, nil)
	return false
}

// ack tells an Acker peer the outcome of its update; a peer over budget is closed as slow.
func (d *Doc) ack(p *peer, a Acker, ok bool) {
	if a.Ack(ok) {
		return
	}
	d.r.stats.SlowCloses.Add(1)
	d.kick(p, CloseSlow, nil)
}

// broadcast queues frame for every peer but except. Peers over budget are closed after the loop
// so that their awareness removal does not interleave with this frame.
func (d *Doc) broadcast(frame []byte, except *peer) {
	var slow []*peer
	for _, p := range d.peers {
		if p != except && !p.p.Send(frame) {
			slow = append(slow, p)
		}
	}
	for _, p := range slow {
		if d.peers[p.info.ID] == p {
			d.r.stats.SlowCloses.Add(1)
			d.kick(p, CloseSlow, nil)
		}
	}
}

// kick detaches p and closes it.
func (d *Doc) kick(p *peer, reason CloseReason, err error) {
	if reason == CloseBadUpdate {
		d.r.stats.BadUpdateCloses.Add(1)
	}
	lvl := slog.LevelInfo
	if reason == CloseBadUpdate || reason == CloseInternal {
		lvl = slog.LevelWarn
	}
	d.log.Log(context.Background(), lvl, "closing session", "session", p.info.ID, "user", p.info.User, "reason", reason.String(), "err", err)
	d.detach(p)
	p.p.Close(reason, err)
}

// detach removes p from the peer set and its awareness states from everyone's view.
func (d *Doc) detach(p *peer) {
	if d.peers[p.info.ID] != p {
		return
	}
	delete(d.peers, p.info.ID)
	d.releaseHeld(p)
	d.dropPeerAwareness(p)
	if len(d.peers) == 0 {
		d.joins.changed() // only joiners use it (joincache.go)
		// Acted on by the loop, after the current command: unloading here could end the
		// document in the middle of a broadcast or a transaction.
		d.becameEmpty = true
	}
}
