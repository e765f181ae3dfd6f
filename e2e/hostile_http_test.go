package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/internal/pgtest"
	"github.com/ysync/ysync/workflow"
)

// The HTTP side of issue 8 against the real binary: bodies sent without a token, slow and idle
// connections, too many connections from one address and from one user. Each test runs honest
// y-websocket editors (e2e/crash.mjs) through the attack and checks that every edit the server
// acknowledged is in the converged document, and reads the server's RSS from /proc.

// hostileSecret is the HS256 secret of the authenticated servers here.
const hostileSecret = "e2e-hostile-http-Secret-0123456789abcdefXYZ"

func hostileToken(t *testing.T, c auth.Claims) string {
	t.Helper()
	if c.ExpiresAt == 0 {
		c.ExpiresAt = time.Now().Add(time.Hour).Unix()
	}
	tok, err := auth.SignHS256([]byte(hostileSecret), c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// serveProc is a running `ysync serve` started by startServe.
type serveProc struct {
	*proc
	http string // http://127.0.0.1:port
	pid  int
}

// startServe runs the binary with args after `serve --addr 127.0.0.1:0`, under an open-files
// limit when nofile > 0 (set with the shell's ulimit, then exec: the pid is the server's).
func startServe(t *testing.T, nofile int, args ...string) *serveProc {
	t.Helper()
	bin := buildBinary(t)
	all := append([]string{"serve", "--addr", "127.0.0.1:0", "--log-level", "warn"}, args...)
	if !slices.Contains(args, "--database-url") {
		// The in-memory store (no longer the default): these attacks are on HTTP, not storage.
		all = append(all, "--store", "memory")
	}
	var cmd *exec.Cmd
	if nofile > 0 {
		cmd = exec.Command("/bin/sh", append([]string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, nofile), bin}, all...)...)
	} else {
		cmd = exec.Command(bin, all...)
	}
	cmd.Env = append(os.Environ(), "DATABASE_URL=", "YSYNC_DATABASE_URL=", "YSYNC_AUTH_HS256_SECRET=")
	p := startCmd(t, cmd)
	return &serveProc{proc: p, http: "http://" + strings.TrimSuffix(strings.TrimPrefix(p.base, "ws://"), "/ws"), pid: cmd.Process.Pid}
}

// rssKiB reads VmRSS of pid from /proc.
func rssKiB(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// dialFrom opens a TCP connection to addr (host:port) from the loopback address local.
func dialFrom(local, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	return d.Dial("tcp", addr)
}

func hostOf(httpBase string) string { return strings.TrimPrefix(httpBase, "http://") }

// healthz reports whether /healthz answers 200 within a few seconds.
func healthz(base string) bool {
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(base + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// editorsGoing waits until the editors have n more acknowledged edits than before.
func editorsGoing(t *testing.T, ed *editors, more int, what string) {
	t.Helper()
	before := ed.ackedCount()
	deadline := time.Now().Add(60 * time.Second)
	for ed.ackedCount() < before+more {
		if time.Now().After(deadline) {
			t.Fatalf("honest editors stalled %s (%d acked)\n%s", what, ed.ackedCount(), ed.stderrString())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendBody sends a request with body the way an attacker does: all of it, whatever the server
// answers meanwhile, reading the answer as soon as it comes. (Go's http.Client gives up on the
// answer when the server closes while the body is still being written, which it does: it answers
// without reading the body and closes.)
func sendBody(addr, method, path, authz string, body []byte) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", method, path, len(body))
	if authz != "" {
		head += "Authorization: " + authz + "\r\n"
	}
	go func() {
		// Errors are expected once the server has answered and closed.
		if _, err := io.WriteString(c, head+"\r\n"); err == nil {
			_, _ = c.Write(body)
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Unauthenticated requests with big bodies to every route that takes one: all answered 401
// without the server reading the bodies, and its RSS stays under a fixed bound. Before, six
// 8 MB POST /api/workflows took it to 4.5 GB.
func TestHostileUnauthenticatedBodies(t *testing.T) {
	dbURL := pgtest.NewSchema(t) // the workflow routes need PostgreSQL
	srv := startServe(t, 0, "--database-url", dbURL, "--auto-migrate", "--auth-hs256-secret", hostileSecret)
	editorTok := hostileToken(t, auth.Claims{Subject: "editor", Docs: map[string]string{"*": "write"}})
	ed := startEditors(t, srv.base, "hostile/bodies", 2, editorTok)
	editorsGoing(t, ed, 20, "before the attack")
	baseRSS := rssKiB(t, srv.pid)

	id := workflow.NewID()
	routes := []struct{ method, path string }{
		{"POST", "/api/workflows"},
		{"PUT", "/api/workflows/" + id},
		{"POST", "/api/workflows/" + id + "/save"},
		{"POST", "/api/workflows/" + id + "/reset"},
	}
	body := append(append([]byte(`{"name": "`), bytes.Repeat([]byte("x"), 7<<20)...), `"}`...)
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	var peak int64
	stopPeak := make(chan struct{})
	peakDone := make(chan struct{})
	go func() {
		defer close(peakDone)
		for {
			select {
			case <-stopPeak:
				return
			case <-time.After(20 * time.Millisecond):
				if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", srv.pid)); err == nil {
					for _, line := range strings.Split(string(b), "\n") {
						if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
							n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
							mu.Lock()
							peak = max(peak, n)
							mu.Unlock()
						}
					}
				}
			}
		}
	}()
	start := time.Now()
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := routes[i%len(routes)]
			authz := ""
			if i%3 == 0 {
				authz = "Bearer not.a.token"
			}
			code, err := sendBody(hostOf(srv.http), r.method, r.path, authz, body)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Logf("request %d: %v", i, err)
				statuses[-1]++
				return
			}
			statuses[code]++
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopPeak)
	<-peakDone
	if statuses[401] != 24 {
		t.Errorf("statuses %v, want 24 x 401", statuses)
	}
	// A fixed bound: the server never holds the bodies; 24 of them are 168 MiB (under the old
	// 8 MB cap, so before the fix each was read and parsed before the 401).
	const boundKiB = 64 << 10
	if peak-baseRSS > boundKiB {
		t.Errorf("RSS grew %d KiB during the attack (baseline %d KiB), bound %d KiB", peak-baseRSS, baseRSS, boundKiB)
	}
	t.Logf("24 unauthenticated 7 MiB bodies: %v answered in %v; RSS baseline %d KiB, peak %d KiB", statuses, elapsed, baseRSS, peak)

	editorsGoing(t, ed, 20, "after the attack")
	items := ed.stop(t)
	checkAll(t, "honest editors", ed.ackedLabels(), items)
}

// Headers that never end, bodies trickled a byte at a time and idle keep-alive connections,
// hundreds of each, against a server limited to 256 open files: the timeouts close them all,
// accept survives EMFILE, /healthz answers again, and the honest editors lose nothing.
func TestHostileSlowConnections(t *testing.T) {
	srv := startServe(t, 256,
		"--max-conns-per-ip", "-1", // to run the process out of files (the per-IP cap would stop it first)
		"--http-read-header-timeout", "1s", "--http-read-timeout", "2s", "--http-idle-timeout", "1s")
	ed := startEditors(t, srv.base, "hostile/slow", 2, "")
	editorsGoing(t, ed, 20, "before the attack")
	addr := hostOf(srv.http)

	var conns []net.Conn
	var closeOnce sync.Once
	closeAll := func() {
		closeOnce.Do(func() {
			for _, c := range conns {
				_ = c.Close()
			}
		})
	}
	defer closeAll()
	stop := make(chan struct{})
	var trickling sync.WaitGroup
	defer func() { close(stop); trickling.Wait() }()
	refused := 0
	for i := range 600 {
		c, err := dialFrom("127.0.0.2", addr)
		if err != nil {
			refused++
			continue
		}
		conns = append(conns, c)
		switch i % 3 {
		case 0: // slowloris: headers that never end
			_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		case 1: // one request, then idle on keep-alive
			_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		case 2: // a body that trickles
			_, _ = io.WriteString(c, "POST /api/workflows HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
			trickling.Add(1)
			go func() {
				defer trickling.Done()
				for {
					select {
					case <-stop:
						return
					case <-time.After(200 * time.Millisecond):
						if _, err := c.Write([]byte(" ")); err != nil {
							return
						}
					}
				}
			}()
		}
	}
	// Every hostile connection the server accepted is closed by it; the ones it could not
	// accept yet (EMFILE) wait in the backlog and are served, and closed, once files are free.
	deadline := time.Now().Add(90 * time.Second)
	open := 0
	for _, c := range conns {
		_ = c.SetReadDeadline(deadline)
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					open++
				}
				break
			}
		}
	}
	if open > 0 {
		t.Errorf("%d of %d hostile connections still open after 90 s", open, len(conns))
	}
	closeAll()
	waitUntil(t, 60*time.Second, "/healthz to answer after the attack", func() bool { return healthz(srv.http) })
	emfile := strings.Count(srv.logs(), "too many open files")
	t.Logf("%d hostile connections (%d not even connected), %d still open; %d accept errors for EMFILE logged", len(conns), refused, open, emfile)

	editorsGoing(t, ed, 20, "after the attack")
	items := ed.stop(t)
	checkAll(t, "honest editors", ed.ackedLabels(), items)
	if srv.cmd.ProcessState != nil {
		t.Fatalf("the server exited\n%s", srv.logs())
	}
}

// Many connections from one address hit the per-IP cap (429) while other addresses connect;
// one user's many connections hit the per-user caps (503 + Retry-After) while another user's
// editors connect and sync.
func TestHostileConnectionCaps(t *testing.T) {
	srv := startServe(t, 0, "--auth-hs256-secret", hostileSecret,
		"--max-conns-per-ip", "40", "--max-conns-per-user-per-doc", "5", "--max-conns-per-user", "8")
	editorTok := hostileToken(t, auth.Claims{Subject: "editor", Docs: map[string]string{"*": "write"}})
	ed := startEditors(t, srv.base, "hostile/caps", 2, editorTok)
	editorsGoing(t, ed, 20, "before the attack")
	addr := hostOf(srv.http)

	// One address: 40 connections are allowed, the rest answered 429 at accept.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 40 {
		c, err := dialFrom("127.0.0.2", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection within the cap: %v %v", resp, err)
		}
		held = append(held, c)
	}
	tooMany := 0
	for range 20 {
		c, err := dialFrom("127.0.0.2", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil && resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "" {
			tooMany++
		}
		c.Close()
	}
	if tooMany != 20 {
		t.Errorf("%d of 20 connections over the per-IP cap answered 429 with Retry-After", tooMany)
	}
	// Another address is not affected.
	c, err := dialFrom("127.0.0.3", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
		t.Errorf("another address: %v %v", resp, err)
	}
	c.Close()

	// One read-only user: 5 connections to the document, then 503 + Retry-After; 8 in all.
	viewer := hostileToken(t, auth.Claims{Subject: "viewer", Docs: map[string]string{"*": "read"}})
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, NetDial: func(_, a string) (net.Conn, error) { return dialFrom("127.0.0.4", a) }}
	var wss []*websocket.Conn
	defer func() {
		for _, c := range wss {
			c.Close()
		}
	}()
	dialDoc := func(doc string) (int, string) {
		c, resp, err := d.Dial(srv.base+"/"+doc+"?token="+viewer, nil)
		if err != nil {
			if resp == nil {
				t.Fatal(err)
			}
			return resp.StatusCode, resp.Header.Get("Retry-After")
		}
		wss = append(wss, c)
		return 101, ""
	}
	for i := range 5 {
		if code, _ := dialDoc("hostile/caps"); code != 101 {
			t.Fatalf("viewer connection %d: %d", i, code)
		}
	}
	if code, ra := dialDoc("hostile/caps"); code != 503 || ra == "" {
		t.Errorf("viewer's 6th connection to the document: %d (Retry-After %q), want 503 with Retry-After", code, ra)
	}
	for i := range 3 {
		if code, _ := dialDoc(fmt.Sprintf("hostile/other-%d", i)); code != 101 {
			t.Fatalf("viewer connection to another document: %d", code)
		}
	}
	if code, ra := dialDoc("hostile/other-9"); code != 503 || ra == "" {
		t.Errorf("viewer's 9th connection: %d (Retry-After %q), want 503 with Retry-After", code, ra)
	}
	// A new editor (another user) still gets in and syncs, next to the two running.
	ed2 := startEditors(t, srv.base, "hostile/caps", 1, editorTok)
	editorsGoing(t, ed2, 10, "a new editor while the viewer is at its caps")
	editorsGoing(t, ed, 20, "after the attack")
	items := ed.stop(t)
	checkAll(t, "honest editors", ed.ackedLabels(), items)
	items2 := ed2.stop(t)
	checkAll(t, "the new editor", ed2.ackedLabels(), items2)
	if n := metricValue(t, srv.base, `ysync_upgrades_refused_total{reason="too_many_connections_user"}`); n != 2 {
		t.Errorf("per-user refusals %d, want 2", n)
	}
	if n := metricValue(t, srv.base, `ysync_connections_refused_total{reason="per_ip"}`); n != 20 {
		t.Errorf("per-IP refusals %d, want 20", n)
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
