package e2e

// Browser tests: the embedded console and demo pages (package web) in headless Chromium, driven
// with chromedp. Every page is the real bundle served by the real server; the pages talk to it
// with the real yjs and y-websocket. Screenshots of each page go to the directory the tests print
// (YSYNC_SCREENSHOTS, or a fresh directory under $TMPDIR).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/store"
)

// browserDeadline bounds every wait for the page: generous, because the machine is shared and
// a loaded Chromium is slow, not wrong.
const browserDeadline = 90 * time.Second

var (
	shotsOnce sync.Once
	shotsDir  string
)

// screenshotDir returns where screenshots are written, creating it once per test binary.
func screenshotDir(t *testing.T) string {
	shotsOnce.Do(func() {
		shotsDir = os.Getenv("YSYNC_SCREENSHOTS")
		if shotsDir == "" {
			d, err := os.MkdirTemp("", "ysync-screenshots-")
			if err != nil {
				t.Fatal(err)
			}
			shotsDir = d
		}
		if err := os.MkdirAll(shotsDir, 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "browser screenshots: %s\n", shotsDir)
	})
	return shotsDir
}

// chromium returns the path of the Chromium binary, or skips (fails under CI).
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("YSYNC_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found; scripts/test.sh installs it (apt-get install chromium)")
	}
	t.Skip("chromium not found")
	return ""
}

// browser is one headless Chromium process; tab opens isolated browser contexts in it.
type browser struct {
	t     *testing.T
	alloc context.Context
	root  context.Context // the first tab, which owns the browser process
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	root, cancelRoot := chromedp.NewContext(alloc)
	if err := chromedp.Do(root); err != nil {
		cancelRoot()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelRoot()
		cancelAlloc()
	})
	return &browser{t: t, alloc: alloc, root: root}
}

// tab opens a page in a new browser context (its own cookies and storage: another person).
func (b *browser) tab(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatalf("new tab: %v", err)
	}
	t.Cleanup(cancel)
	// The page's console and uncaught exceptions, shown when the test fails.
	var mu sync.Mutex
	var lines []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			lines = append(lines, m.String())
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if t.Failed() && len(lines) > 0 {
			t.Logf("console of a tab:\n  %s", strings.Join(lines, "\n  "))
		}
	})
	return ctx
}

// do runs actions on a tab with the browser deadline.
func do(t *testing.T, tab context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, browserDeadline)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// eval returns the value of a JS expression on the page.
func eval[T any](t *testing.T, tab context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, browserDeadline)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JS expression until it is true, failing with what describes the page state
// (another JS expression) when the deadline passes.
func waitFor(t *testing.T, tab context.Context, what, expr, describe string) {
	t.Helper()
	deadline := time.Now().Add(browserDeadline)
	for {
		ctx, cancel := context.WithTimeout(tab, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			var state any
			if describe != "" {
				ctx, cancel := context.WithTimeout(tab, 10*time.Second)
				state, _ = chromedp.Run(ctx, chromedp.Evaluate[any](describe))
				cancel()
			}
			t.Fatalf("waiting for %s: not true after %s (err %v); page: %v", what, browserDeadline, err, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// shot writes a full-page PNG screenshot named name.png.
func shot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, browserDeadline)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	p := filepath.Join(screenshotDir(t), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
}

// typeInto focuses the element and types text with real key events.
func typeInto(t *testing.T, tab context.Context, sel, text string) {
	t.Helper()
	do(t, tab, chromedp.Click(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), text))
}

// script runs a JS statement on the page as a step.
func script(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](expr)(ctx, tg)
		return err
	})
}

func js(s string) string { b, _ := json.Marshal(s); return string(b) }

const (
	statusState = `document.querySelector('[data-testid="status"]').dataset.state`
	statusText  = `document.querySelector('[data-testid="status"]').textContent`
	ytextJS     = `window.ysync.ydoc.getText('text').toString()`
	presenceJS  = `document.querySelector('[data-testid="presence"]').innerText`
	// ownClock is the next clock of this page's own client: everything below it was made here.
	ownClock = `(() => { const d = window.ysync.ydoc, s = d.store.clients.get(d.clientID); if (!s) return 0; const l = s[s.length - 1]; return l.id.clock + l.length })()`
	clientID = `window.ysync.ydoc.clientID`
)

func httpOf(wsBase string) string {
	return "http" + strings.TrimSuffix(strings.TrimPrefix(wsBase, "ws"), "/ws")
}

// gatedStore holds every Append until opened, to observe a page before the server acknowledged.
type gatedStore struct {
	*store.Memory
	mu   sync.Mutex
	gate chan struct{} // nil: open
}

func (g *gatedStore) close() { g.mu.Lock(); g.gate = make(chan struct{}); g.mu.Unlock() }
func (g *gatedStore) open() {
	g.mu.Lock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
	g.mu.Unlock()
}

func (g *gatedStore) Append(ctx context.Context, name string, update []byte) (int64, error) {
	g.mu.Lock()
	ch := g.gate
	g.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return g.Memory.Append(ctx, name, update)
}

// startGatedServer runs an in-process server over a gatedStore on 127.0.0.1:0.
func startGatedServer(t *testing.T, cfg server.Config) (httpBase string, srv *server.Server, gs *gatedStore) {
	t.Helper()
	srv, gs, _, httpBase = startGatedServerAt(t, cfg, "127.0.0.1:0", false)
	return httpBase, srv, gs
}

// startGatedServerAt is startGatedServer on addr, with the gate shut from the start if shut;
// stop shuts the server down (idempotent; also run at cleanup).
func startGatedServerAt(t *testing.T, cfg server.Config, addr string, shut bool) (srv *server.Server, gs *gatedStore, stop func(), httpBase string) {
	t.Helper()
	gs = &gatedStore{Memory: store.NewMemory()}
	if shut {
		gs.close()
	}
	srv = server.New(cfg, gs)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			gs.open()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
			_ = gs.Close()
		})
	}
	t.Cleanup(stop)
	return srv, gs, stop, "http://" + ln.Addr().String()
}

// serverClock is the clock of client in the server's state vector of doc (0 if absent).
func serverClock(t *testing.T, srv *server.Server, doc string, client uint64) int {
	t.Helper()
	d := srv.Registry().Get(doc)
	if d == nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := d.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(in.StateVector)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := crdt.DecodeStateVector(raw)
	if err != nil {
		t.Fatal(err)
	}
	return sv[client]
}

// TestBrowserTextDemo: two people type into /demo/text at once and converge, see each other in
// presence, and each page says "saved" only once the server stored its edits (the store is held
// shut for a while to see "saving" first).
func TestBrowserTextDemo(t *testing.T) {
	b := newBrowser(t)
	base, srv, gs := startGatedServer(t, server.Config{IdleTimeout: time.Minute})
	const doc = "browser/text demo"
	url := base + "/demo/text?doc=" + strings.ReplaceAll(doc, " ", "%20")
	alice, bob := b.tab(t), b.tab(t)
	do(t, alice, chromedp.Navigate(url+"&name=Alice"))
	do(t, bob, chromedp.Navigate(url+"&name=Bob"))
	for _, tab := range []context.Context{alice, bob} {
		waitFor(t, tab, "status saved after the first sync", statusState+` === 'saved'`, statusText)
	}
	waitFor(t, alice, "Bob in Alice's presence", presenceJS+`.includes('Bob')`, presenceJS)
	waitFor(t, bob, "Alice in Bob's presence", presenceJS+`.includes('Alice')`, presenceJS)

	// Both type at the same time.
	var wg sync.WaitGroup
	for tab, text := range map[context.Context]string{alice: "Hello from Alice. ", bob: "Bob was here! "} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(tab, browserDeadline)
			defer cancel()
			sel := `[data-testid="editor"]`
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), text)); err != nil {
				t.Errorf("typing %q: %v", text, err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// Typing at the same spot at once may interleave the two runs (both are inserted after the
	// same character, and Yjs orders concurrent inserts by client): every character arrives, in
	// each person's order, and both pages show the same text.
	const alices, bobs = "Hello from Alice. ", "Bob was here! "
	both := fmt.Sprintf(`%s.length === %d`, ytextJS, len(alices)+len(bobs))
	for _, tab := range []context.Context{alice, bob} {
		waitFor(t, tab, "both texts in the document", both, ytextJS)
		waitFor(t, tab, "status saved after typing", statusState+` === 'saved'`, statusText)
	}
	ta, tb := eval[string](t, alice, ytextJS), eval[string](t, bob, ytextJS)
	if ta != tb {
		t.Fatalf("pages did not converge:\nAlice: %q\nBob:   %q", ta, tb)
	}
	for _, typed := range []string{alices, bobs} {
		if !subsequence(typed, ta) {
			t.Fatalf("%q is not in order in %q", typed, ta)
		}
	}
	// The editor's own text (innerText would include the remote cursors' name labels).
	if got := eval[string](t, alice, `window.ysync.view.state.doc.toString()`); got != ta {
		t.Fatalf("Alice's editor shows %q, her document has %q", got, ta)
	}
	// "saved" means the server has it: its state vector covers everything Alice made.
	for _, tab := range []context.Context{alice, bob} {
		id, clock := eval[float64](t, tab, clientID), eval[int](t, tab, ownClock)
		if got := serverClock(t, srv, doc, uint64(id)); got < clock {
			t.Fatalf("page says saved but the server has clock %d of client %d, the page made %d", got, uint64(id), clock)
		}
	}
	shot(t, alice, "text-demo-alice")
	shot(t, bob, "text-demo-bob")

	// With the store shut, Alice's next edit reaches Bob at once but is not acknowledged:
	// Alice shows "saving" until it is stored, Bob (nothing of his pending) stays "saved".
	gs.close()
	typeInto(t, alice, `[data-testid="editor"]`, "Unsaved yet.")
	waitFor(t, bob, "Alice's unsaved edit at Bob", ytextJS+`.includes('Unsaved yet.')`, ytextJS)
	waitFor(t, alice, "status saving while the store holds the append", statusState+` === 'saving'`, statusText)
	if st := eval[string](t, bob, statusState); st != "saved" {
		t.Fatalf("Bob's status is %q while only Alice has unacknowledged edits", st)
	}
	// Deleting creates no new clock; it must be acknowledged all the same.
	do(t, bob, chromedp.Click(chromedp.CSS(`[data-testid="editor"]`)), chromedp.KeyEvent("\b"))
	waitFor(t, bob, "status saving after a deletion", statusState+` === 'saving'`, statusText)
	shot(t, alice, "text-demo-saving")
	if st := eval[string](t, alice, statusState); st != "saving" {
		t.Fatalf("Alice's status is %q before the server stored her edit", st)
	}
	gs.open()
	for _, tab := range []context.Context{alice, bob} {
		waitFor(t, tab, "status saved once the store took the edits", statusState+` === 'saved'`, statusText)
	}
	waitFor(t, alice, "converged after the deletion", ytextJS+` === `+js(eval[string](t, bob, ytextJS)), ytextJS)

	// Bob leaves: Alice's presence drops him.
	do(t, bob, chromedp.Navigate("about:blank"))
	waitFor(t, alice, "Bob gone from presence", `!`+presenceJS+`.includes('Bob')`, presenceJS)
}

// TestBrowserConsoleKick: the console lists the open document with its session; kicking the
// session closes that browser's connection with 4409 and its page says so.
func TestBrowserConsoleKick(t *testing.T) {
	b := newBrowser(t)
	base, _, _ := startGatedServer(t, server.Config{IdleTimeout: time.Minute})
	const doc = "console:kick-me"
	editor, console := b.tab(t), b.tab(t)
	do(t, editor, chromedp.Navigate(base+"/demo/text?doc="+doc+"&name=Kickee"))
	waitFor(t, editor, "editor connected", statusState+` === 'saved'`, statusText)
	typeInto(t, editor, `[data-testid="editor"]`, "some content")
	waitFor(t, editor, "edit saved", statusState+` === 'saved' && `+ytextJS+` === 'some content'`, statusText)

	do(t, console, chromedp.Navigate(base+"/"))
	row := `document.querySelector('[data-testid="doc-row"][data-doc="` + doc + `"]')`
	waitFor(t, console, "the document in the console's list", row+` && `+row+`.innerText.includes('1')`, `document.querySelector('main').innerText`)
	const health = `document.querySelector('#health')`
	waitFor(t, console, "health panel: storage ready, one node, the editor's connection counted",
		health+` && `+health+`.innerText.includes('ready') && document.querySelector('[data-health="nodes"]').innerText.startsWith('single node') && Number(document.querySelector('[data-metric="ysync_connections"]').textContent) >= 1`, health+`.innerText`)
	shot(t, console, "console-documents")

	do(t, console, chromedp.Click(chromedp.CSS(`[data-testid="doc-row"][data-doc="`+doc+`"] a`)))
	waitFor(t, console, "the session on the document page", `document.querySelector('[data-testid="kick"]') && document.querySelector('main').innerText.includes('Kickee')`, `document.querySelector('main').innerText`)
	waitFor(t, console, "versions panel degrades", `document.querySelector('[data-unavailable="Versions"]') || document.querySelector('[data-version]') || document.querySelector('main').innerText.includes('Create version')`, `document.querySelector('main').innerText`)
	shot(t, console, "console-document")
	if hasDocsAPI(t, base) {
		consoleVersions(t, console, editor)
	} else {
		waitFor(t, console, "the content panel says it is not available", `document.querySelector('[data-unavailable="Content as JSON"]')`, `document.querySelector('main').innerText`)
	}

	do(t, console, chromedp.Click(chromedp.CSS(`[data-testid="kick"]`)))
	waitFor(t, editor, "the kicked page says it was disconnected", statusState+` === 'closed' && `+statusText+`.includes('administrator')`, statusText)
	waitFor(t, console, "the session gone from the console", `!document.querySelector('[data-testid="kick"]')`, `document.querySelector('main').innerText`)
	shot(t, editor, "text-demo-kicked")
	// y-websocket does not reconnect after 4409: the session stays gone.
	if n := eval[int](t, console, `document.querySelectorAll('[data-testid="kick"]').length`); n != 0 {
		t.Fatalf("%d sessions after the kick", n)
	}
}

// TestBrowserAuth: with authentication on, the console asks for an admin token (kept in
// sessionStorage, not localStorage), and a demo connects with ?token= and is refused without.
func TestBrowserAuth(t *testing.T) {
	secret := []byte("browser-test-secret-0123456789abcdef")
	authn, err := auth.NewJWT(auth.JWTConfig{HS256Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(c auth.Claims) string {
		c.ExpiresAt = time.Now().Add(time.Hour).Unix()
		tok, err := auth.SignHS256(secret, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	b := newBrowser(t)
	base, _, _ := startGatedServer(t, server.Config{Authenticator: authn, IdleTimeout: time.Minute})
	const doc = "secret-notes"
	writer := sign(auth.Claims{Subject: "ada", Docs: map[string]string{doc: "write"}})

	anon := b.tab(t)
	do(t, anon, chromedp.Navigate(base+"/demo/text?doc="+doc+"&name=Nobody"))
	waitFor(t, anon, "a demo without a token explains it cannot connect", statusState+` === 'offline' && `+statusText+`.includes('token')`, statusText)
	shot(t, anon, "text-demo-no-token")

	ada := b.tab(t)
	do(t, ada, chromedp.Navigate(base+"/demo/text?doc="+doc+"&name=Ada&token="+writer))
	waitFor(t, ada, "the demo with ?token= connected", statusState+` === 'saved'`, statusText)
	typeInto(t, ada, `[data-testid="editor"]`, "for admins only")
	waitFor(t, ada, "edit saved with the token", statusState+` === 'saved' && `+ytextJS+`.includes('for admins only')`, statusText)

	console := b.tab(t)
	do(t, console, chromedp.Navigate(base+"/"))
	waitFor(t, console, "the token form", `!document.querySelector('#token-form').hidden`, `document.body.innerText`)
	shot(t, console, "console-token")
	// A non-admin token is refused with a clear message.
	do(t, console, chromedp.SendKeys(chromedp.CSS(`#token-input`), writer), chromedp.Click(chromedp.CSS(`#token-form button`)))
	waitFor(t, console, "a non-admin token refused", `!document.querySelector('#token-form').hidden && document.querySelector('#token-why').innerText.includes('not an admin')`, `document.body.innerText`)
	admin := sign(auth.Claims{Subject: "root", Admin: true})
	do(t, console, chromedp.SendKeys(chromedp.CSS(`#token-input`), admin), chromedp.Click(chromedp.CSS(`#token-form button`)))
	waitFor(t, console, "the document listed with the admin token", `document.querySelector('[data-testid="doc-row"][data-doc="`+doc+`"]')`, `document.body.innerText`)
	if got := eval[string](t, console, `sessionStorage.getItem('ysync-admin-token')`); got != admin {
		t.Fatalf("admin token not in sessionStorage")
	}
	if n := eval[int](t, console, `localStorage.length`); n != 0 {
		t.Fatalf("console wrote %d keys to localStorage; the token must stay in the tab", n)
	}
	// Survives a reload of the tab, and a new tab (another browser context) must ask again.
	do(t, console, chromedp.Reload())
	waitFor(t, console, "still listed after reload", `document.querySelector('[data-testid="doc-row"][data-doc="`+doc+`"]')`, `document.body.innerText`)
	other := b.tab(t)
	do(t, other, chromedp.Navigate(base+"/"))
	waitFor(t, other, "a new tab asks for the token again", `!document.querySelector('#token-form').hidden`, `document.body.innerText`)
}

// TestBrowserServerRestart: the real binary is stopped and started again under the pages; they
// say the server is away, keep edits made meanwhile, and say "saved" once it is back with them.
func TestBrowserServerRestart(t *testing.T) {
	b := newBrowser(t)
	_, dbURL := newPool(t)
	bin := buildBinary(t)
	addr := freeAddr(t)
	p := startServeAt(t, bin, dbURL, addr)
	base := "http://" + addr
	const doc = "restart-notes"
	page, console := b.tab(t), b.tab(t)
	do(t, page, chromedp.Navigate(base+"/demo/text?doc="+doc+"&name=Stayer"))
	waitFor(t, page, "connected", statusState+` === 'saved'`, statusText)
	typeInto(t, page, `[data-testid="editor"]`, "before. ")
	waitFor(t, page, "saved before the stop", statusState+` === 'saved' && `+ytextJS+` === 'before. '`, statusText)
	do(t, console, chromedp.Navigate(base+"/"))
	waitFor(t, console, "console lists the document", `document.querySelector('[data-testid="doc-row"][data-doc="`+doc+`"]')`, `document.body.innerText`)

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t); err != nil {
		t.Fatalf("ysync exited with %v\n%s", err, p.stderr)
	}
	waitFor(t, page, "the demo says the server is away", statusState+` === 'offline' && `+statusText+`.includes('unreachable')`, statusText)
	waitFor(t, console, "the console says the server is away", `document.body.dataset.server === 'down' && !document.querySelector('#banner').hidden && document.querySelector('#banner').innerText.includes('unreachable')`, `document.body.innerText`)
	typeInto(t, page, `[data-testid="editor"]`, "during. ")
	waitFor(t, page, "the offline status says the edit is kept", statusText+`.includes('kept')`, statusText)
	shot(t, page, "text-demo-offline")
	shot(t, console, "console-offline")

	startServeAt(t, bin, dbURL, addr)
	waitFor(t, page, "saved again after the restart", statusState+` === 'saved'`, statusText)
	waitFor(t, console, "the console says the server is back", `document.body.dataset.server === 'up'`, `document.body.innerText`)
	shot(t, page, "text-demo-back")

	// A new reader gets both edits from the restarted server (and so from Postgres).
	reader := b.tab(t)
	do(t, reader, chromedp.Navigate(base+"/demo/text?doc="+doc+"&name=Reader"))
	waitFor(t, reader, "the new reader has both edits", statusState+` === 'saved' && `+ytextJS+`.includes('before. ') && `+ytextJS+`.includes('during. ')`, ytextJS)
}

// TestBrowserWorkflowEditor: the workflow editor in two browser contexts over Postgres: a job
// body edit reaches the other, Save shows the new lock_version on both and a notice on the
// other; a blank name shows its validation error next to the field; Reset restores both;
// adding, connecting and removing jobs is saved; an out-of-band write gives the conflict message.
func TestBrowserWorkflowEditor(t *testing.T) {
	b := newBrowser(t)
	pool, _ := newPool(t)
	e := startWorkflowServer(t, pool)
	w := e.create(t)
	j1 := w.Jobs[0].ID
	url := e.http + "/demo/workflow/" + w.ID
	a, bo := b.tab(t), b.tab(t)
	do(t, a, chromedp.Navigate(url+"?name=Ann"))
	do(t, bo, chromedp.Navigate(url+"?name=Ben"))
	const (
		lockJS  = `document.querySelector('[data-testid="lock-version"]').textContent`
		nameJS  = `document.querySelector('[data-testid="workflow-name"]').value`
		errsJS  = `document.querySelector('[data-testid="errors"]').innerText`
		noteJS  = `document.querySelector('#notice').innerText`
		bodySel = `[data-testid="job-body"][data-job-id="`
	)
	body := func(id string) string { return `document.querySelector('` + bodySel + id + `"]').innerText` }
	for _, tab := range []context.Context{a, bo} {
		waitFor(t, tab, "the workflow loaded", fmt.Sprintf(`%s === %s && %s === '%d' && document.querySelectorAll('[data-testid="job-body"]').length === %d`, nameJS, js(w.Name), lockJS, w.LockVersion, len(w.Jobs)), `document.body.innerText`)
		waitFor(t, tab, "connected", statusState+` === 'saved'`, statusText)
	}
	if got := eval[string](t, a, body(j1)); !strings.Contains(got, "héllo 😀") {
		t.Fatalf("job body shown as %q", got)
	}
	shot(t, a, "workflow-editor")

	// Ann edits a job body; Ben sees it; Ann saves; Ben sees the new version and a notice.
	typeInto(t, a, `[data-testid="job-body"][data-job-id="`+j1+`"]`, " // edited by Ann")
	waitFor(t, bo, "Ann's body edit at Ben", body(j1)+`.includes('// edited by Ann')`, body(j1))
	do(t, a, chromedp.Click(chromedp.CSS(`[data-testid="save"]`)))
	waitFor(t, a, "Ann's save confirmed", noteJS+`.includes('Saved')`, noteJS)
	stored := e.get(t, w.ID)
	if stored.LockVersion != w.LockVersion+1 || !strings.Contains(stored.Jobs[0].Body, "// edited by Ann") {
		t.Fatalf("after save: lock_version %d (was %d), body %q", stored.LockVersion, w.LockVersion, stored.Jobs[0].Body)
	}
	v := fmt.Sprint(stored.LockVersion)
	waitFor(t, bo, "the new lock_version at Ben", lockJS+` === '`+v+`'`, lockJS)
	waitFor(t, bo, "Ben told someone else saved", noteJS+`.includes('Someone else saved')`, noteJS)
	if got := eval[string](t, a, lockJS); got != v {
		t.Fatalf("Ann shows lock_version %s, stored %s", got, v)
	}

	// A blank name: the error shows in the summary and next to the name, for both.
	do(t, a, script(`(() => { const i = document.querySelector('[data-testid="workflow-name"]'); i.focus(); i.select() })()`), chromedp.KeyEvent("\b"))
	waitFor(t, bo, "the blank name at Ben", nameJS+` === ''`, nameJS)
	do(t, a, chromedp.Click(chromedp.CSS(`[data-testid="save"]`)))
	const nameErr = `document.querySelector('.field-error[data-error-key="name"]').textContent`
	waitFor(t, a, "the validation error at Ann", errsJS+`.includes("can't be blank") && `+nameErr+`.includes("can't be blank")`, errsJS)
	waitFor(t, bo, "the validation error at Ben (from the errors map)", errsJS+`.includes("can't be blank") && `+nameErr+`.includes("can't be blank")`, errsJS)
	shot(t, a, "workflow-validation-error")
	if got := e.get(t, w.ID); got.Name != w.Name || got.LockVersion != stored.LockVersion {
		t.Fatalf("an invalid save wrote: name %q lock_version %d", got.Name, got.LockVersion)
	}

	// Reset restores both.
	do(t, a, chromedp.Click(chromedp.CSS(`[data-testid="reset"]`)))
	for _, tab := range []context.Context{a, bo} {
		waitFor(t, tab, "the name restored by Reset", nameJS+` === `+js(w.Name)+` && `+lockJS+` === '`+v+`'`, nameJS)
		waitFor(t, tab, "the errors gone after Reset", errsJS+` === ''`, errsJS)
	}

	// Add a job, connect it after the first, save; then remove it again and save.
	do(t, bo, chromedp.Click(chromedp.CSS(`#add-job`)))
	waitFor(t, a, "Ben's new job at Ann", fmt.Sprintf(`document.querySelectorAll('[data-testid="job-body"]').length === %d`, len(w.Jobs)+1), `document.body.innerText`)
	newJob := eval[string](t, bo, `[...document.querySelectorAll('[data-testid="job-body"]')].pop().dataset.jobId`)
	do(t, bo,
		chromedp.SetValue(chromedp.CSS(`#edge-source`), "j:"+j1),
		chromedp.SetValue(chromedp.CSS(`#edge-target`), "j:"+newJob),
		chromedp.SetValue(chromedp.CSS(`#edge-condition`), "on_job_failure"),
		chromedp.Click(chromedp.CSS(`#connect-edge`)))
	waitFor(t, a, "the new edge at Ann", fmt.Sprintf(`document.querySelectorAll('tr[data-edge]').length === %d`, len(w.Edges)+1), `document.querySelector('#edges').innerText`)
	do(t, bo, chromedp.Click(chromedp.CSS(`[data-testid="save"]`)))
	waitFor(t, bo, "Ben's save confirmed", noteJS+`.includes('Saved')`, noteJS)
	got := e.get(t, w.ID)
	if len(got.Jobs) != len(w.Jobs)+1 || len(got.Edges) != len(w.Edges)+1 {
		t.Fatalf("after adding: %d jobs, %d edges stored", len(got.Jobs), len(got.Edges))
	}
	found := false
	for _, ed := range got.Edges {
		if ed.TargetJobID == newJob && ed.SourceJobID != nil && *ed.SourceJobID == j1 && ed.ConditionType == "on_job_failure" {
			found = true
		}
	}
	if !found {
		t.Fatalf("the connected edge %s → %s is not stored: %+v", j1, newJob, got.Edges)
	}
	waitFor(t, a, "the version of Ben's save at Ann", lockJS+` === '`+fmt.Sprint(got.LockVersion)+`'`, lockJS)
	do(t, a, chromedp.Click(chromedp.CSS(`.job[data-job="`+newJob+`"] [data-action="remove-job"]`)))
	waitFor(t, bo, "the removed job gone at Ben", fmt.Sprintf(`document.querySelectorAll('[data-testid="job-body"]').length === %d && document.querySelectorAll('tr[data-edge]').length === %d`, len(w.Jobs), len(w.Edges)), `document.body.innerText`)
	do(t, a, chromedp.Click(chromedp.CSS(`[data-testid="save"]`)))
	waitFor(t, a, "Ann's save of the removal", noteJS+`.includes('Saved')`, noteJS)
	if got := e.get(t, w.ID); len(got.Jobs) != len(w.Jobs) || len(got.Edges) != len(w.Edges) {
		t.Fatalf("after removing: %d jobs, %d edges stored", len(got.Jobs), len(got.Edges))
	}

	// The tables move on behind the document's back: the next save is a conflict, said so.
	cur := e.get(t, w.ID)
	cur.Name = "renamed elsewhere"
	if _, _, err := e.repo.Replace(context.Background(), cur, cur.LockVersion); err != nil {
		t.Fatal(err)
	}
	typeInto(t, a, `[data-testid="workflow-name"]`, " (Ann)")
	do(t, a, chromedp.Click(chromedp.CSS(`[data-testid="save"]`)))
	waitFor(t, a, "the conflict message", noteJS+`.includes('Someone else saved this workflow since')`, noteJS)
	shot(t, a, "workflow-conflict")
	do(t, a, chromedp.Click(chromedp.CSS(`[data-testid="reset"]`)))
	for _, tab := range []context.Context{a, bo} {
		waitFor(t, tab, "the other write shown after Reset", nameJS+` === 'renamed elsewhere'`, nameJS)
	}
}

// hasDocsAPI reports whether the server has the document API (GET /api/docs answers JSON).
func hasDocsAPI(t *testing.T, base string) bool {
	t.Helper()
	res, err := http.Get(base + "/api/docs?limit=1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return strings.Contains(res.Header.Get("Content-Type"), "json")
}

// consoleVersions, on a console showing the document the editor tab edits: the content shows
// as JSON, a version is created and viewed, the editor changes the text, and restoring the
// version brings the editor back to it.
func consoleVersions(t *testing.T, console, editor context.Context) {
	t.Helper()
	const main = `document.querySelector('main').innerText`
	waitFor(t, console, "the content as JSON", `document.querySelector('[data-content]') && document.querySelector('[data-content]').textContent.includes('some content')`, main)
	do(t, console, chromedp.SendKeys(chromedp.CSS(`#version-label`), "first"), chromedp.Click(chromedp.CSS(`#version-form button`)))
	waitFor(t, console, "the new version listed", `[...document.querySelectorAll('tr[data-version]')].some((r) => r.innerText.includes('first'))`, main)
	do(t, console, chromedp.Click(chromedp.CSS(`tr[data-version] button`)))
	waitFor(t, console, "the version's content", `document.querySelector('[data-version-content]') && document.querySelector('[data-version-content]').textContent.includes('some content')`, main)
	typeInto(t, editor, `[data-testid="editor"]`, " and more")
	waitFor(t, editor, "the later edit saved", statusState+` === 'saved' && `+ytextJS+`.includes(' and more')`, ytextJS)
	do(t, console, script(`window.confirm = () => true`), chromedp.Click(chromedp.CSS(`tr[data-version] button.danger`)))
	waitFor(t, editor, "the editor back at the restored version", ytextJS+` === 'some content'`, ytextJS)
	shot(t, console, "console-versions")
}

// TestBrowserServerLostData: a server that restarts without the document (memory store) must
// not make the page say "saved" from what the old server acknowledged: the page resends its
// state, and is saved only once the new server stored it.
func TestBrowserServerLostData(t *testing.T) {
	b := newBrowser(t)
	addr := freeAddr(t)
	const doc = "lost-and-found"
	_, _, stop, _ := startGatedServerAt(t, server.Config{IdleTimeout: time.Minute}, addr, false)
	page := b.tab(t)
	do(t, page, chromedp.Navigate("http://"+addr+"/demo/text?doc="+doc+"&name=Keeper"))
	waitFor(t, page, "connected", statusState+` === 'saved'`, statusText)
	typeInto(t, page, `[data-testid="editor"]`, "remember me")
	waitFor(t, page, "saved on the first server", statusState+` === 'saved' && `+ytextJS+` === 'remember me'`, statusText)

	stop()
	waitFor(t, page, "offline while no server runs", statusState+` === 'offline'`, statusText)
	srv2, gs2, _, _ := startGatedServerAt(t, server.Config{IdleTimeout: time.Minute}, addr, true)
	waitFor(t, page, "reconnected to the new server, not yet saved", statusState+` === 'saving'`, statusText)
	// The new server has the resent text in memory but has not stored it: still "saving".
	deadline := time.Now().Add(browserDeadline)
	for {
		if d := srv2.Registry().Get(doc); d != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			in, err := d.Info(ctx)
			cancel()
			if err == nil && in.Bytes > 0 && in.PendingUpdates > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the page's state never reached the new server")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := eval[string](t, page, statusState); st != "saving" {
		t.Fatalf("status %q while the new server has not stored the page's state", st)
	}
	gs2.open()
	waitFor(t, page, "saved once the new server stored it", statusState+` === 'saved'`, statusText)
	id, clock := eval[float64](t, page, clientID), eval[int](t, page, ownClock)
	if got := serverClock(t, srv2, doc, uint64(id)); got < clock {
		t.Fatalf("saved, but the new server has clock %d of %d", got, clock)
	}
}

// subsequence reports whether the characters of sub occur in s in order.
func subsequence(sub, s string) bool {
	i := 0
	for _, r := range s {
		if i < len(sub) && rune(sub[i]) == r {
			i++
		}
	}
	return i == len(sub)
}
