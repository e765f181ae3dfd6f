package shareddoc

import (
	"context"
	"slices"
	"time"

	"github.com/ysync/ysync/crdt/syncproto"
)

// Messages from other nodes (Relay). The relay's goroutines call the Subscriber methods; they
// hand the document a command without blocking and the actor does the rest.

// RemoteUpdate implements Subscriber.
func (d *Doc) RemoteUpdate(node string, seq int64, update []byte) {
	if !d.trySend(remoteUpdateCmd{seq: seq, update: update}) {
		// The gap it leaves is found by the next message or the position check.
		d.r.cluster.RemoteDropped.Add(1)
	}
}

// RemoteAwareness implements Subscriber.
func (d *Doc) RemoteAwareness(node string, update []byte) {
	if !d.trySend(remoteAwarenessCmd{node: node, update: update}) {
		d.r.cluster.RemoteDropped.Add(1) // the client renews its state within 15 s
	}
}

// RemoteAwarenessQuery implements Subscriber.
func (d *Doc) RemoteAwarenessQuery(node string) {
	if !d.trySend(awarenessQueryCmd{}) {
		d.r.cluster.RemoteDropped.Add(1)
	}
}

type remoteUpdateCmd struct {
	seq    int64
	update []byte
}

func (c remoteUpdateCmd) run(d *Doc) { d.remoteUpdate(c.seq, c.update) }

type remoteAwarenessCmd struct {
	node   string
	update []byte
}

func (c remoteAwarenessCmd) run(d *Doc) {
	ch, err := d.aw.Apply(c.update, d.r.clock.Now())
	if err != nil {
		d.r.cluster.RemoteBad.Add(1)
		d.log.Warn("awareness from another node does not apply; dropped", "node", c.node, "err", err)
		return
	}
	d.r.cluster.RemoteAwareness.Add(1)
	if ch.Empty() {
		return
	}
	d.armAwarenessTimer() // outdated remote states expire, removed ids are forgotten (awareness.go)
	if d.remoteAw == nil {
		d.remoteAw = make(map[string]map[uint64]struct{})
	}
	ids := d.remoteAw[c.node]
	if ids == nil {
		ids = make(map[uint64]struct{})
		d.remoteAw[c.node] = ids
	}
	for _, list := range [][]uint64{ch.Added, ch.Updated, ch.Renewed} {
		for _, id := range list {
			// A client that moved here from another node (or from a local session) belongs
			// to this node now: its old node's death must not remove it.
			d.claimAwareness(id, c.node)
			ids[id] = struct{}{}
		}
	}
	for _, id := range ch.Removed {
		delete(ids, id)
	}
	d.broadcast(syncproto.EncodeAwareness(d.aw.EncodeUpdate(ch.Clients())), nil)
}

// claimAwareness records that awareness client id is now introduced through owner (a node id, or
// "" for a local session): it is forgotten from every other node's set and, for a remote owner,
// from the local sessions' sets.
func (d *Doc) claimAwareness(id uint64, owner string) {
	for node, set := range d.remoteAw {
		if node != owner {
			delete(set, id)
		}
	}
	if owner != "" {
		d.disownAwareness(id) // awareness.go: the local owner's claim ends
	}
}

// forgetAwareness drops ids from every node's set (their states were removed here).
func (d *Doc) forgetAwareness(ids []uint64) {
	for _, set := range d.remoteAw {
		for _, id := range ids {
			delete(set, id)
		}
	}
}

// awarenessQueryCmd: another node loaded the document and wants this node's sessions' states.
type awarenessQueryCmd struct{}

func (awarenessQueryCmd) run(d *Doc) {
	if ids := d.localAwarenessIDs(); len(ids) > 0 {
		d.publishAwareness(d.aw.EncodeUpdate(ids))
	}
}

// nodeGoneCmd removes the awareness states another node's sessions introduced (it died).
type nodeGoneCmd struct{ node string }

func (c nodeGoneCmd) run(d *Doc) {
	set := d.remoteAw[c.node]
	delete(d.remoteAw, c.node)
	if len(set) == 0 {
		return
	}
	ids := make([]uint64, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if upd, _ := d.aw.Remove(ids, d.r.clock.Now()); upd != nil {
		d.broadcast(syncproto.EncodeAwareness(upd), nil)
	}
}

// localAwarenessIDs lists the awareness clients this node's sessions introduced.
func (d *Doc) localAwarenessIDs() []uint64 {
	var ids []uint64
	for _, p := range d.peers {
		for id := range p.clients {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// publishAwareness sends an awareness update of this node's sessions to the other nodes.
func (d *Doc) publishAwareness(update []byte) {
	if d.r.cfg.Relay != nil && len(update) > 0 {
		d.r.cfg.Relay.PublishAwareness(d.name, update)
	}
}

// subscribe joins the relay before the document loads, so that nothing announced after the load
// read the log is missed (what comes before is a duplicate and skipped).
func (d *Doc) subscribe() (unsubscribe func()) {
	if d.r.cfg.Relay == nil {
		return func() {}
	}
	return d.r.cfg.Relay.Subscribe(d.name, d)
}

// NodeGone removes, from every loaded document, the awareness states that sessions of node
// introduced, and broadcasts the removal: node stopped without saying so (its heartbeat
// expired). It waits at most a few seconds per document.
func (r *Registry) NodeGone(node string) {
	r.cluster.NodesGone.Add(1)
	r.mu.Lock()
	docs := make([]*Doc, 0, len(r.docs))
	for _, d := range r.docs {
		docs = append(docs, d)
	}
	r.mu.Unlock()
	for _, d := range docs {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = d.send(ctx, nodeGoneCmd{node: node})
		cancel()
	}
}

// ClusterStats returns the counters of what documents did with other nodes' updates.
func (r *Registry) ClusterStats() *ClusterStats { return &r.cluster }
