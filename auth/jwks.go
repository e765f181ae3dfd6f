package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// JWKS defaults.
const (
	// DefaultJWKSRefreshInterval is the longest the keys of a JWKS URL are kept before they are
	// fetched again in the background (sooner when the response's Cache-Control says so, but
	// never sooner than DefaultJWKSMinRefreshInterval).
	DefaultJWKSRefreshInterval = 15 * time.Minute
	// DefaultJWKSMinRefreshInterval rate-limits fetches: a token with a kid that no cached set
	// holds triggers a refetch of the JWKS URLs, at most once per this interval, so tokens with
	// made-up kids cannot make the server hammer the identity provider.
	DefaultJWKSMinRefreshInterval = 30 * time.Second
	// DefaultJWKSFetchTimeout bounds one JWKS fetch, the first one at start included.
	DefaultJWKSFetchTimeout = 10 * time.Second
	// maxJWKSBytes bounds a JWKS response body.
	maxJWKSBytes = 1 << 20
)

// jwksAlgorithms are the algorithms a JWKS key may be used for. Symmetric keys ("oct") in a JWKS
// are never used: HMAC keys are configured as HS256Secret, never fetched.
var jwksAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}

// errKeysUnavailable: no JWKS could be fetched, so no token can be checked. This is a failure
// of the authenticator (the identity provider is away), not of the client's token.
var errKeysUnavailable = errors.New("auth: JWKS keys unavailable")

// jwksSource keeps the key sets of the configured JWKS URLs in a lestrrat-go/jwx cache, which
// refreshes them in the background, and refetches them (rate-limited) on an unknown kid.
type jwksSource struct {
	cache    *jwk.Cache
	cancel   context.CancelFunc
	urls     []string
	minGap   time.Duration
	timeout  time.Duration
	now      func() time.Time
	mu       sync.Mutex // serializes unknown-kid refreshes
	last     time.Time  // of the last unknown-kid refresh (under mu)
	refetchN atomic.Int64
	closed   sync.Once
	// transport is the HTTP transport the source made itself (nil with JWTConfig.HTTPClient);
	// close drops its idle keep-alive connections.
	transport *http.Transport
}

func newJWKSSource(cfg JWTConfig) (*jwksSource, error) {
	refresh := cfg.JWKSRefreshInterval
	if refresh <= 0 {
		refresh = DefaultJWKSRefreshInterval
	}
	minGap := cfg.JWKSMinRefreshInterval
	if minGap <= 0 {
		minGap = DefaultJWKSMinRefreshInterval
	}
	minGap = min(minGap, refresh)
	timeout := cfg.JWKSFetchTimeout
	if timeout <= 0 {
		timeout = DefaultJWKSFetchTimeout
	}
	client := cfg.HTTPClient
	var own *http.Transport // closed with the source
	if client == nil {
		own = http.DefaultTransport.(*http.Transport).Clone()
		client = &http.Client{Timeout: timeout, Transport: own}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cache, err := jwk.NewCache(ctx, httprc.NewClient(httprc.WithWorkers(1)))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("JWKS cache: %w", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	s := &jwksSource{cache: cache, cancel: cancel, minGap: minGap, timeout: timeout, now: now, transport: own}
	for _, u := range cfg.JWKSURLs {
		rctx, rcancel := context.WithTimeout(ctx, timeout)
		err := cache.Register(rctx, u,
			jwk.WithHTTPClient(client),
			jwk.WithMinInterval(minGap),
			jwk.WithMaxInterval(refresh),
			jwk.WithMaxFetchBodySize(maxJWKSBytes),
			// One key this library cannot or will not parse (a weak RSA key, a new key type)
			// must not hide the others of the set; it is simply never used.
			jwk.WithIgnoreParseError(true),
		)
		if err == nil {
			// Register waits for the first fetch; make sure it produced keys.
			_, err = cache.Lookup(rctx, u)
		}
		rcancel()
		if err != nil {
			s.close()
			return nil, fmt.Errorf("JWKS %s: first fetch: %w", u, err)
		}
		s.urls = append(s.urls, u)
	}
	return s, nil
}

// keys returns the public keys usable for alg: the one with kid when kid is set (refetching the
// sets once, rate-limited, when no set has it), else every key of a type that fits alg.
func (s *jwksSource) keys(ctx context.Context, alg, kid string) ([]any, error) {
	keys, err := s.lookup(ctx, alg, kid)
	if err != nil || len(keys) > 0 || kid == "" {
		return keys, err
	}
	if !s.refetch(ctx) {
		return nil, nil
	}
	return s.lookup(ctx, alg, kid)
}

func (s *jwksSource) lookup(ctx context.Context, alg, kid string) ([]any, error) {
	var out []any
	var errs []error
	for _, u := range s.urls {
		set, err := s.cache.Lookup(ctx, u)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
			continue
		}
		for i := range set.Len() {
			k, ok := set.Key(i)
			if !ok {
				continue
			}
			if kid != "" {
				if id, _ := k.KeyID(); id != kid {
					continue
				}
			}
			if pub, ok := usableKey(k, alg); ok {
				out = append(out, pub)
			}
		}
	}
	if len(out) == 0 && len(errs) == len(s.urls) {
		return nil, fmt.Errorf("%w: %w", errKeysUnavailable, errors.Join(errs...))
	}
	return out, nil
}

// refetch fetches every JWKS URL again unless that happened less than minGap ago; it reports
// whether it did.
func (s *jwksSource) refetch(ctx context.Context) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if !s.last.IsZero() && now.Sub(s.last) < s.minGap {
		return false
	}
	s.last = now
	s.refetchN.Add(1)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	for _, u := range s.urls {
		// A failed refetch keeps the previous set, which is what we want while the provider
		// is briefly away.
		_, _ = s.cache.Refresh(ctx, u)
	}
	return true
}

func (s *jwksSource) close() {
	s.closed.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.cache.Shutdown(ctx)
		s.cancel()
		if s.transport != nil {
			s.transport.CloseIdleConnections()
		}
	})
}

// usableKey returns k's public key if it may verify a token signed with alg: the key's own alg,
// when it names one, must be alg; its use, when set, must be "sig"; its type and size must fit
// alg (RSA of at least MinRSABits for RS*/PS*, the alg's curve for ES*, Ed25519 for EdDSA).
func usableKey(k jwk.Key, alg string) (any, bool) {
	if a, ok := k.Algorithm(); ok && a.String() != alg {
		return nil, false
	}
	if use, ok := k.KeyUsage(); ok && use != "sig" {
		return nil, false
	}
	pk, err := k.PublicKey()
	if err != nil {
		return nil, false
	}
	var raw any
	if err := jwk.Export(pk, &raw); err != nil {
		return nil, false
	}
	switch pub := raw.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return pub, pub.N.BitLen() >= MinRSABits
		}
	case *ecdsa.PublicKey:
		switch {
		case alg == "ES256" && pub.Curve == elliptic.P256(), alg == "ES384" && pub.Curve == elliptic.P384():
			return pub, true
		}
	case ed25519.PublicKey:
		return pub, alg == "EdDSA"
	}
	return nil, false
}
