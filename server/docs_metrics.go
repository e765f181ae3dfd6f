package server

import (
	"fmt"
	"io"
	"sync/atomic"
)

// docsStats counts the document API's work (docs.go, docs_versions.go).
type docsStats struct {
	reads          atomic.Int64 // GET of a document or its update
	updates        atomic.Int64 // POSTed updates applied and stored
	refused        atomic.Int64 // POSTed updates refused (malformed, too large, backlog)
	deletes        atomic.Int64
	versions       atomic.Int64 // versions stored (named and automatic)
	autoVersions   atomic.Int64
	restores       atomic.Int64
	versionFailure atomic.Int64 // automatic versions that failed
}

// writeDocsMetrics writes the document API and webhook metrics (called from handleMetrics).
func (s *Server) writeDocsMetrics(b io.Writer) {
	metric := func(name, typ, help string, v int64) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, typ, name, v)
	}
	ds := &s.docs
	metric("ysync_docs_api_reads_total", "counter", "Documents read through /api/docs (JSON or binary).", ds.reads.Load())
	metric("ysync_docs_api_updates_total", "counter", "Updates applied and stored through POST /api/docs/{name}/update.", ds.updates.Load())
	metric("ysync_docs_api_updates_refused_total", "counter", "Updates refused by POST /api/docs/{name}/update (malformed, too large, backlog).", ds.refused.Load())
	metric("ysync_docs_api_deletes_total", "counter", "Documents deleted through the API.", ds.deletes.Load())
	metric("ysync_versions_created_total", "counter", "Document versions stored (named and automatic).", ds.versions.Load())
	metric("ysync_versions_auto_created_total", "counter", "Automatic document versions stored.", ds.autoVersions.Load())
	metric("ysync_versions_auto_failures_total", "counter", "Automatic document versions that failed.", ds.versionFailure.Load())
	metric("ysync_versions_restored_total", "counter", "Versions restored into live documents.", ds.restores.Load())
	if d := s.hooks.d; d != nil {
		st := d.Stats()
		metric("ysync_webhook_events_total", "counter", "Webhook events written to the outbox.", st.Events.Load())
		metric("ysync_webhook_events_queued", "gauge", "Webhook events waiting in memory for the outbox.", st.Queued.Load())
		metric("ysync_webhook_events_dropped_total", "counter", "Webhook events dropped because the in-memory queue was full.", st.Dropped.Load())
		metric("ysync_webhook_deliveries_total", "counter", "Webhook deliveries answered 2xx.", st.Delivered.Load())
		metric("ysync_webhook_retries_total", "counter", "Failed webhook attempts that will be retried.", st.Retried.Load())
		metric("ysync_webhook_failures_total", "counter", "Webhook deliveries given up after the last attempt.", st.Failed.Load())
		metric("ysync_webhook_outbox_errors_total", "counter", "Failed webhook outbox operations.", st.OutboxErrs.Load())
	}
}
