package session

import (
	"bufio"

	"github.com/gorilla/websocket"
)

// Parking: an idle connection keeps no goroutine. Between messages, when gorilla's read buffer
// is empty and the socket has nothing to read, the reader registers the socket with a poller
// (one epoll instance and one goroutine for the whole process, park_linux.go) and its goroutine
// ends (at once after the handshake; after an edit or awareness update only once the peer has
// been quiet for parkAfter, see park_linux.go): a parked connection costs its structures and no stack. Readable data, the read
// deadline (a timer), or the session's close starts a new goroutine that reads on from where
// the old one stopped. Gorilla's Conn does not mind which goroutine calls ReadMessage, one at a
// time, and a reader only parks between messages, so no frame is ever split across readers.
//
// Pings and pongs are what an idle connection mostly receives (the keep-alive wheel pings each
// one), and gorilla handles a control frame inside ReadMessage and then waits there for the
// next data frame, with the deep stack parking is meant to avoid. So at a message boundary the
// reader looks at the next bytes itself (idleStep): a complete, well-formed ping or pong is
// consumed and answered here; anything else (a data frame, a close, a control frame not all
// there yet, anything malformed) goes to gorilla as before, which reports what is wrong.
//
// Parking needs the *bufio.Reader gorilla reads from (to know it is empty; the server's
// upgrade hands it over, ParkWhenIdle) and a raw TCP socket; otherwise the reader blocks in
// ReadMessage as it always did (TLS, test fakes, other systems than Linux).
//
// Both kinds of connection park this way: a y-websocket Client and a Hocuspocus HPSocket embed
// connCore, which has the parking state and does all of the above; each owner only has its read
// loop (connOwner, which a woken reader goes on with), its ping answer (pk.ping) and what counts
// as busy. A HPSocket's reader parks between frames of any of its documents, the socket's
// keep-alive wheel ending its linger (hocuspocus_wheel.go) as the y-websocket keep-alive does
// (keepalive.go).

// idleStep's verdicts.
const (
	stepRead    = iota // something other than a ping or pong is there, or may be: ReadMessage
	stepControl        // a ping or pong was handled: look again
	stepPark           // parked: the goroutine must return at once
)

// maxControlFrame is the longest control frame a client may send: 2 header bytes, the 4-byte
// mask key, at most 125 payload bytes.
const maxControlFrame = 2 + 4 + 125

// ParkWhenIdle lets the reader park between messages (see above); br is the buffered reader
// the connection's gorilla Conn reads from (Upgrade). Call it before Serve or Run. A Client and
// a HPSocket both have it, through the connCore they embed.
func (k *connCore) ParkWhenIdle(br *bufio.Reader) { k.pk.br = br }

// controlFrameLen returns the length of the complete ping or pong frame at the start of p as
// a client must send it (final, no reserved bits, masked, payload of at most 125 bytes), or 0
// when p does not start with one.
func controlFrameLen(p []byte) int {
	if len(p) < 2 {
		return 0
	}
	op := int(p[0] & 0x0f)
	if p[0]&0xf0 != 0x80 || (op != websocket.PingMessage && op != websocket.PongMessage) || p[1]&0x80 == 0 {
		return 0
	}
	n := 6 + int(p[1]&0x7f)
	if n > maxControlFrame || len(p) < n {
		return 0
	}
	return n
}

// handleControl does what gorilla does with the control frame f (controlFrameLen(f) ==
// len(f)): a pong extends the read deadline, a ping is answered by the writer (pingHandler).
func (k *connCore) handleControl(f []byte) {
	if int(f[0]&0x0f) == websocket.PongMessage {
		k.extendDeadline()
		return
	}
	var payload [maxControlFrame - 6]byte
	n := copy(payload[:], f[6:])
	for i := range n {
		payload[i] ^= f[2+i%4]
	}
	_ = k.pk.ping(string(payload[:n]))
}
