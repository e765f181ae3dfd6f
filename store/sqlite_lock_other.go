//go:build !unix

package store

// lockDataDir does nothing where flock is not available; SQLite's own locking still keeps the
// file consistent (a second process waits on the busy timeout).
func lockDataDir(string) (func(), error) { return func() {}, nil }
