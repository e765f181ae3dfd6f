package server

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ysync/ysync/web"
)

// webFile is one embedded page or asset, with its gzip form.
type webFile struct {
	name       string // for the Content-Type (by extension)
	body, gz   []byte // gz is nil when compressing does not pay
	etag, gzET string
}

// webFiles reads and compresses the embedded files once per process (servers made in tests
// share them): the editors' bundles are ~380 KB, ~120 KB gzipped.
var webFiles = sync.OnceValue(func() map[string]webFile {
	files := map[string]webFile{}
	entries, _ := fs.ReadDir(web.Files(), ".")
	for _, e := range entries {
		b, err := fs.ReadFile(web.Files(), e.Name())
		if err != nil || e.IsDir() {
			continue
		}
		sum := sha256.Sum256(b)
		tag := hex.EncodeToString(sum[:8])
		f := webFile{name: e.Name(), body: b, etag: `"` + tag + `"`}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(b)
		if zw.Close() == nil && buf.Len() < len(b)*9/10 {
			f.gz, f.gzET = buf.Bytes(), `"`+tag+`-gz"`
		}
		files[e.Name()] = f
	}
	return files
})

// webRoutes serves the console at / and the demo editors under /demo/, with their scripts and
// styles under /assets/, from the files embedded in the binary (package web). The pages need no
// authentication themselves: the console asks for an admin token for its /api calls, and the
// demos pass ?token= on to the WebSocket.
func (s *Server) webRoutes(mux *http.ServeMux) {
	page := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { serveWebFile(w, r, webFiles()[name]) }
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
		serveWebFile(w, r, webFiles()[name])
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
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Vary", "Accept-Encoding")
	if strings.HasSuffix(f.name, ".html") {
		// Everything the pages load is embedded and same-origin. no-referrer keeps a demo's
		// ?token= out of Referer headers.
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
	}
	body, etag := f.body, f.etag
	if f.gz != nil && acceptsGzip(r) {
		body, etag = f.gz, f.gzET
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	// embed.FS has no modification times; the zero time disables If-Modified-Since and the
	// ETag decides.
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip (q=0 refuses it).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
