package configs

import (
	"strings"
	"testing"
)

func jwtPolicyDoc(block string) string {
	return `apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: p, namespace: ns}
spec:
  type: JWT
  targetRef: {kind: ProxyGateway, name: gw}
  jwt:
` + block
}

func TestValidateJWT(t *testing.T) {
	for _, tc := range []struct{ block, want string }{
		{"    issuer: x\n", "spec.jwt.jwksUri: required"},
		{"    jwksUri: ftp://x/y\n", "invalid URL"},
		{"    jwksUri: backend:ns\n", "backend:NAMESPACE/NAME/PATH"},
		{"    jwks: 'nope'\n", "not a JSON Web Key Set"},
		{"    jwksUri: https://a/k\n    allowedAlgorithms: [none]\n", "never allowed"},
		{"    jwksUri: https://a/k\n    allowedAlgorithms: [HS256]\n", "HS256 needs hmacSecret"},
		{"    hmacSecret: short\n", "at least 32 bytes"},
		{"    hmacSecret: 0123456789abcdef0123456789abcdef\n    allowedAlgorithms: [RS256]\n", "lacks HS256"},
		{"    jwksUri: https://a/k\n    clockSkew: -1s\n", "clockSkew"},
		{"    jwksUri: https://a/k\n    forwardClaims: [{claim: sub, header: 'bad header'}]\n", "forwardClaims[0].header"},
		{"    jwksUri: https://a/k\n    forwardClaims: [{header: X-A}]\n", "forwardClaims[0].claim: required"},
		{"    jwksUri: https://a/k\n    cookie: 'a b'\n", "spec.jwt.cookie"},
		{"    jwksUri: https://a/k\n    allowedAlgorithms: [RS256, ES256, EdDSA]\n    clockSkew: 0s\n    forwardClaims: [{claim: sub, header: X-User-ID}]\n    jwksRefreshInterval: 0s\n", ""},
		{"    jwksUri: backend:ns/auth/.well-known/jwks.json\n", ""},
		{"    jwks: '{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"x\": \"AA\"}]}'\n", ""},
		{"    hmacSecret: 0123456789abcdef0123456789abcdef\n    allowedAlgorithms: [HS256]\n", ""},
	} {
		_, err := LoadFiles([]File{{Name: "p.yaml", Data: []byte(jwtPolicyDoc(tc.block))}})
		var msg string
		if err != nil {
			msg = err.Error()
		}
		jwtProblem := strings.Contains(msg, "spec.jwt")
		switch {
		case tc.want == "" && jwtProblem:
			t.Errorf("%s: %v", tc.block, err)
		case tc.want != "" && !strings.Contains(msg, tc.want):
			t.Errorf("%s: got %v, want %q", tc.block, err, tc.want)
		}
	}
}
