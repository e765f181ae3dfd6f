package shareddoc

import (
	"context"
	"errors"
	"time"

	"github.com/ysync/ysync/crdt"
)

// Store is the persistence a document needs; package store's Postgres and Memory implement it.
// Methods are called from storage goroutines, never from a document's loop while it serves
// sessions; the exceptions are Load (before the document serves anyone) and the final Compact
// (after it stopped serving).
type Store interface {
	// Load returns the newest checkpoint (nil if none), the updates appended after it in append
	// order, and the seq of the last of them (0 for a document never stored).
	Load(ctx context.Context, name string) (checkpoint []byte, updates [][]byte, seq int64, err error)
	// Append durably stores one update and returns its seq; nil error means it is on disk.
	// Concurrent appends may be committed together.
	Append(ctx context.Context, name string, update []byte) (seq int64, err error)
	// Compact stores state, which contains every update with seq <= uptoSeq, as the checkpoint
	// and deletes those updates.
	Compact(ctx context.Context, name string, state []byte, uptoSeq int64) error
}

// Peer is a connected session as the document sees it. Both methods are called from the document's
// goroutine and must never block.
type Peer interface {
	// Send queues one encoded frame. It returns false when the frame would take the peer over its
	// outbound byte budget; the document then detaches the peer and closes it with CloseSlow.
	// Frames are delivered in the order Send was called.
	Send(frame []byte) bool
	// Close closes the peer with the given reason (idempotent, asynchronous). The document has
	// already detached it.
	Close(reason CloseReason, err error)
}

// Acker is implemented by a Peer whose protocol acknowledges each update it sends (Hocuspocus's
// SyncStatus). For such a peer the document calls Ack(true) instead of echoing the update back
// once it is stored, and Ack(false) when it refuses one (too large) instead of sending a
// permission-denied frame; exactly once per non-empty update it received from the peer, in the
// order received, unless it closes the peer. (An empty update, the V1 "0 0" or nothing, gets
// neither an echo nor an Ack.) Called from the document's goroutine; must not block. It reports
// false like Send when over budget.
type Acker interface {
	Ack(ok bool) bool
}

// Pauser is implemented by a Peer that can stop reading its connection. The document calls
// Pause when it holds the peer's messages because the store is behind (backlog.go), and Resume
// once they went through or were dropped; calls come in pairs, from the document's goroutine,
// and must not block. A paused peer stops reading, so its client's sends back up in TCP; what
// it had already handed to Receive is still held by the document in order, so correctness does
// not depend on the pause taking effect at once. A connection shared by several documents
// (Hocuspocus) stays paused while any of them has it paused.
type Pauser interface {
	Pause()
	Resume()
}

// CloseReason says why the document closed a peer. Session maps reasons to WebSocket close
// codes; shareddoc only knows what happened.
type CloseReason int

// Reasons a document closes a peer.
const (
	// CloseSlow: the peer fell behind its outbound budget; it reconnects with a fresh sync.
	CloseSlow CloseReason = iota + 1
	// CloseBadUpdate: the peer sent an update or awareness message the document cannot apply.
	CloseBadUpdate
	// CloseShutdown: the server is stopping.
	CloseShutdown
	// CloseInternal: the document failed (load error, storage given up).
	CloseInternal
	// CloseBacklog: the peer's update was held because the unstored bytes of the document or
	// the process are over budget (the store is away), and the store did not catch up within
	// Config.MaxBacklogWait (or the peer held too much); it should retry later (backlog.go).
	CloseBacklog
)

func (r CloseReason) String() string {
	switch r {
	case CloseSlow:
		return "slow"
	case CloseBadUpdate:
		return "bad update"
	case CloseShutdown:
		return "shutdown"
	case CloseInternal:
		return "internal error"
	case CloseBacklog:
		return "storage backlog"
	}
	return "unknown"
}

// SessionInfo describes a session attached to a document.
type SessionInfo struct {
	ID   string
	User string
	// Subject is the authenticated user (the token's subject); empty on a server without
	// authentication. Awareness client ids one session introduced may be taken over only by a
	// session of the same subject (awareness.go).
	Subject     string
	Remote      string
	ConnectedAt time.Time
	// Protocol names the session's wire protocol for the admin API ("y-websocket",
	// "hocuspocus"); empty means y-websocket.
	Protocol string
	// Meta is what Hooks.OnJoin returned for this session.
	Meta any
}

// Hooks let the layers above (auth, workflow documents) take part in a document's life. Every
// field is optional.
type Hooks struct {
	// OnJoin runs on the joining session's goroutine before it is attached. An error refuses the
	// join. The returned meta is kept in SessionInfo.Meta.
	OnJoin func(ctx context.Context, doc, user string) (meta any, err error)
	// OnLeave runs on the leaving session's goroutine after it was detached.
	OnLeave func(doc string, info SessionInfo)
	// LoadState runs on the document's goroutine after the stored updates were applied and
	// before anyone is served: it may fill the document from elsewhere (a workflow's tables).
	// Updates it makes are stored like any server-side edit.
	LoadState func(ctx context.Context, name string, doc *crdt.Doc) error
	// StoreState runs on the document's goroutine after its final flush, before it unloads, with
	// the whole state encoded as an update.
	StoreState func(ctx context.Context, name string, state []byte) error
	// OnStored runs on the document's goroutine after a batch of its updates was stored, with
	// the highest seq stored so far (webhooks). It must not block.
	OnStored func(doc string, seq int64)
	// OnUnload runs on the document's goroutine as it ends, after its final flush; not for a
	// document whose load failed. It must not block.
	OnUnload func(doc string)
}

// Errors.
var (
	// ErrClosed: the document or registry is stopped (or stopping).
	ErrClosed = errors.New("shareddoc: closed")
	// ErrNotFound is wrapped by a Hooks.LoadState error that means the document must not exist
	// (a workflow id the tables do not know): its sessions are closed for good, not retried.
	ErrNotFound = errors.New("shareddoc: document not found")
	// ErrJoinRefused wraps the error of a Hooks.OnJoin that refused a session.
	ErrJoinRefused = errors.New("shareddoc: join refused")
	// ErrUnknownSession: the session is not attached to the document.
	ErrUnknownSession = errors.New("shareddoc: unknown session")
)
