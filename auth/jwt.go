package auth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
)

// JWT defaults and bounds.
const (
	// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// DefaultMaxTokenBytes bounds a token before any decoding: far above any sane set of claims,
	// far below what would make parsing a cost.
	DefaultMaxTokenBytes = 8 << 10
	// MinHS256SecretBytes is the shortest HS256 secret NewJWT accepts: RFC 7518 §3.2 requires a
	// key at least as long as the hash output (256 bits).
	MinHS256SecretBytes = 32
	// MinHS256SecretDistinctBytes is the fewest different byte values an HS256 secret must
	// hold: length alone lets 40 spaces or "aaaa…" through, which anyone can guess. A random
	// secret of 32 bytes has about 30 different ones; a printable passphrase easily has 16.
	MinHS256SecretDistinctBytes = 16
	// MinRSABits is the smallest RSA modulus accepted for RS256.
	MinRSABits = 2048
)

// JWTConfig configures NewJWT. At least one of HS256Secret and PublicKeysPEM must be set; each
// enables only its own algorithms.
type JWTConfig struct {
	// HS256Secret enables HS256 with this shared secret (at least MinHS256SecretBytes bytes).
	// Nil disables HS256. A PEM document is refused here: a public key used as an HMAC secret is
	// the classic algorithm-confusion hole, since anyone holding the public key could sign.
	HS256Secret []byte
	// PublicKeysPEM holds one or more PEM blocks ("PUBLIC KEY", "RSA PUBLIC KEY" or
	// "CERTIFICATE"): RSA keys (at least MinRSABits) enable RS256, EC P-256 keys enable ES256. A
	// token verifies if any key of its algorithm's type accepts the signature, so a rotation can
	// list the old and the new key. Nil disables RS256 and ES256.
	PublicKeysPEM []byte
	// Issuer, when set, must equal the token's iss. Empty: iss is not checked.
	Issuer string
	// Audience, when set, must be the token's aud or one of its entries. Empty: aud is not checked.
	Audience string
	// Leeway is the clock skew tolerated on exp, nbf and iat. Zero means DefaultLeeway; negative
	// means none.
	Leeway time.Duration
	// ExpOptional accepts tokens without an exp claim, which then never expire. By default exp
	// is required: a token that is valid forever cannot be revoked short of changing the key.
	ExpOptional bool
	// MaxTokenBytes bounds the token's length. Zero means DefaultMaxTokenBytes.
	MaxTokenBytes int
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// JWT authenticates compact JWS tokens (RFC 7515/7519) signed with HS256, RS256 or ES256.
//
// Claims read: sub (required, the user id), name, exp (required unless ExpOptional), nbf, iat,
// iss, aud, admin (a boolean), and docs, an object mapping document names or prefix patterns
// ("workflow:*", "team-a/*", "*") to "read", "write" or "none". Any other claim is ignored. A
// claim of the wrong JSON type makes the token invalid rather than being ignored: fail closed.
//
// A *JWT is immutable and safe for concurrent use.
type JWT struct {
	secret      []byte
	rsaKeys     []*rsa.PublicKey
	ecKeys      []*ecdsa.PublicKey
	issuer      string
	audience    string
	leeway      time.Duration
	expOptional bool
	maxBytes    int
	now         func() time.Time
}

var _ Authenticator = (*JWT)(nil)

// NewJWT checks cfg and loads its keys.
func NewJWT(cfg JWTConfig) (*JWT, error) {
	j := &JWT{
		issuer:      cfg.Issuer,
		audience:    cfg.Audience,
		leeway:      cfg.Leeway,
		expOptional: cfg.ExpOptional,
		maxBytes:    cfg.MaxTokenBytes,
		now:         cfg.Now,
	}
	switch {
	case j.leeway == 0:
		j.leeway = DefaultLeeway
	case j.leeway < 0:
		j.leeway = 0
	}
	if j.maxBytes <= 0 {
		j.maxBytes = DefaultMaxTokenBytes
	}
	if j.now == nil {
		j.now = time.Now
	}
	if len(cfg.HS256Secret) > 0 {
		if bytes.Contains(cfg.HS256Secret, []byte("-----BEGIN")) {
			return nil, errors.New("jwt config: the HS256 secret is a PEM document; give public keys as PublicKeysPEM, never as an HMAC secret")
		}
		if len(cfg.HS256Secret) < MinHS256SecretBytes {
			return nil, fmt.Errorf("jwt config: the HS256 secret is %d bytes, want at least %d", len(cfg.HS256Secret), MinHS256SecretBytes)
		}
		if n := distinctBytes(cfg.HS256Secret); n < MinHS256SecretDistinctBytes {
			return nil, fmt.Errorf("jwt config: the HS256 secret has only %d different bytes, want at least %d: use a random secret (openssl rand -base64 32)", n, MinHS256SecretDistinctBytes)
		}
		j.secret = bytes.Clone(cfg.HS256Secret)
	}
	if len(cfg.PublicKeysPEM) > 0 {
		if err := j.loadKeys(cfg.PublicKeysPEM); err != nil {
			return nil, fmt.Errorf("jwt config: %w", err)
		}
	}
	if j.secret == nil && len(j.rsaKeys) == 0 && len(j.ecKeys) == 0 {
		return nil, errors.New("jwt config: no HS256 secret and no public key")
	}
	return j, nil
}

func (j *JWT) loadKeys(data []byte) error {
	rest := data
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var pub any
		switch block.Type {
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return fmt.Errorf("PEM block %d: %w", n, err)
			}
			pub = k
		case "RSA PUBLIC KEY":
			k, err := x509.ParsePKCS1PublicKey(block.Bytes)
			if err != nil {
				return fmt.Errorf("PEM block %d: %w", n, err)
			}
			pub = k
		case "CERTIFICATE":
			// The certificate only carries the key: it is pinned, no chain is checked.
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return fmt.Errorf("PEM block %d: %w", n, err)
			}
			pub = c.PublicKey
		default:
			if strings.Contains(block.Type, "PRIVATE") {
				return fmt.Errorf("PEM block %d is a %s; configure the public key only", n, block.Type)
			}
			return fmt.Errorf("PEM block %d: unsupported type %q", n, block.Type)
		}
		switch k := pub.(type) {
		case *rsa.PublicKey:
			if k.N.BitLen() < MinRSABits {
				return fmt.Errorf("PEM block %d: RSA key of %d bits, want at least %d", n, k.N.BitLen(), MinRSABits)
			}
			j.rsaKeys = append(j.rsaKeys, k)
		case *ecdsa.PublicKey:
			if k.Curve != elliptic.P256() {
				return fmt.Errorf("PEM block %d: EC key on %s, only P-256 (ES256) is supported", n, k.Curve.Params().Name)
			}
			j.ecKeys = append(j.ecKeys, k)
		default:
			return fmt.Errorf("PEM block %d: unsupported key type %T (want RSA or EC P-256)", n, pub)
		}
	}
	if len(j.rsaKeys) == 0 && len(j.ecKeys) == 0 {
		return errors.New("no PEM public key found")
	}
	return nil
}

// Algorithms lists the algorithms this authenticator accepts, for start-up logs.
func (j *JWT) Algorithms() []string {
	var algs []string
	if j.secret != nil {
		algs = append(algs, "HS256")
	}
	if len(j.rsaKeys) > 0 {
		algs = append(algs, "RS256")
	}
	if len(j.ecKeys) > 0 {
		algs = append(algs, "ES256")
	}
	return algs
}

// Authenticate verifies token and returns its principal. Errors wrap ErrNoToken, ErrInvalidToken
// or ErrExpired.
func (j *JWT) Authenticate(ctx context.Context, token string) (*Principal, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return j.verify(token, j.now())
}

// b64 is base64url without padding (RFC 7515 §2), strict so that one token has one encoding.
var b64 = base64.RawURLEncoding.Strict()

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidToken}, args...)...)
}

// short quotes at most a few bytes of attacker-controlled text for an error message.
func short(s string) string {
	if len(s) > 24 {
		s = s[:24] + "…"
	}
	return strconv.Quote(s)
}

func (j *JWT) verify(token string, now time.Time) (*Principal, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	if len(token) > j.maxBytes {
		return nil, invalid("token is %d bytes, over the limit of %d", len(token), j.maxBytes)
	}
	h64, rest, ok1 := strings.Cut(token, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") {
		return nil, invalid("not a compact JWS (want three dot-separated parts)")
	}

	headerJSON, err := b64.DecodeString(h64)
	if err != nil {
		return nil, invalid("header: bad base64url")
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(headerJSON, &header); err != nil || header == nil {
		return nil, invalid("header: not a JSON object")
	}
	var alg, typ string
	if err := field(header, "alg", &alg); err != nil {
		return nil, err
	}
	if err := field(header, "typ", &typ); err != nil {
		return nil, err
	}
	if _, ok := header["crit"]; ok {
		// RFC 7515 §4.1.11: extensions listed in crit must be understood; we understand none.
		return nil, invalid("header: crit extensions are not supported")
	}
	if typ != "" && !strings.EqualFold(typ, "JWT") && !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return nil, invalid("header: typ %s is not a JWT", short(typ))
	}

	sig, err := b64.DecodeString(s64)
	if err != nil {
		return nil, invalid("signature: bad base64url")
	}
	// The algorithm picks the key set, and each key set only ever serves its own algorithm: the
	// HMAC secret is never a public key and a public key never an HMAC secret.
	signed := token[:len(h64)+1+len(p64)]
	switch alg {
	case "HS256":
		if j.secret == nil {
			return nil, invalid("algorithm HS256 is not enabled")
		}
		mac := hmac.New(sha256.New, j.secret)
		mac.Write([]byte(signed))
		if !hmac.Equal(mac.Sum(nil), sig) {
			return nil, invalid("signature does not verify")
		}
	case "RS256":
		if len(j.rsaKeys) == 0 {
			return nil, invalid("algorithm RS256 is not enabled")
		}
		digest := sha256.Sum256([]byte(signed))
		if !slices.ContainsFunc(j.rsaKeys, func(k *rsa.PublicKey) bool {
			return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil
		}) {
			return nil, invalid("signature does not verify")
		}
	case "ES256":
		if len(j.ecKeys) == 0 {
			return nil, invalid("algorithm ES256 is not enabled")
		}
		// JWS ES256 signatures are r||s, 32 bytes each (RFC 7518 §3.4), not ASN.1.
		if len(sig) != 64 {
			return nil, invalid("signature: ES256 wants 64 bytes, got %d", len(sig))
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		digest := sha256.Sum256([]byte(signed))
		if !slices.ContainsFunc(j.ecKeys, func(k *ecdsa.PublicKey) bool {
			return ecdsa.Verify(k, digest[:], r, s)
		}) {
			return nil, invalid("signature does not verify")
		}
	default:
		return nil, invalid("algorithm %s is not accepted", short(alg))
	}

	// Only now, with the signature checked, are the claims worth reading.
	payload, err := b64.DecodeString(p64)
	if err != nil {
		return nil, invalid("payload: bad base64url")
	}
	return j.principal(payload, now)
}

// field decodes obj[key] into dst when present. Keys match exactly: encoding/json's
// case-insensitive struct matching would let "Admin" or "SUB" stand in for the real claims.
func field(obj map[string]json.RawMessage, key string, dst any) error {
	raw, ok := obj[key]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return invalid("claim %s: wrong type", key)
	}
	return nil
}

func (j *JWT) principal(payload []byte, now time.Time) (*Principal, error) {
	var c map[string]json.RawMessage
	if err := json.Unmarshal(payload, &c); err != nil || c == nil {
		return nil, invalid("payload: not a JSON object")
	}
	var (
		sub, name, iss string
		admin          bool
		aud            audience
		exp, nbf, iat  numericDate
		docs           map[string]string
	)
	for _, f := range []struct {
		key string
		dst any
	}{
		{"sub", &sub}, {"name", &name}, {"iss", &iss}, {"aud", &aud}, {"admin", &admin},
		{"exp", &exp}, {"nbf", &nbf}, {"iat", &iat}, {"docs", &docs},
	} {
		if err := field(c, f.key, f.dst); err != nil {
			return nil, err
		}
	}

	if sub == "" {
		return nil, invalid("no sub claim")
	}
	if j.issuer != "" && iss != j.issuer {
		return nil, invalid("issuer %s is not the configured one", short(iss))
	}
	if j.audience != "" && !slices.Contains(aud, j.audience) {
		return nil, invalid("audience does not include the configured one")
	}
	p := &Principal{UserID: sub, Name: name, Admin: admin}
	switch {
	case exp.set:
		p.ExpiresAt = exp.t.Add(j.leeway)
		if !now.Before(p.ExpiresAt) {
			return nil, fmt.Errorf("%w at %s", ErrExpired, exp.t.UTC().Format(time.RFC3339))
		}
	case !j.expOptional:
		return nil, invalid("no exp claim")
	}
	if nbf.set && now.Add(j.leeway).Before(nbf.t) {
		return nil, invalid("not valid before %s", nbf.t.UTC().Format(time.RFC3339))
	}
	if iat.set {
		if now.Add(j.leeway).Before(iat.t) {
			return nil, invalid("issued in the future (%s)", iat.t.UTC().Format(time.RFC3339))
		}
		if exp.set && iat.t.After(exp.t) {
			return nil, invalid("issued after it expires")
		}
	}
	for pattern, v := range docs {
		if !ValidPattern(pattern) {
			return nil, invalid("docs: bad pattern %s", short(pattern))
		}
		perm, err := ParsePermission(v)
		if err != nil {
			return nil, invalid("docs: %s: value %s is not read, write or none", short(pattern), short(v))
		}
		p.Docs = append(p.Docs, DocRule{Pattern: pattern, Permission: perm})
	}
	slices.SortFunc(p.Docs, func(a, b DocRule) int { return strings.Compare(a.Pattern, b.Pattern) })
	return p, nil
}

// numericDate is a JWT NumericDate: seconds since the epoch, possibly fractional (RFC 7519 §2).
type numericDate struct {
	t   time.Time
	set bool
}

// maxNumericDate keeps absurd dates from overflowing time arithmetic (about the year 36800).
const maxNumericDate = 1 << 40

func (d *numericDate) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return errors.New("not a number")
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f < 0 || math.IsNaN(f) {
		return errors.New("not a valid date")
	}
	f = min(f, maxNumericDate)
	sec := math.Floor(f)
	d.t = time.Unix(int64(sec), int64((f-sec)*1e9))
	d.set = true
	return nil
}

// audience is aud: a single string or an array of strings (RFC 7519 §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// distinctBytes counts the different byte values of b.
func distinctBytes(b []byte) int {
	var seen [256]bool
	n := 0
	for _, c := range b {
		if !seen[c] {
			seen[c] = true
			n++
		}
	}
	return n
}
