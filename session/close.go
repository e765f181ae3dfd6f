package session

import (
	"fmt"

	"github.com/ysync/ysync/shareddoc"
)

// CloseCode is a WebSocket close status code.
type CloseCode int

// Disconnect is one row of the close-code table: the code sent in the close frame, the reason
// text, whether the client should reconnect, and whether frames still queued are delivered
// before the close frame.
//
// Reconnect semantics follow y-websocket's default shouldReconnect: codes 4400–4499 are permanent
// (the client stops reconnecting), everything else is transient, 4500–4599 meaning "try again".
type Disconnect struct {
	Code      CloseCode
	Reason    string
	Reconnect bool
	// Flush delivers what is queued before the close frame. False for a peer that is slow,
	// broken or hostile: nothing more is worth sending it.
	Flush bool
	// NoCloseFrame is set when the connection is already gone or the peer closed first (gorilla
	// answered its close frame).
	NoCloseFrame bool
}

// The close-code table. Every close a session makes uses one of these rows.
var (
	// 1000: the peer closed, or the server ended the session normally.
	DisconnectNormal = Disconnect{Code: 1000, Reason: "normal closure", Reconnect: true, Flush: true}
	// 1000 without a close frame of our own: the peer closed first.
	DisconnectPeerClosed = Disconnect{Code: 1000, Reason: "peer closed", Reconnect: true, NoCloseFrame: true}
	// 1001: the server is shutting down (clients reconnect to another instance or later).
	DisconnectGoingAway = Disconnect{Code: 1001, Reason: "server shutting down", Reconnect: true, Flush: true}
	// 1003: a text frame or a message type the server does not handle.
	DisconnectUnsupported = Disconnect{Code: 1003, Reason: "unsupported message", Reconnect: true}
	// 1006-like: read or write failed, or the keep-alive timed out; no close frame can be sent.
	DisconnectBroken = Disconnect{Code: 1006, Reason: "connection broken", Reconnect: true, NoCloseFrame: true}
	// 1007: a frame, update or awareness message that does not decode or apply.
	DisconnectBadData = Disconnect{Code: 1007, Reason: "malformed message", Reconnect: true}
	// 1008: refused by policy (a join hook said no).
	DisconnectPolicy = Disconnect{Code: 1008, Reason: "policy violation", Reconnect: true, Flush: true}
	// 1009: a message over the read limit.
	DisconnectTooBig = Disconnect{Code: 1009, Reason: "message too big", Reconnect: true}
	// 1011: the document failed on the server (load error, storage given up).
	DisconnectInternal = Disconnect{Code: 1011, Reason: "internal error", Reconnect: true, Flush: true}
	// 4401, 4403: not authenticated / not allowed; reconnecting cannot help.
	DisconnectUnauthorized = Disconnect{Code: 4401, Reason: "unauthorized", Flush: true}
	DisconnectForbidden    = Disconnect{Code: 4403, Reason: "forbidden", Flush: true}
	// 4408: no sync handshake within the handshake timeout (not a Yjs client); permanent.
	DisconnectHandshakeTimeout = Disconnect{Code: 4408, Reason: "handshake timeout"}
	// 4429: over the message or byte rate for longer than the limiter allows; permanent, so a
	// runaway client does not reconnect in a loop.
	DisconnectFlood = Disconnect{Code: 4429, Reason: "too many messages"}
	// 4404: the document does not exist (an unknown workflow id); permanent.
	DisconnectNotFound = Disconnect{Code: 4404, Reason: "document not found"}
	// 4409: terminated by an administrator (DELETE /api/sessions/{id}); permanent.
	DisconnectTerminated = Disconnect{Code: 4409, Reason: "session terminated", Flush: true}
	// 4508: the session fell behind its outbound budget; reconnect for a fresh sync.
	DisconnectSlow = Disconnect{Code: 4508, Reason: "slow consumer", Reconnect: true}
	// 1013: the document's storage is behind (the database is away) and its budget of unstored
	// bytes is spent; the edit was not applied. y-websocket reconnects with backoff and sends it
	// again with its sync.
	DisconnectBacklog = Disconnect{Code: 1013, Reason: "try again later: storage backlog", Reconnect: true, Flush: true}
	// 1013: the server holds --max-loaded-docs documents and none of them is idle, so this one
	// cannot be loaded now (shareddoc.ErrTooManyDocuments); y-websocket retries with backoff.
	DisconnectTooManyDocs = Disconnect{Code: 1013, Reason: "try again later: too many documents", Reconnect: true, Flush: true}
)

// ForReason maps a document's close reason to the table.
func ForReason(r shareddoc.CloseReason) Disconnect {
	switch r {
	case shareddoc.CloseSlow:
		return DisconnectSlow
	case shareddoc.CloseBadUpdate:
		return DisconnectBadData
	case shareddoc.CloseShutdown:
		return DisconnectGoingAway
	case shareddoc.CloseBacklog:
		return DisconnectBacklog
	case shareddoc.CloseDeleted:
		return DisconnectNotFound
	}
	return DisconnectInternal
}

func (d Disconnect) String() string { return fmt.Sprintf("%d %s", d.Code, d.Reason) }
