package apigateway

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
)

// TestIssuer: a token the dev issuer mints verifies with the key its JWKS
// endpoint serves, and carries the reference policy's issuer and audience.
func TestIssuer(t *testing.T) {
	is, err := StartIssuer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer is.Close()
	resp, err := http.Get(is.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var set struct {
		Keys []struct{ Kty, Kid, Alg, N, E string }
	}
	if err := json.Unmarshal(body, &set); err != nil || len(set.Keys) != 1 || set.Keys[0].Kty != "RSA" {
		t.Fatalf("jwks %s: %v", body, err)
	}
	k := set.Keys[0]
	n, _ := base64.RawURLEncoding.DecodeString(k.N)
	e, _ := base64.RawURLEncoding.DecodeString(k.E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}

	tok, err := is.Token("user-42", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q", tok)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("signature: %v", err)
	}
	var hdr struct{ Alg, Kid string }
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	json.Unmarshal(hb, &hdr)
	var claims struct {
		Iss, Aud, Sub string
		Exp           int64
	}
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	json.Unmarshal(cb, &claims)
	if hdr.Alg != "RS256" || hdr.Kid != k.Kid || claims.Iss != DevIssuer || claims.Aud != DevAudience ||
		claims.Sub != "user-42" || claims.Exp <= time.Now().Unix() {
		t.Errorf("header %+v claims %+v", hdr, claims)
	}
}

// TestDemoFiles: the demo's resources are the reference's, with only the
// JWKS URL replaced.
func TestDemoFiles(t *testing.T) {
	snap, err := configs.LoadFiles(DemoFiles("http://127.0.0.1:18090/.well-known/jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range snap.Policies {
		if p.Spec.JWT != nil {
			found = true
			if p.Spec.JWT.JWKSURI != "http://127.0.0.1:18090/.well-known/jwks.json" || p.Spec.JWT.Issuer != DevIssuer {
				t.Errorf("jwt policy %+v", p.Spec.JWT)
			}
		}
	}
	if !found {
		t.Fatal("no JWT policy")
	}
}
