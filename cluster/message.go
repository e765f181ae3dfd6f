package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Messages on a document's channel. Bytes from Redis are untrusted: anyone who can publish on the
// server can send anything, so Decode checks everything and never panics (FuzzDecode).
//
//	byte    version (1)
//	byte    kind: 1 update, 2 awareness, 3 awareness query
//	uvarint length of the sending node's id, then the id (UTF-8, 1..MaxNodeIDLen bytes)
//	kind 1: uvarint seq (>= 1), then the update: the rest of the message (non-empty)
//	kind 2: the awareness update: the rest of the message (non-empty)
//	kind 3: nothing
const wireVersion = 1

// Kinds of message.
const (
	KindUpdate         = 1
	KindAwareness      = 2
	KindAwarenessQuery = 3
)

// MaxNodeIDLen is the longest node id accepted.
const MaxNodeIDLen = 128

// Message is one decoded relay message.
type Message struct {
	Kind int
	Node string
	Seq  int64  // KindUpdate
	Data []byte // update or awareness update; aliases the decoded bytes
}

// ErrMalformed is wrapped by every Decode error.
var ErrMalformed = errors.New("cluster: malformed relay message")

// Encode appends the wire form of m to dst.
func Encode(dst []byte, m Message) []byte {
	dst = append(dst, wireVersion, byte(m.Kind))
	dst = binary.AppendUvarint(dst, uint64(len(m.Node)))
	dst = append(dst, m.Node...)
	if m.Kind == KindUpdate {
		dst = binary.AppendUvarint(dst, uint64(m.Seq))
	}
	if m.Kind != KindAwarenessQuery {
		dst = append(dst, m.Data...)
	}
	return dst
}

// Decode parses one message. Data aliases b.
func Decode(b []byte) (Message, error) {
	var m Message
	if len(b) < 2 {
		return m, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	if b[0] != wireVersion {
		return m, fmt.Errorf("%w: version %d", ErrMalformed, b[0])
	}
	m.Kind = int(b[1])
	rest := b[2:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n == 0 || n > MaxNodeIDLen || n > uint64(len(rest)-k) {
		return Message{}, fmt.Errorf("%w: bad node id length", ErrMalformed)
	}
	rest = rest[k:]
	m.Node, rest = string(rest[:n]), rest[n:]
	if !utf8.ValidString(m.Node) {
		return Message{}, fmt.Errorf("%w: node id is not UTF-8", ErrMalformed)
	}
	switch m.Kind {
	case KindUpdate:
		seq, k := binary.Uvarint(rest)
		if k <= 0 || seq == 0 || seq > 1<<62 {
			return Message{}, fmt.Errorf("%w: bad seq", ErrMalformed)
		}
		m.Seq, rest = int64(seq), rest[k:]
		fallthrough
	case KindAwareness:
		if len(rest) == 0 {
			return Message{}, fmt.Errorf("%w: empty payload", ErrMalformed)
		}
		m.Data = rest
	case KindAwarenessQuery:
		if len(rest) != 0 {
			return Message{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rest))
		}
	default:
		return Message{}, fmt.Errorf("%w: kind %d", ErrMalformed, m.Kind)
	}
	return m, nil
}
