package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

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
	for _, args := range [][]string{nil, {"nope"}, {"migrate", "up"}} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		if !errors.Is(err, errUsage) {
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
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--database-url", ""}, &stdout, &stderr)
	}()
	var addr string
	deadline := time.Now().Add(10 * time.Second)
	for addr == "" {
		if a, ok := strings.CutPrefix(strings.TrimSpace(stdout.String()), "ysync listening on "); ok {
			addr = a
		} else if time.Now().After(deadline) {
			t.Fatalf("no listening line; stderr:\n%s", stderr.String())
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	resp, err := http.Get(addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v", err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if !strings.Contains(stderr.String(), "nothing survives a restart") || !strings.Contains(stderr.String(), "effective config") {
		t.Fatalf("start-up log lacks the config or the in-memory warning:\n%s", stderr.String())
	}
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
