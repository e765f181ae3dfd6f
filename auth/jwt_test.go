package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	testSecret = []byte("0123456789abcdef0123456789abcdef-test")
	testNow    = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
)

// Keys are generated once per test binary: RSA generation is slow enough to notice.
var testKeys = sync.OnceValue(func() (k struct {
	rsa, rsa2 *rsa.PrivateKey
	ec, ec2   *ecdsa.PrivateKey
	ec384     *ecdsa.PrivateKey
}) {
	var err error
	must := func() {
		if err != nil {
			panic(err)
		}
	}
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must()
	k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must()
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must()
	k.ec2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must()
	k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must()
	return k
})

func pemPublic(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func signRS256(t testing.TB, key *rsa.PrivateKey, claims any) string {
	t.Helper()
	tok, err := encodeJWS("RS256", claims, func(input []byte) ([]byte, error) {
		d := sha256.Sum256(input)
		return rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func signES256(t testing.TB, key *ecdsa.PrivateKey, claims any) string {
	t.Helper()
	tok, err := encodeJWS("ES256", claims, func(input []byte) ([]byte, error) {
		d := sha256.Sum256(input)
		r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
		if err != nil {
			return nil, err
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func signHS(t testing.TB, secret []byte, claims any) string {
	t.Helper()
	tok, err := SignHS256(secret, claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// rawToken assembles a token from a literal header and payload, signing with HS256 and secret.
func rawToken(header, payload string, secret []byte) string {
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + enc.EncodeToString(mac.Sum(nil))
}

func okClaims() Claims {
	return Claims{
		Subject:   "u1",
		Name:      "Ada",
		ExpiresAt: testNow.Add(time.Hour).Unix(),
		IssuedAt:  testNow.Add(-time.Minute).Unix(),
		Docs:      map[string]string{"workflow:*": "write", "notes": "read"},
	}
}

func with(f func(c *Claims)) Claims {
	c := okClaims()
	f(&c)
	return c
}

func TestJWTAuthenticate(t *testing.T) {
	t.Parallel()
	k := testKeys()
	allKeys := append(append(append(pemPublic(t, &k.rsa2.PublicKey), pemPublic(t, &k.rsa.PublicKey)...),
		pemPublic(t, &k.ec2.PublicKey)...), pemPublic(t, &k.ec.PublicKey)...)
	hsOnly := JWTConfig{HS256Secret: testSecret}
	keysOnly := JWTConfig{PublicKeysPEM: allKeys}
	both := JWTConfig{HS256Secret: testSecret, PublicKeysPEM: allKeys}
	checked := JWTConfig{HS256Secret: testSecret, Issuer: "https://id.example", Audience: "ysync"}

	rsaPEM := pemPublic(t, &k.rsa.PublicKey)
	enc := base64.RawURLEncoding
	hsHeader := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	okPayload := func() string {
		b, _ := json.Marshal(okClaims())
		return enc.EncodeToString(b)
	}()

	tests := []struct {
		name    string
		cfg     JWTConfig
		token   string
		wantErr error // nil: valid
		check   func(t *testing.T, p *Principal)
	}{
		{name: "HS256", cfg: hsOnly, token: signHS(t, testSecret, okClaims()), check: func(t *testing.T, p *Principal) {
			if p.UserID != "u1" || p.Name != "Ada" || p.Admin {
				t.Errorf("principal %+v", p)
			}
			if want := time.Unix(okClaims().ExpiresAt, 0).Add(DefaultLeeway); !p.ExpiresAt.Equal(want) {
				t.Errorf("ExpiresAt %v, want exp+leeway %v", p.ExpiresAt, want)
			}
			want := []DocRule{{"notes", Read}, {"workflow:*", Write}}
			if len(p.Docs) != 2 || p.Docs[0] != want[0] || p.Docs[1] != want[1] {
				t.Errorf("docs %v, want %v", p.Docs, want)
			}
		}},
		{name: "RS256", cfg: keysOnly, token: signRS256(t, k.rsa, okClaims())},
		{name: "RS256 second key", cfg: keysOnly, token: signRS256(t, k.rsa2, okClaims())},
		{name: "ES256", cfg: keysOnly, token: signES256(t, k.ec, okClaims())},
		{name: "ES256 second key", cfg: both, token: signES256(t, k.ec2, okClaims())},
		{name: "HS256 with keys configured too", cfg: both, token: signHS(t, testSecret, okClaims())},
		{name: "admin", cfg: hsOnly, token: signHS(t, testSecret, with(func(c *Claims) { c.Admin = true; c.Docs = nil })),
			check: func(t *testing.T, p *Principal) {
				if !p.Admin || p.Permission("anything") != Admin {
					t.Errorf("principal %+v", p)
				}
			}},
		{name: "fractional exp", cfg: hsOnly, token: signHS(t, testSecret, map[string]any{"sub": "u", "exp": float64(testNow.Unix()) + 0.5})},
		{name: "aud array", cfg: checked, token: signHS(t, testSecret, map[string]any{
			"sub": "u", "exp": testNow.Add(time.Hour).Unix(), "iss": "https://id.example", "aud": []string{"other", "ysync"}})},
		{name: "iss and aud", cfg: checked, token: signHS(t, testSecret, with(func(c *Claims) { c.Issuer = "https://id.example"; c.Audience = "ysync" }))},
		{name: "unknown claims ignored", cfg: hsOnly, token: signHS(t, testSecret, map[string]any{
			"sub": "u", "exp": testNow.Add(time.Hour).Unix(), "scope": "x", "roles": []int{1}})},
		{name: "typ at+jwt", cfg: hsOnly, token: rawToken(`{"alg":"HS256","typ":"at+jwt"}`, `{"sub":"u","exp":1999999999}`, testSecret)},
		{name: "no typ", cfg: hsOnly, token: rawToken(`{"alg":"HS256"}`, `{"sub":"u","exp":1999999999}`, testSecret)},
		{name: "no exp, optional", cfg: JWTConfig{HS256Secret: testSecret, ExpOptional: true},
			token: signHS(t, testSecret, with(func(c *Claims) { c.ExpiresAt = 0 })),
			check: func(t *testing.T, p *Principal) {
				if !p.ExpiresAt.IsZero() {
					t.Errorf("ExpiresAt %v, want zero", p.ExpiresAt)
				}
			}},
		{name: "docs none value", cfg: hsOnly, token: signHS(t, testSecret, with(func(c *Claims) {
			c.Docs = map[string]string{"*": "write", "secret": "none"}
		})), check: func(t *testing.T, p *Principal) {
			if p.Permission("secret") != None || p.Permission("other") != Write {
				t.Errorf("rules %v", p.Docs)
			}
		}},

		// Time.
		{name: "expired beyond leeway", cfg: hsOnly, token: signHS(t, testSecret, with(func(c *Claims) {
			c.ExpiresAt = testNow.Add(-DefaultLeeway).Unix()
		})), wantErr: ErrExpired},
		{name: "expired within leeway", cfg: hsOnly, token: signHS(t, testSecret, with(func(c *Claims) {
			c.ExpiresAt = testNow.Add(-DefaultLeeway + time.Second).Unix()
		}))},
		{name: "expired, no leeway", cfg: JWTConfig{HS256Secret: testSecret, Leeway: -1}, token: signHS(t, testSecret, with(func(c *Claims) {
			c.ExpiresAt = testNow.Unix()
		})), wantErr: ErrExpired},
		{name: "custom leeway", cfg: JWTConfig{HS256Secret: testSecret, Leeway: 5 * time.Minute}, token: signHS(t, testSecret, with(func(c *Claims) {
			c.ExpiresAt = testNow.Add(-4 * time.Minute).Unix()
			c.IssuedAt = testNow.Add(-10 * time.Minute).Unix()
		}))},
		{name: "no exp", cfg: hsOnly, token: signHS(t, testSecret, with(func(c *Claims) { c.ExpiresAt = 0 })), wantErr: ErrInvalidToken},
		{name: "exp null", cfg: JWTConfig{HS256Secret: testSecret, ExpOptional: true},
			token: rawToken(`{"alg":"HS256"}`, `{"sub":"u","exp":null}`, testSecret), wantErr: ErrInvalidToken},
		{name: "exp string", cfg: hsOnly, token: rawToken(`{"alg":"HS256"}`, `{"sub":"u","exp":"1999999999"}`, testSecret), wantErr: ErrInvalidToken},
		{name: "exp negative", cfg: hsOnly, token: rawToken(`{"alg":"HS256"}`, `{"sub":"u","exp":-1}`, testSecret), wantErr: ErrInvalidToken},
		{name: "exp huge", cfg: hsOnly, token: rawToken(`{"alg":"HS256"}`, `{"sub":"u","exp":1e300}`, testSecret)},
		{name: "not yet valid", cfg: hsOnly, token: signHS(t, testSecret, with(func(c *Claims) {
			c.NotBefore = testNow.Add(time.Minute).Unix()
		})), wantErr: ErrInvalidToken},
		{name: "nbf within leeway", cfg: hsOnly, token: signHS(t, testSecret, with(func(c *Claims) {
			c.NotBefore = testNow.Add(10 * time.Second).Unix()
		}))},
		{name: "iat in the future", cfg: hsOnly, token: signHS(t, testSecret, with(func(c *Claims) {
			c.IssuedAt = testNow.Add(time.Minute).Unix()
		})), wantErr: ErrInvalidToken},
		{name: "iat after exp", cfg: JWTConfig{HS256Secret: testSecret, Leeway: time.Hour}, token: signHS(t, testSecret, with(func(c *Claims) {
			c.IssuedAt = testNow.Add(30 * time.Minute).Unix()
			c.ExpiresAt = testNow.Add(20 * time.Minute).Unix()
		})), wantErr: ErrInvalidToken},

		// Claims.
		{name: "missing sub", cfg: hsOnly, token: signHS(t, testSecret, with(func(c *Claims) { c.Subject = "" })), wantErr: ErrInvalidToken},
		{name: "sub not a string", cfg: hsOnly, token: rawToken(`{"alg":"HS256"}`, `{"sub":7,"exp":1999999999}`, testSecret), wantErr: ErrInvalidToken},
		{name: "SUB is not sub", cfg: hsOnly, token: rawToken(`{"alg":"HS256"}`, `{"SUB":"u","exp":1999999999}`, testSecret), wantErr: ErrInvalidToken},
		{name: "Admin is not admin", cfg: hsOnly, token: rawToken(`{"alg":"HS256"}`, `{"sub":"u","Admin":true,"exp":1999999999}`, testSecret),
			check: func(t *testing.T, p *Principal) {
				if p.Admin {
					t.Error("a claim spelled Admin made an admin")
				}
			}},
		{name: "admin as string", cfg: hsOnly, token: rawToken(`{"alg":"HS256"}`, `{"sub":"u","admin":"true","exp":1999999999}`, testSecret), wantErr: ErrInvalidToken},
		{name: "docs bad value", cfg: hsOnly, token: signHS(t, testSecret, with(func(c *Claims) { c.Docs = map[string]string{"*": "admin"} })), wantErr: ErrInvalidToken},
		{name: "docs empty pattern", cfg: hsOnly, token: signHS(t, testSecret, with(func(c *Claims) { c.Docs = map[string]string{"": "read"} })), wantErr: ErrInvalidToken},
		{name: "docs not an object", cfg: hsOnly, token: rawToken(`{"alg":"HS256"}`, `{"sub":"u","docs":["*"],"exp":1999999999}`, testSecret), wantErr: ErrInvalidToken},
		{name: "wrong issuer", cfg: checked, token: signHS(t, testSecret, with(func(c *Claims) { c.Issuer = "https://evil.example"; c.Audience = "ysync" })), wantErr: ErrInvalidToken},
		{name: "missing issuer", cfg: checked, token: signHS(t, testSecret, with(func(c *Claims) { c.Audience = "ysync" })), wantErr: ErrInvalidToken},
		{name: "wrong audience", cfg: checked, token: signHS(t, testSecret, with(func(c *Claims) { c.Issuer = "https://id.example"; c.Audience = "other" })), wantErr: ErrInvalidToken},
		{name: "missing audience", cfg: checked, token: signHS(t, testSecret, with(func(c *Claims) { c.Issuer = "https://id.example" })), wantErr: ErrInvalidToken},

		// Signatures and algorithms.
		{name: "bad HS256 signature", cfg: hsOnly, token: signHS(t, []byte("another secret of the right length!!"), okClaims()), wantErr: ErrInvalidToken},
		{name: "tampered payload", cfg: hsOnly, token: func() string {
			tok := signHS(t, testSecret, okClaims())
			parts := strings.Split(tok, ".")
			b, _ := json.Marshal(with(func(c *Claims) { c.Admin = true }))
			return parts[0] + "." + enc.EncodeToString(b) + "." + parts[2]
		}(), wantErr: ErrInvalidToken},
		{name: "RS256 unknown key", cfg: JWTConfig{PublicKeysPEM: rsaPEM}, token: signRS256(t, k.rsa2, okClaims()), wantErr: ErrInvalidToken},
		{name: "ES256 unknown key", cfg: JWTConfig{PublicKeysPEM: pemPublic(t, &k.ec.PublicKey)}, token: signES256(t, k.ec2, okClaims()), wantErr: ErrInvalidToken},
		{name: "ES256 ASN.1 signature", cfg: keysOnly, token: func() string {
			tok, _ := encodeJWS("ES256", okClaims(), func(input []byte) ([]byte, error) {
				d := sha256.Sum256(input)
				return ecdsa.SignASN1(rand.Reader, k.ec, d[:])
			})
			return tok
		}(), wantErr: ErrInvalidToken},
		{name: "ES256 zero signature", cfg: keysOnly, token: hsHeaderAlg("ES256") + "." + okPayload + "." + enc.EncodeToString(make([]byte, 64)), wantErr: ErrInvalidToken},
		{name: "alg none", cfg: both, token: hsHeaderAlg("none") + "." + okPayload + ".", wantErr: ErrInvalidToken},
		{name: "alg None", cfg: both, token: hsHeaderAlg("None") + "." + okPayload + ".", wantErr: ErrInvalidToken},
		{name: "alg HS512", cfg: both, token: rawToken(`{"alg":"HS512"}`, `{"sub":"u","exp":1999999999}`, testSecret), wantErr: ErrInvalidToken},
		{name: "alg missing", cfg: both, token: rawToken(`{}`, `{"sub":"u","exp":1999999999}`, testSecret), wantErr: ErrInvalidToken},
		{name: "HS256 not enabled", cfg: keysOnly, token: signHS(t, testSecret, okClaims()), wantErr: ErrInvalidToken},
		{name: "RS256 not enabled", cfg: hsOnly, token: signRS256(t, k.rsa, okClaims()), wantErr: ErrInvalidToken},
		{name: "ES256 not enabled", cfg: JWTConfig{PublicKeysPEM: rsaPEM}, token: signES256(t, k.ec, okClaims()), wantErr: ErrInvalidToken},
		{name: "alg confusion: HS256 keyed with the RSA public key PEM", cfg: keysOnly,
			token: signHS(t, rsaPEM, okClaims()), wantErr: ErrInvalidToken},
		{name: "alg confusion: HS256 keyed with the public key DER", cfg: both, token: func() string {
			der, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
			return signHS(t, der, okClaims())
		}(), wantErr: ErrInvalidToken},
		{name: "RS256 signature relabelled ES256", cfg: keysOnly, token: func() string {
			parts := strings.Split(signRS256(t, k.rsa, okClaims()), ".")
			return hsHeaderAlg("ES256") + "." + parts[1] + "." + parts[2]
		}(), wantErr: ErrInvalidToken},
		{name: "crit header", cfg: hsOnly, token: rawToken(`{"alg":"HS256","crit":["exp"]}`, `{"sub":"u","exp":1999999999}`, testSecret), wantErr: ErrInvalidToken},
		{name: "typ not JWT", cfg: hsOnly, token: rawToken(`{"alg":"HS256","typ":"dpop+jwt"}`, `{"sub":"u","exp":1999999999}`, testSecret), wantErr: ErrInvalidToken},

		// Malformed.
		{name: "empty", cfg: hsOnly, token: "", wantErr: ErrNoToken},
		{name: "one part", cfg: hsOnly, token: "abc", wantErr: ErrInvalidToken},
		{name: "two parts", cfg: hsOnly, token: "abc.def", wantErr: ErrInvalidToken},
		{name: "four parts", cfg: hsOnly, token: signHS(t, testSecret, okClaims()) + ".x", wantErr: ErrInvalidToken},
		{name: "header bad base64", cfg: hsOnly, token: "!!!." + okPayload + ".sig", wantErr: ErrInvalidToken},
		{name: "header padded base64", cfg: hsOnly, token: hsHeader + "=." + okPayload + ".sig", wantErr: ErrInvalidToken},
		{name: "header std base64 alphabet", cfg: hsOnly, token: strings.NewReplacer("-", "+", "_", "/").Replace(signHS(t, testSecret, map[string]any{"sub": "u>>>???", "exp": 1999999999})), wantErr: ErrInvalidToken},
		{name: "header not JSON", cfg: hsOnly, token: enc.EncodeToString([]byte("not json")) + "." + okPayload + ".sig", wantErr: ErrInvalidToken},
		{name: "header JSON array", cfg: hsOnly, token: enc.EncodeToString([]byte(`["HS256"]`)) + "." + okPayload + ".sig", wantErr: ErrInvalidToken},
		{name: "header null", cfg: hsOnly, token: enc.EncodeToString([]byte(`null`)) + "." + okPayload + ".sig", wantErr: ErrInvalidToken},
		{name: "signature bad base64", cfg: hsOnly, token: hsHeader + "." + okPayload + ".***", wantErr: ErrInvalidToken},
		{name: "payload bad base64, good signature", cfg: hsOnly, token: func() string {
			input := hsHeader + ".%%%"
			mac := hmac.New(sha256.New, testSecret)
			mac.Write([]byte(input))
			return input + "." + enc.EncodeToString(mac.Sum(nil))
		}(), wantErr: ErrInvalidToken},
		{name: "payload not JSON, good signature", cfg: hsOnly, token: rawToken(`{"alg":"HS256"}`, `{"sub":`, testSecret), wantErr: ErrInvalidToken},
		{name: "payload null, good signature", cfg: hsOnly, token: rawToken(`{"alg":"HS256"}`, `null`, testSecret), wantErr: ErrInvalidToken},
		{name: "oversize", cfg: hsOnly, token: signHS(t, testSecret, with(func(c *Claims) { c.Name = strings.Repeat("x", DefaultMaxTokenBytes) })), wantErr: ErrInvalidToken},
		{name: "oversize custom limit", cfg: JWTConfig{HS256Secret: testSecret, MaxTokenBytes: 64}, token: signHS(t, testSecret, okClaims()), wantErr: ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			cfg.Now = func() time.Time { return testNow }
			j, err := NewJWT(cfg)
			if err != nil {
				t.Fatal(err)
			}
			p, err := j.Authenticate(context.Background(), tt.token)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if p != nil {
					t.Fatalf("principal %+v with an error", p)
				}
				if len(tt.token) > 20 && strings.Contains(err.Error(), tt.token) {
					t.Fatalf("error %q contains the token", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v, want a principal", err)
			}
			if p == nil || p.UserID == "" {
				t.Fatalf("principal %+v", p)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

func hsHeaderAlg(alg string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"` + alg + `","typ":"JWT"}`))
}

func TestJWTAuthenticateCanceled(t *testing.T) {
	t.Parallel()
	j, err := NewJWT(JWTConfig{HS256Secret: testSecret, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := j.Authenticate(ctx, signHS(t, testSecret, okClaims())); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestNewJWTConfig(t *testing.T) {
	t.Parallel()
	k := testKeys()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := pemPublic(t, &k.rsa.PublicKey)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	privDER, _ := x509.MarshalPKCS8PrivateKey(k.rsa)
	priv := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})
	tests := []struct {
		name     string
		cfg      JWTConfig
		wantErr  string
		wantAlgs string
	}{
		{name: "nothing", cfg: JWTConfig{}, wantErr: "no HS256 secret and no public key"},
		{name: "short secret", cfg: JWTConfig{HS256Secret: []byte("short")}, wantErr: "want at least 32"},
		{name: "40 spaces", cfg: JWTConfig{HS256Secret: []byte(strings.Repeat(" ", 40))}, wantErr: "only 1 different bytes, want at least 16"},
		{name: "15 distinct bytes", cfg: JWTConfig{HS256Secret: []byte(strings.Repeat("abcdefghijklmno", 3))}, wantErr: "only 15 different bytes"},
		{name: "16 distinct bytes", cfg: JWTConfig{HS256Secret: []byte(strings.Repeat("abcdefghijklmnop", 2))}, wantAlgs: "HS256"},
		{name: "PEM as secret", cfg: JWTConfig{HS256Secret: rsaPEM}, wantErr: "PEM document"},
		{name: "secret", cfg: JWTConfig{HS256Secret: testSecret}, wantAlgs: "HS256"},
		{name: "PKIX RSA", cfg: JWTConfig{PublicKeysPEM: rsaPEM}, wantAlgs: "RS256"},
		{name: "PKCS1 RSA", cfg: JWTConfig{PublicKeysPEM: pkcs1}, wantAlgs: "RS256"},
		{name: "EC", cfg: JWTConfig{PublicKeysPEM: pemPublic(t, &k.ec.PublicKey)}, wantAlgs: "ES256"},
		{name: "all", cfg: JWTConfig{HS256Secret: testSecret, PublicKeysPEM: append(pemPublic(t, &k.ec.PublicKey), rsaPEM...)}, wantAlgs: "HS256 RS256 ES256"},
		{name: "P-384", cfg: JWTConfig{PublicKeysPEM: pemPublic(t, &k.ec384.PublicKey)}, wantErr: "only P-256"},
		{name: "small RSA", cfg: JWTConfig{PublicKeysPEM: pemPublic(t, &small.PublicKey)}, wantErr: "1024 bits"},
		{name: "private key", cfg: JWTConfig{PublicKeysPEM: priv}, wantErr: "public key only"},
		{name: "not PEM", cfg: JWTConfig{PublicKeysPEM: []byte("hello")}, wantErr: "no PEM public key"},
		{name: "bad DER", cfg: JWTConfig{PublicKeysPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}})}, wantErr: "PEM block 1"},
		{name: "unknown block", cfg: JWTConfig{PublicKeysPEM: pem.EncodeToMemory(&pem.Block{Type: "FOO", Bytes: []byte{1}})}, wantErr: "unsupported type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j, err := NewJWT(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(j.Algorithms(), " "); got != tt.wantAlgs {
				t.Fatalf("algorithms %q, want %q", got, tt.wantAlgs)
			}
		})
	}
}

func TestNewJWTCopiesSecret(t *testing.T) {
	t.Parallel()
	secret := append([]byte(nil), testSecret...)
	j, err := NewJWT(JWTConfig{HS256Secret: secret, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	tok := signHS(t, testSecret, okClaims())
	clear(secret)
	if _, err := j.Authenticate(context.Background(), tok); err != nil {
		t.Fatalf("after the caller reused its buffer: %v", err)
	}
}

func TestSignHS256(t *testing.T) {
	t.Parallel()
	if _, err := SignHS256(nil, okClaims()); err == nil {
		t.Error("signed with an empty secret")
	}
	if _, err := SignHS256(testSecret, func() {}); err == nil {
		t.Error("signed claims that do not marshal")
	}
	tok := signHS(t, testSecret, Claims{Subject: "u"})
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	if string(payload) != `{"sub":"u"}` {
		t.Errorf("payload %s: zero claims should be left out", payload)
	}
}

func FuzzJWTParse(f *testing.F) {
	k := testKeys()
	f.Add(signHS(f, testSecret, okClaims()))
	f.Add(signRS256(f, k.rsa, okClaims()))
	f.Add(signES256(f, k.ec, okClaims()))
	f.Add(rawToken(`{"alg":"HS256"}`, `{"sub":"u","exp":1e300,"docs":{"a*":"read"},"aud":["x"]}`, testSecret))
	f.Add(rawToken(`{"alg":"HS256"}`, `{"sub":"u","exp":-0.5,"nbf":"x","iat":null}`, testSecret))
	f.Add(rawToken(`{"alg":"none"}`, `null`, testSecret))
	f.Add("a.b.c")
	f.Add("..")
	f.Add("")
	j, err := NewJWT(JWTConfig{
		HS256Secret:   testSecret,
		PublicKeysPEM: append(pemPublic(f, &k.rsa.PublicKey), pemPublic(f, &k.ec.PublicKey)...),
		Issuer:        "iss", Audience: "aud", Now: func() time.Time { return testNow },
	})
	if err != nil {
		f.Fatal(err)
	}
	jOpen, err := NewJWT(JWTConfig{HS256Secret: testSecret, ExpOptional: true, Now: func() time.Time { return testNow }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		for _, j := range []*JWT{j, jOpen} {
			p, err := j.Authenticate(context.Background(), token)
			if (p == nil) == (err == nil) {
				t.Fatalf("principal %v and error %v", p, err)
			}
			if err != nil && !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrExpired) && !errors.Is(err, ErrNoToken) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			if p != nil {
				_ = p.Permission(token)
			}
		}
		// Whatever the payload, a token we sign ourselves must never panic the verifier either.
		tok := rawToken(`{"alg":"HS256"}`, token, testSecret)
		if p, err := jOpen.Authenticate(context.Background(), tok); p != nil && p.UserID == "" {
			t.Fatalf("principal without a user id (err %v)", err)
		}
	})
}
