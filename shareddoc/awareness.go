package shareddoc

import (
	"slices"
	"strings"

	"github.com/ysync/ysync/crdt/awareness"
	"github.com/ysync/ysync/crdt/syncproto"
)

// Defaults of the awareness bounds (Config.MaxAwarenessClientsPerConn, MaxAwarenessStateBytes).
const (
	// DefaultMaxAwarenessClientsPerConn: a y-websocket tab announces one client id (its
	// Y.Doc's); a few more leave room for several docs multiplexed over one socket.
	DefaultMaxAwarenessClientsPerConn = 4
	// DefaultMaxAwarenessStateBytes: a cursor and a user name are a few hundred bytes.
	DefaultMaxAwarenessStateBytes = 64 << 10
)

// Reasons of the permission-denied auth messages a peer gets for awareness entries the document
// refused. The rest of the message is applied; the session stays open.
const (
	ReasonAwarenessTooManyClients = "too many awareness clients"
	ReasonAwarenessStateTooLarge  = "awareness state too large"
	ReasonAwarenessNotOwner       = "awareness client id owned by another session"
)

// awarenessState is the document's bookkeeping around its awareness.Awareness: which live session
// owns which client id, and the cached frame of all states. Owned by the actor goroutine.
//
// Ownership: the session whose message first gave a client id a state owns it until it leaves,
// removes that state, or the state goes outdated. Another session's entries for an owned id are
// refused, so a reader cannot overwrite (or hide) another's presence by reusing its client id —
// except a session of the same user (SessionInfo.Subject), which takes the id over: that is a
// reconnecting tab whose old connection has not timed out yet, and its cursor must not wait for
// that. Without authentication there are no subjects (all empty), so takeovers are allowed, and
// counted (Stats.AwarenessTakeovers).
type awarenessState struct {
	owners map[uint64]*peer
	// frame is EncodeAwareness(aw.EncodeAll()) at version frameVer: one buffer shared by every
	// SyncStep1 answer and query-awareness until the next change.
	frame    []byte
	frameVer uint64
}

// awarenessFrame returns the awareness message holding every state, encoded once per change.
// Peers' queues share it; nobody may modify it.
func (d *Doc) awarenessFrame() []byte {
	if v := d.aw.Version(); d.awState.frame == nil || d.awState.frameVer != v {
		d.awState.frame = syncproto.EncodeAwareness(d.aw.EncodeAll())
		d.awState.frameVer = v
	}
	return d.awState.frame
}

// applyAwareness applies a peer's awareness update within the bounds: at most
// MaxAwarenessClientsPerConn client ids per session, states of at most MaxAwarenessStateBytes,
// owned ids left to their owner. Refused entries are skipped and the peer told once per kind with
// a permission-denied message; a malformed update closes it (CloseBadUpdate).
func (d *Doc) applyAwareness(p *peer, update []byte) {
	if d.awState.owners == nil {
		d.awState.owners = make(map[uint64]*peer)
	}
	owners := d.awState.owners
	maxClients, maxBytes := d.r.cfg.MaxAwarenessClientsPerConn, d.r.cfg.MaxAwarenessStateBytes
	var tooMany, tooLarge, notOwner int
	ch, err := d.aw.ApplyFunc(update, d.r.clock.Now(), func(e awareness.Entry) bool {
		if maxBytes > 0 && len(e.State) > maxBytes {
			tooLarge++
			return false
		}
		switch owner := owners[e.ClientID]; {
		case owner == p:
			if e.State == nil { // its own removal frees the slot for the entries that follow
				delete(owners, e.ClientID)
				delete(p.clients, e.ClientID)
			}
		case owner != nil:
			if owner.info.Subject != p.info.Subject {
				notOwner++
				return false
			}
			if e.State != nil && maxClients > 0 && len(p.clients) >= maxClients {
				tooMany++
				return false
			}
			if p.info.Subject == "" {
				d.r.stats.AwarenessTakeoversOpen.Add(1)
			} else {
				d.r.stats.AwarenessTakeovers.Add(1)
			}
			delete(owner.clients, e.ClientID)
			delete(owners, e.ClientID)
			if e.State != nil {
				owners[e.ClientID] = p
				p.clients[e.ClientID] = struct{}{}
			}
		case e.State == nil:
			// A null for an id nobody owns: a removal of a state already gone, or of an id never
			// seen. Recording the latter would only cost memory (one frame can name millions).
			if _, _, known := d.aw.Get(e.ClientID); !known {
				return false
			}
		default:
			if maxClients > 0 && len(p.clients) >= maxClients {
				tooMany++
				return false
			}
			owners[e.ClientID] = p
			p.clients[e.ClientID] = struct{}{}
		}
		return true
	})
	if err != nil {
		d.kick(p, CloseBadUpdate, err)
		return
	}
	d.refuseAwareness(p, tooMany, tooLarge, notOwner)
	if ch.Empty() {
		return
	}
	d.armAwarenessTimer()
	if d.remoteAw != nil {
		for _, ids := range [][]uint64{ch.Added, ch.Updated, ch.Renewed} {
			for _, id := range ids {
				d.claimAwareness(id, "") // it moved here from another node (remote.go)
			}
		}
	}
	// To everyone, the sender included: a lone y-websocket client counts its own awareness
	// echo as a sign of life and reconnects after 30 s without any message.
	upd := d.aw.EncodeUpdate(ch.Clients())
	d.broadcast(syncproto.EncodeAwareness(upd), nil)
	d.publishAwareness(upd)
}

// disownAwareness forgets the local owner of id: another node's session introduced it now
// (remote.go's claimAwareness).
func (d *Doc) disownAwareness(id uint64) {
	if o := d.awState.owners[id]; o != nil {
		delete(o.clients, id)
		delete(d.awState.owners, id)
	}
}

// refuseAwareness counts refused entries and tells the peer, one message per kind.
func (d *Doc) refuseAwareness(p *peer, tooMany, tooLarge, notOwner int) {
	if tooMany+tooLarge+notOwner == 0 {
		return
	}
	st := &d.r.stats
	st.AwarenessRefusedClients.Add(int64(tooMany))
	st.AwarenessRefusedTooLarge.Add(int64(tooLarge))
	st.AwarenessRefusedNotOwner.Add(int64(notOwner))
	var reasons []string
	for _, r := range []struct {
		n      int
		reason string
	}{{tooMany, ReasonAwarenessTooManyClients}, {tooLarge, ReasonAwarenessStateTooLarge}, {notOwner, ReasonAwarenessNotOwner}} {
		if r.n > 0 {
			reasons = append(reasons, r.reason)
			if !d.sendTo(p, syncproto.EncodePermissionDenied(r.reason)) {
				return
			}
		}
	}
	d.log.Debug("awareness entries refused", "session", p.info.ID, "user", p.info.User, "reasons", strings.Join(reasons, ", "),
		"too_many", tooMany, "too_large", tooLarge, "not_owner", notOwner)
}

// dropPeerAwareness removes the states p introduced and broadcasts the removal; p is leaving.
func (d *Doc) dropPeerAwareness(p *peer) {
	if len(p.clients) == 0 {
		return
	}
	ids := make([]uint64, 0, len(p.clients))
	for id := range p.clients {
		ids = append(ids, id)
		if d.awState.owners[id] == p {
			delete(d.awState.owners, id)
		}
	}
	clear(p.clients)
	slices.Sort(ids)
	if upd, _ := d.aw.Remove(ids, d.r.clock.Now()); upd != nil {
		d.broadcast(syncproto.EncodeAwareness(upd), nil)
		d.publishAwareness(upd)
	}
}

// awarenessTick drops states silent for awareness.OutdatedTimeout (broadcasting their removal)
// and forgets removed client ids after the same time. The timer runs only while the document
// remembers any client: an idle document costs no wake-ups.
func (d *Doc) awarenessTick() {
	d.awTimer = nil
	now := d.r.clock.Now()
	if ids := d.aw.Outdated(now); len(ids) > 0 {
		for _, id := range ids {
			if p := d.awState.owners[id]; p != nil {
				delete(p.clients, id)
				delete(d.awState.owners, id)
			}
		}
		d.forgetAwareness(ids)
		if upd, _ := d.aw.Remove(ids, now); upd != nil {
			d.broadcast(syncproto.EncodeAwareness(upd), nil)
		}
	}
	d.aw.Forget(now)
	if d.aw.Known() == 0 {
		d.awState.frame = nil
	}
	d.armAwarenessTimer()
}

func (d *Doc) armAwarenessTimer() {
	if d.awTimer == nil && d.aw.Known() > 0 && d.state != stateClosed {
		d.awTimer = d.r.clock.NewTimer(awarenessCheckInterval)
	}
}
