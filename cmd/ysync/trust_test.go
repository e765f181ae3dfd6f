package main

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ysync/ysync/server"
)

func TestTrustFlagsFromEnvAndOpenWarning(t *testing.T) {
	secret := "k3J9-xQ2mZ7vL0pR8wT4yB6nC1hF5dG2sA9eU7iO"
	env := map[string]string{"YSYNC_AUTH_HS256_SECRET": secret, "YSYNC_MAX_CONNS_PER_DOC": "7"}
	cfg, err := parseServe([]string{"--allowed-origins", "https://app.example.com, https://*.example.org"}, io.Discard, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Trust.HS256Secret != secret || cfg.Trust.MaxConnsPerDoc != 7 || len(cfg.Trust.origins()) != 2 {
		t.Fatalf("trust config %+v", cfg.Trust)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	log.Info("effective config", cfg.Trust.logAttrs()...)
	authn, _, err := setupTrust(cfg.Trust, log, io.Discard)
	if err != nil || authn == nil {
		t.Fatalf("authenticator %v, err %v", authn, err)
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatal("the secret is logged")
	}

	if _, err := parseServe([]string{"--allowed-origins", "ftp//bad"}, io.Discard, func(string) string { return "" }); err == nil {
		t.Fatal("bad origin pattern accepted")
	}

	open, _ := parseServe(nil, io.Discard, func(string) string { return "" })
	logs.Reset()
	var stderr bytes.Buffer
	authn, _, err = setupTrust(open.Trust, slog.New(slog.NewTextHandler(&logs, nil)), &stderr)
	if err != nil || authn != nil {
		t.Fatalf("open server: authenticator %v, err %v", authn, err)
	}
	if !strings.Contains(logs.String(), "NO AUTHENTICATION") || !strings.Contains(stderr.String(), "WARNING") {
		t.Fatalf("no loud warning:\n%s\n%s", logs.String(), stderr.String())
	}
}

func TestHTTPSafeFlags(t *testing.T) {
	env := map[string]string{"YSYNC_MAX_CONNS_PER_IP": "9", "YSYNC_TRUST_PROXY_HEADER": "X-Real-IP"}
	cfg, err := parseServe([]string{"--max-conns-per-user", "3", "--max-conns-per-user-per-doc", "2", "--max-http-conns", "-1",
		"--http-idle-timeout", "0", "--http-read-timeout", "5s"}, io.Discard, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Trust.limits()
	if l.MaxConnsPerIP != 9 || l.TrustProxyHeader != "X-Real-IP" || l.MaxConnsPerUser != 3 || l.MaxConnsPerUserPerDoc != 2 || l.MaxHTTPConns != -1 {
		t.Errorf("limits %+v", l)
	}
	if l.HTTPIdleTimeout >= 0 || l.ReadTimeout != 5*time.Second || l.WriteTimeout != server.DefaultWriteTimeout {
		t.Errorf("timeouts: idle %v (0 must mean none: negative), read %v, write %v", l.HTTPIdleTimeout, l.ReadTimeout, l.WriteTimeout)
	}
	for _, bad := range [][]string{
		{"--trust-proxy-header", "X Forwarded For"},
		{"--http-read-timeout", "-1s"},
		{"--max-workflow-body-bytes", "0"},
	} {
		if _, err := parseServe(bad, io.Discard, func(string) string { return "" }); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	// A low-entropy secret is refused at start, naming the rule.
	low, _ := parseServe([]string{"--auth-hs256-secret", strings.Repeat(" ", 40)}, io.Discard, func(string) string { return "" })
	if _, _, err := setupTrust(low.Trust, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard); err == nil || !strings.Contains(err.Error(), "different bytes") {
		t.Errorf("40 spaces as the secret: %v", err)
	}
}
