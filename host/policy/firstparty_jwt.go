package policy

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"unsafe"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/wasm"
	"github.com/novaedge/novaedge/sdk/firstparty"
)

// The JWT policy (plugins/jwt) authenticates: it runs after CORS (whose
// preflights carry no credentials) and before KeyAuth and RateLimit (which
// may key on its claims).
func init() {
	Register(Type{
		Name: configs.PolicyJWT, Module: "jwt", Order: 20, HeadersOnly: true, Authenticates: always, Config: jwtPluginConfig,
		HostFuncs: func(m map[string]wasm.ForeignFunc) func(string) {
			m[jwtVerifyFunc] = func(_ context.Context, arg []byte) ([]byte, error) {
				return []byte{jwtVerify(arg)}, nil
			}
			m[firstparty.JWTTokenDigest] = jwtTokenDigest
			return nil // stateless
		},
	})
}

// seconds is a duration for the plugin: whole seconds, 0 kept as -1 (the
// plugin reads 0 as "default").
func seconds(d *configs.Duration) int {
	if d == nil {
		return 0
	}
	if s := int(d.Seconds()); s > 0 {
		return s
	}
	return -1
}

// jwtPluginConfig converts spec.jwt (durations in whole seconds).
func jwtPluginConfig(p *configs.Policy) (any, error) {
	j := p.Spec.JWT
	if j == nil {
		return nil, fmt.Errorf("spec.jwt: required for type JWT")
	}
	c := firstparty.JWT{
		Issuer:             j.Issuer,
		Audience:           j.Audience,
		JWKSURI:            j.JWKSURI,
		JWKS:               j.JWKS,
		HeaderName:         j.HeaderName,
		HeaderPrefix:       j.HeaderPrefix,
		Cookie:             j.Cookie,
		QueryParameter:     j.QueryParameter,
		AllowedAlgorithms:  j.AllowedAlgorithms,
		HMACSecret:         j.HMACSecret,
		ClockSkewSeconds:   seconds(j.ClockSkew),
		RemoveCredential:   j.RemoveCredential,
		JWKSCacheSeconds:   seconds(j.JWKSCacheDuration),
		JWKSRefreshSeconds: seconds(j.JWKSRefreshInterval),
	}
	for _, f := range j.ForwardClaims {
		c.ForwardClaims = append(c.ForwardClaims, firstparty.ClaimHeader{Claim: f.Claim, Header: f.Header})
	}
	return c, nil
}

// jwtTokenDigest is the host function firstparty.JWTTokenDigest: the
// SHA-256 digest of the calling stream's bearer token (read from its
// request header here, extracted as the plugin does: the header's first
// value after the prefix, matched case-insensitively, spaces trimmed), or
// of the token given (result: 1 and the digest; no token: 0). A malformed argument is
// an error (the plugin then reads the token itself).
func jwtTokenDigest(ctx context.Context, arg []byte) ([]byte, error) {
	mode, name, rest, err := firstparty.DecodeJWTDigest(arg)
	if err != nil {
		return nil, err
	}
	tok := rest
	if mode == firstparty.JWTDigestHeader {
		v, _ := wasm.CallerRequestHeader(ctx, string(name))
		t := bearerToken(v, string(rest))
		tok = unsafe.Slice(unsafe.StringData(t), len(t)) // read only: not copied
	}
	if len(tok) == 0 {
		return []byte{0}, nil
	}
	out := make([]byte, 1, 1+sha256.Size)
	out[0] = 1
	d := sha256.Sum256(tok)
	return append(out, d[:]...), nil
}

// bearerToken extracts a token from a header value as plugins/jwt does.
func bearerToken(v, prefix string) string {
	if v == "" {
		return ""
	}
	if prefix == "" {
		return strings.TrimSpace(v)
	}
	if len(v) > len(prefix) && strings.EqualFold(v[:len(prefix)], prefix) {
		return strings.TrimSpace(v[len(prefix):])
	}
	return ""
}

// jwtVerifyFunc is the host function that checks one JWS signature with
// one key, for plugins/jwt (the guest picks the key from its JWKS and
// enforces its allow-list; RSA and ECDSA in the VM would be far too slow).
// Its argument and result are sdk/firstparty's (JWTVerifyArgs), shared
// with the plugin: version, algorithm and key type codes, then the key's
// components, the signing input and the signature. The result is
// jwtVerifyOK, jwtVerifyBad (the signature does not verify) or
// jwtVerifyRefused (a malformed argument, an unknown code, or an
// algorithm that does not fit the key: HS256 with an RSA key is algorithm
// confusion and is refused here too).
const jwtVerifyFunc = firstparty.JWTVerify

const (
	jwtVerifyBad     = firstparty.JWTVerifyBad
	jwtVerifyOK      = firstparty.JWTVerifyOK
	jwtVerifyRefused = firstparty.JWTVerifyRefused
)

// Algorithm codes.
const (
	jwtRS256 = firstparty.JWTRS256
	jwtRS384 = firstparty.JWTRS384
	jwtRS512 = firstparty.JWTRS512
	jwtPS256 = firstparty.JWTPS256
	jwtPS384 = firstparty.JWTPS384
	jwtPS512 = firstparty.JWTPS512
	jwtES256 = firstparty.JWTES256
	jwtES384 = firstparty.JWTES384
	jwtEdDSA = firstparty.JWTEdDSA
	jwtHS256 = firstparty.JWTHS256
)

// Key type codes.
const (
	jwtKtyRSA  = firstparty.JWTKeyRSA
	jwtKtyP256 = firstparty.JWTKeyP256
	jwtKtyP384 = firstparty.JWTKeyP384
	jwtKtyEd   = firstparty.JWTKeyEd25519
	jwtKtyOct  = firstparty.JWTKeyOct
)

// jwtVerifyArg is a decoded argument.
type jwtVerifyArg struct {
	alg, kty byte
	a, b     []byte
	input    []byte
	sig      []byte
}

// decodeJWTVerify decodes the host function's argument; the fields alias
// arg.
func decodeJWTVerify(arg []byte) (jwtVerifyArg, error) {
	a, err := firstparty.DecodeJWTVerify(arg)
	if err != nil {
		return jwtVerifyArg{}, err
	}
	return jwtVerifyArg{alg: a.Alg, kty: a.Kty, a: a.A, b: a.B, input: a.Input, sig: a.Sig}, nil
}

// jwtVerify checks the signature the argument describes.
func jwtVerify(arg []byte) byte {
	v, err := decodeJWTVerify(arg)
	if err != nil {
		return jwtVerifyRefused
	}
	ok, err := v.verify()
	switch {
	case err != nil:
		return jwtVerifyRefused
	case ok:
		return jwtVerifyOK
	}
	return jwtVerifyBad
}

var errJWTKey = errors.New("algorithm and key do not fit")

func (v *jwtVerifyArg) verify() (bool, error) {
	switch v.alg {
	case jwtRS256, jwtRS384, jwtRS512, jwtPS256, jwtPS384, jwtPS512:
		if v.kty != jwtKtyRSA {
			return false, errJWTKey
		}
		pub, err := rsaKey(v.a, v.b)
		if err != nil {
			return false, err
		}
		h, digest := jwtHash(v.alg, v.input)
		if v.alg >= jwtPS256 {
			return rsa.VerifyPSS(pub, h, digest, v.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil, nil
		}
		return rsa.VerifyPKCS1v15(pub, h, digest, v.sig) == nil, nil
	case jwtES256, jwtES384:
		curve, size, kty := elliptic.P256(), 32, byte(jwtKtyP256)
		if v.alg == jwtES384 {
			curve, size, kty = elliptic.P384(), 48, jwtKtyP384
		}
		if v.kty != kty {
			return false, errJWTKey
		}
		if len(v.a) != size || len(v.b) != size {
			return false, errJWTKey
		}
		x, y := new(big.Int).SetBytes(v.a), new(big.Int).SetBytes(v.b)
		if !curve.IsOnCurve(x, y) {
			return false, errJWTKey
		}
		if len(v.sig) != 2*size {
			return false, nil // JWS ECDSA signatures are r||s, fixed size
		}
		_, digest := jwtHash(v.alg, v.input)
		r, s := new(big.Int).SetBytes(v.sig[:size]), new(big.Int).SetBytes(v.sig[size:])
		return ecdsa.Verify(&ecdsa.PublicKey{Curve: curve, X: x, Y: y}, digest, r, s), nil
	case jwtEdDSA:
		if v.kty != jwtKtyEd || len(v.a) != ed25519.PublicKeySize || len(v.b) != 0 {
			return false, errJWTKey
		}
		return len(v.sig) == ed25519.SignatureSize && ed25519.Verify(ed25519.PublicKey(v.a), v.input, v.sig), nil
	case jwtHS256:
		if v.kty != jwtKtyOct || len(v.a) < 32 || len(v.b) != 0 {
			return false, errJWTKey
		}
		m := hmac.New(sha256.New, v.a)
		m.Write(v.input)
		return subtle.ConstantTimeCompare(m.Sum(nil), v.sig) == 1, nil
	}
	return false, errJWTKey
}

// rsaKey builds an RSA public key of 2048 to 8192 bits.
func rsaKey(n, e []byte) (*rsa.PublicKey, error) {
	for len(n) > 0 && n[0] == 0 {
		n = n[1:]
	}
	if len(n) < 256 || len(n) > 1024 || len(e) == 0 || len(e) > 4 {
		return nil, errJWTKey
	}
	var ev uint64
	for _, c := range e {
		ev = ev<<8 | uint64(c)
	}
	if ev < 3 || ev&1 == 0 || ev > 1<<31-1 {
		return nil, errJWTKey
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev)}, nil
}

func jwtHash(alg byte, input []byte) (crypto.Hash, []byte) {
	switch alg {
	case jwtRS384, jwtPS384, jwtES384:
		d := sha512.Sum384(input)
		return crypto.SHA384, d[:]
	case jwtRS512, jwtPS512:
		d := sha512.Sum512(input)
		return crypto.SHA512, d[:]
	}
	d := sha256.Sum256(input)
	return crypto.SHA256, d[:]
}
