// Package limits holds the server's defences against floods: token buckets for per-connection
// message and byte rates (Bucket, ConnLimiter), connection counts per document and per process
// (Counter), a listener that counts connections per peer IP and in total at accept time
// (Listener, with ClientIP for an address from a trusted proxy header), and the browser Origin
// allow-list (OriginAllowed).
//
// Bucket and ConnLimiter are pure: time is passed in, nothing runs in the background, and each
// value belongs to one goroutine (a connection's reader), so they take no locks. Counter,
// Listener and Conn are shared and safe for concurrent use.
package limits
