package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ysync/ysync/limits"
)

// The HTTP side's defences (issue 8): connection limits at accept time (per client address, and
// for connections that are not WebSockets), the http.Server timeouts, and the per-IP limit by a
// trusted proxy header. WebSocket admission (per document, per process, per user) is in
// trust.go; body limits in docs.go and workflowapi (readBody).
//
// Who counts what:
//   - the limits.Listener of Serve counts every accepted connection per peer IP, and in total
//     until a WebSocket upgrade detaches it; one over a limit is marked and answered here (429
//     per IP, 503 total) under a short deadline, then closed.
//   - with Limits.TrustProxyHeader the peer is the proxy, so the listener does not count per IP;
//     guardState.ipConns (trustState.ipConns) counts per header address instead: a request while
//     it runs, a WebSocket for its lifetime (admit).

// guardState is the server's part of the HTTP defences.
type guardState struct {
	mu        sync.Mutex
	listeners []*limits.Listener // one per Serve call

	bodyTooLarge atomic.Int64 // 413
	eventStreams atomic.Int64 // open /api/events streams
	eventDropped atomic.Int64 // event streams ended because a write did not finish in time
}

type connCtxKey struct{}

// guardConnContext is the http.Server's ConnContext: it keeps the *limits.Conn of a request's
// connection in its context, for guardHandler's refusals.
func guardConnContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limits.Conn); ok {
		return context.WithValue(ctx, connCtxKey{}, lc)
	}
	return ctx
}

func connOf(r *http.Request) *limits.Conn {
	lc, _ := r.Context().Value(connCtxKey{}).(*limits.Conn)
	return lc
}

// listen wraps ln in the connection-counting listener.
func (s *Server) listen(ln net.Listener) net.Listener {
	l := s.cfg.Limits
	perIP := l.MaxConnsPerIP
	if l.TrustProxyHeader != "" {
		perIP = 0 // every connection comes from the proxy; counted per header address instead
	}
	gl := limits.NewListener(ln, limits.ListenerConfig{
		MaxConns:      l.MaxHTTPConns,
		MaxConnsPerIP: perIP,
		RefuseTimeout: min(l.ReadHeaderTimeout, limits.DefaultRefuseTimeout),
	})
	s.guard.mu.Lock()
	s.guard.listeners = append(s.guard.listeners, gl)
	s.guard.mu.Unlock()
	return gl
}

// httpTimeouts sets the http.Server's timeouts from the limits.
func httpTimeouts(hs *http.Server, l Limits) {
	hs.ReadHeaderTimeout = l.ReadHeaderTimeout
	hs.ReadTimeout = l.ReadTimeout
	hs.WriteTimeout = l.WriteTimeout
	hs.IdleTimeout = l.HTTPIdleTimeout
	if hs.IdleTimeout == 0 {
		// http.Server would fall back to ReadTimeout; "no timeout" must mean none.
		hs.IdleTimeout = -1
	}
	hs.ConnContext = guardConnContext
	hs.ConnState = connState
}

// clientIP is the address of the client of r: the peer's, or the trusted proxy header's.
func (s *Server) clientIP(r *http.Request) string {
	peer := r.RemoteAddr
	if host, _, err := net.SplitHostPort(peer); err == nil {
		peer = host
	}
	h := s.cfg.Limits.TrustProxyHeader
	if h == "" {
		return peer
	}
	return limits.ClientIP(peer, h, r.Header.Values(h))
}

// remote is the client address shown in logs and the admin API: the peer's host:port, or the
// proxy header's address.
func (s *Server) remote(r *http.Request) string {
	if s.cfg.Limits.TrustProxyHeader == "" {
		return r.RemoteAddr
	}
	return s.clientIP(r)
}

func isWebSocketPath(p string) bool { return p == "/ws" || strings.HasPrefix(p, "/ws/") }

// guardHandler answers the requests of connections the listener refused, and with a trusted
// proxy header applies the per-IP limit to requests that are not WebSocket upgrades (admit
// counts those).
func (s *Server) guardHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lc := connOf(r); lc != nil && lc.Refused() != limits.NotRefused {
			w.Header().Set("Connection", "close")
			w.Header().Set("Retry-After", "5")
			if lc.Refused() == limits.RefusedPerIP {
				writeError(w, http.StatusTooManyRequests, "too many connections from this address")
			} else {
				writeError(w, http.StatusServiceUnavailable, "too many connections")
			}
			return
		}
		if s.cfg.Limits.TrustProxyHeader != "" && !isWebSocketPath(r.URL.Path) {
			ip := s.clientIP(r)
			if !s.trust.ipConns.TryAcquire(ip) {
				s.trust.refusedIP.Add(1)
				w.Header().Set("Retry-After", "5")
				writeError(w, http.StatusTooManyRequests, "too many connections from this address")
				return
			}
			defer s.trust.ipConns.Release(ip)
		}
		h.ServeHTTP(w, r)
	})
}

// connState is the http.Server's ConnState hook. A hijacked connection (every WebSocket upgrade,
// whichever route does it: net/http calls this from inside Hijack) becomes a WebSocket for the
// HTTP defences: out of the count of plain connections, and without the http.Server's deadlines,
// which stay on a hijacked connection (ReadTimeout's read deadline and WriteTimeout's write
// deadline are set when the request is read) and would cut the socket off however healthy it
// is. The session sets its own.
func connState(nc net.Conn, st http.ConnState) {
	if st != http.StateHijacked {
		return
	}
	_ = nc.SetDeadline(time.Time{})
	if lc, ok := nc.(*limits.Conn); ok {
		lc.Detach()
	}
}

// writeGuardMetrics adds the counters of the HTTP defences to /metrics.
func (s *Server) writeGuardMetrics(b io.Writer) {
	metric := func(name, typ, help string, v int64) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, typ, name, v)
	}
	var accepted, perIP, total, dropped, open int64
	s.guard.mu.Lock()
	for _, l := range s.guard.listeners {
		st := l.Stats()
		accepted += st.Accepted.Load()
		perIP += st.RefusedPerIP.Load()
		total += st.RefusedTotal.Load()
		dropped += st.DroppedRefused.Load()
		n, _ := l.Open("")
		open += int64(n)
	}
	s.guard.mu.Unlock()
	metric("ysync_http_connections_accepted_total", "counter", "TCP connections accepted.", accepted)
	metric("ysync_http_connections", "gauge", "Open connections that are not WebSockets (counted against --max-http-conns).", open)
	fmt.Fprintf(b, "# HELP %[1]s Connections refused at accept, by limit (answered 429/503 and closed; dropped: closed unanswered, too many refusals in flight).\n# TYPE %[1]s counter\n", "ysync_connections_refused_total")
	fmt.Fprintf(b, "ysync_connections_refused_total{reason=%q} %d\n", "per_ip", perIP+s.trust.refusedIP.Load())
	fmt.Fprintf(b, "ysync_connections_refused_total{reason=%q} %d\n", "http_total", total)
	fmt.Fprintf(b, "ysync_connections_refused_total{reason=%q} %d\n", "dropped", dropped)
	metric("ysync_request_body_too_large_total", "counter", "Requests answered 413 for a body over the route's limit.", s.guard.bodyTooLarge.Load())
	metric("ysync_event_streams", "gauge", "Open /api/events streams.", s.guard.eventStreams.Load())
	metric("ysync_event_stream_write_timeouts_total", "counter", "Event streams ended because the client did not take a write in time.", s.guard.eventDropped.Load())
}
