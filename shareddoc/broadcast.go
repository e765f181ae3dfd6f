package shareddoc

import "context"

// Broadcast queues frame for every attached session except the one whose id is except (empty:
// none) and for which filter (nil: every session) reports true. It runs on the document's
// goroutine after every command queued before it, so a session's earlier frames have been
// applied by then. filter runs there too and must not block. A session over its outbound budget
// is closed as slow, as for any broadcast. The error is only about delivery (ctx ended, document
// closed).
//
// It serves frames that are not document updates: server events on the application channel
// (a workflow was saved, ...), which only some sessions understand.
func (d *Doc) Broadcast(ctx context.Context, frame []byte, except string, filter func(Peer) bool) error {
	return d.send(ctx, broadcastCmd{frame: frame, except: except, filter: filter})
}

type broadcastCmd struct {
	frame  []byte
	except string
	filter func(Peer) bool
}

func (c broadcastCmd) run(d *Doc) {
	var slow []*peer
	for id, p := range d.peers {
		if id == c.except || (c.filter != nil && !c.filter(p.p)) {
			continue
		}
		if !p.p.Send(c.frame) {
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
