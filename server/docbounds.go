package server

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/ysync/ysync/shareddoc"
)

// Awareness and loaded-document bounds: their defaults, the upgrade check of --max-loaded-docs
// and their metrics. The bounds themselves are enforced by the document actors (shareddoc
// awareness.go, evict.go).

func (l Limits) withDocBoundsDefaults() Limits {
	l.MaxAwarenessClientsPerConn = orDefault(l.MaxAwarenessClientsPerConn, shareddoc.DefaultMaxAwarenessClientsPerConn)
	l.MaxAwarenessStateBytes = orDefault(l.MaxAwarenessStateBytes, shareddoc.DefaultMaxAwarenessStateBytes)
	l.MaxLoadedDocs = orDefault(l.MaxLoadedDocs, shareddoc.DefaultMaxLoadedDocs)
	return l
}

// canLoadDoc answers 503 with Retry-After before the upgrade when doc is not loaded, the server
// holds MaxLoadedDocs documents and none is idle to make room. A race lost after this check ends
// in a close with 1013 instead (session.DisconnectTooManyDocs); both make y-websocket retry.
func (s *Server) canLoadDoc(w http.ResponseWriter, doc string) bool {
	if s.reg.CanLoad(doc) {
		return true
	}
	s.reg.Stats().DocumentsRefused.Add(1)
	s.log.Warn("upgrade refused: too many documents loaded", "doc", doc, "loaded", s.reg.Count(), "limit", s.cfg.Limits.MaxLoadedDocs)
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "too many documents loaded")
	return false
}

// subject is the token subject of an authenticated session, empty on an open server: sessions of
// one subject may take over each other's awareness client ids (shareddoc awareness.go).
func (a *admission) subject() string {
	if a.s.Open() || a.principal == nil {
		return ""
	}
	return a.principal.UserID
}

// writeDocBoundsMetrics adds the awareness and loaded-document counters to /metrics.
func (s *Server) writeDocBoundsMetrics(b io.Writer) {
	metric := func(name, typ, help string, v int64) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, typ, name, v)
	}
	ds := s.reg.Stats()
	const refused = "ysync_awareness_entries_refused_total"
	fmt.Fprintf(b, "# HELP %s Awareness entries refused, by reason.\n# TYPE %s counter\n", refused, refused)
	for _, r := range []struct {
		label string
		v     *atomic.Int64
	}{{"too_many_clients", &ds.AwarenessRefusedClients}, {"state_too_large", &ds.AwarenessRefusedTooLarge}, {"not_owner", &ds.AwarenessRefusedNotOwner}} {
		fmt.Fprintf(b, "%s{reason=%q} %d\n", refused, r.label, r.v.Load())
	}
	const takeovers = "ysync_awareness_takeovers_total"
	fmt.Fprintf(b, "# HELP %s Awareness client ids taken over from another live session: by the same user, or on a server without authentication.\n# TYPE %s counter\n", takeovers, takeovers)
	fmt.Fprintf(b, "%s{kind=\"same_user\"} %d\n%s{kind=\"unauthenticated\"} %d\n", takeovers, ds.AwarenessTakeovers.Load(), takeovers, ds.AwarenessTakeoversOpen.Load())
	metric("ysync_document_evictions_total", "counter", "Idle documents unloaded early because --max-loaded-docs was reached.", ds.Evictions.Load())
	metric("ysync_documents_refused_total", "counter", "New documents refused because --max-loaded-docs was reached with none idle (503 or 1013).", ds.DocumentsRefused.Load())
	metric("ysync_documents_loaded_limit", "gauge", "The --max-loaded-docs limit (0: unlimited).", int64(s.cfg.Limits.MaxLoadedDocs))
}
