package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/pubsub"
	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/store"
	"github.com/ysync/ysync/workflow"
)

// serveReal runs srv on a real listener through Serve (the limits.Listener and the http.Server
// with its timeouts; httptest.NewServer(srv.Handler()) has neither) and returns its address.
func serveReal(t *testing.T, cfg server.Config) (*server.Server, string) {
	t.Helper()
	srv := server.New(cfg, store.NewMemory())
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
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return srv, ln.Addr().String()
}

// rawConn opens a TCP connection to addr from the loopback address local.
func rawConn(t *testing.T, addr, local string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// getOn sends GET path on c and returns the response (body read).
func getOn(t *testing.T, c net.Conn, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req := "GET " + path + " HTTP/1.1\r\nHost: x\r\n"
	for k, v := range hdr {
		req += k + ": " + v + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// closedWithin reports whether the server closes c (a read returns EOF or a reset) within d,
// reading and discarding whatever it answers first.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noKeepAlive makes one request per connection, so that counts of open connections see only
// the request in flight.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func metric(t *testing.T, base, name string) int64 {
	t.Helper()
	resp, err := noKeepAlive.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64) // client_golang writes large counts as 1.5e+06
			return int64(f)
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// countingBody is a request body that records how much of it was read.
type countingBody struct {
	r    io.Reader
	read atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return nil }

// Every /api route decides on the token before it reads a byte of the body: no token, a bad one,
// or one without the permission are answered without reading it.
func TestAuthenticateBeforeBody(t *testing.T) {
	t.Parallel()
	broker := pubsub.New(0)
	t.Cleanup(broker.Close)
	srv := server.New(server.Config{Authenticator: jwtAuth(t), Workflows: &server.Workflows{Broker: broker}}, store.NewMemory())
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	id := workflow.NewID()
	editor := token(t, auth.Claims{Docs: map[string]string{"workflow:*": "write"}})
	reader := token(t, auth.Claims{Docs: map[string]string{"workflow:*": "read"}})
	tests := []struct {
		name, method, path, tok string
		want                    int
	}{
		{"create, no token", "POST", "/api/workflows", "", 401},
		{"create, bad token", "POST", "/api/workflows", "not.a.token", 401},
		{"create, not admin", "POST", "/api/workflows", editor, 403},
		{"create, token in the query", "POST", "/api/workflows?token=" + editor, "", 401},
		{"replace, no token", "PUT", "/api/workflows/" + id, "", 401},
		{"replace, not admin", "PUT", "/api/workflows/" + id, editor, 403},
		{"save, no token", "POST", "/api/workflows/" + id + "/save", "", 401},
		{"save, read only", "POST", "/api/workflows/" + id + "/save", reader, 403},
		{"reset, read only", "POST", "/api/workflows/" + id + "/reset", reader, 403},
	}
	for _, tt := range tests {
		body := &countingBody{r: strings.NewReader(`{"name": "` + strings.Repeat("x", 1<<20) + `"}`)}
		req := httptest.NewRequest(tt.method, tt.path, nil)
		req.Body = body
		req.ContentLength = -1
		if tt.tok != "" {
			req.Header.Set("Authorization", "Bearer "+tt.tok)
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, rec.Code, rec.Body, tt.want)
		}
		if n := body.read.Load(); n != 0 {
			t.Errorf("%s: %d body bytes read before the refusal", tt.name, n)
		}
	}
}

// Bodies over a route's limit get 413 with a JSON error; a body nested 100,000 deep (well under
// the limit) is refused by encoding/json's own depth limit as a 400, without crashing anything.
func TestBodyLimitsAndDepth(t *testing.T) {
	t.Parallel()
	broker := pubsub.New(0)
	t.Cleanup(broker.Close)
	_, _, base := startMem(t, server.Config{
		Authenticator: jwtAuth(t),
		Workflows:     &server.Workflows{Broker: broker},
		Limits:        server.Limits{MaxWorkflowBodyBytes: 512 << 10},
	})
	admin := token(t, auth.Claims{Admin: true})
	id := workflow.NewID()
	post := func(method, path string, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	errType := func(m map[string]any) string {
		e, _ := m["error"].(map[string]any)
		s, _ := e["type"].(string)
		return s
	}
	big := `{"name": "` + strings.Repeat("x", 600<<10) + `"}`
	if code, out := post("POST", "/api/workflows", big); code != http.StatusRequestEntityTooLarge || errType(out) != "too_large" {
		t.Errorf("create over the limit: %d %v", code, out)
	}
	if code, out := post("PUT", "/api/workflows/"+id, big); code != http.StatusRequestEntityTooLarge || errType(out) != "too_large" {
		t.Errorf("replace over the limit: %d %v", code, out)
	}
	after := `{"after": "` + strings.Repeat("A", 2<<20) + `"}`
	if code, out := post("POST", "/api/workflows/"+id+"/save", after); code != http.StatusRequestEntityTooLarge || errType(out) != "too_large" {
		t.Errorf("save over 1 MiB: %d %v", code, out)
	}
	if n := metric(t, base, "ysync_request_body_too_large_total"); n != 3 {
		t.Errorf("ysync_request_body_too_large_total %d, want 3", n)
	}
	deep := `{"name": "x", "jobs": ` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}`
	code, out := post("POST", "/api/workflows", deep)
	if code != http.StatusBadRequest || !strings.Contains(out["error"].(map[string]any)["errors"].(map[string]any)["base"].([]any)[0].(string), "depth") {
		t.Errorf("deeply nested body: %d %v", code, out)
	}
	if code := getJSONStatus(t, base+"/healthz"); code != 200 {
		t.Errorf("healthz after the deep body: %d", code)
	}
}

// Admin endpoints take the token from the Authorization header only; the upgrade keeps ?token=.
func TestAdminTokenHeaderOnly(t *testing.T) {
	t.Parallel()
	_, _, base := startMem(t, server.Config{Authenticator: jwtAuth(t)})
	admin := token(t, auth.Claims{Admin: true})
	resp, err := http.Get(base + "/api/sessions?token=" + admin)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(body), "Authorization: Bearer") {
		t.Errorf("admin token in the query: %d %s, want 401 naming the header", resp.StatusCode, body)
	}
	req, _ := http.NewRequest("GET", base+"/api/sessions", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("admin token in the header: %d", resp.StatusCode)
	}
	if _, code := dialToken(t, base, "d", token(t, auth.Claims{Docs: map[string]string{"*": "write"}}), nil); code != 101 {
		t.Errorf("upgrade with ?token=: %d", code)
	}
}

// One subject holds at most MaxConnsPerUserPerDoc connections of a document and MaxConnsPerUser
// in all: past either, 503 with Retry-After, while another user still connects.
func TestPerUserConnectionCaps(t *testing.T) {
	t.Parallel()
	_, _, base := startMem(t, server.Config{Authenticator: jwtAuth(t), Limits: server.Limits{MaxConnsPerUserPerDoc: 2, MaxConnsPerUser: 3}})
	alice := token(t, auth.Claims{Subject: "alice", Docs: map[string]string{"*": "read"}})
	bob := token(t, auth.Claims{Subject: "bob", Docs: map[string]string{"*": "write"}})
	dialStatus := func(doc, tok string) (*websocket.Conn, *http.Response) {
		u := "ws" + strings.TrimPrefix(base, "http") + "/ws/" + doc + "?token=" + tok
		c, resp, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil && resp == nil {
			t.Fatal(err)
		}
		if c != nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, resp
	}
	a1, _ := dialStatus("d1", alice)
	dialStatus("d1", alice)
	if c, resp := dialStatus("d1", alice); c != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third connection of alice to d1: %v %v, want 503 with Retry-After", c != nil, resp.StatusCode)
	}
	if c, _ := dialStatus("d2", alice); c == nil {
		t.Fatal("alice's first connection to d2 refused")
	}
	if c, resp := dialStatus("d3", alice); c != nil || resp.StatusCode != 503 {
		t.Fatal("alice's fourth connection (per process) not refused")
	}
	if c, _ := dialStatus("d1", bob); c == nil {
		t.Fatal("bob refused while alice is at her limit")
	}
	// A closed connection gives its slots back.
	a1.Close()
	waitFor(t, "alice's slot to come back", func() bool {
		c, _ := dialStatus("d1", alice)
		return c != nil
	})
	if n := metricLabeled(t, base, `ysync_upgrades_refused_total{reason="too_many_connections_user"}`); n < 2 {
		t.Errorf("per-user refusals counted %d, want >= 2", n)
	}
}

func metricLabeled(t *testing.T, base, series string) int64 {
	t.Helper()
	return metric(t, base, series)
}

// The http.Server's timeouts close slow headers, trickled bodies and idle keep-alive
// connections, and leave WebSockets and event streams alone.
func TestHTTPTimeouts(t *testing.T) {
	t.Parallel()
	broker := pubsub.New(0)
	t.Cleanup(broker.Close)
	_, addr := serveReal(t, server.Config{
		Workflows: &server.Workflows{Broker: broker, Heartbeat: time.Hour},
		Limits: server.Limits{
			ReadHeaderTimeout: 300 * time.Millisecond,
			ReadTimeout:       600 * time.Millisecond,
			WriteTimeout:      600 * time.Millisecond,
			HTTPIdleTimeout:   300 * time.Millisecond,
		},
	})
	base := "http://" + addr

	// Headers that never end.
	slow := rawConn(t, addr, "127.0.0.1")
	_, _ = io.WriteString(slow, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
	if !closedWithin(slow, 20*time.Second) {
		t.Error("a request whose headers never end is still open")
	}
	// An idle keep-alive connection after one request.
	idle := rawConn(t, addr, "127.0.0.1")
	if resp, _ := getOn(t, idle, "/healthz", nil); resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	if !closedWithin(idle, 20*time.Second) {
		t.Error("an idle keep-alive connection is still open")
	}
	// A body trickled a byte at a time: the client keeps writing, the server gives up.
	trickle := rawConn(t, addr, "127.0.0.1")
	_, _ = io.WriteString(trickle, "POST /api/workflows/"+workflow.NewID()+"/save HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := trickle.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	if !closedWithin(trickle, 20*time.Second) {
		t.Error("a trickled body is still being read")
	}

	// A WebSocket and an event stream outlive ReadTimeout and WriteTimeout many times over.
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws/timeouts", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	syncOnce(t, ws)
	sse := rawConn(t, addr, "127.0.0.1")
	_, _ = io.WriteString(sse, "GET /api/events?topic=workflows HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(sse)
	_ = sse.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("event stream: %v %v", resp, err)
	}
	waitFor(t, "the event stream to subscribe", func() bool { return broker.Subscribers(workflow.TopicWorkflows) == 1 })
	time.Sleep(2 * time.Second) // > 3 x ReadTimeout and WriteTimeout: the deadlines would have passed
	if err := ws.WriteMessage(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0})); err != nil {
		t.Fatalf("websocket after the HTTP timeouts: %v", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, _, err := ws.ReadMessage(); err != nil {
		t.Fatalf("websocket after the HTTP timeouts: %v", err)
	}
	broker.Publish(workflow.TopicWorkflows, pubsub.Event{Type: "saved", ID: "w1", LockVersion: 2})
	_ = sse.SetReadDeadline(time.Now().Add(20 * time.Second))
	var got string
	buf := make([]byte, 4096)
	for !strings.Contains(got, `"w1"`) {
		n, err := resp.Body.Read(buf)
		got += string(buf[:n])
		if err != nil {
			t.Fatalf("event stream after the HTTP timeouts: %v (got %q)", err, got)
		}
	}
	if code := getJSONStatus(t, base+"/healthz"); code != 200 {
		t.Errorf("healthz: %d", code)
	}
}

// An event-stream client that stops reading is dropped once a write misses its deadline: it does
// not hold the handler and its connection forever.
func TestEventStreamNonReaderDropped(t *testing.T) {
	t.Parallel()
	// A subscription buffer far larger than the sockets hold: the stream must end by its write
	// deadline, not by the broker dropping a subscriber that fell behind.
	broker := pubsub.New(1 << 14)
	t.Cleanup(broker.Close)
	_, addr := serveReal(t, server.Config{
		Workflows: &server.Workflows{Broker: broker, Heartbeat: time.Hour, EventWriteWait: 200 * time.Millisecond},
		Limits:    server.Limits{WriteTimeout: -1, ReadTimeout: -1},
	})
	base := "http://" + addr
	c := rawConn(t, addr, "127.0.0.1")
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	_, _ = io.WriteString(c, "GET /api/events?topic=workflows HTTP/1.1\r\nHost: x\r\n\r\n")
	waitFor(t, "the event stream to subscribe", func() bool { return broker.Subscribers(workflow.TopicWorkflows) == 1 })
	if n := metric(t, base, "ysync_event_streams"); n != 1 {
		t.Fatalf("event streams %d, want 1", n)
	}
	// The client reads nothing; events pile up in the sockets until a write blocks.
	bigID := strings.Repeat("x", 16<<10)
	waitFor(t, "the stream to be dropped", func() bool {
		for range 8 {
			broker.Publish(workflow.TopicWorkflows, pubsub.Event{Type: "saved", ID: bigID, LockVersion: 1})
		}
		return metric(t, base, "ysync_event_streams") == 0
	})
	if n := metric(t, base, "ysync_event_stream_write_timeouts_total"); n != 1 {
		t.Errorf("write timeouts %d, want 1", n)
	}
	// And the server closed its connection: the only plain connection left open is the one
	// asking. (The client's side may take long to see the end: what the server had queued still
	// drains at the pace of TCP's zero-window probes.)
	waitFor(t, "the dropped stream's connection to close", func() bool { return metric(t, base, "ysync_http_connections") == 1 })
}

// The listener's limits: per client address (a second address still gets in) and for plain
// HTTP connections (a WebSocket does not count against the latter).
func TestConnectionLimitsAtAccept(t *testing.T) {
	t.Parallel()
	_, addr := serveReal(t, server.Config{Limits: server.Limits{MaxConnsPerIP: 2, MaxHTTPConns: 3}})
	base := "http://" + addr
	a1 := rawConn(t, addr, "127.0.0.1")
	if resp, _ := getOn(t, a1, "/healthz", nil); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws/limits", nil) // from 127.0.0.1 too
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	a3 := rawConn(t, addr, "127.0.0.1")
	resp, body := getOn(t, a3, "/healthz", nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "too many connections from this address") {
		t.Errorf("third connection of 127.0.0.1: %d %q, want 429 with Retry-After", resp.StatusCode, body)
	}
	if !closedWithin(a3, 20*time.Second) {
		t.Error("the refused connection stays open")
	}
	// Another address gets in; the WebSocket does not count as plain HTTP, so two more fit.
	b1 := rawConn(t, addr, "127.0.0.2")
	if resp, _ := getOn(t, b1, "/healthz", nil); resp.StatusCode != 200 {
		t.Errorf("127.0.0.2: %d", resp.StatusCode)
	}
	b2 := rawConn(t, addr, "127.0.0.2")
	if resp, _ := getOn(t, b2, "/healthz", nil); resp.StatusCode != 200 {
		t.Errorf("127.0.0.2, second: %d", resp.StatusCode)
	}
	c1 := rawConn(t, addr, "127.0.0.3")
	if resp, _ := getOn(t, c1, "/healthz", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("fourth plain connection: %d, want 503", resp.StatusCode)
	}
	b2.Close()
	waitFor(t, "the closed connection's slot", func() bool {
		c := rawConn(t, addr, "127.0.0.3")
		resp, _ := getOn(t, c, "/metrics", nil)
		c.Close()
		return resp.StatusCode == 200
	})
	// The refusal is counted (read from 127.0.0.1 once its connections are given up: retry
	// while the server is still closing them; a retry refused meanwhile counts once more).
	a1.Close()
	ws.Close()
	waitFor(t, "the per-IP refusal in the metrics", func() bool {
		n, ok := tryMetric(base, `ysync_connections_refused_total{reason="per_ip"}`)
		return ok && n >= 1
	})
}

// tryMetric reads one series of /metrics, reporting false when the request or the series fails.
func tryMetric(base, series string) (int64, bool) {
	resp, err := noKeepAlive.Get(base + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64) // client_golang writes large counts as 1.5e+06
			return int64(f), err == nil
		}
	}
	return 0, false
}

// Behind a proxy the per-IP limit counts the trusted header's address, WebSockets included, and
// the admin API shows that address.
func TestTrustProxyHeader(t *testing.T) {
	t.Parallel()
	broker := pubsub.New(0)
	t.Cleanup(broker.Close)
	_, addr := serveReal(t, server.Config{
		Workflows: &server.Workflows{Broker: broker, Heartbeat: time.Hour},
		Limits:    server.Limits{MaxConnsPerIP: 1, TrustProxyHeader: "X-Forwarded-For"},
	})
	dial := func(xff string) (*websocket.Conn, int) {
		return dialToken(t, "http://"+addr, "proxied", "", http.Header{"X-Forwarded-For": {xff}})
	}
	if _, code := dial("6.6.6.6, 10.0.0.1"); code != 101 {
		t.Fatalf("first client: %d", code)
	}
	if _, code := dial("10.0.0.1"); code != http.StatusTooManyRequests {
		t.Errorf("second connection of 10.0.0.1: %d, want 429", code)
	}
	if _, code := dial("10.0.0.2"); code != 101 {
		t.Errorf("another client behind the proxy: %d", code)
	}
	// A session is listed once its goroutine registered it, a moment after the upgrade answered.
	remotes := map[string]bool{}
	waitFor(t, "both proxied sessions listed", func() bool {
		var sessions []struct{ Remote string }
		if code := getJSON(t, "http://"+addr+"/api/sessions", &sessions); code != 200 {
			t.Fatal(code)
		}
		remotes = map[string]bool{}
		for _, s := range sessions {
			remotes[s.Remote] = true
		}
		return len(remotes) >= 2
	})
	if !remotes["10.0.0.1"] || !remotes["10.0.0.2"] || len(remotes) != 2 {
		t.Errorf("session remotes %v, want the header addresses", remotes)
	}

	// Plain requests count while they run: a long-lived event stream of 10.0.0.3 holds its
	// slot, so its next request is refused, and the same proxy connection serves others.
	sse := rawConn(t, addr, "127.0.0.1")
	_, _ = io.WriteString(sse, "GET /api/events?topic=workflows HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.3\r\n\r\n")
	waitFor(t, "the event stream to subscribe", func() bool { return broker.Subscribers(workflow.TopicWorkflows) == 1 })
	proxy := rawConn(t, addr, "127.0.0.1")
	if resp, _ := getOn(t, proxy, "/healthz", map[string]string{"X-Forwarded-For": "10.0.0.3"}); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("second request of 10.0.0.3 while its stream runs: %d, want 429", resp.StatusCode)
	}
	if resp, _ := getOn(t, proxy, "/healthz", map[string]string{"X-Forwarded-For": "10.0.0.4"}); resp.StatusCode != 200 {
		t.Errorf("another client on the same proxy connection: %d", resp.StatusCode)
	}
}
