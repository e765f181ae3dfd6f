package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// Authenticator turns a bearer token into a principal. Implementations must be safe for
// concurrent use; the server calls Authenticate once per connection, before the WebSocket upgrade.
//
// Errors should wrap one of ErrNoToken, ErrInvalidToken or ErrExpired so the server can answer
// with the right status; any other error is treated as a failure of the authenticator itself
// (for example its backing service is down), not of the client.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*Principal, error)
}

// Errors an Authenticator returns, wrapped with details; test with errors.Is. The details never
// include the token itself.
var (
	// ErrNoToken: the request carried no token.
	ErrNoToken = errors.New("auth: no token")
	// ErrInvalidToken: the token is malformed, its signature does not verify, or a claim is
	// missing or wrong (issuer, audience, not yet valid).
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrExpired: the token was valid but its time is up; the client should fetch a new one.
	ErrExpired = errors.New("auth: token expired")
)

// AuthenticatorFunc adapts a function to the Authenticator interface.
type AuthenticatorFunc func(ctx context.Context, token string) (*Principal, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(ctx context.Context, token string) (*Principal, error) {
	return f(ctx, token)
}

// Anonymous is the authenticator of a server running without authentication: it ignores the
// token and lets everyone write every document (but not use the admin endpoints).
var Anonymous Authenticator = AuthenticatorFunc(func(context.Context, string) (*Principal, error) {
	return &Principal{UserID: "anonymous", Docs: []DocRule{{Pattern: "*", Permission: Write}}}, nil
})

// TokenFromRequest returns the bearer token of r: the "token" query parameter, which is what a
// y-websocket client sends with `params: { token }` (browsers cannot set headers on a WebSocket),
// or else the token of an "Authorization: Bearer …" header. It returns "" when there is neither.
//
// Query strings end up in access logs and proxies' logs; a server must not log the URL of
// /ws requests with their query.
func TokenFromRequest(r *http.Request) string {
	if r == nil {
		return ""
	}
	if r.URL != nil {
		if t := strings.TrimSpace(r.URL.Query().Get("token")); t != "" {
			return t
		}
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}
