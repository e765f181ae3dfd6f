package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// isolateEnv blanks every variable the command reads (YSYNC_*, DATABASE_URL) for the test, so a
// developer's exported DATABASE_URL is never used, let alone migrated, by a test.
func isolateEnv(t *testing.T) {
	t.Helper()
	t.Setenv("DATABASE_URL", "")
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "YSYNC_") {
			t.Setenv(k, "")
		}
	}
}

func TestParseServeFlagsAndEnv(t *testing.T) {
	env := map[string]string{
		"YSYNC_IDLE_TIMEOUT": "5m",
		"DATABASE_URL":       "postgres://u:secret@db:5432/x",
		"YSYNC_ADDR":         ":9999",
	}
	c, err := parseServe([]string{"--addr", ":7000", "--log-format", "json"}, io.Discard, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":7000" || c.IdleTimeout != 5*time.Minute || c.DatabaseURL != env["DATABASE_URL"] || c.LogFormat != "json" {
		t.Fatalf("config %+v", c)
	}
	if !c.ParkIdle {
		t.Fatal("--park-idle-readers should default to true")
	}
	env["YSYNC_PARK_IDLE_READERS"] = "false"
	if c, err = parseServe(nil, io.Discard, func(k string) string { return env[k] }); err != nil || c.ParkIdle {
		t.Fatalf("YSYNC_PARK_IDLE_READERS=false: ParkIdle %v, err %v", c.ParkIdle, err)
	}
	if c, err = parseServe([]string{"--park-idle-readers=true"}, io.Discard, func(k string) string { return env[k] }); err != nil || !c.ParkIdle {
		t.Fatalf("--park-idle-readers=true over the environment: ParkIdle %v, err %v", c.ParkIdle, err)
	}
	delete(env, "YSYNC_PARK_IDLE_READERS")
	env["YSYNC_DATABASE_URL"] = "postgres://other"
	c, _ = parseServe(nil, io.Discard, func(k string) string { return env[k] })
	if c.DatabaseURL != "postgres://other" {
		t.Fatalf("YSYNC_DATABASE_URL should win over DATABASE_URL: %q", c.DatabaseURL)
	}
	for _, bad := range [][]string{{"--log-format", "xml"}, {"--log-level", "loud"}, {"--queue-budget", "0"}, {"extra"}} {
		if _, err := parseServe(bad, io.Discard, func(string) string { return "" }); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestMaskURL(t *testing.T) {
	got := maskURL("postgres://user:hunter2@host:5432/db?sslmode=disable")
	if strings.Contains(got, "hunter2") || !strings.Contains(got, "user:xxxxx@host") {
		t.Fatalf("masked %q", got)
	}
	if got := maskURL("postgres://host/db?password=hunter2"); strings.Contains(got, "hunter2") {
		t.Fatalf("masked %q", got)
	}
}

func TestUsageErrors(t *testing.T) {
	isolateEnv(t)
	for _, args := range [][]string{nil, {"nope"}, {"migrate", "up"}, {"migrate", "up", "--no-such-flag"},
		{"migrate", "--database-url", "postgres://x@127.0.0.1:1/db", "sideways"}, {"version", "extra"},
		{"serve", "--store", "postgres"}, {"serve", "--store", "floppy"}, {"serve", "--store", "sqlite", "--data-dir", ""}} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		if !errors.Is(err, errUsage) && !strings.Contains(fmt.Sprint(err), "flag provided but not defined") {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serve with the in-memory store starts, warns loudly, answers /healthz and stops cleanly when
// its context ends (what SIGTERM does).
func TestServeInMemoryStartsAndStops(t *testing.T) {
	isolateEnv(t)
	t.Chdir(t.TempDir())
	stderr := serveUntilHealthy(t, "serve", "--addr", "127.0.0.1:0", "--store", "memory")
	if !strings.Contains(stderr, "nothing survives a restart") || !strings.Contains(stderr, "effective config") {
		t.Fatalf("start-up log lacks the config or the in-memory warning:\n%s", stderr)
	}
	if _, err := os.Stat(defaultDataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--store memory created %s (%v)", defaultDataDir, err)
	}
}

// serve without any store flag keeps documents in ./ysync-data/ysync.db, creates it, and says
// where in the start-up log; flags after positional-free serve parse as well.
func TestServeDefaultsToSQLite(t *testing.T) {
	isolateEnv(t)
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("YSYNC_ADDR", "127.0.0.1:0")
	stderr := serveUntilHealthy(t, "serve")
	if strings.Contains(stderr, "nothing survives") {
		t.Errorf("default store warns of an in-memory store:\n%s", stderr)
	}
	file := filepath.Join(defaultDataDir, "ysync.db")
	if !strings.Contains(stderr, "documents are stored in SQLite") || !strings.Contains(stderr, file) {
		t.Errorf("start-up log does not name the SQLite file %s:\n%s", file, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
		t.Errorf("no database file: %v", err)
	}
}

func TestStoreInference(t *testing.T) {
	none := func(string) string { return "" }
	for _, tc := range []struct {
		args  []string
		env   map[string]string
		store string
	}{
		{nil, nil, storeSQLite},
		{[]string{"--database-url", "postgres://h/db"}, nil, storePostgres},
		{nil, map[string]string{"DATABASE_URL": "postgres://h/db"}, storePostgres},
		{[]string{"--store", "memory"}, map[string]string{"DATABASE_URL": "postgres://h/db"}, storeMemory},
		{nil, map[string]string{"YSYNC_STORE": "memory"}, storeMemory},
		{[]string{"--store", "sqlite", "--data-dir", "/tmp/x"}, nil, storeSQLite},
	} {
		getenv := none
		if tc.env != nil {
			getenv = func(k string) string { return tc.env[k] }
		}
		c, err := parseServe(tc.args, io.Discard, getenv)
		if err != nil || c.Store != tc.store {
			t.Errorf("%v %v: store %q, %v; want %q", tc.args, tc.env, c.Store, err, tc.store)
		}
	}
}

// Flags may come before, between or after the arguments.
func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		url  string
		pos  []string
	}{
		{[]string{"up", "--database-url", "postgres://a"}, "postgres://a", []string{"up"}},
		{[]string{"--database-url=postgres://b", "down", "2"}, "postgres://b", []string{"down", "2"}},
		{[]string{"down", "-database-url", "postgres://c", "2"}, "postgres://c", []string{"down", "2"}},
		{[]string{"force", "-1", "--database-url", "postgres://d"}, "postgres://d", []string{"force", "-1"}},
		{[]string{"up", "--", "--database-url"}, "", []string{"up", "--database-url"}},
	} {
		var url string
		var verbose bool
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		addDatabaseFlag(fs, &url)
		fs.BoolVar(&verbose, "v", false, "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil || url != tc.url || !slices.Equal(pos, tc.pos) {
			t.Errorf("%q: url %q pos %q err %v; want %q %q", tc.args, url, pos, err, tc.url, tc.pos)
		}
	}
	var verbose bool
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.BoolVar(&verbose, "v", false, "")
	if pos, err := parseInterspersed(fs, []string{"-v", "up"}); err != nil || !verbose || !slices.Equal(pos, []string{"up"}) {
		t.Errorf("bool flag before an argument: v=%v pos %q err %v", verbose, pos, err)
	}
}

func TestVersion(t *testing.T) {
	isolateEnv(t)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "ysync ") || !strings.Contains(out.String(), runtime.Version()) {
		t.Errorf("version output %q lacks the name or the Go version", out.String())
	}
	info := &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
		{Key: "vcs.modified", Value: "true"}, {Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
	}}
	if got, want := versionString(info, true), "ysync v1.2.3 abc123 (2026-01-02T03:04:05Z) modified go1.99 linux/arm64"; got != want {
		t.Errorf("versionString = %q, want %q", got, want)
	}
	if got := versionString(nil, false); !strings.Contains(got, "no build information") {
		t.Errorf("versionString without info = %q", got)
	}
}

// A migrate subcommand with its flags after it reaches the database it names (nothing listens
// there, so it fails to connect rather than with a usage error).
func TestMigrateFlagsAfterSubcommand(t *testing.T) {
	isolateEnv(t)
	err := run(context.Background(), []string{"migrate", "version", "--database-url", "postgres://x@127.0.0.1:1/db?sslmode=disable&connect_timeout=5"}, io.Discard, io.Discard)
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("migrate version --database-url URL = %v, want a connection error", err)
	}
}

// serveUntilHealthy runs the command until /healthz answers, then cancels it (what SIGTERM
// does), checks it exited cleanly and returns its stderr.
func serveUntilHealthy(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, &stdout, &stderr)
	}()
	var addr string
	deadline := time.Now().Add(60 * time.Second)
	for addr == "" {
		if a, ok := strings.CutPrefix(strings.TrimSpace(stdout.String()), "ysync listening on "); ok {
			addr = a
		} else if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no listening line; stderr:\n%s", stderr.String())
		} else {
			select {
			case err := <-done:
				cancel()
				t.Fatalf("serve ended before listening: %v\n%s", err, stderr.String())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	resp, err := http.Get(addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		cancel()
		t.Fatalf("healthz: %v", err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}
	return stderr.String()
}

func TestParseServeCluster(t *testing.T) {
	env := map[string]string{"YSYNC_REDIS_URL": "redis://127.0.0.1:6379/0", "DATABASE_URL": "postgres://u@h/db", "YSYNC_NODE_ID": "n1"}
	c, err := parseServe(nil, io.Discard, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.RedisURL != env["YSYNC_REDIS_URL"] || c.NodeID != "n1" || c.PositionCheckInterval <= 0 {
		t.Fatalf("cluster flags from env: %+v", c)
	}
	_, err = parseServe([]string{"--redis-url", "redis://127.0.0.1:6379/0"}, io.Discard, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "--database-url") {
		t.Fatalf("--redis-url without a database: %v, want a clear refusal naming --database-url", err)
	}
}
