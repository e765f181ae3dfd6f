package shareddoc_test

import (
	"strings"
	"testing"

	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/shareddoc"
)

// A document checkpoints once the bytes appended since the last checkpoint reach
// CompactAfterBytes, even when the count trigger is far away.
func TestCompactAfterBytes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: 0, CompactAfter: 1_000_000, CompactAfterBytes: 256})
	d, p := h.join("doc", "p")
	c := newClient(1)
	send(t, d, "p", syncproto.EncodeUpdate(c.insert(t, "small")))
	eventually(t, func() bool { return updatesTo(t, p) >= 1 }, "echo of the small edit")
	if n := h.store.compacts.Load(); n != 0 {
		t.Fatalf("checkpointed after a small edit: %d compacts", n)
	}
	send(t, d, "p", syncproto.EncodeUpdate(c.insert(t, strings.Repeat("x", 1000))))
	eventually(t, func() bool { return h.store.compacts.Load() >= 1 }, "checkpoint after 1000 bytes")
}

// A document that loads a log past the count trigger checkpoints it right after the load,
// without waiting for an edit.
func TestLongLogCompactedOnLoad(t *testing.T) {
	t.Parallel()
	h := newHarness(t, shareddoc.Config{IdleTimeout: 0, CompactAfter: 3})
	o := newOtherNode(h)
	for _, s := range []string{"a", "b", "c", "d", "e"} {
		o.write("doc", s)
	}
	h.join("doc", "p")
	eventually(t, func() bool { return h.store.compacts.Load() >= 1 }, "checkpoint after load")
	if got := storedText(t, h, "doc"); got != "abcde" {
		t.Fatalf("stored %q, want abcde", got)
	}
}
