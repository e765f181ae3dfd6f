// Package pgtest gives tests a PostgreSQL database to work in.
//
// The server comes from the environment variable YSYNC_TEST_DATABASE_URL (scripts/test.sh starts a
// throwaway cluster and sets it, via scripts/pg.sh). When it is unset, tests that need PostgreSQL
// are skipped, or fail when the CI environment variable is set, so a missing database never
// passes silently in CI.
//
// Each test works in a schema of its own: NewSchema creates t_<random>, returns a URL whose
// search_path points at it, and drops it (with everything in it) when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable holding the test server's URL.
const EnvURL = "YSYNC_TEST_DATABASE_URL"

// URL returns the test database URL from YSYNC_TEST_DATABASE_URL. When it is unset the test is
// skipped, or fails if the CI environment variable is set.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		msg := EnvURL + " is not set: these tests need PostgreSQL. Run scripts/test.sh (it starts a " +
			"throwaway cluster), or `scripts/pg.sh go test ./...`, or point " + EnvURL +
			" at a database, e.g. postgres://user@127.0.0.1:5432/db?sslmode=disable"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return u
}

// NewSchema creates an empty schema named t_<random> in the test database and returns a URL for
// the same database with search_path set to it, so that everything created through that URL
// (tables, the migrations' version table) lands in the schema. The schema is dropped when the
// test and its subtests end.
func NewSchema(t testing.TB) string {
	t.Helper()
	base := URL(t)

	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("pgtest: random schema name: %v", err)
	}
	schema := "t_" + hex.EncodeToString(b[:])

	exec(t, base, "CREATE SCHEMA "+schema)
	t.Cleanup(func() {
		// Cleanups run last-registered first, so pools the test opened after this call are
		// closed by now.
		exec(t, base, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	})
	return WithSearchPath(t, base, schema)
}

// WithSearchPath returns databaseURL with its search_path set to schema.
func WithSearchPath(t testing.TB, databaseURL, schema string) string {
	t.Helper()
	if !strings.Contains(databaseURL, "://") {
		// Keyword/value form: host=... dbname=...
		return databaseURL + " search_path=" + schema
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		t.Fatalf("pgtest: %s is not a valid URL", EnvURL) // the error would print the password
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func exec(t testing.TB, databaseURL, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", EnvURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}
