// Package migrations holds the database schema as numbered SQL migration pairs
// (NNNNNN_name.up.sql / NNNNNN_name.down.sql), embedded into the binary, and helpers that apply
// them with golang-migrate.
//
// New migrations are added as the next number (000002_..., 000003_...), each with an up and a
// down file. Applied migrations are never edited.
//
// Database URLs may use the postgres:// or postgresql:// scheme (they are rewritten to the pgx5://
// scheme golang-migrate's pgx/v5 driver registers) or pgx5:// directly. Query parameters are passed
// to the connection, so ?search_path=myschema migrates into that schema; golang-migrate's own x-*
// parameters (x-migrations-table, x-statement-timeout, ...) work as documented there.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers the pgx5:// driver
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/ysync/ysync/migrations/internal/migrator"
)

// FS holds the migration files at its root.
//
//go:embed *.sql
var FS embed.FS

// ErrDirty reports that a previous migration failed half-way; the schema must be repaired by hand
// and the version set with Force.
var ErrDirty = errors.New("migrations: database is dirty")

// Up applies every migration not yet applied. It is a no-op when the schema is current.
func Up(ctx context.Context, databaseURL string) error {
	return run(ctx, databaseURL, "up", (*migrate.Migrate).Up)
}

// Down rolls back the n most recently applied migrations; n <= 0 rolls back all of them.
func Down(ctx context.Context, databaseURL string, n int) error {
	return run(ctx, databaseURL, "down", migrator.Down(n))
}

// Version reports the currently applied version (0 when none) and whether the last migration
// failed half-way (dirty).
func Version(ctx context.Context, databaseURL string) (version uint, dirty bool, err error) {
	err = run(ctx, databaseURL, "version", migrator.Version(&version, &dirty))
	return version, dirty, err
}

// Force records version as applied and clears the dirty flag without running any migration.
// Use it after repairing a failed migration by hand. A version of -1 means "no migration".
func Force(ctx context.Context, databaseURL string, version int) error {
	return run(ctx, databaseURL, "force", func(m *migrate.Migrate) error { return m.Force(version) })
}

// Latest is the highest migration version embedded in FS.
func Latest() (uint, error) {
	src, err := iofs.New(FS, ".")
	if err != nil {
		return 0, fmt.Errorf("migrations: open embedded files: %w", err)
	}
	defer src.Close()
	v, err := src.First()
	if err != nil {
		return 0, fmt.Errorf("migrations: no embedded migrations: %w", err)
	}
	for {
		next, err := src.Next(v)
		if err != nil {
			return v, nil // fs.ErrNotExist: v is the last one
		}
		v = next
	}
}

// run opens a migrate instance on the embedded files and databaseURL, runs op, and closes it.
// Cancelling ctx stops after the migration currently running (golang-migrate's graceful stop).
func run(ctx context.Context, databaseURL, what string, op func(*migrate.Migrate) error) (err error) {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("migrations %s: %w", what, err)
	}
	dbURL, err := driverURL(databaseURL)
	if err != nil {
		return fmt.Errorf("migrations %s: %w", what, err)
	}
	src, err := iofs.New(FS, ".")
	if err != nil {
		return fmt.Errorf("migrations %s: open embedded files: %w", what, err)
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, dbURL)
	if err != nil {
		_ = src.Close()
		return fmt.Errorf("migrations %s: connect: %w", what, err)
	}
	defer func() {
		srcErr, dbErr := m.Close()
		if err == nil {
			if cerr := errors.Join(srcErr, dbErr); cerr != nil {
				err = fmt.Errorf("migrations %s: close: %w", what, cerr)
			}
		}
	}()

	return migrator.Run(ctx, m, "migrations", what, ErrDirty, op)
}

// driverURL rewrites a postgres:// or postgresql:// URL to golang-migrate's pgx5:// scheme.
func driverURL(databaseURL string) (string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil || u.Scheme == "" || u.Host == "" && u.Path == "" {
		// url.Parse's error repeats the URL, which may hold a password.
		return "", errors.New("database URL must look like postgres://user@host:port/dbname")
	}
	switch strings.ToLower(u.Scheme) {
	case "postgres", "postgresql", "pgx5":
		u.Scheme = "pgx5"
	default:
		return "", fmt.Errorf("database URL scheme %q is not postgres://", u.Scheme)
	}
	return u.String(), nil
}
