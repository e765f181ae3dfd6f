// Package migrator is what the PostgreSQL and SQLite migration packages do alike once each has
// opened its golang-migrate instance: the operations, the graceful stop when the context ends,
// and the verdict on golang-migrate's errors.
package migrator

import (
	"context"
	"errors"
	"fmt"

	"github.com/golang-migrate/migrate/v4"
)

// Down rolls back the n most recently applied migrations; n <= 0 rolls back all of them.
func Down(n int) func(*migrate.Migrate) error {
	return func(m *migrate.Migrate) error {
		if n <= 0 {
			return m.Down()
		}
		return m.Steps(-n)
	}
}

// Version reads the applied version into version and dirty: 0 and clean when none is applied.
func Version(version *uint, dirty *bool) func(*migrate.Migrate) error {
	return func(m *migrate.Migrate) error {
		v, d, err := m.Version()
		if errors.Is(err, migrate.ErrNilVersion) {
			v, d, err = 0, false, nil
		}
		*version, *dirty = v, d
		return err
	}
}

// Run runs op on m and says how it went, each error starting with prefix and what (the
// operation's name): ErrNoChange is success, a dirty database wraps errDirty. Cancelling ctx stops
// after the migration currently running (golang-migrate's graceful stop) and reports the stop.
func Run(ctx context.Context, m *migrate.Migrate, prefix, what string, errDirty error, op func(*migrate.Migrate) error) error {
	done := make(chan struct{})
	stopped := make(chan struct{})
	interrupted := false // written by the goroutine before it closes stopped
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			select {
			case m.GracefulStop <- true:
				interrupted = true
			default:
			}
		case <-done:
		}
	}()
	err := op(m)
	close(done)
	<-stopped

	var dirty migrate.ErrDirty
	switch {
	case err == nil, errors.Is(err, migrate.ErrNoChange):
		if interrupted {
			return fmt.Errorf("%s %s: stopped: %w", prefix, what, context.Cause(ctx))
		}
		return nil
	case errors.As(err, &dirty):
		return fmt.Errorf("%s %s: version %d: %w (%w)", prefix, what, dirty.Version, errDirty, err)
	default:
		return fmt.Errorf("%s %s: %w", prefix, what, err)
	}
}
