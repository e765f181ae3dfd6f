//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDataDir takes an exclusive advisory lock on dir/ysync.lock for the life of the store, so
// that a second process on the same data directory fails at once with a clear error instead of
// waiting on SQLite's busy timeout and then failing writes. The kernel drops the lock when the
// process dies, so a crash never leaves the directory locked.
func lockDataDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, "ysync.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: data directory %s is in use by another process (%s is locked)", ErrLocked, dir, path)
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	return func() { _ = f.Close() }, nil
}
