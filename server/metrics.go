package server

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"

	"github.com/ysync/ysync/shareddoc"
)

// handleMetrics writes the Prometheus text exposition format (version 0.0.4) by hand.
func (s *Server) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	b := bufio.NewWriter(w)
	defer b.Flush()
	metric := func(name, typ, help string, v int64) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, typ, name, v)
	}
	ss, ds := &s.stats, s.reg.Stats()
	metric("ysync_connections", "gauge", "Open WebSocket connections.", ss.Connections.Load())
	metric("ysync_documents_loaded", "gauge", "Documents loaded in memory.", ds.DocumentsLoaded.Load())
	metric("ysync_messages_received_total", "counter", "WebSocket messages received.", ss.MessagesIn.Load())
	metric("ysync_messages_sent_total", "counter", "WebSocket messages sent.", ss.MessagesOut.Load())
	metric("ysync_received_bytes_total", "counter", "Bytes of WebSocket messages received.", ss.BytesIn.Load())
	metric("ysync_sent_bytes_total", "counter", "Bytes of WebSocket messages sent.", ss.BytesOut.Load())
	metric("ysync_slow_consumer_closes_total", "counter", "Connections closed for falling behind their outbound budget.", ss.SlowCloses.Load())
	metric("ysync_bad_input_closes_total", "counter", "Connections closed for malformed or unsupported input.", ss.BadDataClose.Load())
	metric("ysync_store_appends_total", "counter", "Updates durably appended to the store.", ds.StoreAppends.Load())
	metric("ysync_store_errors_total", "counter", "Failed store operations (load, append, checkpoint).", ds.StoreErrors.Load())

	s.writeTrustMetrics(b)
	s.writeDocBoundsMetrics(b) // docbounds.go
	s.writeGuardMetrics(b)     // httpguard.go
	s.writeClusterMetrics(b)   // cluster.go
	s.writeProtocolMetrics(b)  // hocuspocus.go
	s.writeDocsMetrics(b)      // docs_metrics.go

	const h = "ysync_store_append_duration_seconds"
	fmt.Fprintf(b, "# HELP %s Latency of appending a batch of updates to the store.\n# TYPE %s histogram\n", h, h)
	counts, sum := ds.StoreLatency.Snapshot()
	for i, ub := range shareddoc.LatencyBuckets {
		fmt.Fprintf(b, "%s_bucket{le=\"%s\"} %d\n", h, strconv.FormatFloat(ub, 'g', -1, 64), counts[i])
	}
	total := counts[len(counts)-1]
	fmt.Fprintf(b, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %s\n%s_count %d\n", h, total, h, strconv.FormatFloat(sum, 'g', -1, 64), h, total)
}
