package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/docjson"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/store"
)

// The HTTP document API (/api/docs): any document as JSON or as a binary Yjs update, updates
// in, deletion, and named versions with restore (docs_versions.go). Documents are named in the
// path URL-escaped (encodeURIComponent), so "/" inside a name is %2F; an unescaped path is read
// from its end: /api/docs/a/b/update is the update of document "a/b".

// DocStore is what the document API needs from the store beyond Store: deletion, listings and
// versions. store.Memory and store.Postgres have it; without it those routes answer 501.
type DocStore interface {
	Delete(ctx context.Context, name string) error
	ListDocuments(ctx context.Context, prefix, after string, limit int) ([]store.DocumentInfo, error)
	CreateVersion(ctx context.Context, doc, label string, auto bool, seq int64, createdBy string, state []byte) (store.Version, error)
	ListVersions(ctx context.Context, doc string) ([]store.Version, error)
	GetVersion(ctx context.Context, doc string, id int64) (store.Version, []byte, error)
	PruneVersions(ctx context.Context, doc string, keep int) (int, error)
	DeleteVersions(ctx context.Context, doc string) error
}

const (
	// docsRequestTimeout bounds one document API request's work on the document and the store.
	docsRequestTimeout = 30 * time.Second
	// maxDocsJSONBody bounds JSON request bodies (version labels).
	maxDocsJSONBody = 64 << 10
	// defaultListLimit is the page size of GET /api/docs without ?limit.
	defaultListLimit = 100
)

// docRoute is a parsed /api/docs/... path.
type docRoute struct {
	name    string
	op      string // "", "update", "versions", "version", "version-update", "restore"
	version int64
}

func parseDocRoute(escaped string) (docRoute, error) {
	segs := strings.Split(strings.TrimPrefix(escaped, "/api/docs/"), "/")
	var rt docRoute
	n := len(segs)
	versionAt := func(i int) error {
		id, err := strconv.ParseInt(segs[i], 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("version id %q is not a positive integer", segs[i])
		}
		rt.version = id
		return nil
	}
	switch {
	case n >= 4 && segs[n-3] == "versions" && (segs[n-1] == "restore" || segs[n-1] == "update"):
		rt.op = "restore"
		if segs[n-1] == "update" {
			rt.op = "version-update"
		}
		if err := versionAt(n - 2); err != nil {
			return rt, err
		}
		segs = segs[:n-3]
	case n >= 3 && segs[n-2] == "versions":
		rt.op = "version"
		if err := versionAt(n - 1); err != nil {
			return rt, err
		}
		segs = segs[:n-2]
	case n >= 2 && segs[n-1] == "versions":
		rt.op = "versions"
		segs = segs[:n-1]
	case n >= 2 && segs[n-1] == "update":
		rt.op = "update"
		segs = segs[:n-1]
	}
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil {
			return rt, fmt.Errorf("document name: %w", err)
		}
		segs[i] = u
	}
	rt.name = strings.Join(segs, "/")
	if err := store.ValidName(rt.name); err != nil {
		return rt, err
	}
	return rt, nil
}

func (s *Server) docsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/docs", s.requireAdmin(s.handleListDocs))
	mux.HandleFunc("/api/docs/{rest...}", s.handleDocs)
	mux.HandleFunc("GET /api/webhooks/deliveries", s.requireAdmin(s.handleDeliveries))
}

func (s *Server) docStore(w http.ResponseWriter) (DocStore, bool) {
	ds, ok := s.store.(DocStore)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this store does not support the document API")
	}
	return ds, ok
}

// handleDocs dispatches /api/docs/{name}[/...] by method and path suffix. The permission is
// checked before any body is read.
func (s *Server) handleDocs(w http.ResponseWriter, r *http.Request) {
	rt, err := parseDocRoute(r.URL.EscapedPath())
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid path: "+err.Error())
		return
	}
	type handler struct {
		need auth.Permission
		fn   func(http.ResponseWriter, *http.Request, docRoute, string)
	}
	routes := map[string]map[string]handler{
		"":               {http.MethodGet: {auth.Read, s.handleGetDoc}, http.MethodDelete: {auth.Admin, s.handleDeleteDoc}},
		"update":         {http.MethodGet: {auth.Read, s.handleGetDoc}, http.MethodPost: {auth.Write, s.handlePostUpdate}},
		"versions":       {http.MethodGet: {auth.Read, s.handleListVersions}, http.MethodPost: {auth.Write, s.handleCreateVersion}},
		"version":        {http.MethodGet: {auth.Read, s.handleGetVersion}},
		"version-update": {http.MethodGet: {auth.Read, s.handleGetVersion}},
		"restore":        {http.MethodPost: {auth.Write, s.handleRestoreVersion}},
	}
	h, ok := routes[rt.op][r.Method]
	if !ok {
		allow := make([]string, 0, 2)
		for m := range routes[rt.op] {
			allow = append(allow, m)
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	user, ok := s.authorizeDocAPI(w, r, rt.name, h.need)
	if !ok {
		return
	}
	h.fn(w, r, rt, user)
}

// authorizeDocAPI checks the request's permission on doc (admin endpoints need an admin
// principal) and returns the name the caller is known by: the token's subject, or on an open
// server the ?user= label ("anonymous" without one).
func (s *Server) authorizeDocAPI(w http.ResponseWriter, r *http.Request, doc string, need auth.Permission) (string, bool) {
	if s.Open() {
		if u := r.URL.Query().Get("user"); u != "" {
			return u, true
		}
		return "anonymous", true
	}
	if need == auth.Admin {
		p, err := s.authenticate(r, tokenHeader)
		if err != nil {
			s.trust.refusedAdmin.Add(1)
			s.authFailed(w, r, err)
			return "", false
		}
		if !p.Admin {
			s.trust.refusedAdmin.Add(1)
			writeError(w, http.StatusForbidden, "admin token required")
			return "", false
		}
		return p.UserID, true
	}
	p, ok := s.authorizeDoc(w, r, doc, need, tokenHeader)
	if !ok {
		return "", false
	}
	return p.UserID, true
}

// snapshot returns a private copy of the document's current state and the seq of its log that
// the state covers: from the live document when it is loaded (pending edits included), from the
// store otherwise (without loading it).
func (s *Server) snapshot(ctx context.Context, name string) (*crdt.Doc, int64, error) {
	if d := s.reg.Get(name); d != nil {
		var state []byte
		seq, err := d.Edit(ctx, func(doc *crdt.Doc) (err error) {
			state, err = crdt.EncodeStateAsUpdate(doc, nil)
			return err
		})
		if err == nil {
			doc, err := docjson.Load(state, false)
			return doc, seq, err
		}
		if !errors.Is(err, shareddoc.ErrClosed) {
			return nil, 0, err
		}
		// Unloading meanwhile: its final state is in the store.
	}
	checkpoint, updates, seq, err := s.store.Load(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	doc := crdt.NewDoc(crdt.DocOptions{})
	if checkpoint != nil {
		updates = append([][]byte{checkpoint}, updates...)
	}
	for i, u := range updates {
		if err := applyStored(doc, u); err != nil {
			s.log.Error("stored update does not apply; skipped", "doc", name, "index", i, "err", err)
		}
	}
	return doc, seq, nil
}

func applyStored(doc *crdt.Doc, u []byte) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: panic: %v", crdt.ErrMalformedUpdate, v)
		}
	}()
	return crdt.ApplyUpdate(doc, u, nil)
}

// docFailed answers a failed document operation.
func (s *Server) docFailed(w http.ResponseWriter, op, name string, err error) {
	switch {
	case errors.Is(err, crdt.ErrMalformedUpdate):
		writeError(w, http.StatusBadRequest, "malformed update: "+err.Error())
	case errors.Is(err, shareddoc.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "document too large")
	case errors.Is(err, shareddoc.ErrBacklog), errors.Is(err, store.ErrUnavailable):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "storage unavailable, try again later")
	case errors.Is(err, shareddoc.ErrClosed):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "server shutting down")
	case errors.Is(err, shareddoc.ErrNotFound), errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not found")
	case errors.Is(err, docjson.ErrTooDeep):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, "timed out")
	default:
		s.log.Error("document API: "+op, "doc", name, "err", err)
		writeError(w, http.StatusInternalServerError, op+" failed")
	}
}

func requestCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), docsRequestTimeout)
}

// writeRendered answers with doc as JSON (?format=delta: Text roots as Quill deltas).
func (s *Server) writeRendered(w http.ResponseWriter, r *http.Request, name string, doc *crdt.Doc, seq int64) {
	opts := docjson.Options{}
	switch f := r.URL.Query().Get("format"); f {
	case "", "json":
	case "delta":
		opts.Delta = true
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown format %q (json or delta)", f))
		return
	}
	body, err := docjson.Render(doc, opts)
	if err != nil {
		s.docFailed(w, "render", name, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Ysync-Seq", strconv.FormatInt(seq, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
}

// writeUpdate answers with doc as a binary update: ?sv=<base64 state vector> for what a peer
// with that state lacks, ?v=2 for the V2 encoding.
func (s *Server) writeUpdate(w http.ResponseWriter, r *http.Request, name string, doc *crdt.Doc, seq int64) {
	q := r.URL.Query()
	v2, ok := updateVersion(w, q.Get("v"))
	if !ok {
		return
	}
	var sv []byte
	if raw := q.Get("sv"); raw != "" {
		var err error
		if sv, err = decodeBase64(raw); err == nil {
			_, err = crdt.DecodeStateVector(sv)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "sv must be a base64 encoded Yjs state vector")
			return
		}
	}
	var upd []byte
	var err error
	if v2 {
		upd, err = crdt.EncodeStateAsUpdateV2(doc, sv)
	} else {
		upd, err = crdt.EncodeStateAsUpdate(doc, sv)
	}
	if err != nil {
		s.docFailed(w, "encode", name, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Ysync-Seq", strconv.FormatInt(seq, 10))
	w.Header().Set("Content-Length", strconv.Itoa(len(upd)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(upd)
}

func updateVersion(w http.ResponseWriter, v string) (v2, ok bool) {
	switch v {
	case "", "1":
		return false, true
	case "2":
		return true, true
	}
	writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown update version %q (1 or 2)", v))
	return false, false
}

// decodeBase64 accepts standard and URL-safe base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// handleGetDoc answers GET of the document (rendered as JSON) and of its update ("update").
func (s *Server) handleGetDoc(w http.ResponseWriter, r *http.Request, rt docRoute, _ string) {
	ctx, cancel := requestCtx(r)
	defer cancel()
	doc, seq, err := s.snapshot(ctx, rt.name)
	if err != nil {
		s.docFailed(w, "read", rt.name, err)
		return
	}
	s.docs.reads.Add(1)
	if rt.op == "update" {
		s.writeUpdate(w, r, rt.name, doc, seq)
		return
	}
	s.writeRendered(w, r, rt.name, doc, seq)
}

// maxUpdateBody is the largest update body accepted: the document size limit.
func (s *Server) maxUpdateBody() int64 {
	if lim := s.cfg.Limits.MaxDocBytes; lim > 0 {
		return lim
	}
	return 1 << 40
}

func (s *Server) handlePostUpdate(w http.ResponseWriter, r *http.Request, rt docRoute, user string) {
	v2, ok := updateVersion(w, r.URL.Query().Get("v"))
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxUpdateBody()))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("update larger than the document size limit (%d bytes)", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "request body: "+err.Error())
		return
	}
	if len(body) == 0 {
		writeError(w, http.StatusBadRequest, "empty body: send a binary Yjs update")
		return
	}
	ctx, cancel := requestCtx(r)
	defer cancel()
	doc, release, err := s.openDoc(ctx, rt.name)
	if err != nil {
		s.docFailed(w, "open", rt.name, err)
		return
	}
	defer release()
	seq, err := doc.ApplyUpdate(ctx, body, v2)
	if err != nil {
		s.docs.refused.Add(1)
		s.docFailed(w, "apply update", rt.name, err)
		return
	}
	s.docs.updates.Add(1)
	s.log.Debug("document API update", "doc", rt.name, "user", user, "bytes", len(body), "seq", seq)
	writeJSON(w, http.StatusOK, map[string]int64{"seq": seq})
}

func (s *Server) handleDeleteDoc(w http.ResponseWriter, r *http.Request, rt docRoute, user string) {
	ds, ok := s.docStore(w)
	if !ok {
		return
	}
	ctx, cancel := requestCtx(r)
	defer cancel()
	existed := s.reg.Get(rt.name) != nil
	err := s.reg.Delete(ctx, rt.name, func(ctx context.Context) error {
		err := ds.Delete(ctx, rt.name)
		if err == nil {
			existed = true
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if vs, err := ds.ListVersions(ctx, rt.name); err == nil && len(vs) > 0 {
			existed = true
		}
		return ds.DeleteVersions(ctx, rt.name)
	})
	if err != nil {
		s.docFailed(w, "delete", rt.name, err)
		return
	}
	if !existed {
		writeError(w, http.StatusNotFound, "no such document")
		return
	}
	s.docs.deletes.Add(1)
	s.log.Info("document deleted", "doc", rt.name, "user", user)
	w.WriteHeader(http.StatusNoContent)
}

// docListEntry is one document of GET /api/docs.
type docListEntry struct {
	store.DocumentInfo
	Loaded   bool `json:"loaded"`
	Sessions int  `json:"sessions"`
	// Nodes are the cluster nodes that have the document loaded (cluster mode).
	Nodes []string `json:"nodes,omitempty"`
}

func (s *Server) handleListDocs(w http.ResponseWriter, r *http.Request) {
	ds, ok := s.docStore(w)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxListLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be 1..%d", store.MaxListLimit))
			return
		}
		limit = n
	}
	after := ""
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid cursor")
			return
		}
		after = string(b)
	}
	ctx, cancel := requestCtx(r)
	defer cancel()
	docs, err := ds.ListDocuments(ctx, q.Get("prefix"), after, limit+1)
	if err != nil {
		s.docFailed(w, "list", "", err)
		return
	}
	next := ""
	if len(docs) > limit {
		docs = docs[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte(docs[limit-1].Name))
	}
	out := make([]docListEntry, len(docs))
	// In cluster mode "loaded" and the session count cover every node (from the views the
	// nodes keep in Redis, as /api/rooms does; ?local=1 for this node only).
	var rooms map[string]roomJSON
	if s.clusterView(r) {
		rooms = map[string]roomJSON{}
		for _, rm := range s.clusterRooms(ctx) {
			rooms[rm.Name] = rm
		}
	}
	for i, d := range docs {
		out[i] = docListEntry{DocumentInfo: d}
		if rooms != nil {
			if rm, ok := rooms[d.Name]; ok {
				out[i].Loaded, out[i].Sessions, out[i].Nodes = true, len(rm.Sessions), rm.Nodes
			}
			continue
		}
		if live := s.reg.Get(d.Name); live != nil {
			out[i].Loaded = true
			if in, err := live.Info(ctx); err == nil {
				out[i].Sessions = len(in.Sessions)
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"documents": out, "next_cursor": next})
}

// readJSONBody reads a small JSON body into v; an empty body leaves v alone.
func readJSONBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDocsJSONBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
		return false
	}
	if len(body) == 0 {
		return true
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeError(w, http.StatusBadRequest, "request body is not the expected JSON: "+err.Error())
		return false
	}
	return true
}
