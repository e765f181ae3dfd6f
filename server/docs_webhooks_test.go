package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/store"
	"github.com/ysync/ysync/webhook"
)

var hookSecret = []byte("server-webhook-secret")

type hookSink struct {
	mu     sync.Mutex
	events []map[string]any
	bad    int
	srv    *httptest.Server
}

func newHookSink(t *testing.T) *hookSink {
	s := &hookSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		if webhook.Verify(hookSecret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), time.Minute) != nil {
			s.bad++
			w.WriteHeader(401)
			return
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		s.events = append(s.events, m)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *hookSink) find(typ, doc string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if e["type"] == typ && e["doc"] == doc {
			return e
		}
	}
	return nil
}

// The document lifecycle, sessions and edits reach a webhook receiver, signed.
func TestServerWebhooks(t *testing.T) {
	sink := newHookSink(t)
	cfg := server.Config{Webhooks: webhook.Config{URLs: []string{sink.srv.URL}, Secret: hookSecret,
		Debounce: 20 * time.Millisecond, MinInterval: 50 * time.Millisecond, Poll: 10 * time.Millisecond}}
	srv, _, base := startMem(t, cfg)
	ed := newEditor(t, base, "hooked", 5)
	ed.edit(func(d *crdt.Doc) { _ = d.GetText("t").Insert(0, "hi", nil) })
	eventually(t, "document.changed", func() bool {
		e := sink.find(webhook.DocumentChanged, "hooked")
		seq, _ := e["seq"].(float64) // the editor's update, and maybe its sync reply too
		return e != nil && seq >= 1
	})
	for _, typ := range []string{webhook.DocumentLoaded, webhook.SessionJoined} {
		if sink.find(typ, "hooked") == nil {
			t.Errorf("no %s event", typ)
		}
	}
	ed.c.Close()
	<-ed.done
	eventually(t, "session.left and document.unloaded", func() bool {
		return sink.find(webhook.SessionLeft, "hooked") != nil && sink.find(webhook.DocumentUnloaded, "hooked") != nil
	})
	var list struct {
		Deliveries []store.Delivery
		Enabled    bool
	}
	status, body := do(t, "GET", base+"/api/webhooks/deliveries?state=delivered", "", nil)
	if status != 200 || json.Unmarshal(body, &list) != nil || !list.Enabled || len(list.Deliveries) < 5 {
		t.Fatalf("deliveries: %d %s", status, body)
	}
	if _, body := do(t, "GET", base+"/metrics", "", nil); !strings.Contains(string(body), "ysync_webhook_deliveries_total") {
		t.Fatal("no webhook metrics")
	}
	if sink.bad != 0 {
		t.Fatalf("%d unsigned requests", sink.bad)
	}
	if srv.Webhooks().Stats().Delivered.Load() < 5 {
		t.Fatalf("delivered %d", srv.Webhooks().Stats().Delivered.Load())
	}
}

// Automatic versions are taken while a document is edited, at most every interval, and pruned
// to the newest Keep; named versions stay.
func TestAutoVersions(t *testing.T) {
	srv := server.New(server.Config{IdleTimeout: time.Hour, Versions: server.VersionsConfig{AutoInterval: 20 * time.Millisecond, Keep: 2}}, store.NewMemory())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		<-done
	})
	base := "http://" + ln.Addr().String()
	if status, _ := do(t, "POST", docURL(base, "a", "/versions"), "", []byte(`{"label":"named"}`)); status != 201 {
		t.Fatal(status)
	}
	type vlist struct {
		Versions []struct {
			Label string
			Auto  bool
			Seq   int64
		}
	}
	for i := 1; i <= 5; i++ {
		if status, _ := do(t, "POST", docURL(base, "a", "/update"), "", textUpdate(t, uint64(i), "x")); status != 200 {
			t.Fatal(status)
		}
		eventually(t, "an automatic version of the new seq", func() bool {
			var l vlist
			_, body := do(t, "GET", docURL(base, "a", "/versions"), "", nil)
			_ = json.Unmarshal(body, &l)
			autos := 0
			found := false
			for _, v := range l.Versions {
				if v.Auto {
					autos++
					found = found || v.Seq == int64(i)
				}
			}
			if autos > 2 {
				t.Fatalf("%d automatic versions kept, want at most 2", autos)
			}
			return found
		})
	}
	var l vlist
	_, body := do(t, "GET", docURL(base, "a", "/versions"), "", nil)
	_ = json.Unmarshal(body, &l)
	if len(l.Versions) != 3 || l.Versions[2].Label != "named" {
		t.Fatalf("versions %s; want two automatic and the named one", body)
	}
}
