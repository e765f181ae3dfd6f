package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runTiny runs the bench at tiny sizes and checks that the table has every row and that the
// loads synced the written text (run returns an error otherwise).
func runTiny(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append([]string{"--updates", "300", "--runs", "1", "--big-mb", "0.25"}, args...)
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("run %v: %v\n%s", args, err, errOut.String())
	}
	table := out.String()
	for _, row := range []string{
		"| (a) log of 300 updates", "| (b) same content as one checkpoint", "| ratio log/checkpoint |",
		"| (c) big document, encoded |", "| ratio peak heap/encoded |", "| (c) peak live heap",
	} {
		if !strings.Contains(table, row) {
			t.Errorf("table lacks the row %q:\n%s", row, table)
		}
	}
	return table
}

func TestBenchSQLiteSynthetic(t *testing.T) {
	table := runTiny(t, "--trace", "synthetic", "--database-url", "", "--dir", t.TempDir())
	if !strings.Contains(table, "store sqlite") || !strings.Contains(table, "(synthetic)") {
		t.Errorf("table does not say sqlite and synthetic:\n%s", table)
	}
}

func TestBenchTrace(t *testing.T) {
	dir := os.Getenv("YSYNC_TRACES_DIR")
	trace := filepath.Join(dir, "automerge-paper.json.gz")
	if !fileExists(trace) {
		t.Skipf("no %s (set YSYNC_TRACES_DIR)", trace)
	}
	table := runTiny(t, "--trace", trace, "--database-url", "", "--dir", t.TempDir())
	if !strings.Contains(table, "(automerge-paper)") {
		t.Errorf("table does not name the trace:\n%s", table)
	}
}

func TestBenchPostgres(t *testing.T) {
	url := os.Getenv("YSYNC_TEST_DATABASE_URL")
	if url == "" {
		t.Skip("YSYNC_TEST_DATABASE_URL is not set (source scripts/pg.sh)")
	}
	if table := runTiny(t, "--trace", "synthetic", "--database-url", url); !strings.Contains(table, "store postgres") {
		t.Errorf("table does not say postgres:\n%s", table)
	}
}

func TestBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	for _, args := range [][]string{{"--runs", "0"}, {"--updates", "-1"}, {"extra"}} {
		if err := run(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("run %v: no error", args)
		}
	}
}
