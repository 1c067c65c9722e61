package admin

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/proxy"
	"github.com/novaedge/novaedge/host/reload"
	"github.com/novaedge/novaedge/host/tlsconf/devcert"
)

// Secrets of the test configuration: none may leave the admin API.
const (
	testAPIKey = "k-live-secret-0123456789"
	testHMAC   = "hmac-secret-0123456789-0123456789-abcdef"
	testJWKK   = "c3ltbWV0cmljLWtleS1zZWNyZXQtMDEyMzQ1Njc4OQ"
	readToken  = "read-token-0123456789"
	writeToken = "write-token-0123456789"
)

// testResources is a gateway on port with a KeyAuth policy and a JWT
// policy that hold secrets; extra is appended.
func testResources(port int, extra string) string {
	return fmt.Sprintf(`apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: ns}
spec:
  listeners: [{name: http, address: 127.0.0.1, port: %d, protocol: HTTP}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyBackend
metadata: {name: be, namespace: ns}
spec:
  endpoints: [{address: "127.0.0.1:1"}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyRoute
metadata: {name: r, namespace: ns}
spec:
  rules: [{backendRefs: [{name: be}]}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: keys, namespace: ns}
spec:
  type: KeyAuth
  targetRef: {kind: ProxyGateway, name: gw}
  keyAuth:
    keys: [{key: %s, consumer: web}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: jwt, namespace: ns}
spec:
  type: JWT
  targetRef: {kind: ProxyRoute, name: r}
  jwt:
    allowedAlgorithms: [HS256]
    hmacSecret: %s
    jwks: '{"keys":[{"kty":"oct","kid":"a","k":"%s"}]}'
%s`, port, testAPIKey, testHMAC, testJWKK, extra)
}

// testAdmin is an admin API on a real listener in front of a gateway
// serving testResources.
type testAdmin struct {
	t    *testing.T
	s    *Server
	gw   *proxy.Gateway
	base string // http(s)://127.0.0.1:port
	addr string
	logs *syncBuffer
	port int // the gateway's
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func startTestAdmin(t *testing.T, acc Access) *testAdmin {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	gw := proxy.New(proxy.Options{Logger: logger})
	t.Cleanup(func() { gw.Shutdown(context.Background()) })
	port := freePort(t)
	load := func() (*configs.Snapshot, error) {
		return configs.LoadFiles([]configs.File{{Name: "r.yaml", Data: []byte(testResources(port, ""))}})
	}
	snap, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Apply(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	s := New(gw, nil, logger)
	s.SetReloader(reload.New(gw, load, reload.Options{Logger: logger}))
	s.SetReady(true)
	if err := s.Start("127.0.0.1:0", acc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	scheme := "http"
	if acc.TLSCert != "" {
		scheme = "https"
	}
	return &testAdmin{t: t, s: s, gw: gw, base: scheme + "://" + s.Addr(), addr: s.Addr(), logs: logs, port: port}
}

// writeTokens writes a tokens file with the read and write tokens.
func writeTokens(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "tokens")
	data := TokenLine(readToken, RoleRead, "grafana") + "\n" + writeToken + " write ops\n"
	if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// call sends a request; hdr are name, value pairs ("Host" sets the Host).
func (a *testAdmin) call(c *http.Client, method, path, body string, hdr ...string) (int, string) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		a.t.Errorf("%s %s: a CORS header", method, path)
	}
	return resp.StatusCode, string(b)
}

// endpoint is one endpoint of the admin API and what it answers when
// allowed.
type endpoint struct {
	method, path string
	level        Role
	ok           int
}

func endpoints() []endpoint {
	return []endpoint{
		{"GET", "/healthz", open, 200},
		{"GET", "/readyz", open, 200},
		{"GET", "/metrics", RoleRead, 200},
		{"GET", "/status", RoleRead, 200},
		{"GET", "/config", RoleRead, 200},
		{"GET", "/config?format=yaml", RoleRead, 200},
		{"GET", "/reload", RoleRead, 200},
		{"POST", "/reload", RoleWrite, 200},
		{"PUT", "/config", RoleWrite, 200},
		{"POST", "/plugins/ns/keys/reload", RoleWrite, 200},
		{"POST", "/plugins/keys/reload", RoleWrite, 200},
		{"POST", "/cache/purge", RoleWrite, 200},
		{"GET", "/debug/pprof/cmdline", RoleWrite, 200},
		{"GET", "/debug/pprof/", RoleWrite, 200},
	}
}

// TestAccessRules: every endpoint × {no credentials, wrong token, read
// token, write token, foreign Host, cross-origin simple request} against
// a real listener on 127.0.0.1 with bearer tokens.
func TestAccessRules(t *testing.T) {
	tokensFile := writeTokens(t)
	a := startTestAdmin(t, Access{TokensFile: tokensFile})
	yamlBody := func() string {
		_, body := a.call(nil, "GET", "/config?format=yaml", "", "Authorization", "Bearer "+readToken)
		return body
	}
	type credentials struct {
		name string
		hdr  []string
		want func(e endpoint) int
	}
	allowedFor := func(r Role, otherwise int) func(e endpoint) int {
		return func(e endpoint) int {
			if e.level <= r {
				return e.ok
			}
			return otherwise
		}
	}
	for _, cr := range []credentials{
		{"no credentials", []string{"Content-Type", "application/json"}, allowedFor(open, 401)},
		{"wrong token", []string{"Authorization", "Bearer " + writeToken + "x"}, allowedFor(open, 401)},
		{"not bearer", []string{"Authorization", "Basic " + writeToken, "X-NovaEdge-Admin", "1"}, allowedFor(open, 401)},
		{"read token", []string{"Authorization", "Bearer " + readToken}, allowedFor(RoleRead, 403)},
		{"write token", []string{"Authorization", "Bearer " + writeToken}, allowedFor(RoleWrite, 0)},
		{"write token, foreign Host", []string{"Authorization", "Bearer " + writeToken, "Host", "attacker.example:9901"}, allowedFor(open, 421)},
		{"write token, foreign Origin", []string{"Authorization", "Bearer " + writeToken, "Origin", "http://attacker.example"}, allowedFor(open, 403)},
		{"cross-origin simple request", []string{"Content-Type", "text/plain", "Origin", "http://attacker.example"}, allowedFor(open, 403)},
		{"cross-site fetch", []string{"Authorization", "Bearer " + writeToken, "Sec-Fetch-Site", "cross-site"}, allowedFor(open, 403)},
	} {
		for _, e := range endpoints() {
			t.Run(cr.name+"/"+e.method+" "+e.path, func(t *testing.T) {
				body := ""
				if e.method == "PUT" {
					body = yamlBody()
				}
				got, resp := a.call(nil, e.method, e.path, body, cr.hdr...)
				if want := cr.want(e); got != want {
					t.Errorf("%s %s = %d, want %d: %.300s", e.method, e.path, got, want, resp)
				}
			})
		}
	}
	// The Host check takes the admin API's own names, with or without
	// the port, and names given in Access.Hostnames (none here).
	for _, host := range []string{a.addr, "localhost", "LOCALHOST.:9901", "[::1]:9901", "127.0.0.1"} {
		if got, _ := a.call(nil, "GET", "/status", "", "Authorization", "Bearer "+readToken, "Host", host); got != 200 {
			t.Errorf("Host %q: %d", host, got)
		}
	}
	// ReloadTokens of an unchanged file does nothing and logs nothing
	// (the watcher calls it for any change in the file's directory, which
	// may hold the gateway's own log: a line per reload was a loop).
	for i := 0; i < 3; i++ {
		if err := a.s.ReloadTokens(); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(a.logs.String(), "admin tokens loaded"); n != 0 {
		t.Errorf("%d reloads of an unchanged tokens file were logged", n)
	}
	// The tokens file was read once; a change takes effect at ReloadTokens.
	if err := os.WriteFile(tokensFile, []byte(TokenLine("new-token-0123456789", RoleWrite, "new")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.call(nil, "GET", "/status", "", "Authorization", "Bearer new-token-0123456789"); got != 401 {
		t.Errorf("new token before ReloadTokens: %d", got)
	}
	if err := a.s.ReloadTokens(); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.call(nil, "GET", "/status", "", "Authorization", "Bearer new-token-0123456789"); got != 200 {
		t.Errorf("new token after ReloadTokens: %d", got)
	}
	if got, _ := a.call(nil, "GET", "/status", "", "Authorization", "Bearer "+readToken); got != 401 {
		t.Errorf("a token removed from the file still works: %d", got)
	}
	// A broken file keeps the tokens in force.
	if err := os.WriteFile(tokensFile, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.s.ReloadTokens(); err == nil {
		t.Error("ReloadTokens of a broken file: no error")
	}
	if got, _ := a.call(nil, "GET", "/status", "", "Authorization", "Bearer new-token-0123456789"); got != 200 {
		t.Errorf("after a broken tokens file: %d", got)
	}
	if strings.Contains(a.logs.String(), writeToken) || strings.Contains(a.logs.String(), readToken) {
		t.Error("a token is in the log")
	}
}

// TestLoopbackWithoutAuthentication: on loopback without tokens, the
// admin API needs no credentials but still checks Host and refuses
// cross-origin and simple requests that would change something.
func TestLoopbackWithoutAuthentication(t *testing.T) {
	a := startTestAdmin(t, Access{Hostnames: []string{"admin.internal"}})
	for _, tc := range []struct {
		name, method, path string
		hdr                []string
		want               int
	}{
		{"read", "GET", "/status", nil, 200},
		{"read config", "GET", "/config", nil, 200},
		{"pprof", "GET", "/debug/pprof/cmdline", nil, 200},
		{"a configured name", "GET", "/status", []string{"Host", "admin.internal:9901"}, 200},
		{"write with X-NovaEdge-Admin", "POST", "/reload", []string{"X-NovaEdge-Admin", "1"}, 200},
		{"write with JSON", "POST", "/reload", []string{"Content-Type", "application/json; charset=utf-8"}, 200},
		{"write with YAML", "POST", "/reload", []string{"Content-Type", "application/yaml"}, 200},
		{"write with a bearer token (not checked)", "POST", "/reload", []string{"Authorization", "Bearer anything"}, 200},
		{"same-origin write", "POST", "/reload", []string{"X-NovaEdge-Admin", "1", "Origin", "http://ADDR"}, 200},
		{"simple POST, no type", "POST", "/reload", nil, 403},
		{"simple POST, text/plain", "POST", "/reload", []string{"Content-Type", "text/plain"}, 403},
		{"simple POST, form", "POST", "/cache/purge", []string{"Content-Type", "application/x-www-form-urlencoded"}, 403},
		{"simple POST, multipart", "POST", "/plugins/keys/reload", []string{"Content-Type", "multipart/form-data; boundary=x"}, 403},
		{"cross-origin simple POST", "POST", "/reload", []string{"Content-Type", "text/plain", "Origin", "http://attacker.example"}, 403},
		{"cross-origin JSON POST", "POST", "/reload", []string{"Content-Type", "application/json", "Origin", "http://attacker.example"}, 403},
		{"null Origin", "POST", "/reload", []string{"X-NovaEdge-Admin", "1", "Origin", "null"}, 403},
		{"cross-origin GET", "GET", "/config", []string{"Origin", "http://attacker.example"}, 403},
		{"DNS rebinding: GET", "GET", "/config", []string{"Host", "attacker.example:9901"}, 421},
		{"DNS rebinding: PUT", "PUT", "/config", []string{"Host", "attacker.example", "Content-Type", "application/yaml"}, 421},
		{"DNS rebinding: healthz stays open", "GET", "/healthz", []string{"Host", "attacker.example"}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range tc.hdr {
				tc.hdr[i] = strings.ReplaceAll(tc.hdr[i], "ADDR", a.addr)
			}
			if got, body := a.call(nil, tc.method, tc.path, "", tc.hdr...); got != tc.want {
				t.Errorf("%s %s = %d, want %d: %.200s", tc.method, tc.path, got, tc.want, body)
			}
		})
	}
}

func TestCheckExposure(t *testing.T) {
	for _, tc := range []struct {
		name, host    string
		authenticated bool
		exposed       bool
	}{
		{"loopback v4", "127.0.0.1", false, false},
		{"loopback v4 range", "127.0.0.2", false, false},
		{"loopback v6", "::1", false, false},
		{"loopback v6 bracketed", "[::1]", false, false},
		{"localhost", "localhost", false, false},
		{"every interface", "0.0.0.0", false, true},
		{"every interface v6", "::", false, true},
		{"empty host", "", false, true},
		{"private address", "10.1.2.3", false, true},
		{"v4-mapped non-loopback", "::ffff:10.1.2.3", false, true},
		{"every interface with authentication", "0.0.0.0", true, false},
		{"a name: judged when bound", "admin.example", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckExposure(tc.host, tc.authenticated)
			if got := errors.Is(err, ErrExposed); got != tc.exposed {
				t.Errorf("CheckExposure(%q, %v) = %v", tc.host, tc.authenticated, err)
			}
		})
	}
	// Start refuses, before binding.
	s := New(proxy.New(proxy.Options{}), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := s.Start("0.0.0.0:0", Access{}); !errors.Is(err, ErrExposed) {
		t.Errorf("Start on 0.0.0.0 without authentication: %v", err)
	}
	if err := s.Start(":0", Access{}); !errors.Is(err, ErrExposed) {
		t.Errorf("Start on :0 without authentication: %v", err)
	}
	if s.Addr() != "" {
		t.Error("an exposed admin API was bound")
	}
}

// TestAuditLog: every request to a write endpoint, allowed or refused,
// logs one "admin audit" line with who, what and the result, never the
// token; reads do not.
func TestAuditLog(t *testing.T) {
	a := startTestAdmin(t, Access{TokensFile: writeTokens(t)})
	a.call(nil, "GET", "/status", "", "Authorization", "Bearer "+readToken)
	a.call(nil, "POST", "/reload", "", "Authorization", "Bearer "+writeToken)
	a.call(nil, "POST", "/cache/purge?prefix=api.example.com/x", "", "Authorization", "Bearer "+readToken)
	a.call(nil, "POST", "/reload", "", "Authorization", "Bearer "+writeToken+"-wrong")
	a.call(nil, "POST", "/reload", "", "Content-Type", "text/plain", "Origin", "http://attacker.example")
	a.call(nil, "GET", "/debug/pprof/cmdline", "", "Authorization", "Bearer "+writeToken)

	type line struct {
		Msg, Method, Path, Query, Remote, Principal, Role, Duration string
		Status                                                      int
	}
	var got []line
	for _, l := range strings.Split(strings.TrimSpace(a.logs.String()), "\n") {
		var v line
		if json.Unmarshal([]byte(l), &v) == nil && v.Msg == "admin audit" {
			if !strings.HasPrefix(v.Remote, "127.0.0.1:") || v.Duration == "" {
				t.Errorf("audit line without remote or duration: %s", l)
			}
			v.Remote, v.Duration, v.Msg = "", "", ""
			got = append(got, v)
		}
	}
	want := []line{
		{Method: "POST", Path: "/reload", Principal: "token:ops", Role: "write", Status: 200},
		{Method: "POST", Path: "/cache/purge", Query: "prefix=api.example.com/x", Principal: "token:grafana", Role: "read", Status: 403},
		{Method: "POST", Path: "/reload", Principal: "-", Role: "none", Status: 401},
		{Method: "POST", Path: "/reload", Principal: "-", Role: "none", Status: 403},
		{Method: "GET", Path: "/debug/pprof/cmdline", Principal: "token:ops", Role: "write", Status: 200},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audit lines:\n got %+v\nwant %+v", got, want)
	}
	if strings.Contains(a.logs.String(), writeToken) || strings.Contains(a.logs.String(), readToken) {
		t.Error("a token is in the log")
	}
}

// clientCert issues a client certificate with ou under ca and returns its
// TLS form.
func clientCert(t *testing.T, ca *devcert.CA, cn, ou string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, OrganizationalUnit: []string{ou}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMutualTLS: with a client CA, a verified client certificate
// authenticates with the role its OU names; no certificate reaches only
// the open endpoints (or uses a token); a certificate of another CA does
// not get through the handshake.
func TestMutualTLS(t *testing.T) {
	ca, err := devcert.NewCA("admin test CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := devcert.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPEM, keyPEM, err := ca.Issue(devcert.Leaf{Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "ca.crt": ca.CertPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a := startTestAdmin(t, Access{TLSCert: filepath.Join(dir, "tls.crt"), TLSKey: filepath.Join(dir, "tls.key"),
		ClientCA: filepath.Join(dir, "ca.crt"), TokensFile: writeTokens(t)})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}}}
	}
	writer, reader, noRole := client(clientCert(t, ca, "deployer", "write")), client(clientCert(t, ca, "dashboard", "read")), client(clientCert(t, ca, "someone", "ops"))
	for _, tc := range []struct {
		name         string
		c            *http.Client
		method, path string
		hdr          []string
		want         int
	}{
		{"no certificate: healthz", client(), "GET", "/healthz", nil, 200},
		{"no certificate: status", client(), "GET", "/status", nil, 401},
		{"no certificate, token", client(), "GET", "/status", []string{"Authorization", "Bearer " + readToken}, 200},
		{"OU=read: status", reader, "GET", "/status", nil, 200},
		{"OU=read: reload", reader, "POST", "/reload", []string{"X-NovaEdge-Admin", "1"}, 403},
		{"OU=read: pprof", reader, "GET", "/debug/pprof/cmdline", nil, 403},
		{"no role OU: read", noRole, "GET", "/config", nil, 200},
		{"no role OU: reload", noRole, "POST", "/reload", []string{"X-NovaEdge-Admin", "1"}, 403},
		{"OU=write: reload", writer, "POST", "/reload", []string{"X-NovaEdge-Admin", "1"}, 200},
		{"OU=write: simple POST", writer, "POST", "/reload", []string{"Content-Type", "text/plain"}, 403},
		{"OU=write: cross-origin", writer, "POST", "/reload", []string{"X-NovaEdge-Admin", "1", "Origin", "https://attacker.example"}, 403},
		{"OU=write: same origin", writer, "POST", "/reload", []string{"X-NovaEdge-Admin", "1", "Origin", "https://ADDR"}, 200},
		{"OU=write: foreign Host", writer, "GET", "/status", []string{"Host", "attacker.example"}, 421},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range tc.hdr {
				tc.hdr[i] = strings.ReplaceAll(tc.hdr[i], "ADDR", a.addr)
			}
			if got, body := a.call(tc.c, tc.method, tc.path, "", tc.hdr...); got != tc.want {
				t.Errorf("%s %s = %d, want %d: %.200s", tc.method, tc.path, got, tc.want, body)
			}
		})
	}
	// A certificate of another CA fails the handshake (Go's client sends
	// a certificate the server's CA list does not name only when made to).
	intruder := clientCert(t, other, "intruder", "write")
	forced := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &intruder, nil }}}}
	req, _ := http.NewRequest("GET", a.base+"/healthz", nil)
	if resp, err := forced.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("a certificate of another CA: %d", resp.StatusCode)
	}
	if !strings.Contains(a.logs.String(), `"principal":"cert:CN=deployer,OU=write"`) {
		t.Errorf("no audit line naming the certificate:\n%s", a.logs.String())
	}
}

// TestStartRefusesBadAccess: Start names what is wrong with its access
// configuration.
func TestStartRefusesBadAccess(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("nope\n"), 0o600)
	for _, tc := range []struct {
		name string
		acc  Access
		want string
	}{
		{"missing tokens file", Access{TokensFile: filepath.Join(dir, "none")}, "admin tokens file"},
		{"broken tokens file", Access{TokensFile: bad}, "line 1"},
		{"client CA without a certificate", Access{ClientCA: bad}, "needs a certificate"},
		{"certificate without key", Access{TLSCert: bad}, "both a certificate and a key"},
		{"unreadable certificate", Access{TLSCert: bad, TLSKey: bad}, "TLS certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(proxy.New(proxy.Options{}), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err := s.Start("127.0.0.1:0", tc.acc); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start = %v, want %q", err, tc.want)
				s.Shutdown(context.Background())
			}
		})
	}
}
