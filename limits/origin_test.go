package limits

import "testing"

func TestOriginAllowed(t *testing.T) {
	t.Parallel()
	app := []string{"https://app.example.com", "http://localhost:5173", "https://*.team.example"}
	tests := []struct {
		name   string
		origin string
		allow  []string
		want   bool
	}{
		{"no origin header", "", app, true},
		{"empty list", "https://evil.example", nil, true},
		{"star", "https://evil.example", []string{"*"}, true},
		{"exact", "https://app.example.com", app, true},
		{"exact, case", "HTTPS://App.Example.COM", app, true},
		{"other host", "https://evil.example", app, false},
		{"suffix trick", "https://app.example.com.evil.example", app, false},
		{"scheme must match", "http://app.example.com", app, false},
		{"explicit default port", "https://app.example.com:443", app, true},
		{"other port", "https://app.example.com:8443", app, false},
		{"dev port", "http://localhost:5173", app, true},
		{"dev port missing", "http://localhost", app, false},
		{"dev other port", "http://localhost:3000", app, false},
		{"wildcard subdomain", "https://a.team.example", app, true},
		{"wildcard deep subdomain", "https://a.b.team.example", app, true},
		{"wildcard excludes the apex", "https://team.example", app, false},
		{"wildcard needs the dot", "https://evilteam.example", app, false},
		{"wildcard scheme", "http://a.team.example", app, false},
		{"wildcard port", "https://a.team.example:444", app, false},
		{"schemeless wildcard, any scheme", "http://a.example.org", []string{"*.example.org"}, true},
		{"schemeless exact", "https://example.org", []string{"example.org"}, true},
		{"schemeless, default port of the origin's scheme", "http://example.org:80", []string{"example.org"}, true},
		{"schemeless, port given", "https://example.org:8443", []string{"example.org:8443"}, true},
		{"schemeless, port not given", "https://example.org:8443", []string{"example.org"}, false},
		{"schemeless, explicit 443 against http", "http://example.org", []string{"example.org:443"}, false},
		{"trailing slash in the pattern", "https://app.example.com", []string{"https://app.example.com/"}, true},
		{"origin with a path is not an origin", "https://app.example.com/x", app, false},
		{"origin with user info", "https://u@app.example.com", app, false},
		{"origin without scheme", "app.example.com", app, false},
		{"null not allowed", "null", app, false},
		{"null allowed when listed", "null", []string{"null"}, true},
		{"null pattern matches only null", "https://null", []string{"null"}, false},
		{"garbage origin", "::::", app, false},
		{"IPv6", "http://[::1]:8080", []string{"http://[::1]:8080"}, true},
		{"IPv6 other port", "http://[::1]:8081", []string{"http://[::1]:8080"}, false},
		{"leading zeros in port", "http://localhost:05173", app, true},
		{"port 0", "http://localhost:0", []string{"http://localhost:0"}, false},
		{"port out of range", "http://localhost:70000", []string{"http://localhost:70000"}, false},
		{"invalid pattern never matches", "https://app.example.com", []string{"https://app.example.com/path"}, false},
		{"other scheme", "chrome-extension://abcdef", []string{"chrome-extension://abcdef"}, true},
		{"wildcard alone is not a host", "https://x.example", []string{"https://*."}, false},
		{"inner wildcard is not allowed", "https://a.x.example", []string{"https://a.*.example"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := OriginAllowed(tt.origin, tt.allow); got != tt.want {
				t.Fatalf("OriginAllowed(%q, %q) = %v, want %v", tt.origin, tt.allow, got, tt.want)
			}
		})
	}
}

func TestValidateOriginPatterns(t *testing.T) {
	t.Parallel()
	good := []string{"*", "null", "https://app.example.com", "http://localhost:5173", "https://*.example.com",
		"*.example.com", "example.com:8443", "https://app.example.com/", "http://[::1]:8080"}
	if err := ValidateOriginPatterns(good); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "https://", "https://a.example/path", "https://a.example?x", "ftp//x",
		"https://a.*.example", "https://*.", "https://x:0", "https://x:99999", "https://x:", "1http://x", "a b"} {
		if err := ValidateOriginPatterns([]string{"*.ok.example", bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzOriginAllowed(f *testing.F) {
	f.Add("https://a.example.com", "https://*.example.com")
	f.Add("http://[::1]:8080", "http://[::1]:8080")
	f.Add("null", "null")
	f.Add("http://x:1", "x:01")
	f.Fuzz(func(t *testing.T, origin, pattern string) {
		got := OriginAllowed(origin, []string{pattern})
		if origin == "" && !got {
			t.Fatal("an empty origin was refused")
		}
		if got && origin != "" && pattern != "*" && ValidateOriginPatterns([]string{pattern}) != nil {
			t.Fatalf("invalid pattern %q matched %q", pattern, origin)
		}
	})
}
