package session_test

import (
	"context"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/session"
)

// hpFrames turns a fuzz input into Hocuspocus frames (splitFrames' format). A frame whose first
// byte is 0xfe is shorthand for a keyed frame: key "k0".."k2" chosen by the second byte, then the
// rest as type and body, so that the fuzzer reaches the document table without having to find
// key encodings.
func hpFrames(in []byte) []seqFrame {
	frames := splitFrames(in)
	for i, f := range frames {
		if len(f.data) >= 2 && f.data[0] == 0xfe {
			key := []string{"k0", "k1", "k2"}[f.data[1]%3]
			frames[i].data = append(syncproto.AppendHPKey(nil, key), f.data[2:]...)
		}
	}
	return frames
}

func keyed(key string, body ...byte) seqFrame {
	k := []byte{0xfe, map[string]byte{"k0": 0, "k1": 1, "k2": 2}[key]}
	return bin(append(k, body...))
}

// FuzzHPFrameSequence sends a sequence of arbitrary frames over one Hocuspocus socket (many
// documents, auth, closes, held frames) while a good socket edits document k0 before and after.
// Whatever the sequence: no panic; the fuzzed socket stays open or closes with a row of the
// table for bad input or bounds (1003, 1007, 1008); the good socket's edits are both acked and
// in the document; once the fuzzed socket ended, no document keeps a session of it.
func FuzzHPFrameSequence(f *testing.F) {
	ups := textEdits(f, 42, "hello", " world")
	upd := func(u []byte) []byte {
		m, _ := syncproto.Encode(syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncUpdate, Payload: u})
		return m
	}
	tok := func(key string) seqFrame {
		return bin(syncproto.EncodeHPToken(key, "", ""))
	}
	for _, seed := range [][]byte{
		nil,
		joinFrames(tok("k1"), keyed("k1", append([]byte{}, upd(ups[0])...)...)),
		joinFrames(keyed("k1", upd(ups[0])...), keyed("k1", upd(ups[1])...), tok("k1")),
		joinFrames(tok("k0"), keyed("k0", 7), keyed("k0", upd(ups[0])...), tok("k0")),
		joinFrames(tok("k2"), keyed("k2", 0, 0, 1, 0), keyed("k2", 1, 1, 0), keyed("k2", 3), keyed("k2", 5, 2, '{', '}')),
		joinFrames(tok("k1"), keyed("k1", 2, 0, 1, 'x', 5, '4', '.', '8', '.', '0'), bin(syncproto.HPPingFrame), bin(syncproto.HPPongFrame)),
		joinFrames(keyed("k1", 0, 0, 1, 0), keyed("k2", 0, 0, 1, 0)), // v2: SyncStep1 first
		joinFrames(tok("k1"), keyed("k1", 0, 2, 6, 5, 200, 1, 9, 9, 9)),
		joinFrames(tok("k1"), keyed("k1", 99)),
		joinFrames(bin([]byte{0x80}), seqFrame{text: true, data: []byte("x")}),
		joinFrames(tok("k1"), keyed("k1", 5, 30, '{', '"', 'i', 'd', '"', ':', '1', ',', '"', 'm', 'e', 't', 'h', 'o', 'd', '"', ':', '"', 'x', '"', '}')),
	} {
		f.Add(seed)
	}
	allowed := map[session.CloseCode]bool{1003: true, 1007: true, 1008: true}
	f.Fuzz(func(t *testing.T, in []byte) {
		frames := hpFrames(in)
		good := textEdits(t, goodClient, "before", "after")
		e := newEnv(t)
		cfg := session.HPConfig{MaxHeldFrames: 8, MaxDocuments: 4}
		gs, gc, gdone := e.startHP(t, cfg)
		fs, fc, fdone := e.startHP(t, cfg)
		defer func() {
			gc.hangUp()
			fc.hangUp()
			_ = wait(t, gdone)
			_ = wait(t, fdone)
		}()
		gc.deliver(websocket.BinaryMessage, syncproto.EncodeHPToken("k0", "", ""))
		hpSend(t, gc, "k0", syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncUpdate, Payload: good[0]})
		eventually(t, func() bool { return len(statuses(t, gc, "k0")) == 1 }, "first ack")

		for _, fr := range frames {
			typ := websocket.BinaryMessage
			if fr.text {
				typ = websocket.TextMessage
			}
			fc.deliver(typ, fr.data)
		}
		// A marker: once its answer is there (or the socket closed) the sequence was handled.
		fc.deliver(websocket.BinaryMessage, syncproto.EncodeHPToken("marker", "", ""))
		eventually(t, func() bool {
			return fs.Disconnect().Code != 0 || hpHas(t, fc, func(m syncproto.HPMessage) bool { return m.Key == "marker" })
		}, "sequence handled")
		if d := fs.Disconnect(); d.Code != 0 && !allowed[d.Code] {
			t.Fatalf("fuzzed socket closed with %v", d)
		}

		hpSend(t, gc, "k0", syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncUpdate, Payload: good[1]})
		eventually(t, func() bool { return len(statuses(t, gc, "k0")) == 2 }, "second ack")
		if st := statuses(t, gc, "k0"); st[0] != 1 || st[1] != 1 {
			t.Fatalf("good statuses %v", st)
		}
		var state []byte
		err := e.reg.Get("k0").Update(context.Background(), func(tx *crdt.Transaction) {
			state, _ = crdt.EncodeStateAsUpdate(tx.Doc(), nil)
		})
		if err != nil {
			t.Fatal(err)
		}
		fresh := crdt.NewDoc(crdt.DocOptions{ClientID: 1})
		if err := crdt.ApplyUpdate(fresh, state, nil); err != nil {
			t.Fatalf("document state does not apply: %v", err)
		}
		if got := fresh.StateVector()[goodClient]; got < len("before")+len("after") {
			t.Fatalf("good client's clock %d, want both edits", got)
		}
		if d := gs.Disconnect(); d.Code != 0 {
			t.Fatalf("good socket closed with %v", d)
		}
		fc.hangUp()
		_ = wait(t, fdone)
		fdone <- nil // for the deferred wait
		for _, name := range e.reg.List() {
			in, err := e.reg.Get(name).Info(context.Background())
			if err != nil {
				continue
			}
			for _, si := range in.Sessions {
				if name != "k0" || len(in.Sessions) > 1 {
					t.Fatalf("document %s keeps session %+v of the fuzzed socket", name, si)
				}
			}
		}
	})
}
