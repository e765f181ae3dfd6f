package sqlite_test

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"regexp"
	"testing"

	msql "github.com/ysync/ysync/migrations/sqlite"
)

func TestFilesArePairs(t *testing.T) {
	names, err := fs.Glob(msql.FS, "*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("embedded files: %q, %v", names, err)
	}
	re := regexp.MustCompile(`^(\d{6})_[a-z0-9_]+\.(up|down)\.sql$`)
	seen := map[string]int{}
	for _, n := range names {
		m := re.FindStringSubmatch(n)
		if m == nil {
			t.Errorf("%s: want NNNNNN_name.up.sql or NNNNNN_name.down.sql", n)
			continue
		}
		seen[m[1]]++
	}
	for v, n := range seen {
		if n != 2 {
			t.Errorf("migration %s: %d files, want an up and a down", v, n)
		}
	}
}

func tables(t *testing.T, path string) map[string]bool {
	t.Helper()
	db, err := sql.Open("sqlite", msql.DSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		got[n] = true
	}
	return got
}

// Up creates the file and the tables, is idempotent, and Down removes them again.
func TestUpDownVersion(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ysync.db")
	if v, dirty, err := msql.Version(ctx, path); err != nil || v != 0 || dirty {
		t.Fatalf("Version of a new file = %d, %v, %v; want 0, false, nil", v, dirty, err)
	}
	for range 2 {
		if err := msql.Up(ctx, path); err != nil {
			t.Fatalf("Up: %v", err)
		}
	}
	if v, dirty, err := msql.Version(ctx, path); err != nil || v != 1 || dirty {
		t.Fatalf("Version after Up = %d, %v, %v; want 1", v, dirty, err)
	}
	got := tables(t, path)
	for _, n := range []string{"documents", "document_updates", "document_checkpoints"} {
		if !got[n] {
			t.Errorf("table %s missing after Up (have %v)", n, got)
		}
	}
	if err := msql.Down(ctx, path, 0); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if got := tables(t, path); got["documents"] || got["document_updates"] {
		t.Errorf("tables left after Down: %v", got)
	}
	if err := msql.Up(ctx, path); err != nil {
		t.Fatalf("Up after Down: %v", err)
	}
}

func TestUpBadPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "ysync.db")
	if err := msql.Up(context.Background(), path); err == nil {
		t.Fatal("Up into a missing directory succeeded")
	}
}
