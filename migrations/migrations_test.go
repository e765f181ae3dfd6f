package migrations_test

import (
	"context"
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ysync/ysync/internal/pgtest"
	"github.com/ysync/ysync/migrations"
)

// Every migration comes as a numbered up/down pair.
func TestFilesArePairs(t *testing.T) {
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^(\d{6})_[a-z0-9_]+\.(up|down)\.sql$`)
	ups, downs := map[string]bool{}, map[string]bool{}
	for _, n := range names {
		m := re.FindStringSubmatch(n)
		if m == nil {
			t.Errorf("%s: want NNNNNN_name.up.sql or NNNNNN_name.down.sql", n)
			continue
		}
		if m[2] == "up" {
			ups[m[1]] = true
		} else {
			downs[m[1]] = true
		}
	}
	for v := range ups {
		if !downs[v] {
			t.Errorf("migration %s has no down file", v)
		}
	}
	for v := range downs {
		if !ups[v] {
			t.Errorf("migration %s has no up file", v)
		}
	}
	if !ups["000001"] {
		t.Error("000001 missing")
	}
	latest, err := migrations.Latest()
	if err != nil {
		t.Fatal(err)
	}
	if latest != uint(len(ups)) {
		t.Errorf("Latest() = %d with %d migrations: versions must be numbered 1..n without gaps", latest, len(ups))
	}
}

func TestUpDownUp(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewSchema(t)
	latest, err := migrations.Latest()
	if err != nil {
		t.Fatal(err)
	}

	if v, dirty, err := migrations.Version(ctx, url); err != nil || v != 0 || dirty {
		t.Fatalf("fresh schema: Version = %d, %v, %v; want 0, false, nil", v, dirty, err)
	}
	if err := migrations.Up(ctx, url); err != nil {
		t.Fatalf("Up: %v", err)
	}
	if v, dirty, err := migrations.Version(ctx, url); err != nil || v != latest || dirty {
		t.Fatalf("after Up: Version = %d, %v, %v; want %d, false, nil", v, dirty, err, latest)
	}
	if err := migrations.Up(ctx, url); err != nil {
		t.Fatalf("second Up (no change) = %v, want nil", err)
	}
	want := []string{"document_checkpoints", "document_updates", "documents"}
	if got := tables(t, url); !contains(got, want) {
		t.Fatalf("tables after Up = %v, want to include %v", got, want)
	}

	if err := migrations.Down(ctx, url, 0); err != nil {
		t.Fatalf("Down all: %v", err)
	}
	if got := tables(t, url); len(got) != 1 || got[0] != "schema_migrations" {
		t.Fatalf("tables after Down = %v, want only schema_migrations", got)
	}
	if err := migrations.Up(ctx, url); err != nil {
		t.Fatalf("Up again: %v", err)
	}
	if err := migrations.Down(ctx, url, 1); err != nil {
		t.Fatalf("Down 1: %v", err)
	}
	if v, _, err := migrations.Version(ctx, url); err != nil || v != latest-1 {
		t.Fatalf("after Down 1: Version = %d, %v; want %d", v, err, latest-1)
	}
	if err := migrations.Force(ctx, url, int(latest)); err != nil {
		t.Fatalf("Force: %v", err)
	}
	if v, dirty, err := migrations.Version(ctx, url); err != nil || v != latest || dirty {
		t.Fatalf("after Force: Version = %d, %v, %v", v, dirty, err)
	}
}

func TestBadURL(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"", "mysql://x@localhost/db", "not a url"} {
		if err := migrations.Up(ctx, u); err == nil {
			t.Errorf("Up(%q) = nil, want error", u)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := migrations.Up(cctx, "postgres://x@127.0.0.1:1/db"); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("Up with cancelled ctx = %v, want context canceled", err)
	}
}

func tables(t *testing.T, url string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func contains(have, want []string) bool {
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}
