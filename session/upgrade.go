package session

import (
	"bufio"
	"net"
	"net/http"

	"github.com/gorilla/websocket"
)

// ReadBufferSize is gorilla's per-connection read buffer (Upgrade); a parked reader gives it
// back (park.go), other connections hold it for their lifetime. It needs to hold a frame header
// (at most 14 bytes) and a control frame (at most 131 bytes): typed edits and awareness updates (tens of bytes) still arrive in one read, and a bigger message is
// read straight into the message, bypassing the buffer. 1 KiB cost ~1 KiB per idle connection
// for nothing (docs/load.md, "Issue 14 results"). It is more than 256 bytes because gorilla
// reads through the buffered reader the hijack returns only when that one is bigger than 256
// (Upgrade); 288 is the allocator's size class above 256.
const ReadBufferSize = 288

// Upgrade upgrades the request with u as u.Upgrade does, and also returns the *bufio.Reader the
// connection reads from, which gorilla does not expose: a Client needs it to park its reader
// between messages (ParkWhenIdle). It has gorilla reuse a reader of ReadBufferSize bytes made
// here, through the Hijacker gorilla calls; u.ReadBufferSize must be 0 for gorilla to take it.
// br is nil when gorilla did not (the client sent data before the handshake completed: gorilla
// refuses that).
func Upgrade(u *websocket.Upgrader, w http.ResponseWriter, r *http.Request) (*websocket.Conn, *bufio.Reader, error) {
	h := &ownReader{ResponseWriter: w}
	conn, err := u.Upgrade(h, r, nil)
	if err != nil {
		return nil, nil, err
	}
	return conn, h.br, nil
}

// ownReader is the ResponseWriter gorilla upgrades through (Upgrade).
type ownReader struct {
	http.ResponseWriter
	br *bufio.Reader
}

// Hijack hijacks the connection and swaps in a read buffer of ReadBufferSize bytes, unless the
// server's own buffer holds bytes already (those would be lost; gorilla refuses them).
func (o *ownReader) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := o.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	nc, brw, err := hj.Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		return nc, brw, err
	}
	o.br = bufio.NewReaderSize(nc, ReadBufferSize)
	return nc, bufio.NewReadWriter(o.br, brw.Writer), nil
}
