package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/novaedge/novaedge/sdk/firstparty"
	"github.com/novaedge/novaedge/sdk/sdktest"
)

// The plugins module cannot import the main module, whose host function
// (host/policy/firstparty_jwt.go) verifies signatures in the gateway. The
// harness registers testVerify below instead: a minimal second
// implementation of the same encoding with the standard library, which
// also refuses algorithm/key mismatches. The host's own implementation is
// tested in host/policy (unit, fuzz, and end to end with this plugin built
// with TinyGo).

var verifyCalls atomic.Int64

func testVerify(arg []byte) []byte {
	verifyCalls.Add(1)
	if len(arg) < 3 || arg[0] != 1 {
		return []byte{verifyRefused}
	}
	alg, kty, rest := arg[1], arg[2], arg[3:]
	var f [4][]byte
	for i := range f {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return []byte{verifyRefused}
		}
		f[i], rest = rest[k:k+int(n)], rest[k+int(n):]
	}
	if !keyFits(alg, kty) {
		return []byte{verifyRefused}
	}
	a, b, input, sig := f[0], f[1], f[2], f[3]
	ok := false
	hash := crypto.SHA256
	switch alg {
	case algRS384, algPS384, algES384:
		hash = crypto.SHA384
	case algRS512, algPS512:
		hash = crypto.SHA512
	}
	h := hash.New()
	h.Write(input)
	d := h.Sum(nil)
	switch kty {
	case ktyRSA:
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(a), E: int(new(big.Int).SetBytes(b).Int64())}
		if alg >= algPS256 {
			ok = rsa.VerifyPSS(pub, hash, d, sig, nil) == nil
		} else {
			ok = rsa.VerifyPKCS1v15(pub, hash, d, sig) == nil
		}
	case ktyP256, ktyP384:
		c := elliptic.P256()
		if kty == ktyP384 {
			c = elliptic.P384()
		}
		n := len(sig) / 2
		ok = ecdsa.Verify(&ecdsa.PublicKey{Curve: c, X: new(big.Int).SetBytes(a), Y: new(big.Int).SetBytes(b)}, d,
			new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:]))
	case ktyEd:
		ok = len(a) == ed25519.PublicKeySize && ed25519.Verify(a, input, sig)
	case ktyOct:
		m := hmac.New(sha256.New, a)
		m.Write(input)
		ok = hmac.Equal(m.Sum(nil), sig)
	}
	if ok {
		return []byte{verifyOK}
	}
	return []byte{verifyBad}
}

// Test keys.
var (
	rsaKey, _       = rsa.GenerateKey(rand.Reader, 2048)
	rsaKey2, _      = rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _        = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _        = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, edKey, _ = ed25519.GenerateKey(rand.Reader)
	secret          = "0123456789abcdef0123456789abcdef!"
)

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PrivateKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PrivateKey) map[string]string {
	size := (k.Curve.Params().BitSize + 7) / 8
	crv := "P-256"
	if size == 48 {
		crv = "P-384"
	}
	return map[string]string{"kty": "EC", "kid": kid, "crv": crv, "x": enc(k.X.FillBytes(make([]byte, size))), "y": enc(k.Y.FillBytes(make([]byte, size)))}
}

func jwks(keys ...map[string]string) string {
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return string(b)
}

var allKeys = jwks(rsaJWK("rsa1", rsaKey), ecJWK("ec1", ecKey), ecJWK("ec384", ec384),
	map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": "ed1", "x": enc(edPub)})

// sign makes a token; key is a private key, or []byte for HS256.
func sign(alg, kid string, claims map[string]any, key any) string {
	h := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		h["kid"] = kid
	}
	hb, _ := json.Marshal(h)
	cb, _ := json.Marshal(claims)
	input := enc(hb) + "." + enc(cb)
	hash := crypto.SHA256
	if strings.HasSuffix(alg, "384") {
		hash = crypto.SHA384
	} else if strings.HasSuffix(alg, "512") {
		hash = crypto.SHA512
	}
	var d []byte
	switch hash {
	case crypto.SHA384:
		s := sha512.Sum384([]byte(input))
		d = s[:]
	case crypto.SHA512:
		s := sha512.Sum512([]byte(input))
		d = s[:]
	default:
		s := sha256.Sum256([]byte(input))
		d = s[:]
	}
	var sig []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if alg[0] == 'P' {
			sig, _ = rsa.SignPSS(rand.Reader, k, hash, d, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			sig, _ = rsa.SignPKCS1v15(rand.Reader, k, hash, d)
		}
	case *ecdsa.PrivateKey:
		r, s, _ := ecdsa.Sign(rand.Reader, k, d)
		size := (k.Curve.Params().BitSize + 7) / 8
		sig = append(r.FillBytes(make([]byte, size)), s.FillBytes(make([]byte, size))...)
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, []byte(input))
	case []byte:
		m := hmac.New(sha256.New, k)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	case nil:
	}
	return input + "." + enc(sig)
}

func claims(over map[string]any) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{"iss": "https://auth.example.com", "aud": "api.example.com", "sub": "user-42",
		"exp": now + 600, "iat": now - 10, "nbf": now - 10, "tenant": "acme"}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func bearer(tok string) sdktest.Request {
	return sdktest.Request{Path: "/api", Headers: [][2]string{{"authorization", "Bearer " + tok}}}
}

func inlineConfig(extra string) string {
	cfg := map[string]any{
		"issuer":        "https://auth.example.com",
		"audience":      []string{"other", "api.example.com"},
		"jwks":          allKeys,
		"forwardClaims": []map[string]string{{"claim": "sub", "header": "X-User-ID"}, {"claim": "tenant", "header": "X-Tenant"}},
	}
	b, _ := json.Marshal(cfg)
	if extra == "" {
		return string(b)
	}
	return string(b[:len(b)-1]) + "," + extra + "}"
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct{ cfg, err string }{
		{`{}`, "jwksUri, jwks or hmacSecret"},
		{`{"jwksUri": "ftp://x/y"}`, "jwksUri: an http(s) URL expected"},
		{`{"jwksUri": "backend:ns"}`, "backend:NAMESPACE/NAME/PATH"},
		{`{"jwks": "nope"}`, "jwks: not a JSON Web Key Set"},
		{`{"jwks": "{\"keys\":[]}"}`, "jwks: no usable key"},
		{`{"jwksUri": "https://a/k", "allowedAlgorithms": ["none"]}`, `"none" is not supported`},
		{`{"jwksUri": "https://a/k", "allowedAlgorithms": ["HS256"]}`, "HS256 needs hmacSecret"},
		{`{"hmacSecret": "short"}`, "at least 32 bytes"},
		{`{"jwksUri": "https://a/k", "forwardClaims": [{"claim": "sub", "header": "bad header"}]}`, "forwardClaims[0]"},
		{`{"jwksUri": "https://a/k", "colour": 1}`, "unknown field"},
		{`{"jwksUri": "https://auth.example.com/.well-known/jwks.json", "allowedAlgorithms": ["RS256", "ES256"]}`, ""},
		{`{"jwksUri": "backend:t/auth/jwks.json"}`, ""},
	} {
		t.Run(tc.cfg, func(t *testing.T) {
			_, err := sdktest.Start(t, plugin, tc.cfg)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("%v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("got %v, want %q", err, tc.err)
			}
		})
	}
}

// testDigest stands in for the host's token digest function: the
// emulator's foreign functions cannot read the request's headers, so it
// answers "no token in the header" to the header mode (the plugin then
// reads the token and asks for its digest: the cache is keyed by digests
// as with the gateway, whose header mode is tested in host/policy), and
// the digest of the token given.
func testDigest(arg []byte) []byte {
	mode, _, rest, err := firstparty.DecodeJWTDigest(arg)
	if err != nil || mode != firstparty.JWTDigestBytes || len(rest) == 0 {
		return []byte{0}
	}
	d := sha256.Sum256(rest)
	return append([]byte{1}, d[:]...)
}

func startHost(t *testing.T, cfg string) *sdktest.Host {
	t.Helper()
	h, err := sdktest.Start(t, plugin, cfg, sdktest.Foreign(verifyFunc, testVerify),
		sdktest.Foreign(firstparty.JWTTokenDigest, testDigest))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestTokens(t *testing.T) {
	h := startHost(t, inlineConfig(`"hmacSecret": "`+secret+`", "clockSkewSeconds": 30`))
	now := time.Now().Unix()
	rsaPubAsSecret := rsaKey.PublicKey.N.Bytes()
	tests := []struct {
		name, token string
		desc        string // "" accepted
	}{
		{"RS256", sign("RS256", "rsa1", claims(nil), rsaKey), ""},
		{"RS384", sign("RS384", "rsa1", claims(nil), rsaKey), ""},
		{"RS512", sign("RS512", "rsa1", claims(nil), rsaKey), ""},
		{"PS256", sign("PS256", "rsa1", claims(nil), rsaKey), ""},
		{"PS384", sign("PS384", "rsa1", claims(nil), rsaKey), ""},
		{"PS512", sign("PS512", "rsa1", claims(nil), rsaKey), ""},
		{"ES256", sign("ES256", "ec1", claims(nil), ecKey), ""},
		{"ES384", sign("ES384", "ec384", claims(nil), ec384), ""},
		{"EdDSA", sign("EdDSA", "ed1", claims(nil), edKey), ""},
		{"HS256 with the configured secret", sign("HS256", "", claims(nil), []byte(secret)), ""},
		{"no kid: every fitting key is tried", sign("ES256", "", claims(nil), ecKey), ""},
		{"audience array", sign("RS256", "rsa1", claims(map[string]any{"aud": []string{"x", "api.example.com"}}), rsaKey), ""},
		{"expired within skew", sign("RS256", "rsa1", claims(map[string]any{"exp": now - 10}), rsaKey), ""},
		{"expired", sign("RS256", "rsa1", claims(map[string]any{"exp": now - 31}), rsaKey), "token expired"},
		{"not yet valid", sign("RS256", "rsa1", claims(map[string]any{"nbf": now + 120}), rsaKey), "token not yet valid"},
		{"issued in the future", sign("RS256", "rsa1", claims(map[string]any{"iat": now + 120}), rsaKey), "token issued in the future"},
		{"wrong issuer", sign("RS256", "rsa1", claims(map[string]any{"iss": "https://evil"}), rsaKey), "wrong issuer"},
		{"no issuer", sign("RS256", "rsa1", claims(map[string]any{"iss": nil}), rsaKey), "wrong issuer"},
		{"wrong audience", sign("RS256", "rsa1", claims(map[string]any{"aud": "other.example.com"}), rsaKey), "wrong audience"},
		{"bad signature (other key)", sign("RS256", "rsa1", claims(nil), rsaKey2), "signature verification failed"},
		{"tampered claims", tamper(sign("RS256", "rsa1", claims(nil), rsaKey)), "signature verification failed"},
		{"alg none", sign("none", "", claims(nil), nil), "unsigned tokens are not accepted"},
		{"alg None", sign("None", "", claims(nil), nil), "unsigned tokens are not accepted"},
		{"confusion: HS256 keyed with the RSA public key", sign("HS256", "rsa1", claims(nil), rsaPubAsSecret), "signature verification failed"},
		{"confusion: ES256 header on an RSA kid", sign("ES256", "rsa1", claims(nil), ecKey), "unknown key id rsa1"},
		{"unknown kid", sign("RS256", "nope", claims(nil), rsaKey), "unknown key id nope"},
		{"unknown alg", sign("XS256", "rsa1", claims(nil), rsaKey), "algorithm XS256 not allowed"},
		{"malformed", "abc.def", "malformed token"},
		{"crit header", critToken(), "unsupported critical header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := h.Do(bearer(tc.token), sdktest.Response{})
			if tc.desc == "" {
				if res.Local != nil {
					t.Fatalf("refused: %d %v %s", res.Local.Status, res.Local.Headers, res.Local.Body)
				}
				if res.Upstream.Get("x-user-id") != "user-42" || res.Upstream.Get("x-tenant") != "acme" {
					t.Errorf("claims not forwarded: %v", res.Upstream)
				}
				if res.Upstream.Get("authorization") == "" {
					t.Error("credential removed without removeCredential")
				}
				return
			}
			if res.Local == nil || res.Local.Status != 401 {
				t.Fatalf("accepted: %+v", res)
			}
			want := `Bearer error="invalid_token", error_description="` + tc.desc + `"`
			if got := res.Local.Headers.Get("www-authenticate"); got != want {
				t.Errorf("WWW-Authenticate %q, want %q", got, want)
			}
		})
	}
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	parts[1] = enc([]byte(`{"iss":"https://auth.example.com","aud":"api.example.com","sub":"admin"}`))
	return strings.Join(parts, ".")
}

func critToken() string {
	hb, _ := json.Marshal(map[string]any{"alg": "RS256", "kid": "rsa1", "crit": []string{"x"}})
	cb, _ := json.Marshal(claims(nil))
	return enc(hb) + "." + enc(cb) + ".c2ln"
}

func TestHS256ConfusionRefusedWhenNotAllowed(t *testing.T) {
	// RS256 and ES256 only: an HS256 token is refused before any key is
	// looked at, whatever it was keyed with.
	h := startHost(t, inlineConfig(`"allowedAlgorithms": ["RS256", "ES256"]`))
	res := h.Do(bearer(sign("HS256", "rsa1", claims(nil), rsaKey.PublicKey.N.Bytes())), sdktest.Response{})
	if res.Local == nil || !strings.Contains(res.Local.Headers.Get("www-authenticate"), "algorithm HS256 not allowed") {
		t.Fatalf("%+v", res.Local)
	}
	res = h.Do(bearer(sign("EdDSA", "ed1", claims(nil), edKey)), sdktest.Response{})
	if res.Local == nil || res.Local.Status != 401 {
		t.Fatalf("EdDSA not in the allow-list accepted")
	}
}

func TestRequestHandling(t *testing.T) {
	h := startHost(t, inlineConfig(`"cookie": "session", "queryParameter": "access_token", "removeCredential": true`))
	tok := sign("ES256", "ec1", claims(nil), ecKey)

	res := h.Do(sdktest.Request{Path: "/api"}, sdktest.Response{})
	if res.Local == nil || res.Local.Status != 401 || res.Local.Headers.Get("www-authenticate") != "Bearer" ||
		!strings.Contains(res.Local.Body, `"status":401`) {
		t.Errorf("no token: %+v", res.Local)
	}
	res = h.Do(sdktest.Request{Path: "/api", Headers: [][2]string{{"authorization", "Basic dTpw"}}}, sdktest.Response{})
	if res.Local == nil || res.Local.Headers.Get("www-authenticate") != "Bearer" {
		t.Errorf("other scheme: %+v", res.Local)
	}

	// Spoofed claim headers are removed; the credential too.
	req := bearer(tok)
	req.Headers = append(req.Headers, [2]string{"x-user-id", "admin"}, [2]string{"X-Tenant", "root"})
	res = h.Do(req, sdktest.Response{})
	if res.Local != nil || res.Upstream.Values("x-user-id")[0] != "user-42" || len(res.Upstream.Values("x-user-id")) != 1 ||
		res.Upstream.Get("x-tenant") != "acme" || res.Upstream.Has("authorization") {
		t.Errorf("valid token: %+v %+v", res, res.Local)
	}
	if v, err := h.Emulator().GetProperty([]string{"jwt_claims", "sub"}); err != nil || string(v) != "user-42" {
		t.Errorf("property jwt_claims.sub = %q, %v", v, err)
	}
	// Spoofed headers without a token: removed, then 401.
	res = h.Do(sdktest.Request{Method: "OPTIONS", Path: "/api", Headers: [][2]string{
		{"origin", "https://app.example.com"}, {"access-control-request-method", "POST"}, {"x-user-id", "admin"}}}, sdktest.Response{})
	if res.Local != nil || res.Upstream.Has("x-user-id") {
		t.Errorf("CORS preflight: %+v", res)
	}
	res = h.Do(sdktest.Request{Method: "OPTIONS", Path: "/api"}, sdktest.Response{})
	if res.Local == nil || res.Local.Status != 401 {
		t.Errorf("plain OPTIONS passed without a token")
	}
	res = h.Do(sdktest.Request{Path: "/api", Headers: [][2]string{{"cookie", "a=b; session=" + tok}}}, sdktest.Response{})
	if res.Local != nil || res.Upstream.Get("x-user-id") != "user-42" {
		t.Errorf("cookie: %+v", res)
	}
	res = h.Do(sdktest.Request{Path: "/api?x=1&access_token=" + tok}, sdktest.Response{})
	if res.Local != nil || res.Upstream.Get("x-user-id") != "user-42" {
		t.Errorf("query: %+v", res)
	}
}

func TestTokenCache(t *testing.T) {
	h := startHost(t, inlineConfig(""))
	tok := sign("RS256", "rsa1", claims(nil), rsaKey)
	before := verifyCalls.Load()
	for i := 0; i < 5; i++ {
		if res := h.Do(bearer(tok), sdktest.Response{}); res.Local != nil || res.Upstream.Get("x-user-id") != "user-42" {
			t.Fatalf("request %d: %+v", i, res)
		}
	}
	if n := verifyCalls.Load() - before; n != 1 {
		t.Errorf("%d verifications for one token, want 1", n)
	}
	// An expired cached token is checked again (and refused).
	short := sign("RS256", "rsa1", claims(map[string]any{"exp": time.Now().Unix() - 59}), rsaKey)
	if res := h.Do(bearer(short), sdktest.Response{}); res.Local != nil {
		t.Fatal("within skew refused")
	}
	defer func(f func() int64) { nowUnix = f }(nowUnix)
	nowUnix = func() int64 { return time.Now().Unix() + 5 }
	if res := h.Do(bearer(short), sdktest.Response{}); res.Local == nil {
		t.Error("expired token served from the cache")
	}
}

func TestTokenCacheBound(t *testing.T) {
	c := newTokenCache(4)
	for i := 0; i < 10; i++ {
		c.put(string(rune('a'+i)), &entry{exp: 1000}, 0)
	}
	if len(c.m) > 4 {
		t.Errorf("%d entries, bound 4", len(c.m))
	}
	if c.get("j", 0) == nil || c.get("j", 1000) != nil {
		t.Error("newest entry or its expiry")
	}
}

const remote = `{"issuer": "https://auth.example.com", "jwksUri": "https://auth.example.com/.well-known/jwks.json", "jwksRefreshSeconds": 10}`

func answer(t *testing.T, h *sdktest.Host, res sdktest.Result, status int, headers [][2]string, body string) sdktest.Result {
	t.Helper()
	calls := h.Callouts(res)
	if len(calls) == 0 {
		t.Fatal("no JWKS callout")
	}
	c := calls[len(calls)-1]
	if c.Upstream != "https://auth.example.com" || sdktest.Headers(c.Headers).Get(":path") != "/.well-known/jwks.json" ||
		sdktest.Headers(c.Headers).Get(":authority") != "auth.example.com" {
		t.Errorf("callout %+v", c)
	}
	h.AnswerCallout(c.CalloutID, status, headers, body)
	return h.Resume(res, sdktest.Response{})
}

func TestRemoteJWKS(t *testing.T) {
	defer func(f func() int64) { nowUnix = f }(nowUnix)
	now := time.Now().Unix()
	nowUnix = func() int64 { return now }
	h := startHost(t, remote)
	tok := sign("RS256", "rsa1", claims(nil), rsaKey)

	// The first request waits for the JWKS.
	res := h.Do(bearer(tok), sdktest.Response{})
	if !res.Paused {
		t.Fatalf("not paused: %+v", res)
	}
	res = answer(t, h, res, 200, [][2]string{{"cache-control", "public, max-age=5"}}, jwks(rsaJWK("rsa1", rsaKey)))
	if res.Paused || res.Local != nil || res.Upstream.Get("x-user-id") != "user-42" {
		t.Fatalf("after the JWKS: %+v", res)
	}
	// Cached: no callout. max-age 5 is raised to the 60s floor.
	res = h.Do(bearer(sign("RS256", "rsa1", claims(map[string]any{"sub": "u2"}), rsaKey)), sdktest.Response{})
	if res.Paused || res.Upstream.Get("x-user-id") != "u2" || len(h.Callouts(res)) != 0 {
		t.Fatalf("cached JWKS: %+v", res)
	}
	// Stale: served with the old keys while a refresh runs.
	now += 61
	res = h.Do(bearer(sign("RS256", "rsa1", claims(map[string]any{"sub": "u3"}), rsaKey)), sdktest.Response{})
	if res.Paused || res.Upstream.Get("x-user-id") != "u3" || len(h.Callouts(res)) != 1 {
		t.Fatalf("stale JWKS: %+v, %d callouts", res, len(h.Callouts(res)))
	}
	if h.Callouts(res)[0].Upstream != "https://auth.example.com" {
		t.Error("refresh callout")
	}

	// Rotation: rsa2 replaces rsa1. A token with the new kid makes a
	// refresh (the last fetch was over jwksRefreshSeconds ago).
	now += 11
	tok2 := sign("RS256", "rsa2", claims(map[string]any{"sub": "rotated"}), rsaKey2)
	res = h.Do(bearer(tok2), sdktest.Response{})
	if !res.Paused {
		t.Fatalf("unknown kid did not refresh: %+v", res)
	}
	res = answer(t, h, res, 200, nil, jwks(rsaJWK("rsa2", rsaKey2)))
	if res.Local != nil || res.Upstream.Get("x-user-id") != "rotated" {
		t.Fatalf("new key: %+v", res)
	}
	// The removed key's tokens are refused, cached ones included.
	res = h.Do(bearer(tok), sdktest.Response{})
	if res.Local == nil || res.Local.Status != 401 || !strings.Contains(res.Local.Headers.Get("www-authenticate"), "unknown key id rsa1") {
		t.Fatalf("removed key: %+v", res)
	}
	// Unknown kids do not refetch more than once per jwksRefreshSeconds.
	res = h.Do(bearer(sign("RS256", "rsa9", claims(nil), rsaKey)), sdktest.Response{})
	if res.Paused || res.Local == nil || res.Local.Status != 401 {
		t.Fatalf("rate-limited refresh: %+v", res)
	}
}

func TestRemoteJWKSFailure(t *testing.T) {
	h := startHost(t, remote)
	tok := sign("RS256", "rsa1", claims(nil), rsaKey)
	res := h.Do(bearer(tok), sdktest.Response{})
	if !res.Paused {
		t.Fatal("not paused")
	}
	res = answer(t, h, res, 500, nil, "oops")
	if res.Local == nil || res.Local.Status != 503 || res.Local.Headers.Get("retry-after") == "" {
		t.Fatalf("JWKS fetch failed: %+v", res.Local)
	}
	res = h.Do(bearer(tok), sdktest.Response{})
	res = answer(t, h, res, 200, nil, "not json")
	if res.Local == nil || res.Local.Status != 503 {
		t.Fatalf("bad JWKS: %+v", res.Local)
	}
	// Tokens that fail on their own are refused without a fetch.
	res = h.Do(bearer(sign("none", "", claims(nil), nil)), sdktest.Response{})
	if res.Paused || res.Local == nil || res.Local.Status != 401 {
		t.Fatalf("none: %+v", res)
	}
}

// TestConcurrentWaiters: requests that need the JWKS while it is being
// fetched wait on that one fetch. The emulator (proxytest) routes a host
// call by the SDK's active context and ignores proxy_set_effective_context,
// so it can only show the fetch's own request resumed; that every waiter
// is resumed in its own context is tested end to end, with the gateway's
// host (host/policy TestJWTColdStart).
func TestConcurrentWaiters(t *testing.T) {
	h := startHost(t, remote)
	tok := sign("ES256", "ec1", claims(nil), ecKey)
	a := h.Do(bearer(tok), sdktest.Response{})
	b := h.Do(bearer(tok), sdktest.Response{})
	if !a.Paused || !b.Paused {
		t.Fatal("not paused")
	}
	if n, m := len(h.Callouts(a)), len(h.Callouts(b)); n != 1 || m != 0 {
		t.Fatalf("callouts: %d and %d, want one fetch for both", n, m)
	}
	a = answer(t, h, a, 200, nil, jwks(ecJWK("ec1", ecKey)))
	if a.Paused || a.Local != nil || a.Upstream.Get("x-user-id") != "user-42" {
		t.Errorf("%+v", a)
	}
	// Then the JWKS is cached.
	if res := h.Do(bearer(tok), sdktest.Response{}); res.Paused || res.Local != nil {
		t.Errorf("%+v", res)
	}
}

// TestWaitersBound: beyond maxWaiters, a request that needs the JWKS is
// answered 503 at once; a waiter whose request ends is forgotten, which
// frees its place.
func TestWaitersBound(t *testing.T) {
	defer func(n int) { maxWaiters = n }(maxWaiters)
	maxWaiters = 3
	h := startHost(t, remote)
	tok := sign("ES256", "ec1", claims(nil), ecKey)
	var waiting []sdktest.Result
	for i := 0; i < 3; i++ {
		res := h.Do(bearer(tok), sdktest.Response{})
		if !res.Paused {
			t.Fatalf("request %d not paused: %+v", i, res)
		}
		waiting = append(waiting, res)
	}
	res := h.Do(bearer(tok), sdktest.Response{})
	if res.Local == nil || res.Local.Status != 503 || res.Local.Headers.Get("retry-after") != "5" {
		t.Fatalf("over the bound: %+v", res)
	}
	h.Emulator().CompleteHttpContext(waiting[2].ID) // its client went away
	if res = h.Do(bearer(tok), sdktest.Response{}); !res.Paused {
		t.Fatalf("a forgotten waiter's place: %+v", res)
	}
	if n := len(h.Callouts(waiting[0])); n != 1 {
		t.Errorf("%d fetches", n)
	}
}

// TestFetchOwnerGone: when the request whose context made the fetch ends
// first (the SDK drops the answer of a gone context's callout), the
// waiters are not stranded: the fetch is made again from the root
// context's tick.
func TestFetchOwnerGone(t *testing.T) {
	tok := sign("ES256", "ec1", claims(nil), ecKey)
	t.Run("waiters", func(t *testing.T) {
		h := startHost(t, remote)
		a := h.Do(bearer(tok), sdktest.Response{})
		b := h.Do(bearer(tok), sdktest.Response{})
		if !a.Paused || !b.Paused || len(h.Callouts(a)) != 1 {
			t.Fatal("not waiting on one fetch")
		}
		e := h.Emulator()
		if e.GetTickPeriod() != 0 {
			t.Fatal("ticks before they are needed")
		}
		e.CompleteHttpContext(a.ID)
		if e.GetTickPeriod() == 0 {
			t.Fatal("no tick asked for the new fetch")
		}
		e.Tick()
		if e.GetTickPeriod() != 0 {
			t.Error("ticks go on")
		}
		if n := len(e.GetCalloutAttributesFromContext(1)); n != 1 { // the root context
			t.Fatalf("%d fetches from the root context", n)
		}
	})
	t.Run("no waiter", func(t *testing.T) {
		// A request that ends while no one waits just drops its fetch.
		h := startHost(t, remote)
		c := h.Do(bearer(tok), sdktest.Response{})
		h.Emulator().CompleteHttpContext(c.ID)
		if h.Emulator().GetTickPeriod() != 0 {
			t.Error("a tick with no waiter")
		}
		if d := h.Do(bearer(tok), sdktest.Response{}); !d.Paused || len(h.Callouts(d)) != 1 {
			t.Errorf("no new fetch after a dropped one: %+v", d)
		}
	})
}
