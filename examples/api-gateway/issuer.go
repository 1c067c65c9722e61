package apigateway

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"time"
)

// The reference JWT policy trusts tokens of this issuer for this audience.
const (
	DevIssuer   = "https://auth.example.com"
	DevAudience = "api.example.com"
	// DevIssuerAddr is where the demo's token issuer serves its JWKS.
	DevIssuerAddr = "127.0.0.1:18090"
	// ReferenceJWKSURI is the reference policy's jwksUri, which the demo
	// points at the local issuer instead (see DemoFiles).
	ReferenceJWKSURI = "https://auth.example.com/.well-known/jwks.json"
)

// Issuer is a development token issuer: an RSA key made at start, its
// public half served as a JWKS, and RS256 tokens signed with it. For the
// demo and tests only.
type Issuer struct {
	key *rsa.PrivateKey
	kid string
	URL string // the JWKS URL
	srv *http.Server
}

// StartIssuer serves the issuer's JWKS at http://addr/.well-known/jwks.json
// until Close.
func StartIssuer(addr string) (*Issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(key.PublicKey.N.Bytes())
	is := &Issuer{key: key, kid: b64(sum[:8])}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dev token issuer: %w", err)
	}
	is.URL = "http://" + ln.Addr().String() + "/.well-known/jwks.json"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		w.Write(is.JWKS())
	})
	is.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go is.srv.Serve(ln)
	return is, nil
}

// Close stops the issuer's server.
func (is *Issuer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return is.srv.Shutdown(ctx)
}

// JWKS returns the issuer's public key set.
func (is *Issuer) JWKS() []byte {
	pub := &is.key.PublicKey
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": is.kid,
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}}})
	return b
}

// Token returns an RS256 token for subject sub, valid for ttl, with the
// reference policy's issuer and audience.
func (is *Issuer) Token(sub string, ttl time.Duration) (string, error) {
	if sub == "" {
		return "", errors.New("token: empty subject")
	}
	now := time.Now()
	return is.Sign(map[string]any{
		"iss": DevIssuer, "aud": DevAudience, "sub": sub,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(),
	})
}

// Sign signs claims as an RS256 JWT with the issuer's key.
func (is *Issuer) Sign(claims map[string]any) (string, error) {
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": is.kid})
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64(header) + "." + b64(payload)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, is.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return input + "." + b64(sig), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
