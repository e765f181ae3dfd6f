package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/ysync/ysync/internal/leaktest"
)

// idp is a running auth/testdata/jose-idp.mjs: keys made and tokens signed by npm jose.
type idp struct {
	t    *testing.T
	base string
}

func startIDP(t *testing.T) *idp {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join("..", "node_modules", "jose"))
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the JWKS tests need node and node_modules/jose (npm ci): %v", err)
		}
		t.Skipf("node or node_modules/jose missing: %v", err)
	}
	cmd := exec.Command(nodeBin, filepath.Join("testdata", "jose-idp.mjs"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				line <- a
			}
		}
	}()
	select {
	case base := <-line:
		return &idp{t: t, base: base}
	case <-exited:
		t.Fatalf("jose-idp.mjs exited: %s", stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatal("jose-idp.mjs did not start")
	}
	return nil
}

func (p *idp) call(method, path string, in, out any) {
	p.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.base+path, body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		p.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			p.t.Fatalf("%s %s: %s: %v", method, path, raw, err)
		}
	}
}

func (p *idp) addKey(alg string, extra map[string]any) string {
	in := map[string]any{"alg": alg}
	for k, v := range extra {
		in[k] = v
	}
	var out struct{ Kid string }
	p.call("POST", "/keys", in, &out)
	return out.Kid
}

func (p *idp) sign(kid string, claims any) string {
	var out struct{ Token string }
	p.call("POST", "/sign", map[string]any{"kid": kid, "claims": claims}, &out)
	return out.Token
}

func (p *idp) fetches() int {
	var out struct{ Fetches int }
	p.call("GET", "/stats", nil, &out)
	return out.Fetches
}

func encodeJWSWithHeader(header map[string]string, claims any, sign func([]byte) ([]byte, error)) (string, error) {
	h, _ := json.Marshal(header)
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	sig, err := sign([]byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// clock is a settable JWTConfig.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock(t time.Time) *clock    { return &clock{t: t} }
func claimsAt(now time.Time) map[string]any {
	return map[string]any{"sub": "u1", "name": "Ada", "exp": now.Add(time.Hour).Unix(), "docs": map[string]string{"*": "write"}}
}

func newJWKS(t *testing.T, p *idp, c *clock, cfg JWTConfig) *JWT {
	t.Helper()
	cfg.JWKSURLs = append(cfg.JWKSURLs, p.base+"/jwks")
	cfg.Now = c.now
	j, err := NewJWT(cfg)
	if err != nil {
		t.Fatalf("NewJWT: %v", err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

// Every JWKS algorithm verifies a token that jose signed, and refuses it once tampered with.
func TestJWKSAlgorithmsFromJose(t *testing.T) {
	p := startIDP(t)
	c := newClock(time.Now())
	algs := []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}
	kids := map[string]string{}
	for _, alg := range algs {
		kids[alg] = p.addKey(alg, nil)
	}
	j := newJWKS(t, p, c, JWTConfig{})
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			tok := p.sign(kids[alg], claimsAt(c.now()))
			pr, err := j.Authenticate(context.Background(), tok)
			if err != nil {
				t.Fatalf("jose %s token refused: %v", alg, err)
			}
			if pr.UserID != "u1" || pr.Name != "Ada" || pr.Permission("any") != Write {
				t.Fatalf("principal %+v", pr)
			}
			// Tamper with the payload: same signature, other claims.
			parts := strings.Split(tok, ".")
			forged := b64.EncodeToString([]byte(`{"sub":"admin","admin":true,"exp":9999999999}`))
			if _, err := j.Authenticate(context.Background(), parts[0]+"."+forged+"."+parts[2]); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("tampered %s token: %v, want ErrInvalidToken", alg, err)
			}
			// The claim rules still apply to JWKS tokens: exp is required.
			noExp := claimsAt(c.now())
			delete(noExp, "exp")
			if _, err := j.Authenticate(context.Background(), p.sign(kids[alg], noExp)); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("%s token without exp: %v, want ErrInvalidToken", alg, err)
			}
		})
	}
}

// Rotation: a new kid is picked up on first sight; the old kid keeps working until the
// provider removes it; unknown kids refetch the set at most once per JWKSMinRefreshInterval.
func TestJWKSRotation(t *testing.T) {
	p := startIDP(t)
	c := newClock(time.Now())
	old := p.addKey("RS256", nil)
	j := newJWKS(t, p, c, JWTConfig{JWKSMinRefreshInterval: time.Minute, JWKSRefreshInterval: time.Hour})
	ctx := context.Background()
	if _, err := j.Authenticate(ctx, p.sign(old, claimsAt(c.now()))); err != nil {
		t.Fatalf("old key: %v", err)
	}
	start := p.fetches()

	// The provider rotates: a new key appears. The first token with its kid triggers a refetch.
	fresh := p.addKey("ES256", nil)
	if _, err := j.Authenticate(ctx, p.sign(fresh, claimsAt(c.now()))); err != nil {
		t.Fatalf("new kid not picked up on first sight: %v", err)
	}
	if got := p.fetches() - start; got != 1 {
		t.Errorf("%d fetches for a new kid, want 1", got)
	}
	if _, err := j.Authenticate(ctx, p.sign(old, claimsAt(c.now()))); err != nil {
		t.Fatalf("old kid stopped working before it was removed: %v", err)
	}

	// Within the rate limit, another unknown kid does not fetch again (and is refused).
	newer := p.addKey("EdDSA", nil)
	for range 5 {
		if _, err := j.Authenticate(ctx, p.sign(newer, claimsAt(c.now()))); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("unknown kid within the rate limit: %v, want ErrInvalidToken", err)
		}
	}
	if got := p.fetches() - start; got != 1 {
		t.Errorf("%d fetches after 5 unknown-kid tokens within the limit, want still 1", got)
	}
	if got := j.JWKSRefetches(); got != 1 {
		t.Errorf("JWKSRefetches = %d, want 1", got)
	}

	// The provider removes the old key; after the interval the next unknown kid refetches,
	// which picks up the newer key and drops the old one.
	p.call("POST", "/remove", map[string]any{"kid": old}, nil)
	c.add(2 * time.Minute)
	if _, err := j.Authenticate(ctx, p.sign(newer, claimsAt(c.now()))); err != nil {
		t.Fatalf("newer kid after the rate-limit interval: %v", err)
	}
	if _, err := j.Authenticate(ctx, p.sign(old, claimsAt(c.now()))); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("removed kid still accepted: %v", err)
	}
}

// The background refresh picks up a rotation without any token asking for it.
func TestJWKSBackgroundRefresh(t *testing.T) {
	p := startIDP(t)
	c := newClock(time.Now())
	p.addKey("ES256", nil)
	j := newJWKS(t, p, c, JWTConfig{JWKSMinRefreshInterval: time.Second, JWKSRefreshInterval: time.Second})
	fresh := p.addKey("ES384", nil)
	deadline := time.Now().Add(60 * time.Second)
	for {
		keys, err := j.jwks.lookup(context.Background(), "ES384", fresh)
		if err == nil && len(keys) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background refresh did not pick up kid %s (err %v)", fresh, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if j.JWKSRefetches() != 0 {
		t.Errorf("a kid refetch happened; the test wanted the background refresh alone")
	}
}

// Keys a JWKS may hold but that must never verify: a symmetric key (alg confusion), a key whose
// alg differs from the token's, a weak RSA key; and algorithms JWKS does not enable.
func TestJWKSRefusals(t *testing.T) {
	p := startIDP(t)
	c := newClock(time.Now())
	secret := "a symmetric secret long enough for HS256!"
	p.call("POST", "/oct", map[string]any{"kid": "oct-1", "secret": secret}, nil)
	// jose will not make a 1024-bit key, so this one is made and used here.
	weakKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p.call("POST", "/publish", map[string]any{"jwk": map[string]any{
		"kty": "RSA", "kid": "weak", "alg": "RS256", "use": "sig",
		"n": b64.EncodeToString(weakKey.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(weakKey.E)).Bytes()),
	}}, nil)
	ec := p.addKey("ES256", nil)
	j := newJWKS(t, p, c, JWTConfig{JWKSMinRefreshInterval: time.Hour})
	ctx := context.Background()

	hs := rawToken(`{"alg":"HS256","typ":"JWT","kid":"oct-1"}`, `{"sub":"u","exp":9999999999}`, []byte(secret))
	if _, err := j.Authenticate(ctx, hs); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("HS256 token with the JWKS's oct key: %v, want ErrInvalidToken", err)
	}
	weakTok, err := encodeJWSWithHeader(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "weak"}, claimsAt(c.now()), func(in []byte) ([]byte, error) {
		d := sha256.Sum256(in)
		return rsa.SignPKCS1v15(rand.Reader, weakKey, crypto.SHA256, d[:])
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Authenticate(ctx, weakTok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("token of a 1024-bit RSA key: %v, want ErrInvalidToken", err)
	}
	// An ES256 signature relabelled as another algorithm with the same kid.
	tok := p.sign(ec, claimsAt(c.now()))
	parts := strings.Split(tok, ".")
	for _, alg := range []string{"ES384", "RS256", "none", "HS256"} {
		h := b64.EncodeToString([]byte(`{"alg":"` + alg + `","typ":"JWT","kid":"` + ec + `"}`))
		if _, err := j.Authenticate(ctx, h+"."+parts[1]+"."+parts[2]); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("ES256 token relabelled %s: %v, want ErrInvalidToken", alg, err)
		}
	}
	if got := j.Algorithms(); strings.Contains(strings.Join(got, ","), "HS") {
		t.Errorf("JWKS enabled an HMAC algorithm: %v", got)
	}
}

func TestJWKSConfigErrors(t *testing.T) {
	for _, u := range []string{"ftp://x/jwks", "not a url", "http://"} {
		if _, err := NewJWT(JWTConfig{JWKSURLs: []string{u}}); err == nil {
			t.Errorf("JWKS URL %q accepted", u)
		}
	}
	// Nothing listening: NewJWT fails at once with the URL in the error, and leaves nothing running.
	leaktest.Check(t)
	_, err := NewJWT(JWTConfig{JWKSURLs: []string{"http://127.0.0.1:1/jwks"}, JWKSFetchTimeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("NewJWT with an unreachable JWKS = %v, want an error naming it", err)
	}
}

// Close stops every goroutine of the JWKS cache.
func TestJWKSCloseLeavesNoGoroutines(t *testing.T) {
	p := startIDP(t)
	kid := p.addKey("ES256", nil)
	leaktest.Check(t)
	c := newClock(time.Now())
	j, err := NewJWT(JWTConfig{JWKSURLs: []string{p.base + "/jwks"}, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Authenticate(context.Background(), p.sign(kid, claimsAt(c.now()))); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	_ = j.Close()
}

// Whatever a JWKS endpoint serves as a key, choosing it for a token never panics, and a key is
// only ever usable for an algorithm of its own type.
func FuzzJWKSKey(f *testing.F) {
	f.Add([]byte(`{"kty":"RSA","kid":"a","alg":"RS256","n":"AQAB","e":"AQAB"}`))
	f.Add([]byte(`{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}`))
	f.Add([]byte(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`))
	f.Add([]byte(`{"kty":"oct","k":"c2VjcmV0"}`))
	f.Add([]byte(`{"kty":"EC","crv":"P-384","alg":"ES256","use":"enc"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := jwk.ParseKey(data)
		if err != nil {
			return
		}
		for _, alg := range append(jwksAlgorithms, "HS256", "none") {
			pub, ok := usableKey(k, alg)
			if !ok {
				continue
			}
			switch pub.(type) {
			case *rsa.PublicKey:
				if !strings.HasPrefix(alg, "RS") && !strings.HasPrefix(alg, "PS") {
					t.Fatalf("RSA key usable for %s", alg)
				}
			case *ecdsa.PublicKey:
				if !strings.HasPrefix(alg, "ES") {
					t.Fatalf("EC key usable for %s", alg)
				}
			case ed25519.PublicKey:
				if alg != "EdDSA" {
					t.Fatalf("Ed25519 key usable for %s", alg)
				}
			default:
				t.Fatalf("%T usable for %s", pub, alg)
			}
		}
	})
}
