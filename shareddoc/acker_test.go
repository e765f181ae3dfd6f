package shareddoc_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/shareddoc"
)

// ackPeer is a fakePeer that acknowledges updates (shareddoc.Acker), as a Hocuspocus session does.
type ackPeer struct {
	fakePeer
	amu  sync.Mutex
	acks []bool
}

func (p *ackPeer) Ack(ok bool) bool {
	p.amu.Lock()
	defer p.amu.Unlock()
	p.acks = append(p.acks, ok)
	return true
}

func (p *ackPeer) got() []bool {
	p.amu.Lock()
	defer p.amu.Unlock()
	return append([]bool(nil), p.acks...)
}

// An Acker gets Ack(true) once its update is stored (and no echo of it), nothing for an empty
// SyncStep2, and Ack(false) for an update refused as too large.
func TestAckerAfterStore(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour, MaxDocBytes: 1000})
	p := &ackPeer{fakePeer: fakePeer{id: "a"}}
	d, _, err := h.reg.JoinOrCreate(context.Background(), "doc", shareddoc.JoinOptions{Session: shareddoc.SessionInfo{ID: "a"}, Peer: p})
	if err != nil {
		t.Fatal(err)
	}
	_, b := h.join("doc", "b")

	h.store.close() // hold the append: no ack before the store has it
	c := newClient(1)
	send(t, d, "a", syncproto.EncodeUpdate(c.insert(t, "hello")))
	eventually(t, func() bool { return b.count(t, syncproto.TypeSync, syncproto.SyncUpdate) == 1 }, "broadcast to b")
	if got := p.got(); len(got) != 0 {
		t.Fatalf("acked before stored: %v", got)
	}
	h.store.open()
	eventually(t, func() bool { return len(p.got()) == 1 }, "ack after store")
	if h.store.appends.Load() != 1 || !p.got()[0] {
		t.Fatalf("appends %d, acks %v", h.store.appends.Load(), p.got())
	}
	if n := p.count(t, syncproto.TypeSync, syncproto.SyncUpdate); n != 0 {
		t.Fatalf("acker got %d echoes", n)
	}

	send(t, d, "a", syncproto.EncodeSyncStep2([]byte{0, 0})) // empty: no ack

	send(t, d, "a", syncproto.EncodeUpdate(c.insert(t, strings.Repeat("x", 1200))))
	eventually(t, func() bool { return len(p.got()) == 2 }, "refusal")
	if got := p.got(); got[1] {
		t.Fatalf("too-large update acked ok: %v", got)
	}
	for _, m := range p.messages(t) {
		if m.Type == syncproto.TypeAuth {
			t.Fatalf("acker got a permission-denied frame too: %+v", m)
		}
	}
}
