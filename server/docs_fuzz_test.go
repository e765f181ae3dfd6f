package server

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzDocRoute: any path parses to a valid document name and a known operation, or an error;
// an escaped name always comes back as it was.
func FuzzDocRoute(f *testing.F) {
	for _, s := range []string{"a", "a/update", "a%2Fupdate", "a/b/versions/3/restore", "versions/1", "x/versions/0", "%00", "a/versions/9999999999999999999999", "a//update", "/update", "%zz"} {
		f.Add(s, "n")
	}
	f.Fuzz(func(t *testing.T, path, name string) {
		rt, err := parseDocRoute("/api/docs/" + path)
		if err == nil {
			switch rt.op {
			case "", "update", "versions", "version", "version-update", "restore":
			default:
				t.Fatalf("op %q", rt.op)
			}
			if rt.name == "" || strings.IndexByte(rt.name, 0) >= 0 {
				t.Fatalf("invalid name %q accepted from %q", rt.name, path)
			}
			if (rt.op == "version" || rt.op == "version-update" || rt.op == "restore") && rt.version <= 0 {
				t.Fatalf("version %d", rt.version)
			}
		}
		rt, err = parseDocRoute("/api/docs/" + url.PathEscape(name) + "/update")
		if err == nil && (rt.name != name || rt.op != "update") {
			t.Fatalf("escaped %q came back as %q (%s)", name, rt.name, rt.op)
		}
	})
}
