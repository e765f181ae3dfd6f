// Package auth decides who a connection is and what it may do with each document.
//
// An [Authenticator] turns the bearer token a client presents (see [TokenFromRequest]) into a
// [Principal]; [Principal.Permission] then says, per document name, whether that principal may
// read, write or nothing. The built-in [JWT] authenticator verifies compact JWS tokens signed with
// HS256, RS256 or ES256 (configured keys) or with the keys of an identity provider's JWKS; an
// application with its own sessions implements [Authenticator] instead.
//
// Without JWKS URLs the package holds no goroutines and does no I/O: a *JWT is immutable after
// [NewJWT] and safe for concurrent use. With them, a JWK cache (lestrrat-go/jwx) fetches in the
// background until [JWT.Close], and Authenticate may fetch (rate-limited) on an unknown kid.
package auth
