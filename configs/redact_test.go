package configs

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Secrets of redactDoc: none may be shown.
var redactSecrets = []string{
	"k-live-secret-0123456789", "k-other-secret-0123456789",
	"hmac-secret-0123456789-0123456789-abcdef",
	"c3ltbWV0cmljLWtleS1zZWNyZXQtMDEyMzQ1Njc4OQ",         // oct k
	"cHJpdmF0ZS1leHBvbmVudA", "cHJpbWUtcA", "cHJpbWUtcQ", // RSA d, p, q
	"s3cr3t-pw", "tr4ce-pw",
}

const redactDoc = `apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: ns}
spec:
  listeners: [{name: http, port: 8080, protocol: HTTP}]
  tracing: {enabled: true, endpoint: "https://otel:tr4ce-pw@collector.example:4318/v1/traces"}
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyRoute
metadata: {name: r, namespace: ns}
spec:
  rules: [{redirect: {statusCode: 301, hostname: example.com}}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: keys, namespace: ns}
spec:
  type: KeyAuth
  targetRef: {kind: ProxyGateway, name: gw}
  keyAuth:
    keys:
      - {key: k-live-secret-0123456789, consumer: web}
      - {sha256: 0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0, consumer: mobile}
      - {key: k-other-secret-0123456789, consumer: partner}
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: jwt, namespace: ns}
spec:
  type: JWT
  targetRef: {kind: ProxyRoute, name: r}
  jwt:
    allowedAlgorithms: [HS256, RS256]
    hmacSecret: hmac-secret-0123456789-0123456789-abcdef
    jwks: '{"keys":[{"kty":"oct","kid":"a","k":"c3ltbWV0cmljLWtleS1zZWNyZXQtMDEyMzQ1Njc4OQ"},{"kty":"RSA","kid":"b","n":"bW9kdWx1cw","e":"AQAB","d":"cHJpdmF0ZS1leHBvbmVudA","p":"cHJpbWUtcA","q":"cHJpbWUtcQ"}]}'
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: remote, namespace: ns}
spec:
  type: JWT
  targetRef: {kind: ProxyRoute, name: r}
  jwt: {jwksUri: "https://gw:s3cr3t-pw@auth.example.com/jwks.json"}
`

func loadDoc(t *testing.T, doc string) *Snapshot {
	t.Helper()
	s, err := LoadFiles([]File{{Name: "r.yaml", Data: []byte(doc)}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRedactSnapshot: the JSON and YAML of a redacted snapshot show no
// secret, show placeholders where they were, keep everything else (the
// sha256 form of a key, a JWK's public members, the URL's user and host)
// and the hash; the snapshot itself is not changed.
func TestRedactSnapshot(t *testing.T) {
	snap := loadDoc(t, redactDoc)
	before, err := snap.JSON()
	if err != nil {
		t.Fatal(err)
	}
	r := NewRedactor(nil)
	red := r.Snapshot(snap)
	if red.Hash != snap.Hash {
		t.Errorf("hash %s, want %s", red.Hash, snap.Hash)
	}
	js, err := red.JSON()
	if err != nil {
		t.Fatal(err)
	}
	ym, err := red.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string][]byte{"JSON": js, "YAML": ym} {
		for _, s := range redactSecrets {
			if bytes.Contains(out, []byte(s)) {
				t.Errorf("%s shows the secret %q", name, s)
			}
		}
		for _, keep := range []string{"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0", "partner",
			`\"n\":\"bW9kdWx1cw\"`, `\"kid\":\"b\"`, "collector.example:4318", "otel:", "auth.example.com/jwks.json", placeholderPrefix} {
			if name == "YAML" {
				keep = strings.ReplaceAll(keep, `\"`, `"`)
			}
			if !bytes.Contains(out, []byte(keep)) {
				t.Errorf("%s lacks %q:\n%s", name, keep, out)
			}
		}
	}
	// 2 API keys, the HMAC secret, 4 JWK members, 2 passwords.
	if n := bytes.Count(js, []byte(placeholderPrefix)); n != 9 {
		t.Errorf("%d placeholders, want 9:\n%s", n, js)
	}
	after, _ := snap.JSON()
	if !bytes.Equal(before, after) {
		t.Error("Snapshot changed the snapshot")
	}
	// Equal secrets, equal placeholders; another key, others.
	if a, b := r.placeholder(secretAPIKey, "x"), r.placeholder(secretAPIKey, "x"); a != b || !IsPlaceholder(a) {
		t.Errorf("placeholders %q %q", a, b)
	}
	if r.placeholder(secretAPIKey, "x") == NewRedactor(nil).placeholder(secretAPIKey, "x") ||
		r.placeholder(secretAPIKey, "x") == r.placeholder(secretHMAC, "x") {
		t.Error("a placeholder does not depend on the key and the class")
	}
}

// TestRestore: a resource set based on the redacted YAML gets the running
// secrets back, so pushing it unchanged is a no-op; a placeholder that
// stands for no running secret, or sits in another field, is a problem
// naming the field.
func TestRestore(t *testing.T) {
	snap := loadDoc(t, redactDoc)
	r := NewRedactor(nil)
	ym, err := r.Snapshot(snap).YAML()
	if err != nil {
		t.Fatal(err)
	}
	redacted := string(ym)
	keyPH := r.placeholder(secretAPIKey, "k-live-secret-0123456789")
	hmacPH := r.placeholder(secretHMAC, "hmac-secret-0123456789-0123456789-abcdef")
	stalePH := NewRedactor(nil).placeholder(secretAPIKey, "k-live-secret-0123456789")
	for _, tc := range []struct {
		name    string
		doc     string
		problem string                 // "": none
		check   func(*Snapshot) string // what is wrong with the restored set
	}{
		{name: "unchanged: the same hash", doc: redacted, check: func(s *Snapshot) string {
			if s.Hash != snap.Hash {
				return "hash " + s.Hash + ", want " + snap.Hash
			}
			return ""
		}},
		{name: "edited elsewhere: the secrets come back", doc: strings.Replace(redacted, "consumer: partner", "consumer: partner2", 1),
			check: func(s *Snapshot) string {
				k := s.Policy("ns", "keys").Spec.KeyAuth.Keys
				j := s.Policy("ns", "jwt").Spec.JWT
				switch {
				case k[0].Key != "k-live-secret-0123456789" || k[2].Key != "k-other-secret-0123456789" || k[2].Consumer != "partner2":
					return "keys " + k[0].Key + " " + k[2].Key
				case j.HMACSecret != "hmac-secret-0123456789-0123456789-abcdef":
					return "hmacSecret " + j.HMACSecret
				case j.JWKS != snap.Policy("ns", "jwt").Spec.JWT.JWKS:
					return "jwks " + j.JWKS
				case s.Policy("ns", "remote").Spec.JWT.JWKSURI != "https://gw:s3cr3t-pw@auth.example.com/jwks.json":
					return "jwksUri " + s.Policy("ns", "remote").Spec.JWT.JWKSURI
				case s.Gateway("ns", "gw").Spec.Tracing.Endpoint != "https://otel:tr4ce-pw@collector.example:4318/v1/traces":
					return "tracing " + s.Gateway("ns", "gw").Spec.Tracing.Endpoint
				}
				return ""
			}},
		{name: "a JWK added, the others kept",
			doc: strings.Replace(redacted, `{"keys":[`, `{"keys":[{"kty":"oct","kid":"new","k":"bmV3LWtleQ"},`, 1),
			check: func(s *Snapshot) string {
				j := s.Policy("ns", "jwt").Spec.JWT.JWKS
				if !strings.Contains(j, `"k":"bmV3LWtleQ"`) || !strings.Contains(j, `"k":"c3ltbWV0cmljLWtleS1zZWNyZXQtMDEyMzQ1Njc4OQ"`) || !strings.Contains(j, `"d":"cHJpdmF0ZS1leHBvbmVudA"`) {
					return "jwks " + j
				}
				return ""
			}},
		{name: "a URL's host changed, its password kept", doc: strings.Replace(redacted, "auth.example.com", "auth2.example.com", 1),
			check: func(s *Snapshot) string {
				if u := s.Policy("ns", "remote").Spec.JWT.JWKSURI; u != "https://gw:s3cr3t-pw@auth2.example.com/jwks.json" {
					return "jwksUri " + u
				}
				return ""
			}},
		{name: "a key given in clear beside a placeholder", doc: strings.Replace(redacted, "      - consumer: partner\n", "      - consumer: new\n        key: k-new-0123456789\n      - consumer: partner\n", 1),
			check: func(s *Snapshot) string {
				if k := s.Policy("ns", "keys").Spec.KeyAuth.Keys; len(k) != 4 || k[0].Key != "k-live-secret-0123456789" || k[2].Key != "k-new-0123456789" || k[3].Key != "k-other-secret-0123456789" {
					return "keys"
				}
				return ""
			}},
		{name: "another process's placeholder", doc: strings.Replace(redacted, keyPH, stalePH, 1),
			problem: "r.yaml:LINE: ProxyPolicy ns/keys: spec.keyAuth.keys[0].key: the redacted placeholder matches no secret of the running configuration"},
		{name: "a placeholder moved to another class of field", doc: strings.Replace(redacted, hmacPH, keyPH, 1),
			problem: "ProxyPolicy ns/jwt: spec.jwt.hmacSecret: the redacted placeholder matches no secret"},
		{name: "a placeholder in a field that is no secret's",
			doc:     strings.Replace(redacted, "hostname: example.com", "hostname: "+keyPH, 1),
			problem: "ProxyRoute ns/r: spec.rules[0].redirect.hostname: a redacted placeholder is taken back only in the field it was redacted from"},
		{name: "a placeholder inside a value", doc: strings.Replace(redacted, keyPH, "x"+keyPH, 1),
			problem: "spec.keyAuth.keys[0].key: a redacted placeholder stands for the whole value"},
		{name: "a JWK member's placeholder changed",
			doc:     strings.Replace(redacted, r.placeholder(secretJWK, `"cHJpbWUtcA"`), stalePH, 1),
			problem: "spec.jwt.jwks: keys[1].p: the redacted placeholder matches no secret"},
		{name: "a URL's password placeholder changed",
			doc:     strings.Replace(redacted, r.placeholder(secretURL, "s3cr3t-pw"), "%3Credacted:hmac-sha256:0000000000000000%3E", 1),
			problem: "ProxyPolicy ns/remote: spec.jwt.jwksUri: the URL's redacted password matches no secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.doc == redacted && tc.check == nil {
				t.Fatal("the test changed nothing")
			}
			f, err := r.Restore(File{Name: "r.yaml", Data: []byte(tc.doc)}, snap)
			if tc.problem != "" {
				var ps Problems
				if !errors.As(err, &ps) || len(ps) != 1 {
					t.Fatalf("err = %v, want one problem", err)
				}
				want := strings.Replace(tc.problem, "LINE", itoa(ps[0].Line), 1)
				if !strings.Contains(ps[0].String(), want) || ps[0].Line == 0 {
					t.Errorf("problem %q, want %q", ps[0], want)
				}
				for _, s := range redactSecrets {
					if strings.Contains(err.Error(), s) {
						t.Errorf("the problem shows a secret")
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(f.Data), placeholderPrefix) {
				t.Errorf("a placeholder is left:\n%s", f.Data)
			}
			got, err := LoadFiles([]File{f})
			if err != nil {
				t.Fatalf("the restored set does not load: %v\n%s", err, f.Data)
			}
			if msg := tc.check(got); msg != "" {
				t.Error(msg)
			}
		})
	}
	// Without a placeholder, or not YAML: as it was.
	for _, data := range []string{redactDoc, "a: [", ""} {
		f, err := r.Restore(File{Name: "x", Data: []byte(data)}, snap)
		if err != nil || string(f.Data) != data {
			t.Errorf("Restore(%.20q) = %v, changed %v", data, err, string(f.Data) != data)
		}
	}
	// Nothing runs: every placeholder is stale.
	if _, err := r.Restore(File{Name: "x", Data: []byte(redacted)}, nil); err == nil {
		t.Error("placeholders restored with nothing running")
	}
}

func itoa(n int) string {
	b := []byte{}
	for ; n > 0 || len(b) == 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// FuzzRestore: Restore never panics; what it returns without problems
// has no placeholder left, or is the input unchanged.
//
//	go test -run '^$' -fuzz FuzzRestore ./configs/
func FuzzRestore(f *testing.F) {
	r := NewRedactor([]byte("fuzz key"))
	snap, err := LoadFiles([]File{{Name: "r.yaml", Data: []byte(redactDoc)}})
	if err != nil {
		f.Fatal(err)
	}
	ym, err := r.Snapshot(snap).YAML()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ym)
	f.Add([]byte(redactDoc))
	f.Add([]byte("kind: ProxyPolicy\nspec: {jwt: {jwks: '{\"keys\":[{\"k\":\"<redacted:x>\"}]}'}}\n"))
	f.Add([]byte("kind: ProxyGateway\nspec: {tracing: {endpoint: 'http://u:%3Credacted:hmac-sha256:0000000000000000%3E@h'}}\n"))
	f.Add([]byte("a: &a [*a, '<redacted:']\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := r.Restore(File{Name: "fuzz.yaml", Data: data}, snap)
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("err = %#v, want Problems", err)
			}
			return
		}
		if !bytes.Equal(out.Data, data) && bytes.Contains(out.Data, []byte(placeholderPrefix)) {
			t.Fatalf("a placeholder is left:\n%s", out.Data)
		}
	})
}

// TestProblemsHidePasswords: a problem that quotes a URL does not show
// its password.
func TestProblemsHidePasswords(t *testing.T) {
	doc := strings.Replace(redactDoc, "https://gw:s3cr3t-pw@auth.example.com/jwks.json", "ftp://gw:s3cr3t-pw@auth.example.com/jwks.json", 1)
	doc = strings.Replace(doc, "https://otel:tr4ce-pw@collector", "otel:tr4ce-pw@collector", 1)
	_, err := LoadFiles([]File{{Name: "r.yaml", Data: []byte(doc)}})
	if err == nil || !strings.Contains(err.Error(), `"ftp://gw:xxxxx@auth.example.com/jwks.json"`) {
		t.Fatalf("err = %v", err)
	}
	for _, s := range redactSecrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("a problem shows %q:\n%v", s, err)
		}
	}
	for _, tc := range []struct{ name, in, want string }{
		{"password", "https://u:p@h/x", "https://u:xxxxx@h/x"},
		{"no password", "https://u@h/x", "https://u@h/x"},
		{"no userinfo", "https://h/x?a=b@c", "https://h/x?a=b@c"},
		{"unparsable", "ht tp://u:p w@h", "ht tp://u:xxxxx@h"},
	} {
		if got := hidePassword(tc.in); got != tc.want {
			t.Errorf("%s: hidePassword(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

// TestRestoreKeepsLines: placeholders are replaced where they are written
// (block or flow style, plain or quoted), so that every other line stays
// as it was and a problem in the set cites the line its author wrote; a
// placeholder whose text cannot be replaced in place (a JWKS in a block
// scalar) is still taken back, the documents written anew.
func TestRestoreKeepsLines(t *testing.T) {
	snap := loadDoc(t, redactDoc)
	r := NewRedactor(nil)
	ym, err := r.Snapshot(snap).YAML()
	if err != nil {
		t.Fatal(err)
	}
	keyPH := r.placeholder(secretAPIKey, "k-live-secret-0123456789")
	otherPH := r.placeholder(secretAPIKey, "k-other-secret-0123456789")
	hmacPH := r.placeholder(secretHMAC, "hmac-secret-0123456789-0123456789-abcdef")
	jwksRed, _ := r.redactJWKS(snap.Policy("ns", "jwt").Spec.JWT.JWKS)
	flow := strings.NewReplacer("k-live-secret-0123456789", keyPH, "k-other-secret-0123456789", "'"+otherPH+"'",
		"hmacSecret: hmac-secret-0123456789-0123456789-abcdef", `hmacSecret: "`+hmacPH+`"`,
		"---\n", "---\n\n# the next resource, after a blank line (writing the YAML anew would drop it)\n").Replace(redactDoc)
	for _, tc := range []struct {
		name     string
		doc      string
		inPlace  bool
		wantKeys []string
	}{
		{"the admin API's YAML", string(ym), true, []string{"k-live-secret-0123456789", "", "k-other-secret-0123456789"}},
		{"flow style, plain and quoted, blank lines", flow, true, []string{"k-live-secret-0123456789", "", "k-other-secret-0123456789"}},
		{"a JWKS in a block scalar", strings.Replace(flow, `jwks: '`+snap.Policy("ns", "jwt").Spec.JWT.JWKS+`'`,
			"jwks: |\n      "+jwksRed, 1), false, []string{"k-live-secret-0123456789", "", "k-other-secret-0123456789"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(tc.doc, placeholderPrefix) {
				t.Fatal("no placeholder in the test's document")
			}
			// A problem on the last line, to see where it is cited.
			doc := tc.doc + "---\nkind: Nope\n"
			f, err := r.Restore(File{Name: "r.yaml", Data: []byte(doc)}, snap)
			if err != nil {
				t.Fatal(err)
			}
			in, out := strings.Split(doc, "\n"), strings.Split(string(f.Data), "\n")
			if tc.inPlace {
				if len(in) != len(out) {
					t.Fatalf("%d lines became %d", len(in), len(out))
				}
				for i := range in {
					if in[i] != out[i] && !strings.Contains(in[i], placeholderPrefix) {
						t.Errorf("line %d changed: %q → %q", i+1, in[i], out[i])
					}
				}
			}
			_, err = LoadFiles([]File{f})
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("err = %v, want the problems of kind Nope", err)
			}
			if tc.inPlace && ps[0].Line != len(in)-1 {
				t.Errorf("the problem is cited at line %d, want %d", ps[0].Line, len(in)-1)
			}
			got, err := LoadFiles([]File{{Name: "r.yaml", Data: []byte(strings.TrimSuffix(string(f.Data), "---\nkind: Nope\n"))}})
			if err != nil {
				t.Fatalf("%v\n%s", err, f.Data)
			}
			var keys []string
			for _, k := range got.Policy("ns", "keys").Spec.KeyAuth.Keys {
				keys = append(keys, k.Key)
			}
			if fmt.Sprint(keys) != fmt.Sprint(tc.wantKeys) || got.Policy("ns", "jwt").Spec.JWT.HMACSecret != "hmac-secret-0123456789-0123456789-abcdef" ||
				!strings.Contains(got.Policy("ns", "jwt").Spec.JWT.JWKS, `"k":"c3ltbWV0cmljLWtleS1zZWNyZXQtMDEyMzQ1Njc4OQ"`) {
				t.Errorf("keys %q, jwt %+v", keys, got.Policy("ns", "jwt").Spec.JWT)
			}
		})
	}
}

// TestProblemsHideMisplacedSecrets: a secret written in the wrong shape
// is not quoted by the problem about it.
func TestProblemsHideMisplacedSecrets(t *testing.T) {
	for _, tc := range []struct{ name, old, new, want string }{
		{"keys as a string", "    keys:\n      - {key: k-live-secret-0123456789, consumer: web}\n", "    keys: k-live-secret-0123456789\n    x:\n      - {key: k-live-secret-0123456789, consumer: web}\n",
			"spec.keyAuth.keys: expected list, got string (value not shown)"},
		{"a key as a number", "{key: k-other-secret-0123456789, consumer: partner}", "{key: 1234567890123, consumer: partner}",
			"spec.keyAuth.keys[2].key: expected string, got integer (value not shown)"},
		{"hmacSecret as a list", "hmacSecret: hmac-secret", "hmacSecret: [hmac-secret", "spec.jwt.hmacSecret: expected string, got list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(redactDoc, tc.old, tc.new, 1)
			if tc.name == "hmacSecret as a list" {
				doc = strings.Replace(doc, "-0123456789-0123456789-abcdef", "-0123456789-0123456789-abcdef]", 1)
			}
			if doc == redactDoc {
				t.Fatal("the test changed nothing")
			}
			_, err := LoadFiles([]File{{Name: "r.yaml", Data: []byte(doc)}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			for _, s := range append(redactSecrets, "1234567890123") {
				if strings.Contains(err.Error(), s) {
					t.Errorf("a problem shows %q:\n%v", s, err)
				}
			}
		})
	}
	// Other fields still quote their values.
	_, err := LoadFiles([]File{{Name: "r.yaml", Data: []byte(strings.Replace(redactDoc, "statusCode: 301", "statusCode: abc", 1))}})
	if err == nil || !strings.Contains(err.Error(), `expected integer, got string "abc"`) {
		t.Errorf("err = %v", err)
	}
}
