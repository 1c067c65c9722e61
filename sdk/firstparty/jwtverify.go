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
