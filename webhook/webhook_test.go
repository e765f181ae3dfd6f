package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ysync/ysync/internal/leaktest"
	"github.com/ysync/ysync/store"
	"github.com/ysync/ysync/webhook"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

var secret = []byte("webhook-test-secret")

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// receiver is a test endpoint that checks signatures and answers from a script.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	script []int // statuses to answer, then 200
	hits   []map[string]any
	ids    map[string]int // event id → 2xx answers
	bad    atomic.Int64
}

func newReceiver(t *testing.T, script ...int) *receiver {
	r := &receiver{t: t, script: script, ids: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := webhook.Verify(secret, req.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			r.bad.Add(1)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil || m["id"] != req.Header.Get("Ysync-Event-Id") || m["type"] != req.Header.Get("Ysync-Event") {
			r.bad.Add(1)
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.hits = append(r.hits, m)
		status := 200
		if len(r.script) > 0 {
			status, r.script = r.script[0], r.script[1:]
		}
		if status == 200 {
			r.ids[m["id"].(string)]++
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) accepted() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	seen := map[string]bool{}
	for _, h := range r.hits {
		id := h["id"].(string)
		if r.ids[id] > 0 && !seen[id] {
			seen[id] = true
			out = append(out, h)
		}
	}
	return out
}

func fast(urls ...string) webhook.Config {
	return webhook.Config{URLs: urls, Secret: secret, Debounce: 20 * time.Millisecond, MinInterval: 100 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Poll: 10 * time.Millisecond, Timeout: 5 * time.Second}
}

func closeD(t *testing.T, d *webhook.Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Error(err)
	}
}

// The receiver answers 500 twice, then 200: the event is retried and accepted once, by id.
func TestRetriedUntilAccepted(t *testing.T) {
	rcv := newReceiver(t, 500, 500)
	ob := store.NewMemory()
	d := webhook.New(fast(rcv.srv.URL), ob)
	d.Emit(webhook.SessionJoined, "doc", map[string]any{"user": "ann"})
	eventually(t, "the delivery", func() bool { return len(rcv.accepted()) == 1 })
	closeD(t, d)
	rcv.mu.Lock()
	hits := len(rcv.hits)
	rcv.mu.Unlock()
	if hits != 3 {
		t.Fatalf("%d requests, want 3 (two 500s, one 200)", hits)
	}
	got := rcv.accepted()[0]
	if got["type"] != webhook.SessionJoined || got["doc"] != "doc" || got["user"] != "ann" || got["at"] == nil {
		t.Fatalf("body %v", got)
	}
	if rcv.bad.Load() != 0 {
		t.Fatalf("%d requests failed the signature check", rcv.bad.Load())
	}
	ds, _ := ob.ListDeliveries(context.Background(), "", 0)
	if len(ds) != 1 || ds[0].State != store.DeliveryDelivered || ds[0].Attempts != 3 {
		t.Fatalf("outbox: %+v", ds)
	}
	if s := d.Stats(); s.Delivered.Load() != 1 || s.Retried.Load() != 2 || s.Events.Load() != 1 {
		t.Fatalf("stats delivered %d retried %d events %d", s.Delivered.Load(), s.Retried.Load(), s.Events.Load())
	}
}

// A receiver that never accepts is given up after MaxAttempts.
func TestGivenUp(t *testing.T) {
	rcv := newReceiver(t, 500, 500, 500, 500, 500, 500)
	ob := store.NewMemory()
	cfg := fast(rcv.srv.URL)
	cfg.MaxAttempts = 3
	d := webhook.New(cfg, ob)
	d.Emit(webhook.DocumentLoaded, "doc", nil)
	eventually(t, "the delivery to be given up", func() bool { return d.Stats().Failed.Load() == 1 })
	closeD(t, d)
	ds, _ := ob.ListDeliveries(context.Background(), store.DeliveryFailed, 0)
	if len(ds) != 1 || ds[0].Attempts != 3 || ds[0].LastStatus != 500 {
		t.Fatalf("outbox: %+v", ds)
	}
}

// Changes are debounced: a burst gives one event with the last seq; continuous changes give one
// per MinInterval, not one per change.
func TestChangedDebounced(t *testing.T) {
	rcv := newReceiver(t)
	d := webhook.New(fast(rcv.srv.URL), store.NewMemory())
	defer closeD(t, d)
	for seq := int64(1); seq <= 20; seq++ {
		d.Changed("a", seq)
	}
	eventually(t, "the debounced event", func() bool { return len(rcv.accepted()) == 1 })
	if got := rcv.accepted()[0]; got["type"] != webhook.DocumentChanged || got["seq"] != 20.0 || got["doc"] != "a" {
		t.Fatalf("event %v", got)
	}
	n := 0
	start := time.Now()
	for time.Since(start) < 600*time.Millisecond {
		n++
		d.Changed("b", int64(n))
		time.Sleep(2 * time.Millisecond)
	}
	eventually(t, "the last change of b to be announced", func() bool {
		for _, h := range rcv.accepted() {
			if h["doc"] == "b" && h["seq"] == float64(n) {
				return true
			}
		}
		return false
	})
	bs := 0
	for _, h := range rcv.accepted() {
		if h["doc"] == "b" {
			bs++
		}
	}
	if bs < 2 || bs > n/4 {
		t.Fatalf("%d events for %d continuous changes; want a few (one per MinInterval)", bs, n)
	}
}

// flakyOutbox fails while down is set.
type flakyOutbox struct {
	*store.Memory
	down atomic.Bool
}

func (f *flakyOutbox) EnqueueDeliveries(ctx context.Context, ds []store.Delivery) error {
	if f.down.Load() {
		return errors.New("database away")
	}
	return f.Memory.EnqueueDeliveries(ctx, ds)
}

// While the outbox is away events wait in memory; Close writes what is pending, debounced
// changes included, so a restart loses nothing.
func TestOutboxAwayAndClose(t *testing.T) {
	rcv := newReceiver(t)
	ob := &flakyOutbox{Memory: store.NewMemory()}
	ob.down.Store(true)
	d := webhook.New(fast(rcv.srv.URL, rcv.srv.URL+"/second"), ob)
	d.Emit(webhook.WorkflowSaved, "workflow:x", map[string]any{"lock_version": 3})
	eventually(t, "a failed outbox write", func() bool { return d.Stats().OutboxErrs.Load() > 0 })
	if d.Stats().Queued.Load() != 1 {
		t.Fatalf("queued %d, want 1", d.Stats().Queued.Load())
	}
	ob.down.Store(false)
	eventually(t, "delivery to both URLs", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return len(rcv.hits) == 2
	})
	// Pending at Close: written to the outbox, not sent.
	d.Changed("late", 7)
	closeD(t, d)
	ds, _ := ob.ListDeliveries(context.Background(), store.DeliveryPending, 0)
	if len(ds) != 2 || ds[0].Type != webhook.DocumentChanged || !strings.Contains(string(ds[0].Body), `"seq":7`) {
		t.Fatalf("pending after Close: %+v", ds)
	}
}

func TestNoURLsNoDispatcher(t *testing.T) {
	d := webhook.New(webhook.Config{}, store.NewMemory())
	if d != nil {
		t.Fatal("dispatcher without URLs")
	}
	d.Emit("x", "", nil) // nil dispatcher: no-ops
	d.Changed("x", 1)
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"id":"1"}`)
	h := webhook.Sign(secret, now, body)
	if err := webhook.Verify(secret, h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := webhook.Verify(secret, h, []byte(`{"id":"2"}`), now, 5*time.Minute); !errors.Is(err, webhook.ErrBadSignature) {
		t.Errorf("tampered body: %v", err)
	}
	if err := webhook.Verify([]byte("other"), h, body, now, 5*time.Minute); !errors.Is(err, webhook.ErrBadSignature) {
		t.Errorf("other secret: %v", err)
	}
	if err := webhook.Verify(secret, h, body, now.Add(time.Hour), 5*time.Minute); !errors.Is(err, webhook.ErrStale) {
		t.Errorf("stale: %v", err)
	}
	for _, bad := range []string{"", "t=1", "v1=00", "t=x,v1=00", "garbage"} {
		if err := webhook.Verify(secret, bad, body, now, 0); !errors.Is(err, webhook.ErrNoSignature) && !errors.Is(err, webhook.ErrBadSignature) {
			t.Errorf("Verify(%q) = %v", bad, err)
		}
	}
	// Rotation: any of several v1 values.
	if err := webhook.Verify(secret, h+",v1=00ff", body, now, 0); err != nil {
		t.Errorf("extra v1: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	f.Add(webhook.Sign(secret, now, []byte("{}")), []byte("{}"))
	f.Add("t=1,v1=zz,v1=", []byte(""))
	f.Add(",,,=,t==,v1", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := webhook.Verify(secret, header, body, now, time.Hour)
		if err == nil && webhook.Verify(secret, webhook.Sign(secret, now, body), body, now, time.Hour) != nil {
			t.Fatal("own signature does not verify")
		}
	})
}
