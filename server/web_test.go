package server_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/server"
)

// TestWebPages: the embedded pages and assets are served without authentication (they ask for
// tokens themselves), with the right types, revalidation by ETag, a CSP, and nothing else.
func TestWebPages(t *testing.T) {
	t.Parallel()
	_, _, base := startMem(t, server.Config{Authenticator: jwtAuth(t)})
	get := func(path string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, c := range []struct{ path, ctype, contains string }{
		{"/", "text/html", `src="/assets/console.js"`},
		{"/demo/text?doc=a%2Fb", "text/html", `data-testid="presence"`},
		{"/demo/workflow/6b1c0c1e-6f1a-4a43-9a55-0c7f0a6a1f00", "text/html", `data-testid="lock-version"`},
		{"/assets/text.js", "text/javascript", "awareness"},
		{"/assets/console.js", "text/javascript", "ysync-admin-token"},
		{"/assets/style.css", "text/css", "--accent"},
	} {
		res, body := get(c.path, nil)
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", c.path, res.StatusCode)
			continue
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.ctype) {
			t.Errorf("%s: Content-Type %q, want %s", c.path, ct, c.ctype)
		}
		if !strings.Contains(body, c.contains) {
			t.Errorf("%s: body lacks %q", c.path, c.contains)
		}
		if strings.HasPrefix(c.ctype, "text/html") && !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("%s: no CSP: %q", c.path, res.Header.Get("Content-Security-Policy"))
		}
		etag := res.Header.Get("ETag")
		if etag == "" {
			t.Errorf("%s: no ETag", c.path)
			continue
		}
		if res, _ := get(c.path, map[string]string{"If-None-Match": etag}); res.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match: status %d, want 304", c.path, res.StatusCode)
		}
	}
	for _, p := range []string{"/nope", "/assets/console.html", "/assets/../embed.go", "/assets/", "/demo/workflow/", "/index.html"} {
		if res, _ := get(p, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, res.StatusCode)
		}
	}
	// gzip when asked for (the bundles are large), identity otherwise; both the same bytes.
	_, plain := get("/assets/text.js", map[string]string{"Accept-Encoding": "identity"})
	for _, c := range []struct {
		accept string
		gz     bool
	}{{"gzip", true}, {"br, gzip;q=0.8", true}, {"gzip;q=0", false}, {"identity", false}, {"deflate", false}} {
		res, body := get("/assets/text.js", map[string]string{"Accept-Encoding": c.accept})
		if got := res.Header.Get("Content-Encoding") == "gzip"; got != c.gz {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q", c.accept, res.Header.Get("Content-Encoding"))
			continue
		}
		if c.gz {
			zr, err := gzip.NewReader(bytes.NewReader([]byte(body)))
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			if len(body) >= len(plain) || string(b) != plain {
				t.Errorf("gzip body: %d bytes for %d, decompresses equal: %v", len(body), len(plain), string(b) == plain)
			}
		} else if body != plain {
			t.Errorf("Accept-Encoding %q: body differs from identity", c.accept)
		}
		if res.Header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("no Vary: Accept-Encoding")
		}
	}

	// The admin API behind the console stays closed to the pages' own requests.
	if res, _ := get("/api/rooms", nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("/api/rooms without a token: status %d", res.StatusCode)
	}
	admin, err := auth.SignHS256(testSecret, auth.Claims{Subject: "root", Admin: true, ExpiresAt: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := get("/api/rooms", map[string]string{"Authorization": "Bearer " + admin}); res.StatusCode != http.StatusOK {
		t.Errorf("/api/rooms with an admin token: status %d", res.StatusCode)
	}
}
