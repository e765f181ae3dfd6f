package shareddoc

import (
	"fmt"
	"slices"
	"time"

	"github.com/ysync/ysync/crdt/syncproto"
)

// Holding a peer while the store is behind (issue 13).
//
// When a peer's update would pass a pending-bytes budget (budget.go), closing the peer makes a
// y-websocket client reconnect every few hundred milliseconds, re-sending and re-syncing exactly
// while the database is away. Instead the document holds the update, and every later message of
// that peer behind it in arrival order, and asks the peer to stop reading its connection
// (Pauser), so that TCP pushes back on the client. When a store result (or the recheck timer)
// finds the budget free again, the held messages go through the normal path in order — they may
// be held again — and the peer resumes. A peer held longer than Config.MaxBacklogWait, or
// holding more than maxHeldBytes, is closed with CloseBacklog as before; its held updates were
// never acknowledged, so y-websocket sends them again on reconnect and an Acker gets Ack(false).
//
// Only a peer whose update was refused is held: readers and awareness-only peers go on.
const (
	// DefaultMaxBacklogWait is Config.MaxBacklogWait's zero value: how long a peer is held.
	DefaultMaxBacklogWait = 30 * time.Second
	// maxHeldBytes bounds what one held peer may have waiting: session.DefaultReadLimit, one
	// largest message, since a paused reader passes on at most what it had already read.
	maxHeldBytes = 16 << 20
	// heldOverhead is what a held message counts on top of its payload, so that a stream of
	// empty messages is bounded too.
	heldOverhead = 64
	// backlogRecheck is how often a document with held peers looks at the budget without a
	// store result of its own: the process-wide budget is freed by other documents' stores.
	backlogRecheck = 500 * time.Millisecond
)

// backlogState is a document's held peers. Owned by the actor goroutine.
type backlogState struct {
	held  map[*peer]*heldPeer
	timer Timer // armed while any peer is held: the next deadline or recheck
}

// heldPeer is one peer's messages waiting for the budget, oldest first.
type heldPeer struct {
	p       *peer
	since   time.Time // when the peer was first held; a replay that holds it again keeps it
	msgs    []msgCmd
	bytes   int
	holding bool // false while its messages are being replayed
}

func heldSize(m syncproto.Message) int { return len(m.Payload) + heldOverhead }

// holdUpdate is admitUpdate's answer to an update over the pending budget: hold it for p, or,
// with a negative Config.MaxBacklogWait, close p with CloseBacklog at once.
func (d *Doc) holdUpdate(p *peer, update []byte) {
	why := fmt.Errorf("%d bytes not yet stored in this document, %d in all", d.budget.pending, d.r.stats.PendingBytes.Load())
	if d.r.cfg.MaxBacklogWait < 0 {
		d.r.stats.BacklogCloses.Add(1)
		d.kick(p, CloseBacklog, why)
		return
	}
	c := msgCmd{id: p.info.ID, msg: syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncUpdate, Payload: update}, at: d.recvAt}
	h := d.backlog.held[p]
	if h == nil {
		if d.backlog.held == nil {
			d.backlog.held = make(map[*peer]*heldPeer)
		}
		h = &heldPeer{p: p, since: d.r.clock.Now()}
		d.backlog.held[p] = h
		d.r.stats.BacklogPauses.Add(1)
		d.r.stats.BacklogPausedPeers.Add(1)
		d.log.Info("storage backlog: holding session", "session", p.info.ID, "user", p.info.User, "err", why)
		if pp, ok := p.p.(Pauser); ok {
			pp.Pause()
		}
		d.armBacklog()
	}
	// Held first, before whatever a replay still has to go through for this peer.
	h.holding = true
	h.msgs = append(h.msgs, c)
	h.bytes += heldSize(c.msg)
	d.r.stats.BacklogHeldUpdates.Add(1)
}

// holdBehind queues c behind p's held messages and reports true when p is being held.
func (d *Doc) holdBehind(p *peer, c msgCmd) bool {
	h := d.backlog.held[p]
	if h == nil || !h.holding {
		return false
	}
	h.msgs = append(h.msgs, c)
	h.bytes += heldSize(c.msg)
	if h.bytes > maxHeldBytes {
		d.giveUpHeld(h, fmt.Errorf("%d bytes held while the store is behind, over %d", h.bytes, maxHeldBytes))
	}
	return true
}

// releaseHeld drops what p has held (it left, or was closed) and lets its reader go.
func (d *Doc) releaseHeld(p *peer) {
	h := d.backlog.held[p]
	if h == nil {
		return
	}
	delete(d.backlog.held, p)
	d.r.stats.BacklogPausedPeers.Add(-1)
	h.msgs = nil
	if pp, ok := p.p.(Pauser); ok {
		pp.Resume()
	}
	if len(d.backlog.held) == 0 && d.backlog.timer != nil {
		d.backlog.timer.Stop()
		d.backlog.timer = nil
	}
}

// giveUpHeld closes a held peer with CloseBacklog. An Acker is told that each held update
// failed (they were never applied); a y-websocket client sends them again when it reconnects.
func (d *Doc) giveUpHeld(h *heldPeer, why error) {
	msgs := h.msgs
	d.releaseHeld(h.p)
	if d.peers[h.p.info.ID] != h.p {
		return
	}
	if a, ok := h.p.p.(Acker); ok {
		for _, c := range msgs {
			if isHeldUpdate(c.msg) {
				a.Ack(false) // the peer is closed next either way
			}
		}
	}
	d.r.stats.BacklogCloses.Add(1)
	d.kick(h.p, CloseBacklog, why)
}

// isHeldUpdate reports whether m is an update the peer expects an Ack or echo for.
func isHeldUpdate(m syncproto.Message) bool {
	if m.Type != syncproto.TypeSync || (m.SyncType != syncproto.SyncStep2 && m.SyncType != syncproto.SyncUpdate) {
		return false
	}
	return !isEmptyUpdate(m.Payload)
}

// backlogTick runs when the backlog timer fires: peers held too long are closed, the others
// are replayed if the budget allows.
func (d *Doc) backlogTick() {
	d.backlog.timer = nil
	wait := d.maxBacklogWait()
	now := d.r.clock.Now()
	for _, h := range d.heldOldestFirst() {
		if now.Sub(h.since) >= wait {
			d.giveUpHeld(h, fmt.Errorf("held %v while the store is behind", now.Sub(h.since).Round(time.Millisecond)))
		}
	}
	d.replayHeld()
	d.armBacklog()
}

// replayHeld runs the held messages through the normal path, oldest peer first, once the budget
// has room for a peer's first held update. A peer whose messages all went through resumes; one
// held again keeps its place and its deadline.
func (d *Doc) replayHeld() {
	for _, h := range d.heldOldestFirst() {
		if d.stopping() {
			return
		}
		if d.backlog.held[h.p] != h || (len(h.msgs) > 0 && d.overPendingBudget(int64(len(h.msgs[0].msg.Payload)))) {
			continue
		}
		msgs := h.msgs
		h.msgs, h.bytes, h.holding = nil, 0, false
		for _, c := range msgs {
			if d.backlog.held[h.p] != h {
				break // closed meanwhile (slow, bad update); the rest is dropped with it
			}
			c.run(d) // goes behind again (holdBehind) once an update is held anew
		}
		if d.backlog.held[h.p] == h && !h.holding {
			d.log.Info("storage backlog: session resumed", "session", h.p.info.ID, "held_for", d.r.clock.Now().Sub(h.since))
			d.releaseHeld(h.p)
		}
	}
}

func (d *Doc) heldOldestFirst() []*heldPeer {
	if len(d.backlog.held) == 0 {
		return nil
	}
	out := make([]*heldPeer, 0, len(d.backlog.held))
	for _, h := range d.backlog.held {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b *heldPeer) int { return a.since.Compare(b.since) })
	return out
}

// armBacklog arms the timer for the next deadline or recheck, whichever is first, while a peer
// is held.
func (d *Doc) armBacklog() {
	if len(d.backlog.held) == 0 {
		return
	}
	next := backlogRecheck
	now := d.r.clock.Now()
	wait := d.maxBacklogWait()
	for _, h := range d.backlog.held {
		next = min(next, max(h.since.Add(wait).Sub(now), 0))
	}
	if d.backlog.timer == nil {
		d.backlog.timer = d.r.clock.NewTimer(next)
	} else {
		d.backlog.timer.Reset(next)
	}
}

func (d *Doc) maxBacklogWait() time.Duration {
	if w := d.r.cfg.MaxBacklogWait; w > 0 {
		return w
	}
	return DefaultMaxBacklogWait
}

// endBacklog drops every held peer's messages as the document ends.
func (d *Doc) endBacklog() {
	for p := range d.backlog.held {
		d.releaseHeld(p)
	}
	if d.backlog.timer != nil {
		d.backlog.timer.Stop()
		d.backlog.timer = nil
	}
}
