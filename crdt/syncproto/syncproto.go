// Package syncproto encodes and decodes the messages of the y-websocket protocol: the framing that
// the stock y-websocket provider (y-websocket/src/y-websocket.js) and the reference server
// (@y/websocket-server/src/utils.js) exchange, with the sync, awareness and auth sub-protocols of
// y-protocols (sync.js, awareness.js, auth.js).
//
// # Framing
//
// Every WebSocket binary message carries exactly one protocol message; y-websocket never packs
// several messages into one WebSocket message and never splits one across several. A message is
//
//	messageType: var-uint, then a body that depends on the type:
//
//	0 sync             syncType: var-uint, then one var-uint8-array
//	                     0 SyncStep1  the sender's encoded state vector   (sync.js writeSyncStep1)
//	                     1 SyncStep2  an update the receiver is missing   (sync.js writeSyncStep2)
//	                     2 Update     an incremental document update      (sync.js writeUpdate)
//	1 awareness        one var-uint8-array holding an awareness update    (awareness.js
//	                   encodeAwarenessUpdate; decoded by package crdt/awareness)
//	2 auth             authType: var-uint
//	                     0 PermissionDenied, then the reason as var-string (auth.js writePermissionDenied)
//	3 query awareness  no body; the receiver answers with the awareness states it knows
//	5 RPC              one var-string holding JSON (ysync's application channel, not part of
//	                   y-websocket; stock clients log and ignore it)
//
// var-uint is lib0's unsigned LEB128 (seven bits a byte, least significant first, high bit set on
// every byte but the last); var-uint8-array and var-string are a var-uint length followed by that
// many bytes. These are the formats of package crdt/encoding.
//
// # Trailing bytes
//
// The JavaScript readers (readSyncMessage, applyAwarenessUpdate's caller, readAuthMessage, the
// query-awareness handler) read what they need and silently ignore anything after it. Decode does
// the same so that it accepts every frame the reference accepts, but it reports the number of
// ignored bytes in Message.Trailing; a strict caller can reject frames with Trailing != 0. Encoders
// never produce trailing bytes.
//
// # Non-canonical integers
//
// lib0 accepts var-uints with redundant continuation bytes (0x80 0x00 for 0), and so does Decode.
// Re-encoding such a frame yields the canonical, shorter form.
package syncproto

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ysync/ysync/crdt/encoding"
)

// Type is the top-level message type, the first var-uint of a frame.
type Type uint64

// Message types. The numbers are those of y-websocket (messageSync, messageAwareness, messageAuth,
// messageQueryAwareness); TypeRPC is ysync's own.
const (
	TypeSync           Type = 0
	TypeAwareness      Type = 1
	TypeAuth           Type = 2
	TypeQueryAwareness Type = 3
	TypeRPC            Type = 5
)

// String returns the type's name.
func (t Type) String() string {
	switch t {
	case TypeSync:
		return "sync"
	case TypeAwareness:
		return "awareness"
	case TypeAuth:
		return "auth"
	case TypeQueryAwareness:
		return "query-awareness"
	case TypeRPC:
		return "rpc"
	}
	return fmt.Sprintf("type(%d)", uint64(t))
}

// SyncType is the sub-type of a sync message (y-protocols sync.js messageYjsSyncStep1,
// messageYjsSyncStep2, messageYjsUpdate).
type SyncType uint64

// Sync message sub-types.
const (
	SyncStep1  SyncType = 0
	SyncStep2  SyncType = 1
	SyncUpdate SyncType = 2
)

// String returns the sub-type's name.
func (s SyncType) String() string {
	switch s {
	case SyncStep1:
		return "step1"
	case SyncStep2:
		return "step2"
	case SyncUpdate:
		return "update"
	}
	return fmt.Sprintf("sync(%d)", uint64(s))
}

// AuthType is the sub-type of an auth message (y-protocols auth.js).
type AuthType uint64

// AuthPermissionDenied is auth.js messagePermissionDenied, the only auth message there is.
const AuthPermissionDenied AuthType = 0

// Errors reported by Decode. Errors about malformed input wrap ErrMalformed as well, so
// errors.Is(err, ErrMalformed) tells a broken frame from any other failure.
var (
	// ErrMalformed is wrapped by every error Decode returns.
	ErrMalformed = errors.New("syncproto: malformed message")
	// ErrEmpty is returned for a zero-length frame.
	ErrEmpty = fmt.Errorf("%w: empty frame", ErrMalformed)
	// ErrUnknownType is returned for a message type this package does not know. The returned
	// Message still has its Type set, so a caller may ignore such frames, as the reference server
	// does.
	ErrUnknownType = fmt.Errorf("%w: unknown message type", ErrMalformed)
	// ErrUnknownSyncType is returned for a sync message whose sub-type is not 0, 1 or 2
	// (readSyncMessage throws 'Unknown message type').
	ErrUnknownSyncType = fmt.Errorf("%w: unknown sync message type", ErrMalformed)
	// ErrUnknownAuthType is returned for an auth message whose sub-type is not 0. (readAuthMessage
	// ignores such messages silently; Decode reports them so that callers can.)
	ErrUnknownAuthType = fmt.Errorf("%w: unknown auth message type", ErrMalformed)
	// ErrTruncated is returned when the frame ends inside a value, including when a length prefix
	// is larger than the rest of the frame, or a var-uint does not fit in 53 bits.
	ErrTruncated = fmt.Errorf("%w: truncated or oversized field", ErrMalformed)
)

// Message is one decoded protocol message.
type Message struct {
	// Type is the top-level message type.
	Type Type
	// SyncType is the sub-type of a TypeSync message; zero otherwise.
	SyncType SyncType
	// AuthType is the sub-type of a TypeAuth message; zero otherwise.
	AuthType AuthType
	// Payload is the body's byte array: the encoded state vector (SyncStep1), the update
	// (SyncStep2, SyncUpdate), the awareness update (TypeAwareness) or the JSON text (TypeRPC).
	// It is nil for other types and for a zero-length array. Payload aliases the decoded frame:
	// copy it before the frame's buffer is reused.
	Payload []byte
	// Reason is the reason of an AuthPermissionDenied message. Invalid UTF-8 is replaced with
	// U+FFFD, as lib0's readVarString does.
	Reason string
	// Trailing counts the bytes after the message that the JavaScript reference would ignore and
	// Decode ignored too. It is not part of the message (encoders never emit trailing bytes).
	Trailing int
}

// Decode parses one frame (one WebSocket binary message). It never panics and never allocates in
// proportion to a length prefix: a prefix larger than the remaining bytes fails with ErrTruncated
// at once. On error the returned Message holds whatever was decoded before the failure (Type at
// least, when the frame was non-empty). See the package comment for trailing bytes.
func Decode(frame []byte) (Message, error) {
	var m Message
	if len(frame) == 0 {
		return m, ErrEmpty
	}
	d := encoding.NewDecoder(frame)
	m.Type = Type(d.ReadVarUint())
	if d.Err() != nil {
		return m, truncated(d.Err())
	}
	switch m.Type {
	case TypeSync:
		m.SyncType = SyncType(d.ReadVarUint())
		if d.Err() != nil {
			return m, truncated(d.Err())
		}
		if m.SyncType > SyncUpdate {
			return m, fmt.Errorf("%w %d", ErrUnknownSyncType, uint64(m.SyncType))
		}
		m.Payload = d.ReadVarUint8Array()
	case TypeAwareness, TypeRPC:
		m.Payload = d.ReadVarUint8Array()
	case TypeAuth:
		m.AuthType = AuthType(d.ReadVarUint())
		if d.Err() != nil {
			return m, truncated(d.Err())
		}
		if m.AuthType != AuthPermissionDenied {
			return m, fmt.Errorf("%w %d", ErrUnknownAuthType, uint64(m.AuthType))
		}
		m.Reason = d.ReadVarString()
	case TypeQueryAwareness:
	default:
		return m, fmt.Errorf("%w %d", ErrUnknownType, uint64(m.Type))
	}
	if err := d.Err(); err != nil {
		m.Payload = nil
		return m, truncated(err)
	}
	if len(m.Payload) == 0 {
		m.Payload = nil
	}
	m.Trailing = d.Remaining()
	return m, nil
}

func truncated(err error) error { return fmt.Errorf("%w (%v)", ErrTruncated, err) }

// Encode returns the frame for m, the inverse of Decode (Trailing is ignored). It fails only for a
// Type, SyncType or AuthType that Decode would reject.
func Encode(m Message) ([]byte, error) { return Append(nil, m) }

// Append appends the frame for m to dst; see Encode.
func Append(dst []byte, m Message) ([]byte, error) {
	switch m.Type {
	case TypeSync:
		if m.SyncType > SyncUpdate {
			return dst, fmt.Errorf("%w %d", ErrUnknownSyncType, uint64(m.SyncType))
		}
		return appendSync(dst, m.SyncType, m.Payload), nil
	case TypeAwareness:
		return AppendAwareness(dst, m.Payload), nil
	case TypeRPC:
		return AppendRPC(dst, m.Payload), nil
	case TypeAuth:
		if m.AuthType != AuthPermissionDenied {
			return dst, fmt.Errorf("%w %d", ErrUnknownAuthType, uint64(m.AuthType))
		}
		return AppendPermissionDenied(dst, m.Reason), nil
	case TypeQueryAwareness:
		return AppendQueryAwareness(dst), nil
	}
	return dst, fmt.Errorf("%w %d", ErrUnknownType, uint64(m.Type))
}

// uvarintLen returns the length of n as a var-uint. lib0's var-uint is the same unsigned LEB128 as
// encoding/binary's Uvarint, so the binary helpers write it.
func uvarintLen(n int) int {
	l := 1
	for n > 0x7f {
		n >>= 7
		l++
	}
	return l
}

// grow makes room for n more bytes in dst with at most one allocation.
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	out := make([]byte, len(dst), len(dst)+n)
	copy(out, dst)
	return out
}

// appendTyped appends the header bytes (each < 0x80, so one byte each) and then payload as a
// var-uint8-array.
func appendTyped(dst []byte, payload []byte, header ...byte) []byte {
	dst = grow(dst, len(header)+uvarintLen(len(payload))+len(payload))
	dst = append(dst, header...)
	dst = binary.AppendUvarint(dst, uint64(len(payload)))
	return append(dst, payload...)
}

func appendSync(dst []byte, t SyncType, payload []byte) []byte {
	return appendTyped(dst, payload, byte(TypeSync), byte(t))
}

// AppendSyncStep1 appends a SyncStep1 frame carrying the encoded state vector sv.
func AppendSyncStep1(dst, sv []byte) []byte { return appendSync(dst, SyncStep1, sv) }

// AppendSyncStep2 appends a SyncStep2 frame carrying update.
func AppendSyncStep2(dst, update []byte) []byte { return appendSync(dst, SyncStep2, update) }

// SyncStep2Reserve is how many free bytes FrameSyncStep2InPlace needs in front of an update: the
// message and sync types, and the longest varuint length.
const SyncStep2Reserve = 2 + binary.MaxVarintLen64

// FrameSyncStep2InPlace returns the SyncStep2 frame carrying buf[reserve:], with its header
// written into the end of buf[:reserve] (reserve >= SyncStep2Reserve): the same bytes as
// EncodeSyncStep2(buf[reserve:]) without copying the update. The result aliases buf.
func FrameSyncStep2InPlace(buf []byte, reserve int) []byte {
	if reserve < SyncStep2Reserve || reserve > len(buf) {
		return EncodeSyncStep2(buf[min(reserve, len(buf)):])
	}
	var hdr [SyncStep2Reserve]byte
	h := append(hdr[:0], byte(TypeSync), byte(SyncStep2))
	h = binary.AppendUvarint(h, uint64(len(buf)-reserve))
	start := reserve - len(h)
	copy(buf[start:reserve], h)
	return buf[start:]
}

// AppendUpdate appends a sync Update frame carrying update.
func AppendUpdate(dst, update []byte) []byte { return appendSync(dst, SyncUpdate, update) }

// AppendAwareness appends an awareness frame carrying the awareness update.
func AppendAwareness(dst, update []byte) []byte {
	return appendTyped(dst, update, byte(TypeAwareness))
}

// AppendQueryAwareness appends a query-awareness frame.
func AppendQueryAwareness(dst []byte) []byte { return append(dst, byte(TypeQueryAwareness)) }

// AppendPermissionDenied appends an auth PermissionDenied frame with reason.
func AppendPermissionDenied(dst []byte, reason string) []byte {
	dst = grow(dst, 2+uvarintLen(len(reason))+len(reason))
	dst = append(dst, byte(TypeAuth), byte(AuthPermissionDenied))
	dst = binary.AppendUvarint(dst, uint64(len(reason)))
	return append(dst, reason...)
}

// AppendRPC appends an RPC frame carrying the JSON text js (not validated).
func AppendRPC(dst, js []byte) []byte { return appendTyped(dst, js, byte(TypeRPC)) }

// EncodeSyncStep1 returns a SyncStep1 frame: the answer to it is a SyncStep2 with what the sender
// of sv is missing (sync.js writeSyncStep1 after messageSync).
func EncodeSyncStep1(sv []byte) []byte { return AppendSyncStep1(nil, sv) }

// EncodeSyncStep2 returns a SyncStep2 frame (sync.js writeSyncStep2 after messageSync).
func EncodeSyncStep2(update []byte) []byte { return AppendSyncStep2(nil, update) }

// EncodeUpdate returns a sync Update frame (sync.js writeUpdate after messageSync), the message the
// reference server broadcasts for every document change. The result is allocated at its exact size
// and may be shared by all recipients.
func EncodeUpdate(update []byte) []byte { return AppendUpdate(nil, update) }

// EncodeAwareness returns an awareness frame carrying an awareness update (as produced by package
// crdt/awareness or awareness.js encodeAwarenessUpdate).
func EncodeAwareness(update []byte) []byte { return AppendAwareness(nil, update) }

// EncodeQueryAwareness returns the one-byte query-awareness frame.
func EncodeQueryAwareness() []byte { return AppendQueryAwareness(nil) }

// EncodePermissionDenied returns an auth PermissionDenied frame (auth.js writePermissionDenied
// after messageAuth). y-websocket's provider hands reason to its permissionDeniedHandler.
func EncodePermissionDenied(reason string) []byte { return AppendPermissionDenied(nil, reason) }

// EncodeRPC returns an RPC frame carrying the JSON text js.
func EncodeRPC(js []byte) []byte { return AppendRPC(nil, js) }
