// Package auth decides who a connection is and what it may do with each document.
//
// An [Authenticator] turns the bearer token a client presents (see [TokenFromRequest]) into a
// [Principal]; [Principal.Permission] then says, per document name, whether that principal may
// read, write or nothing. The built-in [JWT] authenticator verifies compact JWS tokens signed with
// HS256, RS256 or ES256; an application with its own sessions implements [Authenticator] instead.
//
// The package holds no goroutines and no I/O beyond what an application's own Authenticator does:
// a *JWT is immutable after [NewJWT] and safe for concurrent use.
package auth
