package session_test

import (
	"testing"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/session"
)

// FuzzFrame sends one arbitrary binary frame on a session next to a well-behaved one. Whatever
// the frame, the process does not panic, a closed session closes with a code from the table, and
// the other session keeps syncing.
func FuzzFrame(f *testing.F) {
	for _, seed := range [][]byte{
		nil, {0}, {9}, {0x80}, {0, 1, 10, 1, 2}, {0, 7, 0}, {1, 4, 1, 7, 1, 200},
		{0, 2, 6, 5, 200, 1, 9, 9, 9}, {3}, {2, 0, 1, 'x'}, {5, 2, '{', '}'},
		syncproto.EncodeSyncStep1([]byte{0}), syncproto.EncodeSyncStep1([]byte{1, 5, 200}),
		syncproto.EncodeAwareness([]byte{1, 10, 1, 2, '{', '}'}),
	} {
		f.Add(seed)
	}
	valid := map[session.CloseCode]bool{1003: true, 1007: true}
	f.Fuzz(func(t *testing.T, frame []byte) {
		e := newEnv(t)
		_, good, goodDone := e.start(t, "doc", "good", session.Config{})
		bad, conn, badDone := e.start(t, "doc", "fuzz", session.Config{})
		conn.deliver(websocket.BinaryMessage, frame)
		conn.deliver(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0}))
		// Either the frame was accepted (the step1 gets answered) or the session closed.
		eventually(t, func() bool {
			if d := bad.Disconnect(); d.Code != 0 {
				return true
			}
			for _, m := range conn.messages(t) {
				if m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncStep2 {
					return true
				}
			}
			return false
		}, "frame handled")
		if d := bad.Disconnect(); d.Code != 0 && !valid[d.Code] {
			t.Fatalf("closed with %v", d)
		}
		good.deliver(websocket.BinaryMessage, syncproto.EncodeUpdate(update(t, 77, "still fine")))
		eventually(t, func() bool {
			for _, m := range good.messages(t) {
				if m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncUpdate {
					return true
				}
			}
			return false
		}, "good session echo")
		conn.hangUp()
		good.hangUp()
		_ = wait(t, badDone)
		_ = wait(t, goodDone)
	})
}
