// Package sqlite holds the schema of the embedded SQLite document store (store.SQLite) as
// numbered SQL migration pairs, embedded into the binary, and applies them with golang-migrate's
// sqlite driver (which uses modernc.org/sqlite: pure Go, no cgo).
//
// The files follow the same rules as the PostgreSQL ones in the parent package: NNNNNN_name.up.sql
// and NNNNNN_name.down.sql, the next free number for a new one, applied files never edited. The
// two sets are numbered independently; the SQLite file holds document state only (workflows need
// PostgreSQL).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"

	"github.com/golang-migrate/migrate/v4"
	msqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/ysync/ysync/migrations/internal/migrator"
)

// FS holds the migration files at its root.
//
//go:embed *.sql
var FS embed.FS

// ErrDirty reports that a previous migration failed half-way.
var ErrDirty = errors.New("sqlite migrations: database is dirty")

// DSN is the modernc.org/sqlite data source name for the database file at path with the
// settings every connection of ysync uses: foreign keys on (deleting a document cascades) and a
// busy timeout, so a second connection waits for the writer instead of failing at once.
func DSN(path string) string {
	return "file:" + path + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)"
}

// Up applies every migration not yet applied to the database file at path (created if missing).
func Up(ctx context.Context, path string) error {
	return run(ctx, path, "up", (*migrate.Migrate).Up)
}

// Down rolls back the n most recently applied migrations; n <= 0 rolls back all of them.
func Down(ctx context.Context, path string, n int) error {
	return run(ctx, path, "down", migrator.Down(n))
}

// Version reports the applied version (0 when none) and whether the last migration failed
// half-way.
func Version(ctx context.Context, path string) (version uint, dirty bool, err error) {
	err = run(ctx, path, "version", migrator.Version(&version, &dirty))
	return version, dirty, err
}

// run opens a migrate instance on the embedded files and the database file at path, runs op,
// and closes it. Cancelling ctx stops after the migration currently running.
func run(ctx context.Context, path, what string, op func(*migrate.Migrate) error) (err error) {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlite migrations %s: %w", what, err)
	}
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return fmt.Errorf("sqlite migrations %s: open %s: %w", what, path, err)
	}
	drv, err := msqlite.WithInstance(db, &msqlite.Config{})
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("sqlite migrations %s: open %s: %w", what, path, err)
	}
	src, err := iofs.New(FS, ".")
	if err != nil {
		_ = drv.Close()
		return fmt.Errorf("sqlite migrations %s: open embedded files: %w", what, err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "sqlite", drv)
	if err != nil {
		_ = src.Close()
		_ = drv.Close()
		return fmt.Errorf("sqlite migrations %s: %w", what, err)
	}
	defer func() {
		srcErr, dbErr := m.Close() // closes db too
		if err == nil {
			if cerr := errors.Join(srcErr, dbErr); cerr != nil {
				err = fmt.Errorf("sqlite migrations %s: close: %w", what, cerr)
			}
		}
	}()
	return migrator.Run(ctx, m, "sqlite migrations", what, ErrDirty, op)
}
