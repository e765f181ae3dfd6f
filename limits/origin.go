package limits

import (
	"fmt"
	"strconv"
	"strings"
)

// OriginAllowed reports whether a WebSocket upgrade with this Origin header may proceed under the
// allow-list allow.
//
//   - An empty origin is allowed: only browsers send Origin, and the check exists to stop other
//     sites' pages from using a visitor's browser (and cookies) against the server.
//   - An empty allow-list allows every origin.
//   - "*" allows every origin.
//   - "https://app.example.com" or "http://localhost:5173" allow exactly that origin. A default
//     port may be written or left out ("https://x.example" = "https://x.example:443").
//   - "https://*.example.com" allows any subdomain of example.com, at any depth, over https on
//     the default port (not example.com itself: list it too if wanted).
//   - Without a scheme ("*.example.com", "example.com:8443") any scheme matches; the port must
//     still match, a missing one meaning the origin's scheme's default port.
//   - "null" (sandboxed frames, file: pages) matches only when "null" itself is listed.
//
// Comparison ignores case. Entries that do not parse never match; check them at start-up with
// ValidateOriginPatterns.
func OriginAllowed(origin string, allow []string) bool {
	if origin == "" || len(allow) == 0 {
		return true
	}
	o, okOrigin := parseOrigin(origin, false)
	for _, a := range allow {
		switch {
		case a == "*":
			return true
		case a == "null" || origin == "null":
			if a == origin {
				return true
			}
		case okOrigin:
			if p, ok := parseOrigin(a, true); ok && p.matches(o) {
				return true
			}
		}
	}
	return false
}

// ValidateOriginPatterns reports the first entry of allow that OriginAllowed could never match.
func ValidateOriginPatterns(allow []string) error {
	for _, a := range allow {
		if a == "*" || a == "null" {
			continue
		}
		if _, ok := parseOrigin(a, true); !ok {
			return fmt.Errorf("origin pattern %q: want scheme://host[:port], host[:port] or *.domain", a)
		}
	}
	return nil
}

type originParts struct {
	scheme   string // empty in a pattern: any scheme
	host     string // lower case; for a wildcard pattern the suffix, ".example.com"
	port     string // empty: the scheme's default
	wildcard bool
}

func defaultPort(scheme string) string {
	switch scheme {
	case "http", "ws":
		return "80"
	case "https", "wss":
		return "443"
	}
	return ""
}

func (p originParts) matches(o originParts) bool {
	if p.scheme != "" && p.scheme != o.scheme {
		return false
	}
	pport, oport := p.port, o.port
	if pport == "" {
		pport = defaultPort(o.scheme)
	}
	if oport == "" {
		oport = defaultPort(o.scheme)
	}
	if pport != oport {
		return false
	}
	if p.wildcard {
		return len(o.host) > len(p.host) && strings.HasSuffix(o.host, p.host)
	}
	return p.host == o.host
}

// parseOrigin splits scheme://host[:port]. Patterns may leave out the scheme, end in one "/",
// and start their host with "*.".
func parseOrigin(s string, pattern bool) (originParts, bool) {
	var o originParts
	s = strings.ToLower(s)
	scheme, rest, found := strings.Cut(s, "://")
	switch {
	case found && validScheme(scheme):
		o.scheme = scheme
	case found || !pattern:
		return o, false
	default:
		rest = s
	}
	if pattern {
		rest = strings.TrimSuffix(rest, "/")
	}
	if strings.ContainsAny(rest, "/?#@\\ \t") {
		return o, false
	}
	host, port, hasPort := rest, "", false
	if strings.HasPrefix(rest, "[") { // IPv6 literal
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return o, false
		}
		host = rest[:end+1]
		if after := rest[end+1:]; after != "" {
			if port, hasPort = strings.CutPrefix(after, ":"); !hasPort {
				return o, false
			}
		}
	} else if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		host, port, hasPort = rest[:i], rest[i+1:], true
	}
	if hasPort {
		n, err := strconv.Atoi(port)
		if err != nil || port[0] < '0' || port[0] > '9' || n < 1 || n > 65535 {
			return o, false
		}
		o.port = strconv.Itoa(n)
	}
	if pattern {
		host, o.wildcard = strings.CutPrefix(host, "*.")
	}
	if host == "" || strings.Contains(host, "*") || !strings.HasPrefix(host, "[") && strings.Contains(host, ":") {
		return o, false
	}
	o.host = host
	if o.wildcard {
		o.host = "." + host // matched as a suffix
	}
	return o, true
}

func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
