// Package limits holds the server's defences against floods: token buckets for per-connection
// message and byte rates (Bucket, ConnLimiter), connection counts per document and per process
// (Counter), and the browser Origin allow-list (OriginAllowed).
//
// Bucket and ConnLimiter are pure: time is passed in, nothing runs in the background, and each
// value belongs to one goroutine (a connection's reader), so they take no locks. Counter is shared
// and safe for concurrent use.
package limits
