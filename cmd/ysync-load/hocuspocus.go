package main

import (
	"errors"

	"github.com/ysync/ysync/crdt/syncproto"
)

// Protocols the generator speaks.
const (
	protoYWebsocket = "y-websocket"
	protoHocuspocus = "hocuspocus"
)

// With --protocol hocuspocus each client is a Hocuspocus provider with one document on its own
// socket: it dials the URL as given (ysync's /ws, or @hocuspocus/server's root), sends
// Auth(Token "") and then the same messages as in y-websocket mode, each prefixed with its
// document's name; the server's frames are decoded the same way after the prefix. SyncStatus,
// Authenticated and stateless messages are ignored; v4 Pings are answered.

func (c *client) hocuspocus() bool { return c.r.cfg.Protocol == protoHocuspocus }

// wrap prefixes a y-websocket frame with the client's document name in Hocuspocus mode.
func (c *client) wrap(frame []byte) []byte {
	if !c.hocuspocus() {
		return frame
	}
	out := syncproto.AppendHPKey(make([]byte, 0, len(frame)+len(c.r.docName(c.docIx))+2), c.r.docName(c.docIx))
	return append(out, frame...)
}

// errSkip: a frame the client has nothing to do with.
var errSkip = errors.New("skip")

// decode decodes a server frame into the y-websocket message it carries.
func (c *client) decode(data []byte) (syncproto.Message, error) {
	if !c.hocuspocus() {
		return syncproto.Decode(data)
	}
	m, err := syncproto.DecodeHP(data)
	if err != nil {
		return syncproto.Message{}, err
	}
	switch m.Type {
	case syncproto.HPSync, syncproto.HPSyncReply, syncproto.HPAwareness, syncproto.HPQueryAwareness:
		return m.Sync, nil
	case syncproto.HPAuth:
		if m.AuthType == syncproto.HPAuthPermissionDenied {
			return syncproto.Message{Type: syncproto.TypeAuth, Reason: m.Text}, nil
		}
	case syncproto.HPPing:
		c.wmu.Lock()
		err := c.conn.WriteMessage(2, syncproto.HPPongFrame)
		c.wmu.Unlock()
		if err != nil {
			return syncproto.Message{}, err
		}
	case syncproto.HPClose:
		return syncproto.Message{}, errors.New("document closed by the server: " + m.Text)
	}
	return syncproto.Message{}, errSkip
}
