package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/limits"
	"github.com/ysync/ysync/session"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/store"
)

// GET /ws (no document in the path) speaks the Hocuspocus protocol (session/hocuspocus.go):
// @hocuspocus/provider v2, v3 and v4 connect with `new HocuspocusProvider({url:
// "ws://host/ws", name, token})`, any number of documents over one socket, each authenticated
// in band with the same Authenticator as ?token= on /ws/{doc}.

// HocuspocusLimits bound one Hocuspocus socket. Zero values mean the session package's defaults.
type HocuspocusLimits struct {
	// MaxDocuments: documents one socket may have open or waiting for authentication. Zero means
	// session.DefaultHPMaxDocuments.
	MaxDocuments int
	// MaxHeldFrames, MaxHeldBytes: what a socket may send for documents before they are
	// authenticated. Zero means session.DefaultHPMaxHeldFrames / DefaultHPMaxHeldBytes.
	MaxHeldFrames int
	MaxHeldBytes  int
	// Keepalive: the longest a socket goes without a message from the server. Zero means
	// session.DefaultHPKeepalive.
	Keepalive time.Duration
	// TokenRefresh: how long before a token expires the provider is asked for a new one. Zero
	// means session.DefaultHPTokenRefresh.
	TokenRefresh time.Duration
}

// adminSession is what the admin API and shutdown need of a session of either protocol.
type adminSession interface {
	Info() shareddoc.SessionInfo
	Doc() string
	Kick(session.Disconnect)
	Protocol() string
}

// hpState is the server's part of the Hocuspocus protocol.
type hpState struct {
	stats   session.Stats // the sockets' traffic, apart from y-websocket's
	hpStats session.HPStats

	mu      sync.Mutex
	sockets map[*session.HPSocket]struct{}
}

func (s *Server) hpInit() {
	s.hp.mu.Lock()
	if s.hp.sockets == nil {
		s.hp.sockets = make(map[*session.HPSocket]struct{})
	}
	s.hp.mu.Unlock()
}

func (s *Server) handleHocuspocus(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	s.conns.Add(1)
	s.mu.Unlock()

	if origin := r.Header.Get("Origin"); !limits.OriginAllowed(origin, s.cfg.Limits.AllowedOrigins) {
		s.conns.Done()
		s.trust.refusedOrigin.Add(1)
		s.log.Info("upgrade refused: origin not allowed", "origin", origin, "remote", s.remote(r), "protocol", session.ProtocolHocuspocus)
		writeError(w, http.StatusForbidden, "origin not allowed")
		return
	}
	// Behind a trusted proxy the listener sees only the proxy: the socket counts per client
	// address here, as admit does for y-websocket.
	var releaseIP func()
	if s.cfg.Limits.TrustProxyHeader != "" {
		ip := s.clientIP(r)
		if !s.trust.ipConns.TryAcquire(ip) {
			s.conns.Done()
			s.trust.refusedIP.Add(1)
			w.Header().Set("Retry-After", "5")
			writeError(w, http.StatusTooManyRequests, "too many connections from this address")
			return
		}
		releaseIP = func() { s.trust.ipConns.Release(ip) }
	} else {
		releaseIP = func() {}
	}
	// The socket counts against the process's connection limit under a key of its own; its
	// sessions count per document and user as they open (hpAdmit).
	key := "\x00hocuspocus:" + newID()
	if !s.trust.conns.TryAcquire(key) {
		releaseIP()
		s.conns.Done()
		s.trust.refusedConns.Add(1)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "too many connections")
		return
	}
	conn, br, err := session.Upgrade(&s.upgrader, w, r) // for its small read buffer, and parking
	if err != nil {
		s.trust.conns.Release(key)
		releaseIP()
		s.conns.Done()
		return
	}
	l, hl := s.cfg.Limits, s.cfg.Hocuspocus
	urlToken := auth.TokenFromRequest(r)
	label := r.URL.Query().Get("user")
	sock := session.NewHPSocket(conn, s.remote(r), label, time.Now().UTC(), session.HPConfig{
		Config: session.Config{
			ReadLimit:   s.cfg.ReadLimit,
			QueueBudget: s.cfg.QueueBudget,
			PongWait:    s.cfg.PongWait,
			WriteWait:   s.cfg.WriteWait,
			Clock:       s.cfg.Clock,
			Logger:      s.log,
			Stats:       &s.hp.stats,
			Trust: session.Trust{
				Limiter:          limits.NewConnLimiter(l.MessageRate, l.ByteRate, l.MessageBurst, l.ByteBurst, l.MaxThrottle, s.cfg.Clock.Now()),
				HandshakeTimeout: l.HandshakeTimeout,
			},
		},
		Authenticate: func(ctx context.Context, doc, token string) (session.HPGrant, error) {
			if token == "" {
				token = urlToken
			}
			return s.hpAuthenticate(ctx, doc, token, label)
		},
		ValidName:     store.ValidName,
		RPC:           s.wf,
		Stateless:     s.cfg.Stateless,
		MaxDocuments:  hl.MaxDocuments,
		MaxHeldFrames: hl.MaxHeldFrames,
		MaxHeldBytes:  hl.MaxHeldBytes,
		Keepalive:     hl.Keepalive,
		TokenRefresh:  hl.TokenRefresh,
		Admit:         s.hpAdmit,
		OnSession:     s.hpSession,
		HPStats:       &s.hp.hpStats,
		NewID:         newID,
	})
	if br != nil && !s.cfg.NoParking {
		sock.ParkWhenIdle(br)
	}
	s.hp.mu.Lock()
	s.hp.sockets[sock] = struct{}{}
	s.hp.mu.Unlock()
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		sock.Kick(session.DisconnectGoingAway)
	}
	// The socket is served on a goroutine of its own and the handler returns, as for
	// y-websocket (runSession): net/http drops its per-connection state. That goroutine ends
	// when the socket ends or its reader parks (an idle socket keeps no goroutine:
	// session/park.go); the socket's end, on whichever goroutine it comes, calls the done below,
	// which releases what the handler took: the conns count, the connection-limit key and the
	// address's count.
	go sock.Serve(s.ctx, s.reg, func(error) {
		s.hp.mu.Lock()
		delete(s.hp.sockets, sock)
		s.hp.mu.Unlock()
		s.trust.conns.Release(key)
		releaseIP()
		s.conns.Done()
	})
}

// hpAuthenticate decides one document of a Hocuspocus socket, as admit does for an upgrade:
// token (Unauthorized), permission (Forbidden). Refusals are per document; an authenticator that
// fails by itself closes the socket so the provider retries.
func (s *Server) hpAuthenticate(ctx context.Context, doc, token, label string) (session.HPGrant, error) {
	if s.cfg.Authenticator == nil {
		user := label
		if user == "" {
			user = "anonymous"
		}
		return session.HPGrant{User: user, Trust: session.Trust{Permission: auth.Write.String()}}, nil
	}
	if token == "" {
		s.trust.refusedUnauthorized.Add(1)
		return session.HPGrant{}, &session.HPRefusal{Reason: session.HPReasonUnauthorized}
	}
	actx, cancel := context.WithTimeout(ctx, s.cfg.Limits.AuthTimeout)
	defer cancel()
	p, err := s.cfg.Authenticator.Authenticate(actx, token)
	if err == nil && p == nil {
		err = fmt.Errorf("%w: authenticator returned no principal", auth.ErrInvalidToken)
	}
	if err != nil {
		if errors.Is(err, auth.ErrNoToken) || errors.Is(err, auth.ErrInvalidToken) || errors.Is(err, auth.ErrExpired) ||
			(actx.Err() != nil && ctx.Err() == nil) {
			s.trust.refusedUnauthorized.Add(1)
			s.log.Info("hocuspocus document unauthorized", "doc", doc, "err", err)
			return session.HPGrant{}, &session.HPRefusal{Reason: session.HPReasonUnauthorized}
		}
		s.trust.authErrors.Add(1)
		return session.HPGrant{}, err
	}
	perm := p.Permission(doc)
	if perm < auth.Read {
		s.trust.refusedForbidden.Add(1)
		s.log.Info("hocuspocus document forbidden", "doc", doc, "user", p.UserID)
		return session.HPGrant{}, &session.HPRefusal{Reason: session.HPReasonForbidden}
	}
	return session.HPGrant{User: p.UserID, Subject: p.UserID, Trust: session.Trust{
		Permission: perm.String(),
		ReadOnly:   perm < auth.Write,
		ExpiresAt:  p.ExpiresAt,
	}}, nil
}

// hpAdmit counts a Hocuspocus session like a y-websocket connection: per document and process,
// and per token subject (per document and in all) when there is one. (Its socket counts per
// client address, in handleHocuspocus.)
func (s *Server) hpAdmit(doc, user string) (func(), bool) {
	t := s.trust
	var held []func()
	release := func() {
		for i := len(held) - 1; i >= 0; i-- {
			held[i]()
		}
	}
	take := func(c *limits.Counter, key string) bool {
		if !c.TryAcquire(key) {
			return false
		}
		held = append(held, func() { c.Release(key) })
		return true
	}
	if !take(t.conns, doc) {
		t.refusedConns.Add(1)
		s.log.Warn("hocuspocus document refused: too many connections", "doc", doc, "doc_conns", t.conns.Count(doc))
		return nil, false
	}
	if !s.Open() && user != "" && (!take(t.userDocConns, userDocKey(user, doc)) || !take(t.userConns, user)) {
		release()
		t.refusedUser.Add(1)
		s.log.Warn("hocuspocus document refused: too many connections of this user", "doc", doc, "user", user)
		return nil, false
	}
	return release, true
}

// hpSession keeps the admin table of sessions.
func (s *Server) hpSession(h *session.HPSession, open bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if open {
		s.sessions[h.Info().ID] = h
	} else if s.sessions[h.Info().ID] == adminSession(h) {
		delete(s.sessions, h.Info().ID)
	}
}

// kickHocuspocus closes every Hocuspocus socket with d (shutdown).
func (s *Server) kickHocuspocus(d session.Disconnect) {
	s.hp.mu.Lock()
	socks := make([]*session.HPSocket, 0, len(s.hp.sockets))
	for k := range s.hp.sockets {
		socks = append(socks, k)
	}
	s.hp.mu.Unlock()
	for _, k := range socks {
		k.Kick(d)
	}
}

// BroadcastStateless sends a stateless message to every Hocuspocus session of the loaded
// document name (an unloaded document has none: nothing to do).
func (s *Server) BroadcastStateless(ctx context.Context, name, payload string) error {
	d := s.reg.Get(name)
	if d == nil {
		return nil
	}
	return session.BroadcastStateless(ctx, d, "", payload)
}

func protocolOf(si shareddoc.SessionInfo) string {
	if si.Protocol == "" {
		return session.ProtocolYWebsocket
	}
	return si.Protocol
}

// writeProtocolMetrics adds the per-protocol counters to /metrics.
func (s *Server) writeProtocolMetrics(b io.Writer) {
	type row struct {
		name, typ, help string
		yws, hp         int64
	}
	ys, hs, h := &s.stats, &s.hp.stats, &s.hp.hpStats
	for _, r := range []row{
		{"ysync_protocol_connections", "gauge", "Open WebSocket connections by protocol (a Hocuspocus socket carries many sessions).", ys.Connections.Load(), hs.Connections.Load()},
		{"ysync_protocol_sessions", "gauge", "Open (connection, document) sessions by protocol.", ys.Connections.Load(), h.Sessions.Load()},
		{"ysync_protocol_messages_received_total", "counter", "WebSocket messages received by protocol.", ys.MessagesIn.Load(), hs.MessagesIn.Load()},
		{"ysync_protocol_messages_sent_total", "counter", "WebSocket messages sent by protocol.", ys.MessagesOut.Load(), hs.MessagesOut.Load()},
		{"ysync_protocol_received_bytes_total", "counter", "Bytes received by protocol.", ys.BytesIn.Load(), hs.BytesIn.Load()},
		{"ysync_protocol_sent_bytes_total", "counter", "Bytes sent by protocol.", ys.BytesOut.Load(), hs.BytesOut.Load()},
		{"ysync_protocol_slow_consumer_closes_total", "counter", "Connections closed as slow by protocol.", ys.SlowCloses.Load(), hs.SlowCloses.Load()},
		{"ysync_protocol_bad_input_closes_total", "counter", "Connections closed for malformed input by protocol.", ys.BadDataClose.Load(), hs.BadDataClose.Load()},
		{"ysync_protocol_read_only_denied_total", "counter", "Edits of read-only sessions refused, by protocol.", ys.Trust.DeniedWrites.Load(), hs.Trust.DeniedWrites.Load()},
		{"ysync_protocol_expired_closes_total", "counter", "Sessions closed because their token expired, by protocol.", ys.Trust.ExpiredCloses.Load(), hs.Trust.ExpiredCloses.Load()},
	} {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", r.name, r.help, r.name, r.typ)
		fmt.Fprintf(b, "%s{protocol=%q} %d\n%s{protocol=%q} %d\n", r.name, session.ProtocolYWebsocket, r.yws, r.name, session.ProtocolHocuspocus, r.hp)
	}
	metric := func(name, typ, help string, v int64) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, typ, name, v)
	}
	fmt.Fprintf(b, "# HELP ysync_hocuspocus_sync_status_total SyncStatus messages sent: stored (after the store has the update) or refused.\n# TYPE ysync_hocuspocus_sync_status_total counter\n")
	fmt.Fprintf(b, "ysync_hocuspocus_sync_status_total{status=\"stored\"} %d\nysync_hocuspocus_sync_status_total{status=\"refused\"} %d\n", h.AcksStored.Load(), h.AcksRefused.Load())
	metric("ysync_hocuspocus_auth_refused_total", "counter", "Documents refused with PermissionDenied.", h.AuthRefused.Load())
	metric("ysync_hocuspocus_token_requests_total", "counter", "Fresh tokens asked of providers before expiry.", h.TokenRequests.Load())
	metric("ysync_hocuspocus_token_refreshes_total", "counter", "Fresh tokens accepted.", h.TokenRefreshed.Load())
	metric("ysync_hocuspocus_expired_documents_total", "counter", "Documents closed because no fresh token came before expiry.", h.ExpiredDocs.Load())
	metric("ysync_hocuspocus_held_overflow_closes_total", "counter", "Sockets closed for holding too much before authentication or too many documents.", h.HeldOverflow.Load())
	metric("ysync_hocuspocus_document_closes_total", "counter", "Documents closed alone, the socket staying open.", h.DocCloses.Load())
	metric("ysync_hocuspocus_stateless_received_total", "counter", "Stateless messages received.", h.Stateless.Load())
}
