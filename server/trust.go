package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/limits"
	"github.com/ysync/ysync/session"
	"github.com/ysync/ysync/shareddoc"
)

// Defaults of Limits. See docs/auth.md for what each does when hit.
const (
	DefaultMaxDocBytes           = 64 << 20
	DefaultMaxPendingBytesPerDoc = 64 << 20
	DefaultMaxPendingBytes       = 512 << 20
	DefaultMessageRate           = 200
	DefaultMessageBurst          = 2 * DefaultMessageRate
	DefaultByteRate              = 8 << 20
	DefaultMaxThrottle           = 5 * time.Second
	DefaultMaxConnsPerDoc        = 1000
	DefaultMaxConns              = 10000
	DefaultHandshakeTimeout      = 10 * time.Second
	DefaultAuthTimeout           = 10 * time.Second
	DefaultMaxConnsPerUser       = 256
	DefaultMaxConnsPerUserPerDoc = 32
	DefaultMaxConnsPerIP         = 512
	DefaultMaxHTTPConns          = 2048
	DefaultReadHeaderTimeout     = 10 * time.Second
	DefaultReadTimeout           = 30 * time.Second
	DefaultWriteTimeout          = 60 * time.Second
	DefaultHTTPIdleTimeout       = 60 * time.Second
	DefaultMaxWorkflowBodyBytes  = 4 << 20
)

// Limits bound what clients may do. For every numeric field zero means the default and a negative
// value means unlimited (or, for durations, no timeout).
type Limits struct {
	// MaxDocBytes bounds a document's encoded state; an update that would pass it is refused
	// with a permission-denied auth message (reason "document too large"). Default 64 MiB.
	MaxDocBytes int64
	// MaxPendingBytesPerDoc and MaxPendingBytes bound the updates held in memory while the store
	// is behind (per document, per process); past them a writer's new update is held, with what
	// it sends after it, and its connection paused until the store catches up. Defaults 64 MiB
	// and 512 MiB.
	MaxPendingBytesPerDoc int64
	MaxPendingBytes       int64
	// MaxBacklogWait is how long a writer stays paused that way before it is closed with 1013 (it
	// reconnects and sends its edits again). Default shareddoc.DefaultMaxBacklogWait (30s); an
	// exception to the rule above: negative closes it at once, without pausing.
	MaxBacklogWait time.Duration
	// MessageRate and MessageBurst: frames per second one connection may send. Defaults 200/s,
	// burst 400.
	MessageRate  float64
	MessageBurst float64
	// ByteRate and ByteBurst: bytes per second one connection may send. Defaults 8 MiB/s, burst
	// the read limit (one largest message).
	ByteRate  float64
	ByteBurst float64
	// MaxThrottle is the longest a connection may be held back by the rates without a break
	// before it is closed with 4429. Default 5 s.
	MaxThrottle time.Duration
	// MaxConnsPerDoc and MaxConns bound WebSocket connections per document and per process; an
	// upgrade over either is answered 503. Defaults 1000 and 10000.
	MaxConnsPerDoc int
	MaxConns       int
	// AllowedOrigins is the Origin allow-list of browser upgrades (limits.OriginAllowed); empty
	// allows any origin. An upgrade from another origin is answered 403.
	AllowedOrigins []string
	// HandshakeTimeout closes a connection that has not sent its first sync message this long
	// after the upgrade (4408). Default 10 s.
	HandshakeTimeout time.Duration
	// AuthTimeout bounds one call of the Authenticator; a timeout counts as unauthenticated
	// (401). Default 10 s.
	AuthTimeout time.Duration

	// MaxConnsPerUser and MaxConnsPerUserPerDoc bound the WebSocket connections of one token
	// subject, per process and per document; an upgrade over either is answered 503 with
	// Retry-After. Without authentication there is no subject, and MaxConnsPerIP covers it.
	// Defaults 256 and 32.
	MaxConnsPerUser       int
	MaxConnsPerUserPerDoc int
	// MaxConnsPerIP bounds the open connections (HTTP and WebSocket) of one client address; a
	// connection over it is answered 429 and closed (httpguard.go). Default 512.
	MaxConnsPerIP int
	// MaxHTTPConns bounds the open connections that are not WebSockets (plain HTTP, keep-alive
	// and idle ones included); a connection over it is answered 503 and closed. Default 2048.
	MaxHTTPConns int
	// TrustProxyHeader names a header set by a reverse proxy in front of the server
	// (X-Forwarded-For, X-Real-IP) whose value is the client's address; the per-IP limit and
	// the logs use it instead of the peer address. Empty (the default) means the peer address:
	// never set it on a server clients reach directly, since they could then claim any address.
	TrustProxyHeader string
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and HTTPIdleTimeout are the http.Server's
	// timeouts of non-WebSocket requests: reading the request headers, reading the whole
	// request, writing the answer, and an idle keep-alive connection. A WebSocket upgrade
	// clears them once upgraded (the session has its own pings and deadlines); the event
	// stream extends its write deadline per write. Defaults 10 s, 30 s, 60 s and 60 s.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	HTTPIdleTimeout   time.Duration
	// MaxWorkflowBodyBytes bounds the body of a workflow create or replace (POST/PUT
	// /api/workflows); a bigger one is answered 413. Other JSON bodies are bounded by
	// maxJSONBody (1 MiB). Default 4 MiB.
	MaxWorkflowBodyBytes int64

	// Awareness and loaded-document bounds (docbounds.go).
	//
	// MaxAwarenessClientsPerConn: awareness client ids one connection may introduce; entries
	// for more are refused (permission-denied "too many awareness clients"). Default 4.
	MaxAwarenessClientsPerConn int
	// MaxAwarenessStateBytes: the largest awareness state; larger ones are refused
	// (permission-denied "awareness state too large"). Default 64 KiB.
	MaxAwarenessStateBytes int
	// MaxLoadedDocs: documents in memory. Over it the least recently used idle document is
	// evicted (stored first); with none idle a new document's upgrade gets 503 (1013 if the
	// race is lost after the upgrade). Default shareddoc.DefaultMaxLoadedDocs (10,000).
	MaxLoadedDocs int
}

func orDefault[T int | int64 | float64 | time.Duration](v, def T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// withDefaults returns l with defaults filled in and "unlimited" (negative) as zero.
func (l Limits) withDefaults(readLimit int64) Limits {
	if readLimit <= 0 {
		readLimit = session.DefaultReadLimit
	}
	l.MaxDocBytes = orDefault(l.MaxDocBytes, DefaultMaxDocBytes)
	l.MaxPendingBytesPerDoc = orDefault(l.MaxPendingBytesPerDoc, DefaultMaxPendingBytesPerDoc)
	l.MaxPendingBytes = orDefault(l.MaxPendingBytes, DefaultMaxPendingBytes)
	if l.MaxBacklogWait == 0 {
		l.MaxBacklogWait = shareddoc.DefaultMaxBacklogWait // negative stays: close at once
	}
	l.MessageRate = orDefault(l.MessageRate, DefaultMessageRate)
	l.MessageBurst = orDefault(l.MessageBurst, 2*l.MessageRate)
	l.ByteRate = orDefault(l.ByteRate, DefaultByteRate)
	l.ByteBurst = orDefault(l.ByteBurst, float64(readLimit))
	l.MaxThrottle = orDefault(l.MaxThrottle, DefaultMaxThrottle)
	l.MaxConnsPerDoc = orDefault(l.MaxConnsPerDoc, DefaultMaxConnsPerDoc)
	l.MaxConns = orDefault(l.MaxConns, DefaultMaxConns)
	l.HandshakeTimeout = orDefault(l.HandshakeTimeout, DefaultHandshakeTimeout)
	l.AuthTimeout = orDefault(l.AuthTimeout, DefaultAuthTimeout)
	l.MaxConnsPerUser = orDefault(l.MaxConnsPerUser, DefaultMaxConnsPerUser)
	l.MaxConnsPerUserPerDoc = orDefault(l.MaxConnsPerUserPerDoc, DefaultMaxConnsPerUserPerDoc)
	l.MaxConnsPerIP = orDefault(l.MaxConnsPerIP, DefaultMaxConnsPerIP)
	l.MaxHTTPConns = orDefault(l.MaxHTTPConns, DefaultMaxHTTPConns)
	l.ReadHeaderTimeout = orDefault(l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	l.ReadTimeout = orDefault(l.ReadTimeout, DefaultReadTimeout)
	l.WriteTimeout = orDefault(l.WriteTimeout, DefaultWriteTimeout)
	l.HTTPIdleTimeout = orDefault(l.HTTPIdleTimeout, DefaultHTTPIdleTimeout)
	l.MaxWorkflowBodyBytes = orDefault(l.MaxWorkflowBodyBytes, DefaultMaxWorkflowBodyBytes)
	l = l.withDocBoundsDefaults()
	return l
}

// trustState is the server's part of authentication and limits.
type trustState struct {
	conns        *limits.Counter
	userConns    *limits.Counter // per token subject
	userDocConns *limits.Counter // per token subject and document (userDocKey)
	// ipConns counts per client address when that comes from TrustProxyHeader (the listener
	// only sees the proxy): WebSockets for their lifetime, other requests while they run.
	ipConns *limits.Counter

	refusedUnauthorized atomic.Int64 // 401 on upgrade
	refusedForbidden    atomic.Int64 // 403 on upgrade (permission none)
	refusedOrigin       atomic.Int64 // 403 on upgrade (origin)
	refusedConns        atomic.Int64 // 503 on upgrade (connection limits)
	refusedUser         atomic.Int64 // 503 on upgrade (per-user limits)
	refusedIP           atomic.Int64 // 429 on upgrade or request (per-IP limit, proxy header)
	refusedAdmin        atomic.Int64 // 401/403 on the admin API
	authErrors          atomic.Int64 // the authenticator itself failed (503)
}

func newTrustState(l Limits) *trustState {
	return &trustState{
		conns:        limits.NewCounter(l.MaxConnsPerDoc, l.MaxConns),
		userConns:    limits.NewCounter(l.MaxConnsPerUser, 0),
		userDocConns: limits.NewCounter(l.MaxConnsPerUserPerDoc, 0),
		ipConns:      limits.NewCounter(l.MaxConnsPerIP, 0),
	}
}

// Open reports whether the server runs without authentication (no Config.Authenticator):
// everyone may read and write every document and use the admin API.
func (s *Server) Open() bool { return s.cfg.Authenticator == nil }

// tokenSource says where a route takes its bearer token from.
type tokenSource int

const (
	// tokenHeader: the Authorization header only. Every /api/... route but the event stream: a
	// ?token= query ends up in URLs, browser history and proxy logs, and fetch() can set headers.
	tokenHeader tokenSource = iota
	// tokenQueryOrHeader: ?token= too (auth.TokenFromRequest). WebSocket upgrades and
	// EventSource streams: browsers cannot set headers on either.
	tokenQueryOrHeader
)

// errQueryToken is the refusal of a ?token= on a route that takes the header only.
var errQueryToken = fmt.Errorf("%w: this endpoint takes the token from the Authorization header only, not from ?token=", auth.ErrNoToken)

// authenticate returns the principal of r's token, read from src. Without an authenticator
// everyone is auth.Anonymous (write everywhere).
func (s *Server) authenticate(r *http.Request, src tokenSource) (*auth.Principal, error) {
	if s.cfg.Authenticator == nil {
		return auth.Anonymous.Authenticate(r.Context(), "")
	}
	var token string
	if src == tokenHeader {
		// The header alone: auth.TokenFromRequest of r without its query.
		hr := *r
		u := *r.URL
		u.RawQuery = ""
		hr.URL = &u
		token = auth.TokenFromRequest(&hr)
		if token == "" && r.URL.Query().Has("token") {
			return nil, errQueryToken
		}
	} else {
		token = auth.TokenFromRequest(r)
	}
	if token == "" {
		return nil, auth.ErrNoToken
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Limits.AuthTimeout)
	defer cancel()
	p, err := s.cfg.Authenticator.Authenticate(ctx, token)
	if err == nil && p == nil {
		err = fmt.Errorf("%w: authenticator returned no principal", auth.ErrInvalidToken)
	}
	if err != nil && ctx.Err() != nil && r.Context().Err() == nil {
		// A slow authenticator: treated as unauthenticated rather than holding the request.
		err = fmt.Errorf("%w: authentication timed out: %w", auth.ErrInvalidToken, err)
	}
	return p, err
}

// authFailed answers a request whose authentication failed: 401 for the client's token (none,
// invalid, expired), 503 for an authenticator that failed by itself.
func (s *Server) authFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errQueryToken):
		writeError(w, http.StatusUnauthorized, "send the token as \"Authorization: Bearer <token>\"; this endpoint does not take ?token=")
	case errors.Is(err, auth.ErrNoToken), errors.Is(err, auth.ErrInvalidToken), errors.Is(err, auth.ErrExpired):
		s.log.Info("unauthorized", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="ysync"`)
		writeError(w, http.StatusUnauthorized, "unauthorized")
	default:
		s.trust.authErrors.Add(1)
		s.log.Error("authenticator failed", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "authentication unavailable")
	}
}

// admission is what the checks before an upgrade decided, and the connection slots it holds.
type admission struct {
	s         *Server
	doc       string
	principal *auth.Principal
	perm      auth.Permission
	held      []func() // releases of the slots acquired, in order
}

// admit runs every check of a WebSocket upgrade request before upgrading, answering with plain
// HTTP when one fails: origin (403), token (401), permission on the document (403), connection
// limits (503). On success the caller must call release when the connection ends.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, doc string) (*admission, bool) {
	if origin := r.Header.Get("Origin"); !limits.OriginAllowed(origin, s.cfg.Limits.AllowedOrigins) {
		s.trust.refusedOrigin.Add(1)
		s.log.Info("upgrade refused: origin not allowed", "origin", origin, "doc", doc, "remote", r.RemoteAddr)
		writeError(w, http.StatusForbidden, "origin not allowed")
		return nil, false
	}
	p, err := s.authenticate(r, tokenQueryOrHeader)
	if err != nil {
		if errors.Is(err, auth.ErrNoToken) || errors.Is(err, auth.ErrInvalidToken) || errors.Is(err, auth.ErrExpired) {
			s.trust.refusedUnauthorized.Add(1)
		}
		s.authFailed(w, r, err)
		return nil, false
	}
	perm := p.Permission(doc)
	if perm < auth.Read {
		s.trust.refusedForbidden.Add(1)
		s.log.Info("upgrade refused: no permission on the document", "doc", doc, "user", p.UserID, "remote", r.RemoteAddr)
		writeError(w, http.StatusForbidden, "forbidden")
		return nil, false
	}
	if !s.canLoadDoc(w, doc) { // docbounds.go: 503 when no document can be evicted for it
		return nil, false
	}
	adm := &admission{s: s, doc: doc, principal: p, perm: perm}
	if !adm.acquire(w, r) {
		adm.release()
		return nil, false
	}
	return adm, true
}

// userDocKey is the key of userDocConns: subject and document, unambiguous (a subject has no NUL).
func userDocKey(user, doc string) string { return user + "\x00" + doc }

// acquire takes the connection slots of the admission: per client address (behind a trusted
// proxy; the listener counts the peer otherwise), per document and process, and per token
// subject (a server without authentication has no subject: the per-IP limit covers it). It
// answers the request when one is full; the caller then releases what was taken.
func (a *admission) acquire(w http.ResponseWriter, r *http.Request) bool {
	s, t := a.s, a.s.trust
	take := func(c *limits.Counter, key string) bool {
		if !c.TryAcquire(key) {
			return false
		}
		a.held = append(a.held, func() { c.Release(key) })
		return true
	}
	if s.cfg.Limits.TrustProxyHeader != "" {
		if ip := s.clientIP(r); !take(t.ipConns, ip) {
			t.refusedIP.Add(1)
			s.log.Warn("upgrade refused: too many connections from this address", "doc", a.doc, "ip", ip)
			w.Header().Set("Retry-After", "5")
			writeError(w, http.StatusTooManyRequests, "too many connections from this address")
			return false
		}
	}
	if !take(t.conns, a.doc) {
		t.refusedConns.Add(1)
		s.log.Warn("upgrade refused: too many connections", "doc", a.doc, "doc_conns", t.conns.Count(a.doc), "conns", t.conns.Total())
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "too many connections")
		return false
	}
	user := a.principal.UserID
	if s.Open() || user == "" {
		// No subject to count by (an application's Authenticator may leave it empty).
		return true
	}
	if !take(t.userDocConns, userDocKey(user, a.doc)) || !take(t.userConns, user) {
		t.refusedUser.Add(1)
		s.log.Warn("upgrade refused: too many connections of this user", "doc", a.doc, "user", user,
			"user_doc_conns", t.userDocConns.Count(userDocKey(user, a.doc)), "user_conns", t.userConns.Count(user))
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "too many connections of this user")
		return false
	}
	return true
}

// release gives back every slot the admission holds. Calling it again does nothing.
func (a *admission) release() {
	for i := len(a.held) - 1; i >= 0; i-- {
		a.held[i]()
	}
	a.held = nil
}

// user is the name the session shows in logs and the admin API: the token's subject, or, on an
// open server, the ?user= label (default "anonymous").
func (a *admission) user(label string) string {
	if !a.s.Open() {
		return a.principal.UserID
	}
	if label == "" {
		return "anonymous"
	}
	return label
}

// sessionTrust is the session's side of the admission: permission, expiry, rate limits.
func (a *admission) sessionTrust() session.Trust {
	l := a.s.cfg.Limits
	return session.Trust{
		Permission:       a.perm.String(),
		ReadOnly:         a.perm < auth.Write,
		ExpiresAt:        a.principal.ExpiresAt,
		Limiter:          limits.NewConnLimiter(l.MessageRate, l.ByteRate, l.MessageBurst, l.ByteBurst, l.MaxThrottle, a.s.cfg.Clock.Now()),
		HandshakeTimeout: l.HandshakeTimeout,
	}
}

// requireAdmin wraps an admin endpoint: without authentication configured it is open; otherwise
// the request needs a token of an admin principal (401 without a valid token, 403 for others).
func (s *Server) requireAdmin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Open() {
			h(w, r)
			return
		}
		p, err := s.authenticate(r, tokenHeader)
		if err != nil {
			s.trust.refusedAdmin.Add(1)
			s.authFailed(w, r, err)
			return
		}
		if !p.Admin {
			s.trust.refusedAdmin.Add(1)
			s.log.Info("admin endpoint refused", "path", r.URL.Path, "user", p.UserID)
			writeError(w, http.StatusForbidden, "admin token required")
			return
		}
		h(w, r)
	}
}

// authorizeDoc checks that the request's principal (token from src) has at least need on doc,
// answering 401/403 itself when not. For HTTP endpoints acting on one document (save, reset).
func (s *Server) authorizeDoc(w http.ResponseWriter, r *http.Request, doc string, need auth.Permission, src tokenSource) (*auth.Principal, bool) {
	p, err := s.authenticate(r, src)
	if err != nil {
		s.authFailed(w, r, err)
		return nil, false
	}
	if p.Permission(doc) < need {
		writeError(w, http.StatusForbidden, "forbidden")
		return nil, false
	}
	return p, true
}

// RedactURL returns u's string form with the value of a token query parameter masked, for logs.
func RedactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	if q := c.Query(); q.Has("token") {
		q.Set("token", "xxxxx")
		c.RawQuery = q.Encode()
	}
	return c.String()
}

// trustMetrics are the counters of authentication and limits (metrics.go explains the helpers).
func (s *Server) trustMetrics() []prometheus.Collector {
	t, ts, ds := s.trust, &s.stats.Trust, s.reg.Stats()
	refused := map[string]*atomic.Int64{
		"unauthorized": &t.refusedUnauthorized, "forbidden": &t.refusedForbidden,
		"origin": &t.refusedOrigin, "too_many_connections": &t.refusedConns,
		"too_many_connections_user": &t.refusedUser,
	}
	cs := labeled("ysync_upgrades_refused_total", "WebSocket upgrades refused before upgrading, by reason.", "reason",
		[]string{"unauthorized", "forbidden", "origin", "too_many_connections", "too_many_connections_user"},
		func(reason string) int64 { return refused[reason].Load() })
	if j, ok := s.cfg.Authenticator.(interface{ JWKSRefetches() int64 }); ok {
		cs = append(cs, counter("ysync_jwks_refetches_total",
			"JWKS fetches triggered by a token whose kid no cached key set held (rate-limited).", j.JWKSRefetches))
	}
	return append(cs,
		counter("ysync_admin_refused_total", "Admin API requests refused (401/403).", t.refusedAdmin.Load),
		counter("ysync_authenticator_errors_total", "Failures of the authenticator itself (answered 503).", t.authErrors.Load),
		counter("ysync_throttled_frames_total", "Frames held back by the per-connection rate limit.", ts.ThrottledFrames.Load),
		counter("ysync_rate_limit_closes_total", "Connections closed with 4429 for exceeding the rate limit.", ts.RateLimitCloses.Load),
		counter("ysync_read_only_denied_total", "Edits of read-only sessions refused with permission-denied.", ts.DeniedWrites.Load),
		counter("ysync_expired_closes_total", "Connections closed with 4401 when their token expired.", ts.ExpiredCloses.Load),
		counter("ysync_handshake_timeouts_total", "Connections closed with 4408 for not starting the sync handshake.", ts.HandshakeTimeouts.Load),
		counter("ysync_document_too_large_total", "Updates refused because the document would exceed the maximum size.", ds.TooLargeRefusals.Load),
		counter("ysync_storage_backlog_closes_total", "Connections closed with 1013 because unstored updates stayed over budget for --max-backlog-wait.", ds.BacklogCloses.Load),
		counter("ysync_storage_backlog_paused_total", "Times a writer was paused because unstored updates are over budget.", ds.BacklogPauses.Load),
		gauge("ysync_storage_backlog_paused_peers", "Writers paused now because unstored updates are over budget.", ds.BacklogPausedPeers.Load),
		counter("ysync_storage_backlog_held_updates_total", "Updates held while their writer was paused for the storage backlog.", ds.BacklogHeldUpdates.Load),
		gauge("ysync_pending_store_bytes", "Bytes of updates applied but not yet stored.", ds.PendingBytes.Load),
		gauge("ysync_connections_limit_held", "Connections counted against the connection limits.", func() int64 { return int64(t.conns.Total()) }),
	)
}
