package shareddoc

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt/awareness"
	"github.com/ysync/ysync/crdt/encoding"
	"github.com/ysync/ysync/store"
)

type nopPeer struct{}

func (nopPeer) Send([]byte) bool         { return true }
func (nopPeer) Close(CloseReason, error) {}

// FuzzAwarenessOwnership drives one document's awareness with sequences of messages from four
// sessions (two of one user, two others), leaves, rejoins and timeouts, and checks the bounds
// after every step: a state exists exactly for the ids a live session owns, no session owns more
// than the limit, no state is over the size cap, and a message never changes an id owned by a
// session of another user.
func FuzzAwarenessOwnership(f *testing.F) {
	f.Add([]byte{0, 1, 1, 1, 2, 1, 2, 1, 1, 3, 0, 4, 0, 0, 5})
	f.Add([]byte{0, 0, 0, 1, 1, 0, 1, 2, 9, 9, 9, 2, 3, 3, 3, 0, 0, 0, 7, 7, 7})
	f.Add(bytes.Repeat([]byte{1, 2, 3, 4, 5}, 20))
	f.Fuzz(func(t *testing.T, ops []byte) {
		const maxClients, maxBytes = 3, 16
		clock := NewFakeClock(time.Unix(1_700_000_000, 0))
		r := NewRegistry(Config{Store: store.NewMemory(), Clock: clock, MaxAwarenessClientsPerConn: maxClients, MaxAwarenessStateBytes: maxBytes})
		d := newDoc(r, "fuzz", nil)
		d.aw = awareness.New()
		subjects := []string{"alice", "alice", "bob", ""}
		peers := make([]*peer, len(subjects))
		join := func(i int) {
			peers[i] = &peer{info: SessionInfo{ID: fmt.Sprint("s", i, clock.Now().UnixNano()), Subject: subjects[i]}, p: nopPeer{}, clients: make(map[uint64]struct{})}
			d.peers[peers[i].info.ID] = peers[i]
		}
		for i := range peers {
			join(i)
		}
		states := []string{"null", "{}", `{"name":"a-long-state-over-16"}`, "1", `{"a":1}`}
		for len(ops) >= 3 {
			op, a, b := ops[0], ops[1], ops[2]
			ops = ops[3:]
			sender := peers[int(op)%len(peers)]
			type snap struct {
				state []byte
				clock uint64
			}
			protected := map[uint64]snap{}
			for id, o := range d.awState.owners {
				if o.info.Subject != sender.info.Subject {
					s, c, _ := d.aw.Get(id)
					protected[id] = snap{bytes.Clone(s), c}
				}
			}
			switch (op / 4) % 8 {
			case 6: // the sender leaves and comes back as a new session of the same user
				d.detach(sender)
				join(int(op) % len(peers))
				protected = nil
			case 7: // time passes
				clock.Advance(time.Duration(a%40) * time.Second)
				d.awarenessTick()
				protected = nil
			case 5: // raw bytes
				d.applyAwareness(sender, []byte{a, b, a ^ b, b, a})
				if d.peers[sender.info.ID] == nil {
					join(int(op) % len(peers)) // closed as bad: it reconnects
				}
			default: // one or two well-formed entries
				e := encoding.NewEncoder()
				n := 1 + int(b>>7)
				e.WriteVarUint(uint64(n))
				for k := range n {
					e.WriteVarUint(uint64(a%8) + uint64(k))
					e.WriteVarUint(uint64(b % 6))
					e.WriteVarString(states[int(a>>3)%len(states)])
				}
				d.applyAwareness(sender, e.Bytes())
			}
			for id, before := range protected {
				s, c, _ := d.aw.Get(id)
				if !bytes.Equal(s, before.state) || c != before.clock {
					t.Fatalf("id %d of another user changed by %s: %s/%d -> %s/%d", id, sender.info.Subject, before.state, before.clock, s, c)
				}
			}
			checkOwnership(t, d, maxClients, maxBytes)
		}
	})
}

func checkOwnership(t *testing.T, d *Doc, maxClients, maxBytes int) {
	t.Helper()
	for id, o := range d.awState.owners {
		if d.peers[o.info.ID] != o {
			t.Fatalf("id %d owned by a detached session", id)
		}
		if _, ok := o.clients[id]; !ok {
			t.Fatalf("owner of %d does not list it", id)
		}
		if s, _, _ := d.aw.Get(id); s == nil {
			t.Fatalf("owned id %d has no state", id)
		}
	}
	for _, p := range d.peers {
		if len(p.clients) > maxClients {
			t.Fatalf("session owns %d ids", len(p.clients))
		}
		for id := range p.clients {
			if d.awState.owners[id] != p {
				t.Fatalf("session lists %d, owned by another", id)
			}
		}
	}
	if d.aw.Len() != len(d.awState.owners) {
		t.Fatalf("%d states, %d owned ids", d.aw.Len(), len(d.awState.owners))
	}
	for id, s := range d.aw.States() {
		if len(s) > maxBytes {
			t.Fatalf("state of %d is %d bytes", id, len(s))
		}
	}
}
