package firstparty

import (
	"encoding/binary"
	"errors"
)

// JWTVerify's argument and result (the host implements it in
// host/policy/firstparty_jwt.go, plugins/jwt calls it).
//
// Argument: version (1), algorithm code, key type code, then four fields,
// each a uvarint length and its bytes: key component a, key component b,
// the signing input (base64url header "." base64url payload) and the raw
// signature. Key components are raw big-endian bytes: RSA n, e; EC x, y;
// Ed25519 x (b empty); HMAC k (b empty).
//
// Result: one byte, JWTVerifyOK, JWTVerifyBad (the signature does not
// verify) or JWTVerifyRefused (a malformed argument, an unknown code, or
// an algorithm that does not fit the key).

// JWTVerifyVersion is the argument's first byte.
const JWTVerifyVersion = 1

// Results of JWTVerify.
const (
	JWTVerifyBad     byte = 0
	JWTVerifyOK      byte = 1
	JWTVerifyRefused byte = 2
)

// JWS algorithm codes: JWTAlgorithms[code-1] is the algorithm's name.
const (
	JWTRS256 byte = 1 + iota
	JWTRS384
	JWTRS512
	JWTPS256
	JWTPS384
	JWTPS512
	JWTES256
	JWTES384
	JWTEdDSA
	JWTHS256
)

// JWTAlgorithms are the algorithms' names, in the order of their codes.
var JWTAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256"}

// Key type codes.
const (
	JWTKeyRSA     byte = 1
	JWTKeyP256    byte = 2
	JWTKeyP384    byte = 3
	JWTKeyEd25519 byte = 4
	JWTKeyOct     byte = 5
)

// JWTVerifyArgs is JWTVerify's argument.
type JWTVerifyArgs struct {
	Alg, Kty byte
	A, B     []byte // key components
	Input    []byte // the signing input
	Sig      []byte // the raw signature
}

// AppendJWTVerify appends the encoded argument to dst.
func AppendJWTVerify(dst []byte, a *JWTVerifyArgs) []byte {
	dst = append(dst, JWTVerifyVersion, a.Alg, a.Kty)
	for _, f := range [4][]byte{a.A, a.B, a.Input, a.Sig} {
		dst = binary.AppendUvarint(dst, uint64(len(f)))
		dst = append(dst, f...)
	}
	return dst
}

// ErrJWTVerifyArgs is a malformed JWTVerify argument.
var ErrJWTVerifyArgs = errors.New("malformed jwt_verify argument")

// DecodeJWTVerify decodes an argument; the fields alias b. It never
// panics; it checks the structure only, not the codes.
func DecodeJWTVerify(b []byte) (JWTVerifyArgs, error) {
	var a JWTVerifyArgs
	if len(b) < 3 || b[0] != JWTVerifyVersion {
		return a, ErrJWTVerifyArgs
	}
	a.Alg, a.Kty = b[1], b[2]
	rest := b[3:]
	for _, f := range [4]*[]byte{&a.A, &a.B, &a.Input, &a.Sig} {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return a, ErrJWTVerifyArgs
		}
		*f = rest[k : k+int(n)]
		rest = rest[k+int(n):]
	}
	if len(rest) != 0 {
		return a, ErrJWTVerifyArgs
	}
	return a, nil
}

// JWTTokenDigest is the host function that gives the SHA-256 digest of a
// bearer token, so that plugins/jwt finds a token it validated before
// without copying the token (often 600 bytes and more) into its VM: the
// host reads the request header itself (wasm.CallerRequestHeader).
//
// Argument: a mode byte, then
//   - JWTDigestHeader: one byte n, the header's name (n bytes), then the
//     prefix (the rest, may be empty). The token is the header's first
//     value after the prefix (matched case-insensitively; the value must
//     be longer than it), spaces trimmed, as the plugin extracts it.
//   - JWTDigestBytes: the token itself (the rest).
//
// Result: 1 and the 32-byte digest, or the single byte 0 when there is no
// token (no such header, the prefix does not match, or the token is
// empty). Never empty: some emulators cannot return nothing.
const JWTTokenDigest = "novaedge.jwt_token_digest"

// JWTTokenDigest modes.
const (
	JWTDigestHeader byte = 1
	JWTDigestBytes  byte = 2
)

// AppendJWTDigestHeader appends the JWTDigestHeader argument for the
// header name and prefix; ok is false when the name is longer than 255
// bytes (or empty).
func AppendJWTDigestHeader(b []byte, name, prefix string) ([]byte, bool) {
	if name == "" || len(name) > 255 {
		return b, false
	}
	b = append(b, JWTDigestHeader, byte(len(name)))
	b = append(b, name...)
	return append(b, prefix...), true
}

// DecodeJWTDigest reads a JWTTokenDigest argument: for JWTDigestHeader,
// the header name and prefix; for JWTDigestBytes, the token (in prefix's
// place, name nil).
func DecodeJWTDigest(arg []byte) (mode byte, name, rest []byte, err error) {
	if len(arg) == 0 {
		return 0, nil, nil, errors.New("empty argument")
	}
	switch mode, arg = arg[0], arg[1:]; mode {
	case JWTDigestHeader:
		if len(arg) == 0 || arg[0] == 0 || int(arg[0]) > len(arg)-1 {
			return 0, nil, nil, errors.New("header name out of range")
		}
		n := int(arg[0])
		return mode, arg[1 : 1+n], arg[1+n:], nil
	case JWTDigestBytes:
		return mode, nil, arg, nil
	}
	return 0, nil, nil, errors.New("unknown mode")
}
