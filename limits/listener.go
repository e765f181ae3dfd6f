package limits

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Refusal says why a Listener counted a connection as over a limit.
type Refusal int

const (
	// NotRefused: the connection is within every limit.
	NotRefused Refusal = iota
	// RefusedPerIP: its peer address already holds ListenerConfig.MaxConnsPerIP connections.
	RefusedPerIP
	// RefusedTotal: ListenerConfig.MaxConns plain connections are open.
	RefusedTotal
)

// ListenerConfig configures NewListener. Zero or negative limits mean unlimited.
type ListenerConfig struct {
	// MaxConns bounds the open connections that have not been detached (plain HTTP, and
	// WebSocket upgrades until they are detached with Conn.Detach).
	MaxConns int
	// MaxConnsPerIP bounds the open connections of one peer IP, detached ones included.
	MaxConnsPerIP int
	// RefuseTimeout is the deadline of a refused connection: long enough for the server to read
	// its request and answer it with a clear status, short enough that refused connections do
	// not pile up. Zero means DefaultRefuseTimeout.
	RefuseTimeout time.Duration
	// MaxRefusing bounds the refused connections being answered at once; past it a refused
	// connection is closed at accept without an answer. Zero means DefaultMaxRefusing.
	MaxRefusing int
}

// Defaults of ListenerConfig.
const (
	DefaultRefuseTimeout = 5 * time.Second
	DefaultMaxRefusing   = 256
)

// ListenerStats counts what a Listener did. Fields are updated atomically.
type ListenerStats struct {
	Accepted       atomic.Int64 // connections accepted
	RefusedPerIP   atomic.Int64 // connections over the per-IP limit
	RefusedTotal   atomic.Int64 // connections over the total limit
	DroppedRefused atomic.Int64 // refused connections closed at accept, MaxRefusing being reached
}

// Listener wraps a net.Listener and counts the connections it accepts: per peer IP and in total
// (Conn.Detach takes a connection out of the total, for WebSockets, which have their own
// limits). A connection over a limit is still returned, marked (Conn.Refused) and with a short
// deadline, so that the HTTP server reads its request and answers it with a status the client
// understands instead of a reset; MaxRefusing bounds how many of those are in flight.
//
// Accept returns the inner listener's errors unchanged, so http.Server's back-off on temporary
// errors (EMFILE, ENFILE) keeps working.
type Listener struct {
	net.Listener
	cfg      ListenerConfig
	perIP    *Counter
	total    *Counter
	refusing atomic.Int64
	stats    ListenerStats
}

// NewListener wraps inner.
func NewListener(inner net.Listener, cfg ListenerConfig) *Listener {
	if cfg.RefuseTimeout <= 0 {
		cfg.RefuseTimeout = DefaultRefuseTimeout
	}
	if cfg.MaxRefusing <= 0 {
		cfg.MaxRefusing = DefaultMaxRefusing
	}
	return &Listener{
		Listener: inner,
		cfg:      cfg,
		perIP:    NewCounter(cfg.MaxConnsPerIP, 0),
		total:    NewCounter(0, cfg.MaxConns),
	}
}

// Stats returns the listener's counters.
func (l *Listener) Stats() *ListenerStats { return &l.stats }

// Open returns the counted connections: those not detached, and those of ip (all of them).
func (l *Listener) Open(ip string) (total, perIP int) {
	return l.total.Total(), l.perIP.Count(ip)
}

// Accept waits for the next connection and returns it as a *Conn.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.stats.Accepted.Add(1)
		c := &Conn{Conn: nc, l: l, ip: HostIP(nc.RemoteAddr())}
		switch {
		case !l.perIP.TryAcquire(c.ip):
			c.refused = RefusedPerIP
			l.stats.RefusedPerIP.Add(1)
		case !l.total.TryAcquire(""):
			l.perIP.Release(c.ip)
			c.refused = RefusedTotal
			l.stats.RefusedTotal.Add(1)
		default:
			c.held, c.counted = true, true
			return c, nil
		}
		if l.refusing.Add(1) > int64(l.cfg.MaxRefusing) {
			l.refusing.Add(-1)
			l.stats.DroppedRefused.Add(1)
			_ = nc.Close()
			continue
		}
		c.refusing = true
		_ = nc.SetDeadline(time.Now().Add(l.cfg.RefuseTimeout))
		return c, nil
	}
}

// Conn is a connection accepted by a Listener.
type Conn struct {
	net.Conn
	l       *Listener
	ip      string
	refused Refusal

	mu       sync.Mutex
	held     bool // holds a per-IP slot
	counted  bool // holds a total slot
	refusing bool // counted in Listener.refusing
	closed   bool
}

// IP returns the peer's IP address as text.
func (c *Conn) IP() string { return c.ip }

// Refused says whether the connection is over a limit, and which.
func (c *Conn) Refused() Refusal { return c.refused }

// Detach takes the connection out of the listener's total (it became a WebSocket); it keeps its
// per-IP slot until it is closed. Calling it again does nothing.
func (c *Conn) Detach() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counted {
		c.counted = false
		c.l.total.Release("")
	}
}

// Close closes the connection and gives back its slots. Calling it again returns the inner
// connection's error and gives back nothing more.
func (c *Conn) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		if c.counted {
			c.counted = false
			c.l.total.Release("")
		}
		if c.held {
			c.held = false
			c.l.perIP.Release(c.ip)
		}
		if c.refusing {
			c.refusing = false
			c.l.refusing.Add(-1)
		}
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// HostIP returns the IP of a TCP address as text, or the address's string form for any other
// kind of address.
func HostIP(a net.Addr) string {
	if a == nil {
		return ""
	}
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// ClientIP returns the address of the client behind a request: the peer IP, or, when header
// names a proxy header (X-Forwarded-For, X-Real-IP, ...), the address that header gives. For a
// list (X-Forwarded-For: client, proxy1, proxy2) it is the last entry, the one the proxy in
// front of this server appended itself: the entries before it come from the client and can be
// anything. A missing or unparsable header value falls back to the peer.
func ClientIP(peer string, header string, values []string) string {
	if header == "" || len(values) == 0 {
		return peer
	}
	last := values[len(values)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	ip := net.ParseIP(strings.TrimSpace(last))
	if ip == nil {
		return peer
	}
	return ip.String()
}
