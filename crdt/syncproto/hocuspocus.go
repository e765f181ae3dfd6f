package syncproto

import (
	"encoding/binary"
	"fmt"

	"github.com/ysync/ysync/crdt/encoding"
)

// # The Hocuspocus framing
//
// @hocuspocus/provider (v2, v3, v4) multiplexes many documents over one WebSocket. Every binary
// message is
//
//	key: var-string (the document name; a v4 provider with sessionAwareness sends
//	     "name\x00sessionId")
//	type: var-uint, then a body that depends on the type:
//
//	0 sync            as y-websocket: syncType var-uint, then one var-uint8-array
//	1 awareness       one var-uint8-array (an awareness update)
//	2 auth            authType var-uint
//	                    0 Token             client → server: var-string token (v4 adds a
//	                                        var-string provider version); server → client: no
//	                                        body, "send me a fresh token"
//	                    1 PermissionDenied  var-string reason
//	                    2 Authenticated     var-string scope ("read-write" or "readonly")
//	3 query awareness no body
//	4 sync reply      a sync message that must not trigger another SyncStep1
//	5 stateless       one var-string
//	6 broadcast stateless  one var-string (server-side extensions only)
//	7 close           var-string reason (server → client); no body from the client
//	8 sync status     var-uint: 1 the update was applied, 0 it was refused
//
// and, in v4 only, two connection-level messages without a key: the single bytes 9 (Ping, server
// → client) and 10 (Pong, the answer). (A keyed frame can never be one byte long: a key of
// length 9 or 10 needs its bytes.)
//
// Sync, awareness, query awareness and stateless bodies are byte-for-byte those of y-websocket
// types 0, 1, 3 and 5 (a var-string is a var-uint8-array), so a y-websocket frame becomes a
// Hocuspocus frame by prefixing the key; only auth differs (HPFromYWS).

// HPType is a Hocuspocus message type.
type HPType uint64

// Hocuspocus message types (@hocuspocus/server types.ts MessageType).
const (
	HPSync               HPType = 0
	HPAwareness          HPType = 1
	HPAuth               HPType = 2
	HPQueryAwareness     HPType = 3
	HPSyncReply          HPType = 4
	HPStateless          HPType = 5
	HPBroadcastStateless HPType = 6
	HPClose              HPType = 7
	HPSyncStatus         HPType = 8
	HPPing               HPType = 9
	HPPong               HPType = 10
)

func (t HPType) String() string {
	switch t {
	case HPSync:
		return "sync"
	case HPAwareness:
		return "awareness"
	case HPAuth:
		return "auth"
	case HPQueryAwareness:
		return "query-awareness"
	case HPSyncReply:
		return "sync-reply"
	case HPStateless:
		return "stateless"
	case HPBroadcastStateless:
		return "broadcast-stateless"
	case HPClose:
		return "close"
	case HPSyncStatus:
		return "sync-status"
	case HPPing:
		return "ping"
	case HPPong:
		return "pong"
	}
	return fmt.Sprintf("type(%d)", uint64(t))
}

// HPAuthType is the sub-type of a Hocuspocus auth message (@hocuspocus/common auth.ts).
type HPAuthType uint64

// Hocuspocus auth sub-types.
const (
	HPAuthToken            HPAuthType = 0
	HPAuthPermissionDenied HPAuthType = 1
	HPAuthAuthenticated    HPAuthType = 2
)

// Scopes of an Authenticated message.
const (
	HPScopeReadWrite = "read-write"
	HPScopeReadOnly  = "readonly"
)

// HPMessage is one decoded Hocuspocus message.
type HPMessage struct {
	// Key is the document key (empty for Ping and Pong).
	Key  string
	Type HPType
	// Sync holds a sync (HPSync, HPSyncReply), awareness or query-awareness message as the
	// y-websocket Message it also is (Type, SyncType and Payload set). Its Payload aliases the
	// frame.
	Sync Message
	// AuthType is the sub-type of an auth message.
	AuthType HPAuthType
	// Text is the token (auth Token; empty when the server asks for one), the reason
	// (PermissionDenied, Close), the scope (Authenticated) or the stateless payload.
	Text string
	// Version is the provider version a v4 provider appends to its Token message; empty for v2
	// and v3 (and "unknown" for a v4 built without one).
	Version string
	// HasVersion reports that the Token message carried a version (a v4 provider).
	HasVersion bool
	// Status is the value of a sync-status message.
	Status uint64
	// Trailing counts ignored bytes after the message (as the JavaScript readers ignore them).
	Trailing int
}

// DecodeHP parses one Hocuspocus frame. Like Decode it never panics and never allocates in
// proportion to a length prefix. Errors wrap ErrMalformed; an unknown type wraps ErrUnknownType
// (the returned message then has Key and Type set).
func DecodeHP(frame []byte) (HPMessage, error) {
	var m HPMessage
	if len(frame) == 0 {
		return m, ErrEmpty
	}
	if len(frame) == 1 && (frame[0] == byte(HPPing) || frame[0] == byte(HPPong)) {
		m.Type = HPType(frame[0])
		return m, nil
	}
	d := encoding.NewDecoder(frame)
	m.Key = d.ReadVarString()
	m.Type = HPType(d.ReadVarUint())
	if d.Err() != nil {
		return m, truncated(d.Err())
	}
	switch m.Type {
	case HPSync, HPSyncReply:
		m.Sync.Type = TypeSync
		m.Sync.SyncType = SyncType(d.ReadVarUint())
		if d.Err() != nil {
			return m, truncated(d.Err())
		}
		if m.Sync.SyncType > SyncUpdate {
			return m, fmt.Errorf("%w %d", ErrUnknownSyncType, uint64(m.Sync.SyncType))
		}
		m.Sync.Payload = d.ReadVarUint8Array()
	case HPAwareness:
		m.Sync.Type = TypeAwareness
		m.Sync.Payload = d.ReadVarUint8Array()
	case HPQueryAwareness:
		m.Sync.Type = TypeQueryAwareness
	case HPAuth:
		m.AuthType = HPAuthType(d.ReadVarUint())
		if d.Err() != nil {
			return m, truncated(d.Err())
		}
		switch m.AuthType {
		case HPAuthToken:
			if d.Remaining() > 0 { // a server's token request has no body
				m.Text = d.ReadVarString()
			}
			if d.Err() == nil && d.Remaining() > 0 {
				m.Version, m.HasVersion = d.ReadVarString(), true
			}
		case HPAuthPermissionDenied, HPAuthAuthenticated:
			m.Text = d.ReadVarString()
		default:
			return m, fmt.Errorf("%w %d", ErrUnknownAuthType, uint64(m.AuthType))
		}
	case HPStateless, HPBroadcastStateless:
		m.Text = d.ReadVarString()
	case HPClose:
		if d.Remaining() > 0 { // the provider's close has no reason
			m.Text = d.ReadVarString()
		}
	case HPSyncStatus:
		m.Status = d.ReadVarUint()
	default:
		return m, fmt.Errorf("%w %d", ErrUnknownType, uint64(m.Type))
	}
	if err := d.Err(); err != nil {
		m.Sync.Payload = nil
		return m, truncated(err)
	}
	if len(m.Sync.Payload) == 0 {
		m.Sync.Payload = nil
	}
	m.Trailing = d.Remaining()
	return m, nil
}

// AppendHPKey appends the key prefix every keyed frame starts with.
func AppendHPKey(dst []byte, key string) []byte {
	dst = grow(dst, uvarintLen(len(key))+len(key))
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	return append(dst, key...)
}

func appendVarString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// HPFromYWS translates a frame of the y-websocket protocol (as a document sends it to its
// peers) into the Hocuspocus frame for key. Sync, awareness, query awareness and the application
// channel (type 5, which becomes Stateless) only get the key; an auth PermissionDenied becomes
// the Hocuspocus PermissionDenied. ok is false for a frame that has no Hocuspocus form (which a
// caller drops).
func HPFromYWS(key string, frame []byte) (out []byte, ok bool) {
	if len(frame) == 0 {
		return nil, false
	}
	switch Type(frame[0]) {
	case TypeSync, TypeAwareness, TypeQueryAwareness, TypeRPC:
		out = make([]byte, 0, uvarintLen(len(key))+len(key)+len(frame))
		out = AppendHPKey(out, key)
		return append(out, frame...), true
	case TypeAuth:
		m, err := Decode(frame)
		if err != nil || m.AuthType != AuthPermissionDenied {
			return nil, false
		}
		return EncodeHPPermissionDenied(key, m.Reason), true
	}
	return nil, false
}

func hpText(key string, t HPType, sub int, text string) []byte {
	out := make([]byte, 0, uvarintLen(len(key))+len(key)+3+uvarintLen(len(text))+len(text))
	out = AppendHPKey(out, key)
	out = append(out, byte(t))
	if sub >= 0 {
		out = append(out, byte(sub))
	}
	return appendVarString(out, text)
}

// EncodeHPAuthenticated returns the server's Authenticated message with scope.
func EncodeHPAuthenticated(key, scope string) []byte {
	return hpText(key, HPAuth, int(HPAuthAuthenticated), scope)
}

// EncodeHPPermissionDenied returns a PermissionDenied message with reason.
func EncodeHPPermissionDenied(key, reason string) []byte {
	return hpText(key, HPAuth, int(HPAuthPermissionDenied), reason)
}

// EncodeHPToken returns the provider's Token message (the client side, for tests and the load
// generator). A non-empty version makes it a v4 provider's.
func EncodeHPToken(key, token, version string) []byte {
	out := hpText(key, HPAuth, int(HPAuthToken), token)
	if version != "" {
		out = appendVarString(out, version)
	}
	return out
}

// EncodeHPTokenRequest returns the server's request for a fresh token (auth Token, no body).
func EncodeHPTokenRequest(key string) []byte {
	return append(AppendHPKey(nil, key), byte(HPAuth), byte(HPAuthToken))
}

// EncodeHPStateless returns a stateless message carrying payload.
func EncodeHPStateless(key, payload string) []byte { return hpText(key, HPStateless, -1, payload) }

// EncodeHPClose returns the server's close message for one document (the socket stays open).
func EncodeHPClose(key, reason string) []byte { return hpText(key, HPClose, -1, reason) }

// EncodeHPSyncStatus returns a sync-status message: ok means the update is applied (in ysync:
// durably stored).
func EncodeHPSyncStatus(key string, ok bool) []byte {
	v := byte(0)
	if ok {
		v = 1
	}
	return append(AppendHPKey(nil, key), byte(HPSyncStatus), v)
}

// EncodeHP returns the Hocuspocus frame of a y-websocket message m for key (the client side:
// SyncStep1, updates, awareness).
func EncodeHP(key string, m Message) ([]byte, error) {
	return Append(AppendHPKey(nil, key), m)
}

// HPPingFrame and HPPongFrame are v4's connection-level keep-alive messages.
var (
	HPPingFrame = []byte{byte(HPPing)}
	HPPongFrame = []byte{byte(HPPong)}
)
