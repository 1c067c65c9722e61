package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/novaedge/novaedge/host/admin"
	"github.com/novaedge/novaedge/host/tlsconf/devcert"
)

// TestAdminTokenCommand: `novaedge admin token` prints a token and the
// tokens-file line that grants it, which only holds its hash.
func TestAdminTokenCommand(t *testing.T) {
	out, err := runCmd(context.Background(), "admin", "token", "--role", "write", "--name", "ci")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], admin.TokenPrefix) || !strings.HasPrefix(lines[3], "sha256:") {
		t.Fatalf("output:\n%s", out)
	}
	token, line := lines[1], lines[3]
	if strings.Contains(line, token) {
		t.Error("the line holds the token")
	}
	toks, err := admin.ParseTokens([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if name, role, ok := toks.Lookup(token); !ok || name != "ci" || role != admin.RoleWrite {
		t.Errorf("Lookup = %q %v %v", name, role, ok)
	}
	for _, args := range [][]string{{"--role", "root", "--name", "x"}, {"--role", "read"}, {"--name", "a b"}} {
		if _, err := runCmd(context.Background(), append([]string{"admin", "token"}, args...)...); err == nil {
			t.Errorf("admin token %v: no error", args)
		}
	}
}

// TestRunRefusesExposedAdmin: `novaedge run --admin 0.0.0.0:…` without
// tokens or mutual TLS exits 1 at once, saying why and what to do; with a
// tokens file it serves.
func TestRunRefusesExposedAdmin(t *testing.T) {
	dir := writeResources(t, freeAddr(t), "127.0.0.1:1")
	cmd := exec.Command(os.Args[0], "run", "--admin", "0.0.0.0:0", "-c", dir, "--state-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "NOVAEDGE_TEST_AS_MAIN=1")
	done := make(chan struct{})
	timer := time.AfterFunc(60*time.Second, func() { // a safety limit: the process must not serve
		select {
		case <-done:
		default:
			cmd.Process.Kill()
		}
	})
	out, err := cmd.CombinedOutput()
	close(done)
	timer.Stop()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	for _, want := range []string{"novaedge: admin API on 0.0.0.0:0: the admin API would be reachable from other hosts without authentication",
		"--admin-tokens FILE", "--admin-client-ca"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The same, in-process, for the settings' environment variable.
	t.Setenv("NOVAEDGE_ADMIN", "[::]:0")
	if _, err := runCmd(context.Background(), "run", "-c", dir, "--state-dir", t.TempDir()); !errors.Is(err, admin.ErrExposed) {
		t.Errorf("NOVAEDGE_ADMIN=[::]:0: %v", err)
	}
}

// TestAdminAPISecured: a gateway with a KeyAuth policy (the bundled
// plugin) and an admin tokens file. The CLI sends its token (flag,
// environment or file); GET /config shows no key, and its YAML pushed
// back unchanged keeps the KeyAuth policy working; the set minus the
// policy is refused to a read token; a change to the tokens file is
// read again.
func TestAdminAPISecured(t *testing.T) {
	backend := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "consumer="+r.Header.Get("X-Consumer"))
	})
	listen, adminAddr := freeAddr(t), freeAddr(t)
	dir := writeResources(t, listen, backend)
	const key = "k-live-secret-0123456789"
	if err := os.WriteFile(filepath.Join(dir, "keys.yaml"), []byte(`apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: keys, namespace: demo}
spec:
  type: KeyAuth
  targetRef: {kind: ProxyGateway, name: gw}
  keyAuth:
    keys: [{key: `+key+`, consumer: web}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	readTok, readLine, err := admin.NewToken(admin.RoleRead, "dashboard")
	if err != nil {
		t.Fatal(err)
	}
	writeTok, writeLine, err := admin.NewToken(admin.RoleWrite, "ops")
	if err != nil {
		t.Fatal(err)
	}
	tokDir := t.TempDir()
	tokens := filepath.Join(tokDir, "tokens")
	if err := os.WriteFile(tokens, []byte(readLine+"\n"+writeLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startRun(t, adminAddr, "-c", dir, "--admin-tokens", tokens)

	gateway := func(withKey bool) string {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+listen+"/x", nil)
		if withKey {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Status[:3] + " " + strings.TrimSpace(string(b))
	}
	if got := gateway(true); got != "200 consumer=web" {
		t.Fatalf("with the key: %q", got)
	}
	if got := gateway(false); !strings.HasPrefix(got, "401") {
		t.Fatalf("without a key: %q", got)
	}

	// The CLI.
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(writeTok+"\n"), 0o600)
	for _, tc := range []struct {
		name    string
		env     string // NOVAEDGE_ADMIN_TOKEN
		args    []string
		wantErr string
		wantOut string
	}{
		{name: "status without a token", args: []string{"status"}, wantErr: "401 Unauthorized"},
		{name: "status, read token", args: []string{"status", "--admin-token", readTok}, wantOut: "CONFIG HASH"},
		{name: "status, token from the environment", env: readTok, args: []string{"status"}, wantOut: "CONFIG HASH"},
		{name: "status, wrong token", args: []string{"status", "--admin-token", readTok + "x"}, wantErr: "invalid token"},
		{name: "reload, read token", args: []string{"reload", "--admin-token", readTok}, wantErr: "403 Forbidden"},
		{name: "reload, write token", args: []string{"reload", "--admin-token", writeTok}, wantOut: "unchanged in "},
		{name: "reload, token file", args: []string{"reload", "--admin-token-file", tokenFile}, wantOut: "unchanged in "},
		{name: "plugin reload, read token", env: readTok, args: []string{"plugin", "reload", "keys"}, wantErr: "write role"},
		{name: "plugin reload, write token", env: writeTok, args: []string{"plugin", "reload", "demo/keys"}, wantOut: "applied in "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("NOVAEDGE_ADMIN_TOKEN", tc.env)
			if tc.env == "" {
				os.Unsetenv("NOVAEDGE_ADMIN_TOKEN")
			}
			out, err := runCmd(context.Background(), append(tc.args, "--admin", adminAddr)...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want %q\n%s", err, tc.wantErr, out)
				}
				return
			}
			if err != nil || !strings.Contains(out, tc.wantOut) {
				t.Errorf("err = %v, out:\n%s", err, out)
			}
		})
	}

	call := func(method, path, token, body string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+adminAddr+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, ym := call("GET", "/config?format=yaml", readTok, "")
	if resp.StatusCode != 200 || strings.Contains(ym, key) || !strings.Contains(ym, "key: <redacted:hmac-sha256:") {
		t.Fatalf("GET /config?format=yaml: %d\n%s", resp.StatusCode, ym)
	}
	etag := resp.Header.Get("ETag")
	resp, body := call("PUT", "/config", writeTok, ym, "Content-Type", "application/yaml", "If-Match", etag)
	if resp.StatusCode != 200 || !strings.Contains(body, `"unchanged"`) {
		t.Fatalf("PUT back: %d %s", resp.StatusCode, body)
	}
	if got := gateway(true); got != "200 consumer=web" {
		t.Errorf("with the key after the round trip: %q", got)
	}
	var minus []string
	for _, d := range strings.Split(ym, "---\n") {
		if !strings.Contains(d, "type: KeyAuth") {
			minus = append(minus, d)
		}
	}
	for _, tok := range []string{"", readTok} {
		if resp, body := call("PUT", "/config", tok, strings.Join(minus, "---\n"), "Content-Type", "application/yaml"); resp.StatusCode != 401 && resp.StatusCode != 403 {
			t.Errorf("PUT minus KeyAuth with token %q: %d %s", tok, resp.StatusCode, body)
		}
	}
	if got := gateway(false); !strings.HasPrefix(got, "401") {
		t.Errorf("without a key after the refused PUTs: %q", got)
	}

	// The tokens file is watched: a new token works, a removed one not.
	newTok, newLine, _ := admin.NewToken(admin.RoleRead, "new")
	if err := os.WriteFile(tokens, []byte(newLine+"\n"+writeLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool {
		resp, _ := call("GET", "/status", newTok, "")
		return resp.StatusCode == 200
	}, "the new token works")
	if resp, _ := call("GET", "/status", readTok, ""); resp.StatusCode != 401 {
		t.Errorf("the removed token: %d", resp.StatusCode)
	}
}

// TestAdminSettings: the admin API's settings come from flags, NOVAEDGE_*
// variables and the settings file, as the others do.
func TestAdminSettings(t *testing.T) {
	settingsFile := filepath.Join(t.TempDir(), "novaedge.yaml")
	os.WriteFile(settingsFile, []byte("admin-tls-cert: /etc/a.crt\nadmin-tls-key: /etc/a.key\nadmin-hostnames: [admin.internal, gw.example]\n"), 0o644)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want admin.Access
	}{
		{name: "flags", args: []string{"--admin-tokens", "/t", "--admin-client-ca", "/ca", "--admin-hostnames", "a.example,b.example"},
			want: admin.Access{TokensFile: "/t", ClientCA: "/ca", Hostnames: []string{"a.example", "b.example"}}},
		{name: "environment", env: map[string]string{"NOVAEDGE_ADMIN_TOKENS": "/env/t", "NOVAEDGE_ADMIN_HOSTNAMES": "x.example,y.example"},
			want: admin.Access{TokensFile: "/env/t", Hostnames: []string{"x.example", "y.example"}}},
		{name: "settings file", args: []string{"--settings", settingsFile},
			want: admin.Access{TLSCert: "/etc/a.crt", TLSKey: "/etc/a.key", Hostnames: []string{"admin.internal", "gw.example"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cmd := newRunCmd()
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			s, err := loadSettings(cmd)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.adminAccess(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("access %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestAdminMutualTLSCLI: an admin API over HTTPS with a client CA; the
// CLI reaches it with --admin https://…, --admin-cacert and a client
// certificate (OU=write), and without a certificate gets 401.
func TestAdminMutualTLSCLI(t *testing.T) {
	ca, err := devcert.NewCA("admin CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certPEM, keyPEM, err := ca.Issue(devcert.Leaf{Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	serverCert, serverKey, caFile := file("tls.crt", certPEM), file("tls.key", keyPEM), file("ca.crt", ca.CertPEM)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "deployer", OrganizationalUnit: []string{"write"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	clientCert := file("client.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	clientKey := file("client.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))

	listen, adminAddr := freeAddr(t), freeAddr(t)
	res := writeResources(t, listen, "127.0.0.1:1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := runCmd(ctx, "run", "--admin", adminAddr, "-c", res, "--state-dir", t.TempDir(), "--shutdown-grace", "5s",
			"--admin-tls-cert", serverCert, "--admin-tls-key", serverKey, "--admin-client-ca", caFile)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	status := func(args ...string) (string, error) {
		return runCmd(context.Background(), append([]string{"status", "--admin", "https://" + adminAddr, "--admin-cacert", caFile}, args...)...)
	}
	waitUntil(t, func() bool {
		_, err := status("--admin-cert", clientCert, "--admin-key", clientKey)
		return err == nil
	}, "the HTTPS admin API answers")
	if out, err := status("--admin-cert", clientCert, "--admin-key", clientKey); err != nil || !strings.Contains(out, "CONFIG HASH") {
		t.Errorf("status with the client certificate: %v\n%s", err, out)
	}
	if out, err := runCmd(context.Background(), "reload", "--admin", "https://"+adminAddr, "--admin-cacert", caFile,
		"--admin-cert", clientCert, "--admin-key", clientKey); err != nil || !strings.Contains(out, "unchanged in ") {
		t.Errorf("reload with the client certificate: %v\n%s", err, out)
	}
	if _, err := status(); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("status without a certificate: %v", err)
	}
	if _, err := runCmd(context.Background(), "status", "--admin", "https://"+adminAddr); err == nil {
		t.Error("status without the CA: no error")
	}
}
