package server

// /metrics is served by github.com/prometheus/client_golang from one registry that the Server
// owns (never the process-global default, so two servers in one process, as in tests, do not
// collide, and an application can add its own collectors with Server.MetricsRegistry). Besides ysync's
// metrics it holds the standard Go runtime (go_*) and process (process_*) collectors.
//
// The packages that count (shareddoc, session, store) keep plain atomic Stats and never import
// Prometheus; this file turns them into metrics with CounterFunc/GaugeFunc (read at scrape time)
// and a small Collector for the histograms they keep (shareddoc.Histogram).
//
// How to add a metric:
//
//   - A counter or gauge: keep an atomic in your package's Stats (or in the server's state), and
//     append one line to the list in your own metrics function, registered in metricsCollectors:
//
//     counter("ysync_things_total", "Things that happened.", func() int64 { return st.Things.Load() }),
//
//     Use gauge(...) for a value that goes down, and labeled(...) for one counter per label value.
//   - A latency histogram: a shareddoc.Histogram field in your Stats, Observe'd where the
//     duration ends, and histogram(name, help, &st.Field) in the list.
//   - Old-style writers (func (s *Server) writeXMetrics(b io.Writer) printing the text format by
//     hand) still work during the migration: add them to legacyMetricWriters and their output is
//     parsed and served with the rest. Prefer moving them to the helpers above.
//
// Metric names are ysync_<what>_<unit>, counters end in _total; every metric written before the
// move to client_golang kept its name, type and help (server_test.go compares them).

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/store"
)

// metricsState is the Server's registry, built on first use.
type metricsState struct {
	once    sync.Once
	reg     *prometheus.Registry
	handler http.Handler
}

// MetricsRegistry is the Prometheus registry /metrics serves. An application embedding the server may
// register its own collectors on it.
func (s *Server) MetricsRegistry() *prometheus.Registry {
	s.metrics.once.Do(func() {
		reg := prometheus.NewRegistry()
		reg.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
		reg.MustRegister(s.metricsCollectors()...)
		s.metrics.reg = reg
		gather := prometheus.Gatherers{reg, prometheus.GathererFunc(s.gatherLegacy)}
		s.metrics.handler = promhttp.HandlerFor(gather, promhttp.HandlerOpts{
			ErrorLog:      slogPrinter{s},
			ErrorHandling: promhttp.ContinueOnError,
		})
	})
	return s.metrics.reg
}

// handleMetrics serves the registry in the format the scraper asks for (text by default).
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	s.MetricsRegistry()
	s.metrics.handler.ServeHTTP(w, r)
}

// metricsCollectors lists every ysync metric. Each area of the server adds its own function.
func (s *Server) metricsCollectors() []prometheus.Collector {
	var cs []prometheus.Collector
	cs = append(cs, s.coreMetrics()...)
	cs = append(cs, s.trustMetrics()...) // trust.go
	cs = append(cs, s.storeMetrics()...)
	return cs
}

// legacyMetricWriters are hand-written text-format writers not yet moved to collectors.
func (s *Server) legacyMetricWriters() []func(io.Writer) {
	return []func(io.Writer){
		s.writeDocBoundsMetrics, // docbounds.go
		s.writeGuardMetrics,     // httpguard.go
		s.writeClusterMetrics,   // cluster.go
		s.writeProtocolMetrics,  // hocuspocus.go
		s.writeDocsMetrics,      // docs_metrics.go
	}
}

func (s *Server) coreMetrics() []prometheus.Collector {
	ss, ds := &s.stats, s.reg.Stats()
	return []prometheus.Collector{
		gauge("ysync_connections", "Open WebSocket connections.", ss.Connections.Load),
		gauge("ysync_documents_loaded", "Documents loaded in memory.", ds.DocumentsLoaded.Load),
		counter("ysync_messages_received_total", "WebSocket messages received.", ss.MessagesIn.Load),
		counter("ysync_messages_sent_total", "WebSocket messages sent.", ss.MessagesOut.Load),
		counter("ysync_received_bytes_total", "Bytes of WebSocket messages received.", ss.BytesIn.Load),
		counter("ysync_sent_bytes_total", "Bytes of WebSocket messages sent.", ss.BytesOut.Load),
		counter("ysync_slow_consumer_closes_total", "Connections closed for falling behind their outbound budget.", ss.SlowCloses.Load),
		counter("ysync_bad_input_closes_total", "Connections closed for malformed or unsupported input.", ss.BadDataClose.Load),
		counter("ysync_store_appends_total", "Updates durably appended to the store.", ds.StoreAppends.Load),
		counter("ysync_store_errors_total", "Failed store operations (load, append, checkpoint).", ds.StoreErrors.Load),
		histogram("ysync_store_append_duration_seconds", "Latency of appending a batch of updates to the store.", &ds.StoreLatency),
		histogram("ysync_document_load_duration_seconds", "Time to load a document: the store's Load, applying it, and the load hook.", &ds.LoadLatency),
		histogram("ysync_propagation_duration_seconds", "Time from receiving a peer's update to queueing it for the other peers.", &ds.PropagationLatency),
		histogram("ysync_rpc_duration_seconds", "Time the handler took for one RPC request (save, reset) over y-websocket or Hocuspocus, errors included.", &ss.RPCLatency, &s.hp.stats.RPCLatency),
	}
}

// storeMetrics exposes the store's own counters when it keeps them (store.Postgres,
// store.SQLite and store.Memory do).
func (s *Server) storeMetrics() []prometheus.Collector {
	st, ok := s.store.(interface{ Stats() store.Stats })
	if !ok {
		return nil
	}
	return []prometheus.Collector{
		counter("ysync_store_flushes_total", "Write transactions the store committed for appends (one per group-committed batch).",
			func() int64 { return int64(st.Stats().Flushes) }),
		counter("ysync_store_append_errors_total", "Appends the store failed.",
			func() int64 { return int64(st.Stats().AppendErrors) }),
		gauge("ysync_store_pending_appends", "Appends queued for or being written by the store's writer.",
			func() int64 { return int64(st.Stats().Pending) }),
	}
}

// --- helpers ---------------------------------------------------------------------------------

func counter(name, help string, v func() int64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v()) })
}

func gauge(name, help string, v func() int64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(v()) })
}

// labeled is one counter per value of label, listed in order.
func labeled(name, help, label string, order []string, v func(value string) int64) []prometheus.Collector {
	cs := make([]prometheus.Collector, 0, len(order))
	for _, val := range order {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: name, Help: help, ConstLabels: prometheus.Labels{label: val},
		}, func() float64 { return float64(v(val)) }))
	}
	return cs
}

// histogram exposes a shareddoc.Histogram (seconds, over shareddoc.LatencyBuckets).
// histogram exposes the sum of hs (one histogram, or the same measure kept apart per protocol).
func histogram(name, help string, hs ...*shareddoc.Histogram) prometheus.Collector {
	return &histogramCollector{desc: prometheus.NewDesc(name, help, nil, nil), hs: hs}
}

type histogramCollector struct {
	desc *prometheus.Desc
	hs   []*shareddoc.Histogram
}

func (c *histogramCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *histogramCollector) Collect(ch chan<- prometheus.Metric) {
	var total []int64
	var sum float64
	for _, h := range c.hs {
		counts, s := h.Snapshot()
		if total == nil {
			total = make([]int64, len(counts))
		}
		for i, n := range counts {
			total[i] += n
		}
		sum += s
	}
	buckets := make(map[float64]uint64, len(shareddoc.LatencyBuckets))
	for i, ub := range shareddoc.LatencyBuckets {
		buckets[ub] = uint64(total[i])
	}
	ch <- prometheus.MustNewConstHistogram(c.desc, uint64(total[len(total)-1]), sum, buckets)
}

// gatherLegacy parses what the legacy writers print.
func (s *Server) gatherLegacy() ([]*dto.MetricFamily, error) {
	return gatherText(s.legacyMetricWriters())
}

func gatherText(writers []func(io.Writer)) ([]*dto.MetricFamily, error) {
	if len(writers) == 0 {
		return nil, nil
	}
	var b bytes.Buffer
	for _, w := range writers {
		w(&b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(&b)
	if err != nil {
		return nil, fmt.Errorf("legacy metrics: %w", err)
	}
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*dto.MetricFamily, 0, len(names))
	for _, n := range names {
		out = append(out, fams[n])
	}
	return out, nil
}

// slogPrinter logs promhttp's errors (a collector failing) on the server's logger.
type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.log.Error("metrics", "err", fmt.Sprint(v...)) }
