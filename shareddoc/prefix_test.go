package shareddoc_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/shareddoc"
)

// otherNode stands for another process writing the same document: it appends straight to the
// shared store and, when told, announces the update the way a relay would.
type otherNode struct {
	t *testing.T
	h *harness
	c *client
}

func newOtherNode(h *harness) *otherNode { return &otherNode{t: h.t, h: h, c: newClient(99)} }

// write appends one edit to the log and returns its seq and bytes (not announced).
func (o *otherNode) write(name, text string) (int64, []byte) {
	o.t.Helper()
	u := o.c.insert(o.t, text)
	seq, err := o.h.store.Memory.Append(context.Background(), name, u)
	if err != nil {
		o.t.Fatal(err)
	}
	return seq, u
}

var peerSeq atomic.Int64

// liveText asks the document for its whole state through a fresh session and returns the text.
func liveText(t *testing.T, h *harness, name string) string {
	t.Helper()
	id := fmt.Sprintf("probe-%d", peerSeq.Add(1))
	d, p := h.join(name, id)
	defer d.Leave(id)
	send(t, d, id, syncproto.EncodeSyncStep1([]byte{0}))
	eventually(t, func() bool { return p.count(t, syncproto.TypeSync, syncproto.SyncStep2) == 1 }, "sync step 2")
	for _, m := range p.messages(t) {
		if m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncStep2 {
			return replay(t, []syncproto.Message{m})
		}
	}
	return ""
}

// storedText rebuilds the document from the store, as a restarted server would.
func storedText(t *testing.T, h *harness, name string) string {
	t.Helper()
	cp, ups, _, err := h.store.Memory.Load(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	doc := crdt.NewDoc(crdt.DocOptions{})
	if cp != nil {
		ups = append([][]byte{cp}, ups...)
	}
	for _, u := range ups {
		if err := crdt.ApplyUpdate(doc, u, nil); err != nil {
			t.Fatal(err)
		}
	}
	return doc.GetText("t").String()
}

func updatesTo(t *testing.T, p *fakePeer) int {
	return p.count(t, syncproto.TypeSync, syncproto.SyncUpdate)
}

func TestRemoteInOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, a := h.join("doc", "a")
	o := newOtherNode(h)
	for _, s := range []string{"x", "y", "z"} {
		seq, u := o.write("doc", s)
		d.RemoteUpdate("other", seq, u)
	}
	eventually(t, func() bool { return updatesTo(t, a) == 3 }, "three updates relayed to the session")
	if got := replay(t, a.messages(t)); got != "xyz" {
		t.Fatalf("session sees %q, want xyz", got)
	}
	cs := h.reg.ClusterStats()
	if cs.RemoteApplied.Load() != 3 || cs.GapsDetected.Load() != 0 || cs.Fills.Load() != 0 {
		t.Fatalf("applied %d gaps %d fills %d; want 3, 0, 0", cs.RemoteApplied.Load(), cs.GapsDetected.Load(), cs.Fills.Load())
	}
}

func TestRemoteDuplicateSkipped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, a := h.join("doc", "a")
	o := newOtherNode(h)
	seq, u := o.write("doc", "x")
	d.RemoteUpdate("other", seq, u)
	d.RemoteUpdate("other", seq, u)
	seq2, u2 := o.write("doc", "y")
	d.RemoteUpdate("other", seq2, u2)
	eventually(t, func() bool { return h.reg.ClusterStats().RemoteReceived.Load() == 3 }, "three messages handled")
	if n := updatesTo(t, a); n != 2 {
		t.Fatalf("session got %d updates, want 2 (the duplicate is not relayed)", n)
	}
	if n := h.reg.ClusterStats().RemoteDuplicates.Load(); n != 1 {
		t.Fatalf("duplicates = %d, want 1", n)
	}
	if got := liveText(t, h, "doc"); got != "xy" {
		t.Fatalf("document holds %q, want xy", got)
	}
}

func TestRemoteOutOfOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, _ := h.join("doc", "a")
	o := newOtherNode(h)
	s1, u1 := o.write("doc", "x")
	s2, u2 := o.write("doc", "y")
	d.RemoteUpdate("other", s2, u2) // before its predecessor: a gap, which closes by itself
	d.RemoteUpdate("other", s1, u1)
	eventually(t, func() bool { return h.reg.ClusterStats().RemoteReceived.Load() == 2 }, "both handled")
	if got := liveText(t, h, "doc"); got != "xy" {
		t.Fatalf("document holds %q, want xy", got)
	}
	cs := h.reg.ClusterStats()
	if cs.GapsDetected.Load() != 1 || cs.RemoteApplied.Load() != 2 || cs.Fills.Load() != 0 {
		t.Fatalf("gaps %d applied %d fills %d; want 1, 2, 0 (the late message closed the gap within its grace)",
			cs.GapsDetected.Load(), cs.RemoteApplied.Load(), cs.Fills.Load())
	}
}

func TestRemoteMissingFilledFromLog(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, a := h.join("doc", "a")
	o := newOtherNode(h)
	o.write("doc", "x") // announcements lost
	o.write("doc", "y")
	s3, u3 := o.write("doc", "z")
	d.RemoteUpdate("other", s3, u3)
	// The gap waits out its grace period (the missing news may still come), then the log is read.
	eventually(t, func() bool {
		h.clock.Advance(100 * time.Millisecond)
		return replay(t, a.messages(t)) == "xyz"
	}, "session sees xyz")
	cs := h.reg.ClusterStats()
	if cs.GapsDetected.Load() != 1 || cs.FilledFromLog.Load() != 2 || cs.Fills.Load() < 1 {
		t.Fatalf("gaps %d filled %d fills %d; want 1, 2, >=1", cs.GapsDetected.Load(), cs.FilledFromLog.Load(), cs.Fills.Load())
	}
}

// The missing range was compacted away by the other node: the document reloads the checkpoint
// and the tail after it, and the session gets what it lacked.
func TestRemoteRangeCompactedAway(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, a := h.join("doc", "a")
	o := newOtherNode(h)
	o.write("doc", "x")
	upto, _ := o.write("doc", "y")
	state, err := crdt.EncodeStateAsUpdate(o.c.doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.Memory.Compact(context.Background(), "doc", state, upto); err != nil {
		t.Fatal(err)
	}
	s3, u3 := o.write("doc", "z")
	d.RemoteUpdate("other", s3, u3)
	// The gap waits out its grace period (the missing news may still come), then the log is read.
	eventually(t, func() bool {
		h.clock.Advance(100 * time.Millisecond)
		return replay(t, a.messages(t)) == "xyz"
	}, "session sees xyz")
	if n := h.reg.ClusterStats().FillReloads.Load(); n != 1 {
		t.Fatalf("reloads = %d, want 1", n)
	}
	if got := liveText(t, h, "doc"); got != "xyz" {
		t.Fatalf("document holds %q", got)
	}
}

// The last announcement is lost: only the position check can find it.
func TestRemoteLostLastMessage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	_, a := h.join("doc", "a")
	o := newOtherNode(h)
	o.write("doc", "x")
	if err := h.reg.CheckPositions(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return replay(t, a.messages(t)) == "x" }, "session sees x")
	cs := h.reg.ClusterStats()
	if cs.PositionCatchups.Load() != 1 || cs.FilledFromLog.Load() != 1 {
		t.Fatalf("catch-ups %d filled %d; want 1, 1", cs.PositionCatchups.Load(), cs.FilledFromLog.Load())
	}
}

// The periodic check runs on the injected clock.
func TestPositionCheckPeriodic(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour, PositionCheckInterval: time.Second})
	_, a := h.join("doc", "a")
	o := newOtherNode(h)
	o.write("doc", "x")
	eventually(t, func() bool {
		h.clock.Advance(time.Second)
		return replay(t, a.messages(t)) == "x"
	}, "session sees x")
}

// The data-loss fix: another process appended an update this one never applied, between this
// one's updates; this one's checkpoint must not cover (and delete) it.
func TestCheckpointNeverCoversUnappliedUpdates(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: 0, CompactAfter: 1})
	o := newOtherNode(h)
	o.write("doc", "a") // seq 1, before the document loads
	d, p := h.join("doc", "p")
	local := newClient(1)
	h.store.close() // hold our append until the other node's lands first
	send(t, d, "p", syncproto.EncodeUpdate(local.insert(t, "L")))
	o.write("doc", "b") // seq 2: never announced
	h.store.open()
	eventually(t, func() bool { return updatesTo(t, p) >= 1 }, "echo of the local edit")
	// The document compacts after every append and when it unloads.
	d.Leave("p")
	eventually(t, func() bool { return h.reg.Count() == 0 }, "document unloaded")
	got := storedText(t, h, "doc")
	for _, want := range []string{"a", "b", "L"} {
		if !strings.Contains(got, want) {
			t.Fatalf("stored document %q lost %q", got, want)
		}
	}
}

// A forged message (right seq, wrong content) cannot make a checkpoint delete the real update:
// checkpoints cover only what was read from the log or made here, and the verify fill before
// them brings the real update in.
func TestForgedMessageCannotLoseTheRealUpdate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: 0, CompactAfter: 1})
	d, p := h.join("doc", "p")
	o := newOtherNode(h)
	seq, _ := o.write("doc", "real") // seq 1, its true announcement lost
	forger := newClient(66)
	d.RemoteUpdate("mallory", seq, forger.insert(t, "forged"))
	eventually(t, func() bool { return h.reg.ClusterStats().RemoteApplied.Load() == 1 }, "forged update applied")
	// A local edit makes the document checkpoint (CompactAfter 1) and then unload.
	local := newClient(1)
	send(t, d, "p", syncproto.EncodeUpdate(local.insert(t, "L")))
	eventually(t, func() bool { return updatesTo(t, p) >= 2 }, "echo")
	eventually(t, func() bool { return strings.Contains(liveText(t, h, "doc"), "real") }, "the verify fill brings the real update")
	d.Leave("p")
	eventually(t, func() bool { return h.reg.Count() == 0 }, "unloaded")
	if got := storedText(t, h, "doc"); !strings.Contains(got, "real") || !strings.Contains(got, "L") {
		t.Fatalf("stored document %q lost an update", got)
	}
}

// A message claiming a seq the log does not have is dropped after one read; it does not keep
// the document reading the log.
func TestBogusSeqDropped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: time.Hour})
	d, a := h.join("doc", "a")
	o := newOtherNode(h)
	o.write("doc", "x")
	d.RemoteUpdate("mallory", 1<<40, []byte{0, 0})
	eventually(t, func() bool {
		h.clock.Advance(100 * time.Millisecond)
		return replay(t, a.messages(t)) == "x" && h.reg.ClusterStats().RemoteBad.Load() == 1
	}, "real update filled, bogus one dropped")
	fills := h.reg.ClusterStats().Fills.Load()
	for range 20 {
		h.clock.Advance(time.Second)
	}
	if _, err := d.Info(context.Background()); err != nil { // the actor has run what was queued
		t.Fatal(err)
	}
	if n := h.reg.ClusterStats().Fills.Load(); n != fills {
		t.Fatalf("fills went on after the bogus seq was dropped: %d -> %d", fills, n)
	}
}

// At unload the checkpoint covers what the relay brought too: the range is re-read from the log
// first, so the log is compacted up to the end.
func TestUnloadCheckpointCoversRelayedUpdates(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: 0})
	d, p := h.join("doc", "p")
	o := newOtherNode(h)
	seq, u := o.write("doc", "r")
	d.RemoteUpdate("other", seq, u)
	eventually(t, func() bool { return h.reg.ClusterStats().RemoteApplied.Load() == 1 }, "relayed update applied")
	local := newClient(1)
	send(t, d, "p", syncproto.EncodeUpdate(local.insert(t, "L")))
	eventually(t, func() bool { return updatesTo(t, p) >= 2 }, "echo")
	d.Leave("p")
	eventually(t, func() bool { return h.reg.Count() == 0 }, "unloaded")
	// The document leaves the map before its final checkpoint: wait for the checkpoint, not for
	// the map (reading the store at once raced the final flush).
	eventually(t, func() bool {
		_, ups, last, err := h.store.Memory.Load(context.Background(), "doc")
		if err != nil {
			t.Fatal(err)
		}
		return len(ups) == 0 && last == 2
	}, "a checkpoint covering both updates")
	if got := storedText(t, h, "doc"); !strings.Contains(got, "r") || !strings.Contains(got, "L") {
		t.Fatalf("stored %q", got)
	}
}
