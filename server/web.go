package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/ysync/ysync/web"
)

// webFile is one embedded page or asset, read once at start.
type webFile struct {
	name string // for the Content-Type (by extension)
	body []byte
	etag string
}

// webRoutes serves the console at / and the demo editors under /demo/, with their scripts and
// styles under /assets/, from the files embedded in the binary (package web). The pages need no
// authentication themselves: the console asks for an admin token for its /api calls, and the
// demos pass ?token= on to the WebSocket.
func (s *Server) webRoutes(mux *http.ServeMux) {
	files := map[string]webFile{}
	entries, _ := fs.ReadDir(web.Files(), ".")
	for _, e := range entries {
		b, err := fs.ReadFile(web.Files(), e.Name())
		if err != nil || e.IsDir() {
			continue
		}
		sum := sha256.Sum256(b)
		files[e.Name()] = webFile{name: e.Name(), body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	page := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { serveWebFile(w, r, files[name]) }
	}
	mux.HandleFunc("GET /{$}", page("console.html"))
	mux.HandleFunc("GET /demo/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/demo/text", http.StatusFound)
	})
	mux.HandleFunc("GET /demo/text", page("text.html"))
	mux.HandleFunc("GET /demo/workflow/{id}", page("workflow.html"))
	mux.HandleFunc("GET /assets/{file}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		if strings.HasSuffix(name, ".html") {
			http.NotFound(w, r)
			return
		}
		serveWebFile(w, r, files[name])
	})
}

func serveWebFile(w http.ResponseWriter, r *http.Request, f webFile) {
	if f.body == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	// Revalidate every time (cheap: ETag) so that a new binary's pages are picked up at once.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if strings.HasSuffix(f.name, ".html") {
		// Everything the pages load is embedded and same-origin. no-referrer keeps a demo's
		// ?token= out of Referer headers.
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
	}
	// embed.FS has no modification times; the zero time disables If-Modified-Since and the
	// ETag decides.
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
}
