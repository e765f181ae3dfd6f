package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/server"
)

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse as the Prometheus text format: %v", err)
	}
	return fams
}

// Every metric /metrics served before the move to client_golang, by name and type (scraped from
// the hand-written exposition at e9375df).
var legacyMetrics = map[string]dto.MetricType{
	"ysync_admin_refused_total":           dto.MetricType_COUNTER,
	"ysync_authenticator_errors_total":    dto.MetricType_COUNTER,
	"ysync_bad_input_closes_total":        dto.MetricType_COUNTER,
	"ysync_connections":                   dto.MetricType_GAUGE,
	"ysync_connections_limit_held":        dto.MetricType_GAUGE,
	"ysync_document_too_large_total":      dto.MetricType_COUNTER,
	"ysync_documents_loaded":              dto.MetricType_GAUGE,
	"ysync_expired_closes_total":          dto.MetricType_COUNTER,
	"ysync_handshake_timeouts_total":      dto.MetricType_COUNTER,
	"ysync_messages_received_total":       dto.MetricType_COUNTER,
	"ysync_messages_sent_total":           dto.MetricType_COUNTER,
	"ysync_pending_store_bytes":           dto.MetricType_GAUGE,
	"ysync_rate_limit_closes_total":       dto.MetricType_COUNTER,
	"ysync_read_only_denied_total":        dto.MetricType_COUNTER,
	"ysync_received_bytes_total":          dto.MetricType_COUNTER,
	"ysync_sent_bytes_total":              dto.MetricType_COUNTER,
	"ysync_slow_consumer_closes_total":    dto.MetricType_COUNTER,
	"ysync_storage_backlog_closes_total":  dto.MetricType_COUNTER,
	"ysync_store_append_duration_seconds": dto.MetricType_HISTOGRAM,
	"ysync_store_appends_total":           dto.MetricType_COUNTER,
	"ysync_store_errors_total":            dto.MetricType_COUNTER,
	"ysync_throttled_frames_total":        dto.MetricType_COUNTER,
	"ysync_upgrades_refused_total":        dto.MetricType_COUNTER,
}

func TestMetricsKeepNamesAndAddStandardCollectors(t *testing.T) {
	_, hs := start(t, server.Config{})
	a, b := dial(t, hs, "metrics-doc", "a"), dial(t, hs, "metrics-doc", "b")
	syncOnce(t, a)
	syncOnce(t, b)
	if err := a.WriteMessage(websocket.BinaryMessage, syncproto.EncodeUpdate(textUpdate(t, 7, "hello"))); err != nil {
		t.Fatal(err)
	}
	readUntil(t, b, "the update from a", func(m syncproto.Message) bool {
		return m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncUpdate
	})

	// Poll: the store's append (and its histogram) completes after the fan-out.
	var fams map[string]*dto.MetricFamily
	for deadline := time.Now().Add(30 * time.Second); ; {
		fams = scrape(t, hs.URL)
		if f := fams["ysync_store_append_duration_seconds"]; f != nil && f.Metric[0].GetHistogram().GetSampleCount() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the store append was never observed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for name, typ := range legacyMetrics {
		f := fams[name]
		if f == nil {
			t.Errorf("metric %s is gone", name)
			continue
		}
		if f.GetType() != typ {
			t.Errorf("metric %s is a %v, was a %v", name, f.GetType(), typ)
		}
	}
	if n := len(fams["ysync_upgrades_refused_total"].GetMetric()); n != 5 {
		t.Errorf("ysync_upgrades_refused_total has %d series, want one per reason (5)", n)
	}
	if v := fams["ysync_connections"].Metric[0].GetGauge().GetValue(); v != 2 {
		t.Errorf("ysync_connections = %v, want 2", v)
	}
	// Metrics still written the old way (httpguard.go's writer) are served through the adapter.
	for _, name := range []string{"ysync_http_connections_accepted_total", "ysync_connections_refused_total", "ysync_event_streams"} {
		if fams[name] == nil {
			t.Errorf("legacy-written metric %s missing", name)
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "process_cpu_seconds_total"} {
		if fams[name] == nil {
			t.Errorf("standard metric %s missing", name)
		}
	}
	for name, atLeast := range map[string]uint64{
		"ysync_document_load_duration_seconds": 1,
		"ysync_propagation_duration_seconds":   1,
		"ysync_rpc_duration_seconds":           0,
	} {
		f := fams[name]
		if f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
			t.Errorf("histogram %s missing", name)
			continue
		}
		h := f.Metric[0].GetHistogram()
		if h.GetSampleCount() < atLeast {
			t.Errorf("%s counted %d, want >= %d", name, h.GetSampleCount(), atLeast)
		}
		if len(h.GetBucket()) == 0 {
			t.Errorf("%s has no buckets", name)
		}
	}
	if v := fams["ysync_store_flushes_total"]; v == nil || v.Metric[0].GetCounter().GetValue() < 1 {
		t.Errorf("ysync_store_flushes_total = %v, want >= 1", v)
	}
}

// Each server has its own registry: two in one process neither collide nor mix counts.
func TestMetricsRegistryPerServer(t *testing.T) {
	_, hs1 := start(t, server.Config{})
	srv2, hs2 := start(t, server.Config{})
	syncOnce(t, dial(t, hs1, "d", "u"))
	if v := scrape(t, hs2.URL)["ysync_connections"].Metric[0].GetGauge().GetValue(); v != 0 {
		t.Errorf("second server counts the first one's connection: %v", v)
	}
	if srv2.MetricsRegistry() == nil || srv2.MetricsRegistry() != srv2.MetricsRegistry() {
		t.Error("MetricsRegistry is not one registry per server")
	}
}

// A JWT authenticator's JWKS refetch counter is exposed.
func TestMetricsJWKSRefetches(t *testing.T) {
	j, err := auth.NewJWT(auth.JWTConfig{HS256Secret: []byte("0123456789abcdef0123456789abcdef-metrics")})
	if err != nil {
		t.Fatal(err)
	}
	_, hs := start(t, server.Config{Authenticator: j})
	f := scrape(t, hs.URL)["ysync_jwks_refetches_total"]
	if f == nil || f.GetType() != dto.MetricType_COUNTER || f.Metric[0].GetCounter().GetValue() != 0 {
		t.Fatalf("ysync_jwks_refetches_total = %v", f)
	}
}
