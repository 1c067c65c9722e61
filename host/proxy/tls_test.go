package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/gwtest"
	"github.com/novaedge/novaedge/host/tlsconf/devcert"
)

// tlsEnv is a secrets directory with certificates of a test CA.
type tlsEnv struct {
	ca   *devcert.CA
	dir  string
	pool *x509.CertPool
}

func newTLSEnv(t testing.TB) *tlsEnv {
	t.Helper()
	ca, err := devcert.NewCA("proxy test CA")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	return &tlsEnv{ca: ca, dir: t.TempDir(), pool: pool}
}

// secret writes the secret ns/name for hosts.
func (e *tlsEnv) secret(t testing.TB, ns, name string, hosts ...string) {
	t.Helper()
	c, k, err := e.ca.Issue(devcert.Leaf{Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	if err := devcert.WriteSecret(filepath.Join(e.dir, ns, name), c, k); err != nil {
		t.Fatal(err)
	}
}

func (e *tlsEnv) start(t testing.TB, resources string) *Gateway {
	t.Helper()
	gw := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), SecretsDir: e.dir,
		TLS: TLSOptions{Debounce: 10 * time.Millisecond}})
	gwtest.Serve(t, gw, resources)
	return gw
}

// dial makes a TLS handshake with the gateway at addr as serverName.
func (e *tlsEnv) dial(addr, serverName string, maxVersion uint16) (*tls.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: e.pool, ServerName: serverName, MaxVersion: maxVersion})
}

// client returns an HTTPS client that connects every request to addr.
func (e *tlsEnv) client(addr string, h2 bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: e.pool},
		ForceAttemptHTTP2:   h2,
		MaxIdleConnsPerHost: 64,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

const tlsGatewayYAML = `apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: t}
spec:
  listeners:
    - name: a
      address: 127.0.0.1
      port: %[1]d
      protocol: HTTPS
      hostnames: [a.example.com]
      tls: {secretRef: {name: a-cert}, minVersion: TLS1.3}
      sslRedirect: true
    - name: b
      address: 127.0.0.1
      port: %[1]d
      protocol: HTTPS
      hostnames: ["*.example.org"]
      tls: {secretRef: {name: b-cert, namespace: t}}
    - name: http
      address: 127.0.0.1
      port: %[2]d
      protocol: HTTP
`

func TestHTTPSListeners(t *testing.T) {
	env := newTLSEnv(t)
	env.secret(t, "t", "a-cert", "a.example.com")
	env.secret(t, "t", "b-cert", "*.example.org")
	be := newBackend(t, nil)
	tlsPort, httpPort := freePort(t), freePort(t)
	gw := env.start(t, fmt.Sprintf(tlsGatewayYAML, tlsPort, httpPort)+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`))
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", tlsPort)
	httpBase := fmt.Sprintf("http://127.0.0.1:%d", httpPort)

	t.Run("SNI picks the certificate", func(t *testing.T) {
		for _, tc := range []struct{ sni, want string }{
			{"a.example.com", "a.example.com"},
			{"www.example.org", "*.example.org"},
		} {
			c, err := env.dial(tlsAddr, tc.sni, 0)
			if err != nil {
				t.Fatalf("%s: %v", tc.sni, err)
			}
			leaf := c.ConnectionState().PeerCertificates[0]
			c.Close()
			if leaf.Subject.CommonName != tc.want {
				t.Errorf("SNI %s: leaf %q, want %q", tc.sni, leaf.Subject.CommonName, tc.want)
			}
		}
	})

	t.Run("minVersion TLS1.3 refuses TLS 1.2", func(t *testing.T) {
		if c, err := env.dial(tlsAddr, "a.example.com", tls.VersionTLS12); err == nil {
			c.Close()
			t.Fatal("a TLS 1.2 handshake succeeded on a TLS1.3 listener")
		}
		c, err := env.dial(tlsAddr, "a.example.com", 0)
		if err != nil {
			t.Fatal(err)
		}
		if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
			t.Errorf("version %x", v)
		}
		c.Close()
		// The other listener of the port keeps the default minimum.
		c, err = env.dial(tlsAddr, "www.example.org", tls.VersionTLS12)
		if err != nil {
			t.Fatalf("TLS 1.2 on the TLS1.2 listener: %v", err)
		}
		c.Close()
	})

	t.Run("HTTP/2 over TLS", func(t *testing.T) {
		resp, err := env.client(tlsAddr, true).Get("https://a.example.com/h2?x=1")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.Proto != "HTTP/2.0" || resp.StatusCode != 200 || string(body) != "hello from GET /h2?x=1" {
			t.Fatalf("%s %d %q", resp.Proto, resp.StatusCode, body)
		}
		r, _ := be.lastRequest()
		if r.Header.Get("X-Forwarded-Proto") != "https" {
			t.Errorf("X-Forwarded-Proto %q", r.Header.Get("X-Forwarded-Proto"))
		}
	})

	t.Run("Host of another listener than the SNI's: 421", func(t *testing.T) {
		c := env.client(tlsAddr, false)
		for _, tc := range []struct {
			url, host string
			want      int
		}{
			{"https://www.example.org/", "a.example.com", 421}, // TLS 1.2 allowed by SNI, not by a.example.com
			{"https://a.example.com/", "www.example.org", 421},
			{"https://a.example.com/", "A.Example.COM:443", 200},
			{"https://www.example.org/", "other.example.org", 200}, // the same wildcard listener
		} {
			req, _ := http.NewRequest("GET", tc.url, nil)
			req.Host = tc.host
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("SNI of %s, Host %s: %d, want %d", tc.url, tc.host, resp.StatusCode, tc.want)
			}
		}
	})

	t.Run("HTTP/1.1 over TLS", func(t *testing.T) {
		resp, err := env.client(tlsAddr, false).Get("https://www.example.org/one")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Proto != "HTTP/1.1" || resp.StatusCode != 200 {
			t.Fatalf("%s %d", resp.Proto, resp.StatusCode)
		}
	})

	t.Run("sslRedirect sends plain HTTP for its hostnames to HTTPS, with the port", func(t *testing.T) {
		resp := get(t, httpBase+"/p/q?r=1", "Host", "a.example.com:80")
		want := fmt.Sprintf("https://a.example.com:%d/p/q?r=1", tlsPort)
		if resp.StatusCode != 301 || resp.Header.Get("Location") != want {
			t.Fatalf("%d %q, want 301 %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
		hits := be.Hits()
		// Hosts of no sslRedirect listener are routed.
		resp = get(t, httpBase+"/p", "Host", "other.example.net")
		if resp.StatusCode != 200 || be.Hits() != hits+1 {
			t.Fatalf("other host: %d", resp.StatusCode)
		}
	})

	t.Run("rotation applies to new handshakes; established connections stay", func(t *testing.T) {
		c := env.client(tlsAddr, false)
		var reused []bool
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) }}
		getOnce := func() *http.Response {
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "https://a.example.com/rot", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp
		}
		first := getOnce().TLS.PeerCertificates[0].SerialNumber

		env.secret(t, "t", "a-cert", "a.example.com") // a new certificate
		var now string
		for range 1000 {
			conn, err := env.dial(tlsAddr, "a.example.com", 0)
			if err != nil {
				t.Fatal(err)
			}
			now = conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
			conn.Close()
			if now != first.String() {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if now == first.String() {
			t.Fatal("new handshakes never got the new certificate")
		}
		resp := getOnce() // on the connection made before the rotation
		if resp.StatusCode != 200 || len(reused) != 2 || !reused[1] {
			t.Fatalf("status %d, reused %v: the established connection was not kept", resp.StatusCode, reused)
		}
		if s := resp.TLS.PeerCertificates[0].SerialNumber; s.Cmp(first) != 0 {
			t.Errorf("the old connection changed certificate")
		}
	})

	t.Run("a missing secret rejects the change; the running config serves on", func(t *testing.T) {
		bad := strings.Replace(fmt.Sprintf(tlsGatewayYAML, tlsPort, httpPort), "b-cert", "missing-cert", 1) + backendYAML("b", be.addr()) + route(`
    - backendRefs: [{name: b}]
`)
		snap, err := configs.LoadFiles([]configs.File{{Name: "test.yaml", Data: []byte(bad)}})
		if err != nil {
			t.Fatal(err)
		}
		err = gw.Apply(context.Background(), snap)
		if err == nil || !strings.Contains(err.Error(), `listener "b": tls.secretRef t/missing-cert`) || !strings.Contains(err.Error(), "no such file") {
			t.Fatalf("err = %v", err)
		}
		resp, err := env.client(tlsAddr, true).Get("https://www.example.org/still")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
}

func TestRedirectScheme(t *testing.T) {
	env := newTLSEnv(t)
	env.secret(t, "t", "c", "api.example.com")
	be := newBackend(t, nil)
	tlsPort, httpPort := freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	for _, tc := range []struct {
		name, redirect, host, want string
		code                       int
	}{
		{"to the scheme's default port", "redirectScheme: {enabled: true, scheme: https, port: 443, statusCode: 301}", "api.example.com", "https://api.example.com/x?y=1", 301},
		{"to a given port", "redirectScheme: {enabled: true, port: 8443, statusCode: 308}", "other.example.com:8080", "https://other.example.com:8443/x?y=1", 308},
		{"no port: the sslRedirect listener's", "redirectScheme: {enabled: true}", "api.example.com", fmt.Sprintf("https://api.example.com:%d/x?y=1", tlsPort), 301},
		{"disabled: sslRedirect alone", "redirectScheme: {enabled: false, statusCode: 302}", "api.example.com", fmt.Sprintf("https://api.example.com:%d/x?y=1", tlsPort), 301},
		{"IPv6 host", "redirectScheme: {enabled: true, port: 443}", "[::1]:80", "https://[::1]/x?y=1", 301},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw := env.start(t, fmt.Sprintf(`apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: t}
spec:
  %s
  listeners:
    - {name: s, address: 127.0.0.1, port: %d, protocol: HTTPS, hostnames: [api.example.com], sslRedirect: true, tls: {secretRef: {name: c}}}
    - {name: h, address: 127.0.0.1, port: %d, protocol: HTTP}
`, tc.redirect, tlsPort, httpPort)+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`))
			resp := get(t, base+"/x?y=1", "Host", tc.host)
			if resp.StatusCode != tc.code || resp.Header.Get("Location") != tc.want {
				t.Errorf("%d %q, want %d %q", resp.StatusCode, resp.Header.Get("Location"), tc.code, tc.want)
			}
			if be.Hits() != 0 {
				t.Error("a redirected request reached the backend")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			gw.Shutdown(ctx)
		})
	}
}

func TestRedirectLocation(t *testing.T) {
	for _, tc := range []struct {
		scheme, host string
		port         int
		uri, want    string
	}{
		{"https", "a.example.com", 443, "/x", "https://a.example.com/x"},
		{"https", "a.example.com:80", 8443, "/x?q", "https://a.example.com:8443/x?q"},
		{"http", "a.example.com", 80, "/", "http://a.example.com/"},
		{"https", "127.0.0.1:8080", 0, "/", "https://127.0.0.1/"},
		{"https", "[2001:db8::1]:80", 8443, "/", "https://[2001:db8::1]:8443/"},
		{"https", "evil.com@a.example.com", 443, "/", ""},
		{"https", "a.example.com/x", 443, "/", ""},
		{"https", "", 443, "/", ""},
		{"https", "a.example.com", 443, "//evil.com/", ""},
		{"https", "[1.2.3.4]", 443, "/", ""},
	} {
		got, ok := redirectLocation(tc.scheme, tc.host, tc.port, tc.uri)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s %q %d %q: %q %v, want %q", tc.scheme, tc.host, tc.port, tc.uri, got, ok, tc.want)
		}
	}
}

func FuzzRedirectLocation(f *testing.F) {
	for _, s := range []string{"a.example.com", "a.example.com:80", "[::1]:80", "evil.com@x", "x/y", "", "[", "a:b:c"} {
		f.Add(s, "/p?q=1", 8443)
	}
	f.Fuzz(func(t *testing.T, host, uri string, port int) {
		if port < 0 || port > 65535 {
			return
		}
		loc, ok := redirectLocation("https", host, port, uri)
		if !ok {
			return
		}
		u, err := url.Parse(loc)
		if err != nil {
			return // an unparsable request URI is the client's, copied as sent
		}
		h, _ := redirectHost(host)
		if u.Scheme != "https" || u.User != nil || !strings.EqualFold(u.Hostname(), strings.Trim(h, "[]")) {
			t.Fatalf("%q %q %d: %q points elsewhere (%q)", host, uri, port, loc, u.Host)
		}
	})
}
