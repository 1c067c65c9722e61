package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/novaedge/novaedge/host/tlsconf/devcert"
)

func newCA(t testing.TB) *devcert.CA {
	t.Helper()
	ca, err := devcert.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t testing.TB, ca *devcert.CA, l devcert.Leaf) (certPEM, keyPEM []byte) {
	t.Helper()
	c, k, err := ca.Issue(l)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

func putSecret(t testing.TB, ca *devcert.CA, dir string, l devcert.Leaf) {
	t.Helper()
	c, k := issue(t, ca, l)
	writeSecret(t, dir, c, k)
}

func writeSecret(t testing.TB, dir string, certPEM, keyPEM []byte) {
	t.Helper()
	if err := devcert.WriteSecret(dir, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
}

// logs collects log messages.
type logs struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logs) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.msgs = append(l.msgs, string(p))
		return len(p), nil
	}), nil))
}

func (l *logs) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// eventually polls cond every 10ms for up to 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("never happened: %s", what)
}

func leafCN(c *Cert) string { return c.Current().Leaf.Subject.CommonName }

func TestLoadErrors(t *testing.T) {
	ca := newCA(t)
	certA, keyA := issue(t, ca, devcert.Leaf{Hosts: []string{"a.example.com"}})
	_, keyB := issue(t, ca, devcert.Leaf{Hosts: []string{"b.example.com"}})
	for _, tc := range []struct {
		name      string
		cert, key []byte
		want      string
	}{
		{"missing", nil, nil, "no such file"},
		{"key does not match", certA, keyB, "private key does not match public key"},
		{"not PEM", []byte("hello"), keyA, "failed to find any PEM data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.cert != nil {
				writeSecret(t, dir, tc.cert, tc.key)
			}
			_, err := Load(dir, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if _, err := Check(dir, nil, time.Now()); err == nil {
				t.Error("Check accepts it")
			}
		})
	}
}

func TestReloadKeepsOldOnBadPair(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	putSecret(t, ca, dir, devcert.Leaf{Hosts: []string{"one.example.com"}})
	var lg logs
	c, err := Load(dir, Options{Logger: lg.logger(), Debounce: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if leafCN(c) != "one.example.com" {
		t.Fatalf("serving %q", leafCN(c))
	}

	putSecret(t, ca, dir, devcert.Leaf{Hosts: []string{"two.example.com"}})
	eventually(t, "the new pair is served", func() bool { return leafCN(c) == "two.example.com" })

	// A certificate whose key is not the one beside it is refused.
	cert3, _ := issue(t, ca, devcert.Leaf{Hosts: []string{"three.example.com"}})
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), cert3, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the bad pair is refused", func() bool { return lg.has("new TLS certificate refused") })
	if leafCN(c) != "two.example.com" {
		t.Errorf("after a bad pair, serving %q, want the previous two.example.com", leafCN(c))
	}
	if n := c.Reloads(); n != 1 {
		t.Errorf("Reloads = %d, want 1", n)
	}
}

// TestKubernetesSecretSwap updates the secret as the kubelet does: the
// files are symlinks through ..data, which is swapped atomically to a
// new timestamped directory.
func TestKubernetesSecretSwap(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	put := func(version, host string) {
		vdir := filepath.Join(dir, version)
		putSecret(t, ca, vdir, devcert.Leaf{Hosts: []string{host}})
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(version, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	put("..2026_01_01_00_00_00.1", "first.example.com")
	for _, f := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Load(dir, Options{Debounce: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if leafCN(c) != "first.example.com" {
		t.Fatalf("serving %q", leafCN(c))
	}
	put("..2026_01_02_00_00_00.2", "second.example.com")
	eventually(t, "the swapped secret is served", func() bool { return leafCN(c) == "second.example.com" })
}

// ocspResponder is an OCSP responder signing with the CA's key.
type ocspResponder struct {
	ca       *devcert.CA
	validity time.Duration
	status   int
	hits     atomic.Int64
}

func (o *ocspResponder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.hits.Add(1)
	body, _ := io.ReadAll(r.Body)
	req, err := ocsp.ParseRequest(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := time.Now()
	der, err := ocsp.CreateResponse(o.ca.Cert, o.ca.Cert, ocsp.Response{
		Status:       o.status,
		SerialNumber: req.SerialNumber,
		ThisUpdate:   now.Add(-time.Second),
		NextUpdate:   now.Add(o.validity),
		RevokedAt:    now.Add(-time.Hour),
	}, o.ca.Key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(der)
}

// handshakeOCSP serves c on a real TLS listener and returns the OCSP
// response a client receives.
func handshakeOCSP(t *testing.T, c *Cert, caPEM []byte) []byte {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.Current(), nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "ocsp.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().OCSPResponse
}

func TestOCSPStapling(t *testing.T) {
	ca := newCA(t)
	resp := &ocspResponder{ca: ca, validity: 2 * time.Second, status: ocsp.Good}
	srv := httptest.NewServer(resp)
	defer srv.Close()
	dir := t.TempDir()
	putSecret(t, ca, dir, devcert.Leaf{Hosts: []string{"ocsp.example.com"}, OCSPServer: srv.URL})
	c, err := Load(dir, Options{MinOCSPRefresh: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eventually(t, "a staple", func() bool { return c.Staples() >= 1 })

	staple := handshakeOCSP(t, c, ca.CertPEM)
	if staple == nil {
		t.Fatal("the client got no OCSP response")
	}
	parsed, err := ocsp.ParseResponseForCert(staple, c.Current().Leaf, ca.Cert)
	if err != nil || parsed.Status != ocsp.Good {
		t.Fatalf("stapled response: %v %+v", err, parsed)
	}
	// Refreshed before nextUpdate (halfway through its 2s validity).
	eventually(t, "a refreshed staple", func() bool { return c.Staples() >= 2 })
	if !bytes.Equal(c.Current().Certificate[0], mustDER(t, dir)) {
		t.Error("stapling changed the certificate")
	}
}

func mustDER(t *testing.T, dir string) []byte {
	t.Helper()
	p, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	return p.Certificate[0]
}

func TestOCSPRevokedIsNotStapled(t *testing.T) {
	ca := newCA(t)
	resp := &ocspResponder{ca: ca, validity: time.Hour, status: ocsp.Revoked}
	srv := httptest.NewServer(resp)
	defer srv.Close()
	dir := t.TempDir()
	putSecret(t, ca, dir, devcert.Leaf{Hosts: []string{"ocsp.example.com"}, OCSPServer: srv.URL})
	var lg logs
	c, err := Load(dir, Options{Logger: lg.logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eventually(t, "the revocation is logged", func() bool { return lg.has("revoked") })
	if c.Staples() != 0 || c.Current().OCSPStaple != nil {
		t.Error("a revoked response was stapled")
	}
	if staple := handshakeOCSP(t, c, ca.CertPEM); staple != nil {
		t.Error("the client got a staple")
	}
}

func TestOCSPResponderDownDoesNotBlock(t *testing.T) {
	ca := newCA(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Accepts and never answers: the fetch hangs until its timeout.
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	dir := t.TempDir()
	putSecret(t, ca, dir, devcert.Leaf{Hosts: []string{"ocsp.example.com"}, OCSPServer: "http://" + ln.Addr().String()})
	c, err := Load(dir, Options{OCSPClient: &http.Client{Timeout: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	if staple := handshakeOCSP(t, c, ca.CertPEM); staple != nil {
		t.Error("a staple from a responder that never answered")
	}
	c.Close() // cancels the hanging fetch
}

func TestCheck(t *testing.T) {
	ca := newCA(t)
	now := time.Now()
	for _, tc := range []struct {
		name  string
		leaf  devcert.Leaf
		hosts []string
		want  string // a warning, or "" for none
	}{
		{"good", devcert.Leaf{Hosts: []string{"api.example.com"}}, []string{"api.example.com"}, ""},
		{"wildcard covers", devcert.Leaf{Hosts: []string{"*.example.com"}}, []string{"*.example.com", "a.example.com"}, ""},
		{"expired", devcert.Leaf{Hosts: []string{"api.example.com"}, NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.Add(-time.Hour)}, nil, "expired"},
		{"not yet valid", devcert.Leaf{Hosts: []string{"api.example.com"}, NotBefore: now.Add(time.Hour), NotAfter: now.AddDate(1, 0, 0)}, nil, "not valid before"},
		{"expires soon", devcert.Leaf{Hosts: []string{"api.example.com"}, NotAfter: now.Add(48 * time.Hour)}, nil, "expires on"},
		{"hostname not covered", devcert.Leaf{Hosts: []string{"api.example.com"}}, []string{"www.example.com"}, `does not cover hostname "www.example.com"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			putSecret(t, ca, dir, tc.leaf)
			ws, err := Check(dir, tc.hosts, now)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(ws, "; ")
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("warnings = %q, want %q", got, tc.want)
			}
		})
	}
}
