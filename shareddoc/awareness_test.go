package shareddoc_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt/encoding"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/shareddoc"
)

// aw encodes an awareness message with one entry per (client, clock, state).
func aw(entries ...any) []byte {
	e := encoding.NewEncoder()
	e.WriteVarUint(uint64(len(entries) / 3))
	for i := 0; i+2 < len(entries); i += 3 {
		e.WriteVarUint(uint64(entries[i].(int)))
		e.WriteVarUint(uint64(entries[i+1].(int)))
		e.WriteVarString(entries[i+2].(string))
	}
	return syncproto.EncodeAwareness(e.Bytes())
}

// joinAs attaches a session of the given subject (token user; "" for an open server).
func (h *harness) joinAs(name, id, subject string) (*shareddoc.Doc, *fakePeer) {
	h.t.Helper()
	p := &fakePeer{id: id}
	d, _, err := h.reg.JoinOrCreate(context.Background(), name, shareddoc.JoinOptions{
		Session: shareddoc.SessionInfo{ID: id, User: subject, Subject: subject},
		Peer:    p,
	})
	if err != nil {
		h.t.Fatalf("join %s: %v", id, err)
	}
	return d, p
}

// settle waits until every command sent to d so far has run.
func settle(t *testing.T, d *shareddoc.Doc) {
	t.Helper()
	if _, err := d.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// awareness returns the awareness payloads p received.
func (p *fakePeer) awareness(t *testing.T) [][]byte {
	var out [][]byte
	for _, m := range p.messages(t) {
		if m.Type == syncproto.TypeAwareness {
			out = append(out, m.Payload)
		}
	}
	return out
}

// denied returns the reasons of the permission-denied messages p received.
func (p *fakePeer) denied(t *testing.T) []string {
	var out []string
	for _, m := range p.messages(t) {
		if m.Type == syncproto.TypeAuth {
			out = append(out, m.Reason)
		}
	}
	return out
}

// query asks d for every awareness state as session id and returns the answer's payload.
func query(t *testing.T, d *shareddoc.Doc, p *fakePeer) []byte {
	t.Helper()
	settle(t, d)
	n := len(p.awareness(t))
	send(t, d, p.id, syncproto.EncodeQueryAwareness())
	settle(t, d)
	got := p.awareness(t)
	if len(got) != n+1 {
		t.Fatalf("query answered with %d frames", len(got)-n)
	}
	return got[n]
}

func awPayload(entries ...any) []byte {
	m, _ := syncproto.Decode(aw(entries...))
	return m.Payload
}

func TestAwarenessOverwriteByAnotherUserRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, _ := h.joinAs("doc", "a", "alice")
	_, b := h.joinAs("doc", "b", "bob")
	_, c := h.joinAs("doc", "c", "carol")
	send(t, d, "a", aw(10, 1, `{"name":"alice"}`))
	// bob reuses alice's client id: a newer state, then a removal, then an equal-clock removal.
	send(t, d, "b", aw(10, 2, `{"name":"mallory"}`))
	send(t, d, "b", aw(10, 3, `null`))
	send(t, d, "b", aw(10, 1, `null`))
	settle(t, d)
	if got := c.awareness(t); len(got) != 1 {
		t.Fatalf("c saw %d awareness frames, want only alice's", len(got))
	}
	if got := query(t, d, c); !bytes.Equal(got, awPayload(10, 1, `{"name":"alice"}`)) {
		t.Fatalf("state after bob's attempts: %x", got)
	}
	if r := b.denied(t); len(r) != 3 || r[0] != shareddoc.ReasonAwarenessNotOwner {
		t.Fatalf("bob was told %q", r)
	}
	if b.closedWith() != 0 {
		t.Fatal("bob was closed; refused entries only skip")
	}
	if n := h.reg.Stats().AwarenessRefusedNotOwner.Load(); n != 3 {
		t.Fatalf("refused not-owner = %d", n)
	}
	// Once alice leaves, the id is free again.
	d.Leave("a")
	send(t, d, "b", aw(10, 2, `{"name":"bob"}`))
	if got := query(t, d, c); !bytes.Equal(got, awPayload(10, 2, `{"name":"bob"}`)) {
		t.Fatalf("after alice left: %x", got)
	}
}

func TestAwarenessSameUserTakesOverAfterReconnect(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, _ := h.joinAs("doc", "old", "alice")
	_, c := h.joinAs("doc", "c", "carol")
	send(t, d, "old", aw(10, 1, `{"cursor":1}`))
	// alice reconnects (same Y.Doc client id, next clock) before her old connection timed out.
	_, _ = h.joinAs("doc", "new", "alice")
	send(t, d, "new", aw(10, 2, `{"cursor":2}`))
	settle(t, d)
	if got := c.awareness(t); len(got) != 2 || !bytes.Equal(got[1], awPayload(10, 2, `{"cursor":2}`)) {
		t.Fatalf("c saw %x", got)
	}
	if n := h.reg.Stats().AwarenessTakeovers.Load(); n != 1 {
		t.Fatalf("takeovers = %d", n)
	}
	// The old connection finally goes: the cursor now belongs to the new one and stays.
	d.Leave("old")
	if got := query(t, d, c); !bytes.Equal(got, awPayload(10, 2, `{"cursor":2}`)) {
		t.Fatalf("after the old connection left: %x", got)
	}
	d.Leave("new")
	settle(t, d)
	last := c.awareness(t)
	if !bytes.Equal(last[len(last)-1], awPayload(10, 2, `null`)) {
		t.Fatalf("removal when the new connection left: %x", last[len(last)-1])
	}
}

func TestAwarenessTakeoverWithoutAuthAllowedAndCounted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, _ := h.joinAs("doc", "a", "")
	_, b := h.joinAs("doc", "b", "")
	send(t, d, "a", aw(10, 1, `{}`))
	send(t, d, "b", aw(10, 2, `{"x":1}`))
	settle(t, d)
	st := h.reg.Stats()
	if st.AwarenessTakeoversOpen.Load() != 1 || st.AwarenessTakeovers.Load() != 0 || len(b.denied(t)) != 0 {
		t.Fatalf("open takeovers %d, same-user %d, denied %q", st.AwarenessTakeoversOpen.Load(), st.AwarenessTakeovers.Load(), b.denied(t))
	}
}

func TestAwarenessClientsPerConnectionBounded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour, MaxAwarenessClientsPerConn: 2})
	d, a := h.joinAs("doc", "a", "")
	_, c := h.joinAs("doc", "c", "")
	send(t, d, "a", aw(1, 1, `{}`, 2, 1, `{}`, 3, 1, `{}`, 4, 1, `{}`))
	if got := query(t, d, c); !bytes.Equal(got, awPayload(1, 1, `{}`, 2, 1, `{}`)) {
		t.Fatalf("states %x", got)
	}
	if r := a.denied(t); len(r) != 1 || r[0] != shareddoc.ReasonAwarenessTooManyClients {
		t.Fatalf("a was told %q", r)
	}
	if n := h.reg.Stats().AwarenessRefusedClients.Load(); n != 2 {
		t.Fatalf("refused = %d", n)
	}
	// Renewing its own ids is fine; removing one frees a slot.
	send(t, d, "a", aw(1, 2, `{}`, 2, 2, `null`, 3, 1, `{"third":true}`))
	if got := query(t, d, c); !bytes.Equal(got, awPayload(1, 2, `{}`, 3, 1, `{"third":true}`)) {
		t.Fatalf("states after renewal and swap %x", got)
	}
	if len(a.denied(t)) != 1 {
		t.Fatalf("a was told %q", a.denied(t))
	}
}

func TestAwarenessStateSizeBounded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour, MaxAwarenessStateBytes: 100})
	d, a := h.joinAs("doc", "a", "")
	_, c := h.joinAs("doc", "c", "")
	big := `"` + strings.Repeat("x", 99) + `"` // 101 bytes
	ok := `"` + strings.Repeat("x", 98) + `"`  // 100 bytes
	send(t, d, "a", aw(1, 1, big, 2, 1, ok))
	if got := query(t, d, c); !bytes.Equal(got, awPayload(2, 1, ok)) {
		t.Fatalf("states %x", got)
	}
	if r := a.denied(t); len(r) != 1 || r[0] != shareddoc.ReasonAwarenessStateTooLarge {
		t.Fatalf("a was told %q", r)
	}
	if n := h.reg.Stats().AwarenessRefusedTooLarge.Load(); n != 1 {
		t.Fatalf("refused too large = %d", n)
	}
}

func TestAwarenessRemovedIDsForgottenAfterTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, _ := h.joinAs("doc", "a", "")
	_, b := h.joinAs("doc", "b", "")
	timers := h.clock.Timers()
	// Nulls for ids nobody has are not even recorded: no timer starts for them.
	var many []any
	for i := 0; i < 1000; i++ {
		many = append(many, 1000+i, 1, "null")
	}
	send(t, d, "a", aw(many...))
	settle(t, d)
	if h.clock.Timers() != timers {
		t.Fatal("unknown null ids armed the awareness timer")
	}
	send(t, d, "a", aw(10, 5, `{}`))
	settle(t, d)
	if h.clock.Timers() != timers+1 {
		t.Fatalf("awareness timer not armed: %d timers", h.clock.Timers())
	}
	d.Leave("a") // removes client 10, remembering clock 5
	settle(t, d)
	n := len(b.awareness(t))
	// Within the timeout an old clock is still a replay and is refused.
	send(t, d, "b", aw(10, 4, `{"replay":1}`))
	settle(t, d)
	if len(b.awareness(t)) != n {
		t.Fatal("replay of an old clock accepted within the timeout")
	}
	// The timer ticks every 3 s; after 30 s the removed id is forgotten and the timer stops.
	for i := 0; i < 11; i++ {
		h.clock.Advance(3 * time.Second)
		settle(t, d)
	}
	eventually(t, func() bool { return h.clock.Timers() == timers }, "awareness timer stopped after forgetting")
	send(t, d, "b", aw(10, 4, `{"again":1}`))
	settle(t, d)
	if got := b.awareness(t); len(got) != n+1 || !bytes.Equal(got[n], awPayload(10, 4, `{"again":1}`)) {
		t.Fatalf("forgotten id not accepted anew: %x", got[n:])
	}
}

func TestQueryAwarenessAnswersShareOneBuffer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, _ := h.joinAs("doc", "a", "")
	_, c := h.joinAs("doc", "c", "")
	send(t, d, "a", aw(1, 1, `{"big":"`+strings.Repeat("y", 10_000)+`"}`))
	frames := func() [][]byte {
		c.mu.Lock()
		defer c.mu.Unlock()
		return append([][]byte(nil), c.frames...)
	}
	query(t, d, c)
	query(t, d, c)
	f := frames()
	q1, q2 := f[len(f)-2], f[len(f)-1]
	if &q1[0] != &q2[0] || len(q1) < 10_000 {
		t.Fatal("two query-awareness answers did not share one buffer")
	}
	// SyncStep1 answers use it too.
	send(t, d, "c", syncproto.EncodeSyncStep1([]byte{0}))
	settle(t, d)
	f = frames()
	if s := f[len(f)-1]; &s[0] != &q1[0] {
		t.Fatal("the SyncStep1 answer's awareness frame is another copy")
	}
	// The next change invalidates it.
	send(t, d, "a", aw(1, 2, `{}`))
	q3 := query(t, d, c)
	if !bytes.Equal(q3, awPayload(1, 2, `{}`)) {
		t.Fatalf("answer after a change: %x", q3)
	}
	f = frames()
	if last := f[len(f)-1]; &last[0] == &q1[0] {
		t.Fatal("cache not invalidated by a change")
	}
}
