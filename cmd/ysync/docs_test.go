package main

import (
	"io"
	"slices"
	"testing"
	"time"
)

func TestParseDocsFlags(t *testing.T) {
	env := map[string]string{"YSYNC_WEBHOOK_URL": "http://127.0.0.1:1/a, https://x.example/b", "YSYNC_WEBHOOK_SECRET": "s3cret"}
	c, err := parseServe([]string{"--auto-version-interval", "1m", "--auto-version-keep", "5"}, io.Discard, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Docs.AutoVersionInterval != time.Minute || c.Docs.AutoVersionKeep != 5 || c.Docs.WebhookSecret != "s3cret" ||
		!slices.Equal(c.Docs.WebhookURLs, []string{"http://127.0.0.1:1/a", "https://x.example/b"}) {
		t.Fatalf("docs config %+v", c.Docs)
	}
	if v := c.Docs.versions(); v.AutoInterval != time.Minute || v.Keep != 5 {
		t.Fatalf("versions %+v", v)
	}
	// Repeated flags win over the environment; 0 disables automatic versions.
	c, err = parseServe([]string{"--webhook-url", "http://a/1", "--webhook-url", "http://b/2", "--auto-version-interval", "0"}, io.Discard, func(k string) string { return env[k] })
	if err != nil || !slices.Equal(c.Docs.WebhookURLs, []string{"http://a/1", "http://b/2"}) || c.Docs.versions().AutoInterval >= 0 {
		t.Fatalf("repeated: %+v, %v", c.Docs, err)
	}
	for _, bad := range [][]string{{"--webhook-url", "ftp://x/y"}, {"--webhook-url", "nohost"}, {"--auto-version-keep", "0"}, {"--auto-version-interval", "-1s"}} {
		if _, err := parseServe(bad, io.Discard, func(string) string { return "" }); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	for _, a := range c.Docs.logAttrs() {
		if a == "s3cret" {
			t.Fatal("secret in the logged configuration")
		}
	}
}
