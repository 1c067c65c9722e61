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
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/wasm"
	"github.com/novaedge/novaedge/sdk/firstparty"
)

// The JWT policy (plugins/jwt) authenticates: it runs after CORS (whose
// preflights carry no credentials) and before KeyAuth and RateLimit (which
// may key on its claims).
func init() {
	Register(Type{
		Name: configs.PolicyJWT, Module: "jwt", Order: 20, Authenticates: always, Config: jwtPluginConfig,
		HostFuncs: func(m map[string]wasm.ForeignFunc) func(string) {
			m[jwtVerifyFunc] = func(_ context.Context, arg []byte) ([]byte, error) {
				return []byte{jwtVerify(arg)}, nil
			}
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

// jwtVerifyFunc is the host function that checks one JWS signature with
// one key, for plugins/jwt (the guest picks the key from its JWKS and
// enforces its allow-list; RSA and ECDSA in the VM would be far too slow).
//
// Argument: version (1), algorithm code, key type code, then four fields,
// each a uvarint length and its bytes: key component a, key component b,
// the signing input (base64url header "." base64url payload) and the raw
// signature. Key components are raw big-endian bytes: RSA n, e; EC x, y;
// Ed25519 x (b empty); HMAC k (b empty).
//
// Result: one byte, jwtVerifyOK, jwtVerifyBad (the signature does not
// verify) or jwtVerifyRefused (a malformed argument, an unknown code, or an
// algorithm that does not fit the key: HS256 with an RSA key is algorithm
// confusion and is refused here too).
const jwtVerifyFunc = firstparty.JWTVerify

const (
	jwtVerifyBad     = 0
	jwtVerifyOK      = 1
	jwtVerifyRefused = 2
)

// Algorithm codes (plugins/jwt/keys.go).
const (
	jwtRS256 = 1 + iota
	jwtRS384
	jwtRS512
	jwtPS256
	jwtPS384
	jwtPS512
	jwtES256
	jwtES384
	jwtEdDSA
	jwtHS256
)

// Key type codes.
const (
	jwtKtyRSA  = 1
	jwtKtyP256 = 2
	jwtKtyP384 = 3
	jwtKtyEd   = 4
	jwtKtyOct  = 5
)

// jwtVerifyArg is a decoded argument.
type jwtVerifyArg struct {
	alg, kty byte
	a, b     []byte
	input    []byte
	sig      []byte
}

var errJWTArg = errors.New("malformed jwt_verify argument")

// decodeJWTVerify decodes the host function's argument; the fields alias
// arg.
func decodeJWTVerify(arg []byte) (jwtVerifyArg, error) {
	var v jwtVerifyArg
	if len(arg) < 3 || arg[0] != 1 {
		return v, errJWTArg
	}
	v.alg, v.kty = arg[1], arg[2]
	rest := arg[3:]
	fields := [4]*[]byte{&v.a, &v.b, &v.input, &v.sig}
	for _, f := range fields {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return v, errJWTArg
		}
		*f = rest[k : k+int(n)]
		rest = rest[k+int(n):]
	}
	if len(rest) != 0 {
		return v, errJWTArg
	}
	return v, nil
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
