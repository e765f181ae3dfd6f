package session_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/session"
)

// seqFrame is one frame of a FuzzFrameSequence input.
type seqFrame struct {
	text bool
	data []byte
}

const maxSeqFrames = 16

// splitFrames cuts a fuzz input into frames: each is a flag byte (bit 0: text frame), a length
// byte and that many bytes (fewer when the input ends). At most maxSeqFrames frames.
func splitFrames(in []byte) []seqFrame {
	var out []seqFrame
	for len(in) >= 2 && len(out) < maxSeqFrames {
		flag, n := in[0], int(in[1])
		in = in[2:]
		n = min(n, len(in))
		out = append(out, seqFrame{text: flag&1 == 1, data: in[:n:n]})
		in = in[n:]
	}
	return out
}

// joinFrames is the inverse of splitFrames, for seeds.
func joinFrames(frames ...seqFrame) []byte {
	var out []byte
	for _, f := range frames {
		d := f.data
		if len(d) > 255 {
			d = d[:255]
		}
		flag := byte(0)
		if f.text {
			flag = 1
		}
		out = append(out, flag, byte(len(d)))
		out = append(out, d...)
	}
	return out
}

func bin(data []byte) seqFrame { return seqFrame{data: data} }

// textEdits returns the updates of inserting each string in turn at the start of text "t" by
// one client.
func textEdits(t testing.TB, client uint64, parts ...string) [][]byte {
	t.Helper()
	d := crdt.NewDoc(crdt.DocOptions{ClientID: client})
	var out [][]byte
	d.ObserveUpdate(func(b []byte, _ any, _ *crdt.Transaction) { out = append(out, append([]byte(nil), b...)) })
	for _, s := range parts {
		if err := d.GetText("t").Insert(0, s, nil); err != nil {
			t.Fatal(err)
		}
	}
	if len(out) != len(parts) {
		t.Fatalf("%d updates for %d edits", len(out), len(parts))
	}
	return out
}

const goodClient = 0x5eed_c0de

// FuzzFrameSequence delivers a sequence of arbitrary frames (binary, or text when flagged) to one
// session while a well-behaved session on the same document edits before and after. Whatever the
// sequence: no panic; the fuzzed session stays open or closes with 1003 or 1007; the good
// session stays open and its later edit reaches an observer; the document's whole state, as the
// observer's SyncStep1 fetches it, applies to a fresh crdt.Doc and holds the good client's edits.
func FuzzFrameSequence(f *testing.F) {
	ups := textEdits(f, 42, "hello", " world")
	other := textEdits(f, 43, "x")
	aw := []byte{1, 42, 1, 13, '{', '"', 'u', 's', 'e', 'r', '"', ':', '"', 'a', '"', '}', ' '}
	aw = aw[:len(aw)-1]
	awNull := []byte{1, 42, 2, 4, 'n', 'u', 'l', 'l'}
	sv := []byte{1, 42, 5}
	for _, seed := range [][]byte{
		nil,
		joinFrames(bin(syncproto.EncodeSyncStep1([]byte{0}))),
		joinFrames(bin(syncproto.EncodeSyncStep1([]byte{0})), bin(syncproto.EncodeSyncStep2(ups[0])), bin(syncproto.EncodeUpdate(ups[1]))),
		// Out of order: the second edit waits for the first.
		joinFrames(bin(syncproto.EncodeUpdate(ups[1])), bin(syncproto.EncodeUpdate(other[0])), bin(syncproto.EncodeUpdate(ups[0]))),
		joinFrames(bin(syncproto.EncodeUpdate(ups[0])), bin(syncproto.EncodeUpdate(ups[0])), bin(syncproto.EncodeSyncStep1(sv))),
		joinFrames(bin(syncproto.EncodeAwareness(aw)), bin(syncproto.EncodeQueryAwareness()), bin(syncproto.EncodeAwareness(awNull))),
		joinFrames(bin(syncproto.EncodeRPC([]byte(`{"id":1,"method":"save_workflow","params":{}}`))), bin(syncproto.EncodeRPC([]byte("{nope"))), bin(syncproto.EncodeSyncStep1([]byte{0}))),
		joinFrames(bin(syncproto.EncodePermissionDenied("x")), bin(syncproto.EncodeQueryAwareness())),
		// Truncated versions.
		joinFrames(bin(syncproto.EncodeUpdate(ups[0])[:len(ups[0])-3]), bin(syncproto.EncodeSyncStep1([]byte{0}))),
		joinFrames(bin(syncproto.EncodeSyncStep2(ups[0])), bin(syncproto.EncodeUpdate(ups[1])[:6])),
		joinFrames(bin(syncproto.EncodeAwareness(aw)[:8])),
		joinFrames(bin(syncproto.EncodeSyncStep1([]byte{2, 42}))),
		joinFrames(bin(syncproto.EncodeQueryAwareness()), seqFrame{text: true, data: []byte("hello")}),
		joinFrames(bin([]byte{0, 3}), bin([]byte{9})),
		joinFrames(bin([]byte{0, 2, 6, 5, 200, 1, 9, 9, 9}), bin(syncproto.EncodeSyncStep1([]byte{0}))),
	} {
		f.Add(seed)
	}
	tableOK := map[session.CloseCode]bool{1003: true, 1007: true}
	f.Fuzz(func(t *testing.T, in []byte) {
		frames := splitFrames(in)
		// Step1s the session should answer before it could close: count them up to the first
		// frame that must close it.
		step1s := 0
		for _, fr := range frames {
			if fr.text {
				break
			}
			m, err := syncproto.Decode(fr.data)
			if err != nil {
				break
			}
			if m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncStep1 {
				step1s++
			}
		}
		goodEdits := textEdits(t, goodClient, "before", "after")

		e := newEnv(t)
		goodC, good, goodDone := e.start(t, "doc", "good", session.Config{})
		bad, conn, badDone := e.start(t, "doc", "fuzz", session.Config{})
		obsC, obs, obsDone := e.start(t, "doc", "observer", session.Config{})
		defer func() {
			conn.hangUp()
			good.hangUp()
			obs.hangUp()
			_ = wait(t, badDone)
			_ = wait(t, goodDone)
			_ = wait(t, obsDone)
		}()
		hasUpdate := func(c *fakeConn, u []byte) bool {
			for _, m := range c.messages(t) {
				if m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncUpdate && bytes.Equal(m.Payload, u) {
					return true
				}
			}
			return false
		}
		good.deliver(websocket.BinaryMessage, syncproto.EncodeUpdate(goodEdits[0]))
		eventually(t, func() bool { return hasUpdate(obs, goodEdits[0]) }, "first edit at the observer")

		for _, fr := range frames {
			typ := websocket.BinaryMessage
			if fr.text {
				typ = websocket.TextMessage
			}
			conn.deliver(typ, fr.data)
		}
		conn.deliver(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0}))
		eventually(t, func() bool {
			if bad.Disconnect().Code != 0 {
				return true
			}
			n := 0
			for _, m := range conn.messages(t) {
				if m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncStep2 {
					n++
				}
			}
			return n > step1s
		}, "sequence handled")
		if d := bad.Disconnect(); d.Code != 0 && !tableOK[d.Code] {
			t.Fatalf("fuzzed session closed with %v", d)
		}

		good.deliver(websocket.BinaryMessage, syncproto.EncodeUpdate(goodEdits[1]))
		eventually(t, func() bool { return hasUpdate(obs, goodEdits[1]) }, "second edit at the observer")
		obs.deliver(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0}))
		var state []byte
		eventually(t, func() bool {
			for _, m := range obs.messages(t) {
				if m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncStep2 {
					state = m.Payload
					return true
				}
			}
			return false
		}, "observer's step2")
		fresh := crdt.NewDoc(crdt.DocOptions{ClientID: 1})
		if err := crdt.ApplyUpdate(fresh, state, nil); err != nil {
			t.Fatalf("document state does not apply: %v", err)
		}
		if got := fresh.StateVector()[goodClient]; got < len("before")+len("after") {
			t.Fatalf("good client's clock %d in the document state, want both edits", got)
		}
		if _, err := e.reg.Get("doc").Info(context.Background()); err != nil {
			t.Fatalf("document info: %v", err)
		}
		if d := goodC.Disconnect(); d.Code != 0 {
			t.Fatalf("good session closed with %v", d)
		}
		if d := obsC.Disconnect(); d.Code != 0 {
			t.Fatalf("observer closed with %v", d)
		}
	})
}
