package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// Claims are the claims the JWT authenticator reads, ready to sign with SignHS256. Times are Unix
// seconds; zero leaves the claim out.
type Claims struct {
	Subject   string `json:"sub"`
	Name      string `json:"name,omitempty"`
	Issuer    string `json:"iss,omitempty"`
	Audience  string `json:"aud,omitempty"`
	ExpiresAt int64  `json:"exp,omitempty"`
	NotBefore int64  `json:"nbf,omitempty"`
	IssuedAt  int64  `json:"iat,omitempty"`
	Admin     bool   `json:"admin,omitempty"`
	// Docs maps a document name or a prefix pattern ("workflow:*", "*") to "read", "write" or
	// "none".
	Docs map[string]string `json:"docs,omitempty"`
}

// SignHS256 returns a compact JWS of claims (a Claims, a map or any value that marshals to a JSON
// object) signed with HS256. It is meant for tests, documentation and development tools; a
// production deployment has its identity provider issue tokens.
func SignHS256(secret []byte, claims any) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("sign HS256: empty secret")
	}
	return encodeJWS("HS256", claims, func(input []byte) ([]byte, error) {
		mac := hmac.New(sha256.New, secret)
		mac.Write(input)
		return mac.Sum(nil), nil
	})
}

// encodeJWS builds header.payload, signs it with sign, and appends the signature.
func encodeJWS(alg string, claims any, sign func(input []byte) ([]byte, error)) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("sign %s: claims: %w", alg, err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	sig, err := sign([]byte(input))
	if err != nil {
		return "", fmt.Errorf("sign %s: %w", alg, err)
	}
	return input + "." + enc.EncodeToString(sig), nil
}
