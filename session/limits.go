package session

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ysync/ysync/crdt/encoding"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/shareddoc"
)

// ReasonReadOnly is the reason of the permission-denied auth message a read-only session gets for
// an edit the server did not apply.
const ReasonReadOnly = "read-only"

// FrameLimiter paces the frames one connection sends (*limits.ConnLimiter implements it). Admit
// accounts for one frame at now and returns how long the reader must wait before handling it, or
// ok=false when the connection is flooding and must be closed.
type FrameLimiter interface {
	Admit(frameBytes int, now time.Time) (wait time.Duration, ok bool)
}

// Trust is what the server decided about a connection before upgrading it: what it may do, until
// when, and how fast. The zero value is a writable session without limits or expiry.
type Trust struct {
	// Permission is the session's permission on its document as a label ("read", "write",
	// "admin"), for the RPC layer and logs. Empty means "write".
	Permission string
	// ReadOnly sessions sync and take part in awareness, but their SyncStep2 and Update frames
	// are never applied: an Update is answered with a permission-denied auth message
	// (ReasonReadOnly), a SyncStep2 (the client's reply to the server's SyncStep1, carrying its
	// own state) is dropped, and denied too when it carries new structs. The session stays open.
	ReadOnly bool
	// ExpiresAt is when the session's credentials stop being valid: the session is closed then
	// with 4401 and CanWrite reports false from that moment. Zero means never.
	ExpiresAt time.Time
	// Limiter paces inbound frames (message and byte rates). Nil admits everything.
	Limiter FrameLimiter
	// HandshakeTimeout closes a session that has not sent a sync message (y-websocket sends
	// SyncStep1 as soon as the socket opens) within this time of joining: 4408. Zero means none.
	HandshakeTimeout time.Duration
}

// TrustStats count what the trust checks did, for /metrics.
type TrustStats struct {
	ThrottledFrames   atomic.Int64 // frames the reader held back for the rate limit
	RateLimitCloses   atomic.Int64 // 4429
	DeniedWrites      atomic.Int64 // read-only edits answered with permission-denied
	ExpiredCloses     atomic.Int64 // 4401 when the token expired
	HandshakeTimeouts atomic.Int64 // 4408
}

// trustState is the per-session state of the trust checks.
type trustState struct {
	synced    atomic.Bool     // a sync message arrived: the handshake is done
	expiry    shareddoc.Timer // closes the session when its credentials expire; nil without
	handshake shareddoc.Timer // closes it without a sync message in time; nil without, or once one came
}

// Permission returns the session's permission label ("read", "write" or "admin").
func (c *Client) Permission() string {
	switch {
	case c.cfg.Trust.Permission != "":
		return c.cfg.Trust.Permission
	case c.cfg.Trust.ReadOnly:
		return "read"
	}
	return "write"
}

// CanWrite reports whether the session may change its document now: it is not read-only and its
// credentials have not expired. The RPC layer calls it on every save and reset, so an expired
// token stops writing even in the moment before the session is closed.
func (c *Client) CanWrite() bool {
	if c.cfg.Trust.ReadOnly {
		return false
	}
	exp := c.cfg.Trust.ExpiresAt
	return exp.IsZero() || c.cfg.Clock.Now().Before(exp)
}

// admit applies the rate limit to one inbound frame: it waits as long as the limiter says (the
// socket is not read meanwhile, so TCP pushes back on the client) and reports false when the
// connection was closed instead (flooding: 4429; or the session ended while waiting).
// For a Hocuspocus socket the limiter paces the whole socket.
func (k *connCore) admit(ctx context.Context, n int) bool {
	lim := k.conf.Trust.Limiter
	if lim == nil {
		return true
	}
	wait, ok := lim.Admit(n, k.conf.Clock.Now())
	if !ok {
		k.conf.Stats.Trust.RateLimitCloses.Add(1)
		k.log.Warn("closing: over the rate limit for too long", "frame_bytes", n)
		k.close(DisconnectFlood)
		return false
	}
	if wait <= 0 {
		return true
	}
	k.conf.Stats.Trust.ThrottledFrames.Add(1)
	t := k.conf.Clock.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-k.closing:
		return false
	case <-ctx.Done():
		k.close(DisconnectGoingAway)
		return false
	}
}

// screen runs on the reader for every decoded message before it goes to the document. It
// reports false for a message that must not reach the document: a read-only session's edit,
// answered with a permission-denied auth message.
func (c *Client) screen(msg syncproto.Message) bool {
	if msg.Type == syncproto.TypeSync && !c.ts.synced.Swap(true) && c.ts.handshake != nil {
		c.ts.handshake.Stop() // on the reader, as startWatch and stopWatch: no race on the field
		c.ts.handshake = nil
	}
	if !c.cfg.Trust.ReadOnly || msg.Type != syncproto.TypeSync {
		return true
	}
	switch msg.SyncType {
	case syncproto.SyncUpdate:
		c.denyWrite()
		return false
	case syncproto.SyncStep2:
		// The reply to the server's SyncStep1 always comes (with the client's delete set even
		// when it has nothing new); only one carrying structs is an edit worth telling about.
		if hasStructs(msg.Payload) {
			c.denyWrite()
		}
		return false
	}
	return true
}

func (c *Client) denyWrite() {
	c.cfg.Stats.Trust.DeniedWrites.Add(1)
	c.log.Debug("read-only session: edit refused")
	c.Send(syncproto.EncodePermissionDenied(ReasonReadOnly))
}

// hasStructs reports whether a V1 update carries structs (its first varuint counts the clients
// with structs). Undecodable means yes: it is refused either way.
func hasStructs(update []byte) bool {
	d := encoding.NewDecoder(update)
	n := d.ReadVarUint()
	return d.Err() != nil || n > 0
}

// startWatch arms the session's deadlines: credentials that expire (4401) and a sync handshake
// that must come in time (4408). They are timer callbacks, not a goroutine waiting on them: a
// session with a JWT expiry would otherwise keep a watcher goroutine and its stack for as long as
// the connection lives. stopWatch disarms them; screen disarms the handshake's at the first sync
// message.
func (c *Client) startWatch() {
	exp, hs := c.cfg.Trust.ExpiresAt, c.cfg.Trust.HandshakeTimeout
	if !exp.IsZero() {
		c.ts.expiry = c.cfg.Clock.AfterFunc(max(exp.Sub(c.cfg.Clock.Now()), 0), func() {
			if c.isClosing() {
				return
			}
			c.cfg.Stats.Trust.ExpiredCloses.Add(1)
			c.log.Info("closing: credentials expired")
			c.close(DisconnectUnauthorized)
		})
	}
	if hs > 0 {
		c.ts.handshake = c.cfg.Clock.AfterFunc(hs, func() {
			if c.ts.synced.Load() || c.isClosing() {
				return
			}
			c.cfg.Stats.Trust.HandshakeTimeouts.Add(1)
			c.log.Info("closing: no sync handshake in time", "timeout", hs)
			c.close(DisconnectHandshakeTimeout)
		})
	}
}

// stopWatch disarms the deadlines (a callback already running finds the session closed).
func (c *Client) stopWatch() {
	for _, t := range []*shareddoc.Timer{&c.ts.expiry, &c.ts.handshake} {
		if *t != nil {
			(*t).Stop()
		}
	}
}
