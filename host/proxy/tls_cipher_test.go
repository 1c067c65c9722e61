package proxy

import (
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestTLS12CipherSuites: a TLS 1.2 listener offers only ECDHE suites with
// an AEAD cipher unless it names its own (tls.cipherSuites): a client
// that offers only CBC suites fails the handshake (no LUCKY13 surface),
// one that offers an AEAD suite succeeds.
func TestTLS12CipherSuites(t *testing.T) {
	e := newTLSEnv(t)
	e.secret(t, "t", "a-cert", "a.example.com")
	e.secret(t, "t", "b-cert", "b.example.com")
	port := freePort(t)
	gw := e.start(t, fmt.Sprintf(`apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: t}
spec:
  listeners:
    - name: a
      address: 127.0.0.1
      port: %[1]d
      protocol: HTTPS
      hostnames: [a.example.com]
      tls: {secretRef: {name: a-cert}}
    - name: b
      address: 127.0.0.1
      port: %[1]d
      protocol: HTTPS
      hostnames: [b.example.com]
      tls:
        secretRef: {name: b-cert}
        cipherSuites: [TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]
`, port))
	addr := gw.Addrs()[fmt.Sprintf("127.0.0.1:%d", port)]
	cbc := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA}
	gcm := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}
	chacha := []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}
	for _, tc := range []struct {
		name   string
		host   string
		suites []uint16
		ok     bool
	}{
		{name: "default refuses CBC", host: "a.example.com", suites: cbc, ok: false},
		{name: "default takes AES-GCM", host: "a.example.com", suites: gcm, ok: true},
		{name: "default takes ChaCha20-Poly1305", host: "a.example.com", suites: chacha, ok: true},
		{name: "configured CBC is served", host: "b.example.com", suites: cbc, ok: true},
		{name: "configured CBC only refuses AES-GCM", host: "b.example.com", suites: gcm, ok: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
				RootCAs: e.pool, ServerName: tc.host, MaxVersion: tls.VersionTLS12, CipherSuites: tc.suites,
			})
			if err == nil {
				defer c.Close()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("handshake error = %v, want success %v", err, tc.ok)
			}
			if err == nil {
				got := c.ConnectionState().CipherSuite
				found := false
				for _, s := range tc.suites {
					found = found || s == got
				}
				if !found {
					t.Errorf("negotiated %s, not one offered", tls.CipherSuiteName(got))
				}
			}
		})
	}
}
