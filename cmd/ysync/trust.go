package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/limits"
	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/shareddoc"
)

// trustConfig is the authentication and limits part of `ysync serve`'s configuration. The limit
// flags are bound to the embedded server.Limits' fields themselves; limits() maps the values in
// which the flags and server.Limits differ (a flag's 0 is "unlimited" or "no timeout" where
// server.Limits' 0 is its default) and fills in the origins.
type trustConfig struct {
	HS256Secret    string
	PublicKeysFile string
	JWKSURLs       urlList
	Issuer         string
	Audience       string
	AllowedOrigins string // comma-separated; server.Limits.AllowedOrigins is the list (origins)

	server.Limits
}

func addTrustFlags(fs *flag.FlagSet, c *trustConfig) {
	fs.StringVar(&c.HS256Secret, "auth-hs256-secret", "", "shared secret (>= 32 bytes) enabling HS256 tokens; prefer YSYNC_AUTH_HS256_SECRET (flags show in ps)")
	fs.StringVar(&c.PublicKeysFile, "auth-public-keys", "", "PEM file of RSA (RS256) and/or P-256 (ES256) public keys enabling those tokens")
	fs.Var(&c.JWKSURLs, "auth-jwks-url", "JWKS URL of an identity provider (repeatable, or comma-separated) enabling RS256/384/512, PS256/384/512, ES256/384 and EdDSA tokens; keys are cached, refreshed and selected by kid")
	fs.StringVar(&c.Issuer, "auth-issuer", "", "required token iss, when set")
	fs.StringVar(&c.Audience, "auth-audience", "", "required token aud, when set")
	fs.StringVar(&c.AllowedOrigins, "allowed-origins", "", "comma-separated Origin allow-list of browser upgrades (https://app.example.com, https://*.example.com, *); empty: any origin")
	fs.Int64Var(&c.MaxDocBytes, "max-document-bytes", server.DefaultMaxDocBytes, "largest encoded document; an update that would pass it is refused (permission-denied) (-1: unlimited)")
	fs.Int64Var(&c.MaxPendingBytesPerDoc, "max-pending-bytes-per-doc", server.DefaultMaxPendingBytesPerDoc, "unstored update bytes one document may hold while the database is away; past it a writer's new updates are held and its connection paused, for up to --max-backlog-wait (-1: unlimited)")
	fs.Int64Var(&c.MaxPendingBytes, "max-pending-bytes", server.DefaultMaxPendingBytes, "unstored update bytes over all documents (-1: unlimited)")
	fs.DurationVar(&c.MaxBacklogWait, "max-backlog-wait", shareddoc.DefaultMaxBacklogWait, "longest a writer stays paused while unstored updates are over --max-pending-bytes(-per-doc); then it is closed with 1013 and resends after reconnecting (0: close at once)")
	fs.Float64Var(&c.MessageRate, "conn-message-rate", server.DefaultMessageRate, "messages per second one connection may send (-1: unlimited)")
	fs.Float64Var(&c.MessageBurst, "conn-message-burst", server.DefaultMessageBurst, "message burst of one connection")
	fs.Float64Var(&c.ByteRate, "conn-byte-rate", server.DefaultByteRate, "bytes per second one connection may send (-1: unlimited)")
	fs.Float64Var(&c.ByteBurst, "conn-byte-burst", 0, "byte burst of one connection (0: the read limit)")
	fs.DurationVar(&c.MaxThrottle, "max-throttle", server.DefaultMaxThrottle, "longest a connection may be held back by the rates without a break before it is closed with 4429")
	fs.IntVar(&c.MaxConnsPerDoc, "max-conns-per-doc", server.DefaultMaxConnsPerDoc, "WebSocket connections per document; more are refused with 503 (-1: unlimited)")
	fs.IntVar(&c.MaxConns, "max-conns", server.DefaultMaxConns, "WebSocket connections per process; more are refused with 503 (-1: unlimited)")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", server.DefaultHandshakeTimeout, "close a connection (4408) that has not sent its first sync message within this time")
	fs.DurationVar(&c.AuthTimeout, "auth-timeout", server.DefaultAuthTimeout, "longest one token check may take; slower counts as unauthorized")
	fs.IntVar(&c.MaxConnsPerUser, "max-conns-per-user", server.DefaultMaxConnsPerUser, "WebSocket connections of one token subject; more are refused with 503 and Retry-After (-1: unlimited)")
	fs.IntVar(&c.MaxConnsPerUserPerDoc, "max-conns-per-user-per-doc", server.DefaultMaxConnsPerUserPerDoc, "WebSocket connections of one token subject to one document; more are refused with 503 and Retry-After (-1: unlimited)")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", server.DefaultMaxConnsPerIP, "open connections (HTTP and WebSocket) of one client address; more are answered 429 and closed (-1: unlimited)")
	fs.IntVar(&c.MaxHTTPConns, "max-http-conns", server.DefaultMaxHTTPConns, "open connections that are not WebSockets (idle keep-alive ones included); more are answered 503 and closed (-1: unlimited)")
	fs.StringVar(&c.TrustProxyHeader, "trust-proxy-header", "", "header with the client address set by a reverse proxy in front of the server (X-Forwarded-For: its last entry; X-Real-IP); empty: the peer address. Never set it when clients can reach the server directly")
	fs.DurationVar(&c.ReadHeaderTimeout, "http-read-header-timeout", server.DefaultReadHeaderTimeout, "time to read a request's headers (0: no timeout)")
	fs.DurationVar(&c.ReadTimeout, "http-read-timeout", server.DefaultReadTimeout, "time to read a whole non-WebSocket request, body included (0: no timeout)")
	fs.DurationVar(&c.WriteTimeout, "http-write-timeout", server.DefaultWriteTimeout, "time to write a non-WebSocket answer (event streams extend it per write) (0: no timeout)")
	fs.DurationVar(&c.HTTPIdleTimeout, "http-idle-timeout", server.DefaultHTTPIdleTimeout, "close a keep-alive connection idle this long (0: no timeout)")
	fs.Int64Var(&c.MaxWorkflowBodyBytes, "max-workflow-body-bytes", server.DefaultMaxWorkflowBodyBytes, "largest body of a workflow create or replace; bigger is answered 413 (other JSON bodies: 1 MiB)")
}

func (c trustConfig) origins() []string {
	var out []string
	for _, o := range strings.Split(c.AllowedOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

func (c trustConfig) validate() error {
	if err := limits.ValidateOriginPatterns(c.origins()); err != nil {
		return fmt.Errorf("%w: --allowed-origins: %w", errUsage, err)
	}
	if c.MaxThrottle < 0 || c.HandshakeTimeout < 0 || c.AuthTimeout < 0 || c.MessageBurst < 0 || c.ByteBurst < 0 {
		return fmt.Errorf("%w: --max-throttle, --handshake-timeout, --auth-timeout and the bursts must be >= 0", errUsage)
	}
	if c.ReadHeaderTimeout < 0 || c.ReadTimeout < 0 || c.WriteTimeout < 0 || c.HTTPIdleTimeout < 0 {
		return fmt.Errorf("%w: the --http-*-timeout flags must be >= 0 (0: no timeout)", errUsage)
	}
	if c.MaxWorkflowBodyBytes <= 0 {
		return fmt.Errorf("%w: --max-workflow-body-bytes must be > 0", errUsage)
	}
	if !validHeaderName(c.TrustProxyHeader) {
		return fmt.Errorf("%w: --trust-proxy-header %q is not a header name (e.g. X-Forwarded-For, X-Real-IP)", errUsage, c.TrustProxyHeader)
	}
	return nil
}

// validHeaderName reports whether s is empty or an HTTP header name (RFC 9110 token).
func validHeaderName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

// authEnabled reports whether any --auth-* key is configured.
func (c trustConfig) authEnabled() bool {
	return c.HS256Secret != "" || c.PublicKeysFile != "" || len(c.JWKSURLs) > 0
}

// authenticator builds the JWT authenticator, or nil (open server) without keys.
func (c trustConfig) authenticator() (*auth.JWT, error) {
	if !c.authEnabled() {
		return nil, nil
	}
	var pem []byte
	if c.PublicKeysFile != "" {
		b, err := os.ReadFile(c.PublicKeysFile)
		if err != nil {
			return nil, fmt.Errorf("--auth-public-keys: %w", err)
		}
		pem = b
	}
	j, err := auth.NewJWT(auth.JWTConfig{
		HS256Secret:   []byte(c.HS256Secret),
		PublicKeysPEM: pem,
		JWKSURLs:      c.JWKSURLs,
		Issuer:        c.Issuer,
		Audience:      c.Audience,
	})
	if err != nil {
		return nil, fmt.Errorf("authentication: %w", err)
	}
	return j, nil
}

func (c trustConfig) limits() server.Limits {
	// The flags' -1 ("unlimited") is server.Limits' negative; their 0 would mean "default" there,
	// which for a rate is what an operator typing 0 least expects, so 0 also means unlimited.
	unl := func(v float64) float64 {
		if v == 0 {
			return -1
		}
		return v
	}
	l := c.Limits
	l.MaxBacklogWait = backlogWait(l.MaxBacklogWait)
	l.MessageRate = unl(l.MessageRate)
	l.ByteRate = unl(l.ByteRate)
	l.AllowedOrigins = c.origins()
	l.ReadHeaderTimeout = noTimeout(l.ReadHeaderTimeout)
	l.ReadTimeout = noTimeout(l.ReadTimeout)
	l.WriteTimeout = noTimeout(l.WriteTimeout)
	l.HTTPIdleTimeout = noTimeout(l.HTTPIdleTimeout)
	return l
}

// backlogWait maps the flag's 0 ("close at once") to server.Limits' negative (0 there is the
// default).
func backlogWait(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// noTimeout maps a flag's 0 ("no timeout") to server.Limits' negative (0 there is the default).
func noTimeout(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// logAttrs is the trust part of the effective configuration; the secret is never shown.
func (c trustConfig) logAttrs() []any {
	secret := "unset"
	if c.HS256Secret != "" {
		secret = fmt.Sprintf("set (%d bytes)", len(c.HS256Secret))
	}
	return []any{
		"auth", c.authEnabled(),
		"auth_hs256_secret", secret,
		"auth_public_keys", c.PublicKeysFile,
		"auth_jwks_urls", strings.Join(c.JWKSURLs, ","),
		"auth_issuer", c.Issuer,
		"auth_audience", c.Audience,
		"allowed_origins", c.AllowedOrigins,
		"max_document_bytes", c.MaxDocBytes,
		"max_pending_bytes_per_doc", c.MaxPendingBytesPerDoc,
		"max_pending_bytes", c.MaxPendingBytes,
		"max_backlog_wait", c.MaxBacklogWait,
		"conn_message_rate", c.MessageRate,
		"conn_message_burst", c.MessageBurst,
		"conn_byte_rate", c.ByteRate,
		"conn_byte_burst", c.ByteBurst,
		"max_throttle", c.MaxThrottle,
		"max_conns_per_doc", c.MaxConnsPerDoc,
		"max_conns", c.MaxConns,
		"handshake_timeout", c.HandshakeTimeout,
		"auth_timeout", c.AuthTimeout,
		"max_conns_per_user", c.MaxConnsPerUser,
		"max_conns_per_user_per_doc", c.MaxConnsPerUserPerDoc,
		"max_conns_per_ip", c.MaxConnsPerIP,
		"max_http_conns", c.MaxHTTPConns,
		"trust_proxy_header", c.TrustProxyHeader,
		"http_read_header_timeout", c.ReadHeaderTimeout,
		"http_read_timeout", c.ReadTimeout,
		"http_write_timeout", c.WriteTimeout,
		"http_idle_timeout", c.HTTPIdleTimeout,
		"max_workflow_body_bytes", c.MaxWorkflowBodyBytes,
	}
}

// setupTrust builds the authenticator and limits for server.Config, and says loudly when the
// server runs without authentication.
func setupTrust(c trustConfig, log *slog.Logger, stderr io.Writer) (auth.Authenticator, server.Limits, error) {
	j, err := c.authenticator()
	if err != nil {
		return nil, server.Limits{}, err
	}
	if j == nil {
		log.Warn("NO AUTHENTICATION CONFIGURED: anyone who can reach this server may read and write every document and use the admin API. Set --auth-hs256-secret (YSYNC_AUTH_HS256_SECRET), --auth-public-keys or --auth-jwks-url; see docs/auth.md.")
		fmt.Fprintln(stderr, "WARNING: no authentication: every document and the admin API are open (set --auth-hs256-secret, --auth-public-keys or --auth-jwks-url)")
		return nil, c.limits(), nil
	}
	log.Info("authentication on", "algorithms", j.Algorithms(), "issuer", c.Issuer, "audience", c.Audience)
	return j, c.limits(), nil
}
