package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/session"
)

// runHP runs one scenario of hocuspocus.mjs against base (ws://host/ws) and returns its result
// line.
func runHP(t *testing.T, scenario, base string, arg any) map[string]any {
	t.Helper()
	nodeBin, root := node(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{filepath.Join(root, "e2e", "hocuspocus.mjs"), scenario, base}
	if arg != nil {
		js, err := json.Marshal(arg)
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, string(js))
	}
	cmd := exec.CommandContext(ctx, nodeBin, args...)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	last := lastLine(stdout.String())
	var res map[string]any
	_ = json.Unmarshal([]byte(last), &res)
	if err != nil || res["ok"] != true {
		t.Fatalf("hocuspocus scenario %s: %v; result %s\nstderr:\n%s", scenario, err, last, stderr.String())
	}
	return res
}

func TestHocuspocusTwoWayV3(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{})
	res := runHP(t, "twoWay", base, map[string]any{"version": "v3"})
	if res["acksA"].(float64) < 2 {
		t.Fatalf("provider a saw %v SyncStatus(1), want at least its step 2 and its edit", res["acksA"])
	}
}

func TestHocuspocusTwoWayV2(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{})
	runHP(t, "twoWay", base, map[string]any{"version": "v2", "doc": "hp-two-v2"})
}

func TestHocuspocusTwoWayV4(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{})
	runHP(t, "twoWay", base, map[string]any{"version": "v4", "doc": "hp-two-v4"})
}

func TestHocuspocusManyDocumentsOneSocket(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{})
	runHP(t, "manyDocs", base, map[string]any{"n": 50})
}

func TestHocuspocusAwareness(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{})
	runHP(t, "awareness", base, nil)
}

func TestHocuspocusOfflineEditsConverge(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{})
	runHP(t, "offline", base, nil)
}

func TestHocuspocusBigDocument(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{})
	res := runHP(t, "big", base, nil)
	if res["bytes"].(float64) < 2<<20 {
		t.Fatalf("late joiner got %v characters", res["bytes"])
	}
}

func TestHocuspocusMixedWithYWebsocket(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{})
	runHP(t, "mixed", base, nil)
}

func TestHocuspocusBadFramesCloseOnlyTheirSocket(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{})
	res := runHP(t, "badFrames", base, nil)
	codes := res["codes"].([]any)
	want := []float64{1007, 1003, 1007, 1007}
	for i, c := range codes {
		if c.(float64) != want[i] {
			t.Fatalf("close codes %v, want %v", codes, want)
		}
	}
}

var hpSecret = []byte("0123456789abcdef0123456789abcdef-hocus")

func hpToken(t *testing.T, c auth.Claims) string {
	t.Helper()
	if c.Subject == "" {
		c.Subject = "hp-user"
	}
	if c.ExpiresAt == 0 {
		c.ExpiresAt = time.Now().Add(time.Hour).Unix()
	}
	tok, err := auth.SignHS256(hpSecret, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func hpAuth(t *testing.T) auth.Authenticator {
	t.Helper()
	j, err := auth.NewJWT(auth.JWTConfig{HS256Secret: hpSecret, Leeway: -1})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestHocuspocusReadOnlyRefusedWrites(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{Authenticator: hpAuth(t)})
	write := hpToken(t, auth.Claims{Docs: map[string]string{"hp-ro": "write"}})
	read := hpToken(t, auth.Claims{Subject: "reader", Docs: map[string]string{"hp-ro": "read"}})
	runHP(t, "readOnly", base, map[string]any{"write": write, "read": read})
}

func TestHocuspocusRefusedPerDocument(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{Authenticator: hpAuth(t)})
	write := hpToken(t, auth.Claims{Docs: map[string]string{"hp-auth-*": "write", "hp-secret": "none"}})
	res := runHP(t, "refused", base, map[string]any{"write": write})
	for k, want := range map[string]string{"none": session.HPReasonUnauthorized, "bad": session.HPReasonUnauthorized, "forbidden": session.HPReasonForbidden} {
		if res[k] != want {
			t.Errorf("%s refused with %v, want %q", k, res[k], want)
		}
	}
}

// lifetimeAuth accepts the tokens "short" and "long": a writer on every document whose token
// expires that long after it is checked (not after it was made), so that a slow start of Node on
// a loaded machine cannot use up a short lifetime before the provider connects.
func lifetimeAuth(short time.Duration) auth.Authenticator {
	return auth.AuthenticatorFunc(func(_ context.Context, token string) (*auth.Principal, error) {
		life := map[string]time.Duration{"short": short, "long": time.Hour}[token]
		if life == 0 {
			return nil, auth.ErrInvalidToken
		}
		return &auth.Principal{UserID: "hp-" + token, ExpiresAt: time.Now().Add(life), Docs: []auth.DocRule{{Pattern: "*", Permission: auth.Write}}}, nil
	})
}

func TestHocuspocusTokenRefreshBeforeExpiry(t *testing.T) {
	t.Parallel()
	// The first token lives 8 s from its check; the server asks for a fresh one 4 s before that
	// (half the lifetime, at most --hocuspocus-token-refresh); the second lasts an hour. The
	// scenario edits after the first one expired.
	base, _ := startServer(t, server.Config{Authenticator: lifetimeAuth(8 * time.Second), Hocuspocus: server.HocuspocusLimits{TokenRefresh: 6 * time.Second}})
	res := runHP(t, "refresh", base, map[string]any{"tokens": []string{"short", "long"}, "outlive": 9000})
	if res["calls"].(float64) < 2 {
		t.Fatalf("token function called %v times", res["calls"])
	}
}

func TestHocuspocusExpiredTokenClosesDocumentOnly(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{Authenticator: lifetimeAuth(4 * time.Second), Hocuspocus: server.HocuspocusLimits{TokenRefresh: time.Second}})
	res := runHP(t, "expire", base, map[string]any{"token": "short", "long": "long"})
	if !strings.Contains(mustJSON(t, res["closes"]), session.HPReasonUnauthorized) {
		t.Fatalf("closes %v", res["closes"])
	}
}

func TestHocuspocusStateless(t *testing.T) {
	t.Parallel()
	var srv atomic.Pointer[server.Server]
	base, s := startServer(t, server.Config{Stateless: func(ctx context.Context, c session.StatelessCall) {
		_ = srv.Load().BroadcastStateless(ctx, c.DocName, "echo:"+c.Payload)
	}})
	srv.Store(s)
	runHP(t, "stateless", base, nil)
}

func TestHocuspocusKeepalive(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"v3", "v4"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			base, _ := startServer(t, server.Config{Hocuspocus: server.HocuspocusLimits{Keepalive: 300 * time.Millisecond}})
			// The provider drops a socket silent for 2 s; the scenario stays idle for 6 s.
			res := runHP(t, "keepalive", base, map[string]any{"version": v, "reconnectMs": 2000, "wait": 6000})
			if v == "v4" && res["pings"].(float64) == 0 {
				t.Fatal("v4 provider got no Ping")
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// save_workflow works over Stateless with the same JSON as message type 5, and the other
// Hocuspocus editor gets workflow_saved.
func TestHocuspocusWorkflowSaveOverStateless(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	e := startWorkflowServer(t, pool)
	wf := e.create(t)
	res := runHP(t, "workflowSave", e.ws, map[string]any{"id": wf.ID, "name": "renamed over hocuspocus"})
	stored := e.get(t, wf.ID)
	if stored.Name != "renamed over hocuspocus" || stored.LockVersion != 1 {
		t.Fatalf("stored %q v%d", stored.Name, stored.LockVersion)
	}
	if res["lock_version"].(float64) != 1 || res["event_version"].(float64) != 1 {
		t.Fatalf("reply/event versions %v", res)
	}
}
