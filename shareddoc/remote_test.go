package shareddoc_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt/awareness"
	"github.com/ysync/ysync/crdt/encoding"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/shareddoc"
)

// fakeRelay records what documents publish and lets the test deliver other nodes' messages.
type fakeRelay struct {
	mu        sync.Mutex
	subs      map[string]shareddoc.Subscriber
	updates   []int64 // seqs published
	awareness [][]byte
	queries   int
}

func newFakeRelay() *fakeRelay { return &fakeRelay{subs: map[string]shareddoc.Subscriber{}} }

func (r *fakeRelay) Subscribe(doc string, sub shareddoc.Subscriber) func() {
	r.mu.Lock()
	r.subs[doc] = sub
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.subs, doc)
		r.mu.Unlock()
	}
}
func (r *fakeRelay) PublishUpdate(_ string, seq int64, _ []byte) {
	r.mu.Lock()
	r.updates = append(r.updates, seq)
	r.mu.Unlock()
}
func (r *fakeRelay) PublishAwareness(_ string, u []byte) {
	r.mu.Lock()
	r.awareness = append(r.awareness, u)
	r.mu.Unlock()
}
func (r *fakeRelay) QueryAwareness(string) { r.mu.Lock(); r.queries++; r.mu.Unlock() }
func (r *fakeRelay) sub(doc string) shareddoc.Subscriber {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.subs[doc]
}
func (r *fakeRelay) snapshot() (updates []int64, aw int, queries int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.updates...), len(r.awareness), r.queries
}

// awUpdate encodes an awareness update of one client (state nil: removal).
func awUpdate(id, clock uint64, state any) []byte {
	e := encoding.NewEncoder()
	e.WriteVarUint(1)
	e.WriteVarUint(id)
	e.WriteVarUint(clock)
	b, _ := json.Marshal(state)
	e.WriteVarString(string(b))
	return e.Bytes()
}

// awStates replays the awareness frames a peer got and returns the client ids with a state.
func awStates(t *testing.T, p *fakePeer) map[uint64]bool {
	t.Helper()
	a := awareness.New()
	for _, m := range p.messages(t) {
		if m.Type == syncproto.TypeAwareness {
			if _, err := a.Apply(m.Payload, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := map[uint64]bool{}
	for id := range a.States() {
		out[id] = true
	}
	return out
}

func TestRelayPublishesStoredUpdatesAndLocalAwareness(t *testing.T) {
	t.Parallel()
	rel := newFakeRelay()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour, Relay: rel})
	d, a := h.join("doc", "a")
	c := newClient(1)
	send(t, d, "a", syncproto.EncodeUpdate(c.insert(t, "x")))
	send(t, d, "a", syncproto.EncodeUpdate(c.insert(t, "y")))
	send(t, d, "a", syncproto.EncodeAwareness(awUpdate(7, 1, map[string]string{"u": "a"})))
	eventually(t, func() bool { u, aw, _ := rel.snapshot(); return len(u) == 2 && aw == 1 }, "two updates and one awareness published")
	if u, _, q := rel.snapshot(); u[0]+u[1] != 3 || q != 1 {
		t.Fatalf("published seqs %v (want 1 and 2), awareness queries %d (want 1 at load)", u, q)
	}
	// Leaving removes the session's presence on the other nodes too.
	d.Leave("a")
	eventually(t, func() bool { _, aw, _ := rel.snapshot(); return aw == 2 }, "removal published")
	_ = a
}

func TestRemoteAwarenessAndNodeGone(t *testing.T) {
	t.Parallel()
	rel := newFakeRelay()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour, Relay: rel})
	d, a := h.join("doc", "a")
	sub := rel.sub("doc")
	if sub == nil {
		t.Fatal("document did not subscribe")
	}
	sub.RemoteAwareness("node-b", awUpdate(20, 1, map[string]string{"u": "on-b"}))
	sub.RemoteAwareness("node-b", awUpdate(21, 1, map[string]string{"u": "moves-to-c"}))
	sub.RemoteAwareness("node-b", []byte{1, 2, 3}) // does not decode
	eventually(t, func() bool { s := awStates(t, a); return s[20] && s[21] }, "remote states at the local session")
	// Client 21 reconnects through node c.
	sub.RemoteAwareness("node-c", awUpdate(21, 2, map[string]string{"u": "moves-to-c"}))
	eventually(t, func() bool { return h.reg.ClusterStats().RemoteAwareness.Load() == 3 }, "three applied")
	if n := h.reg.ClusterStats().RemoteBad.Load(); n != 1 {
		t.Fatalf("bad awareness counted %d, want 1", n)
	}
	h.reg.NodeGone("node-b")
	eventually(t, func() bool { return !awStates(t, a)[20] }, "node b's client removed")
	if !awStates(t, a)[21] {
		t.Fatal("the client that moved to node c was removed with node b")
	}
	// Another node asks for this node's states.
	_, published, _ := rel.snapshot()
	send(t, d, "a", syncproto.EncodeAwareness(awUpdate(5, 1, map[string]string{"u": "local"})))
	eventually(t, func() bool { _, aw, _ := rel.snapshot(); return aw == published+1 }, "local state published")
	_, before, _ := rel.snapshot()
	sub.RemoteAwarenessQuery("node-c")
	eventually(t, func() bool { _, aw, _ := rel.snapshot(); return aw == before+1 }, "answer to the query")
	if info, err := d.Info(context.Background()); err != nil || info.AwarenessStates != 2 {
		t.Fatalf("awareness states %d (%v), want 2 (local 5, remote 21)", info.AwarenessStates, err)
	}
}
