package proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkTLSOverhead compares, over keep-alive connections, requests
// through the gateway with the same requests straight to the backend, on
// plain HTTP/1.1 and on HTTPS (HTTP/1.1 and h2): it reports each
// gateway/direct ratio, so the TLS termination's share of the gateway's
// cost shows beside the plain one.
func BenchmarkTLSOverhead(b *testing.B) {
	env := newTLSEnv(b)
	env.secret(b, "t", "a-cert", "a.example.com")
	env.secret(b, "t", "b-cert", "*.example.org")
	be := newBackend(b, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tlsPort, httpPort := freePort(b), freePort(b)
	env.start(b, fmt.Sprintf(tlsGatewayYAML, tlsPort, httpPort)+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`))
	// A TLS backend for the direct HTTPS baseline, with the same certificate.
	direct := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	pair, err := tls.LoadX509KeyPair(env.dir+"/t/a-cert/tls.crt", env.dir+"/t/a-cert/tls.key")
	if err != nil {
		b.Fatal(err)
	}
	direct.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS13}
	direct.EnableHTTP2 = true
	direct.StartTLS()
	defer direct.Close()

	plain := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	run := func(b *testing.B, c *http.Client, url, host string) float64 {
		b.Helper()
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest("GET", url, nil)
				req.Host = host
				resp, err := c.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
		return float64(time.Since(start).Nanoseconds()) / float64(b.N)
	}
	var ns = map[string]float64{}
	cases := []struct {
		name, url, host string
		client          *http.Client
	}{
		{"http/direct", be.URL + "/", "", plain},
		{"http/gateway", fmt.Sprintf("http://127.0.0.1:%d/", httpPort), "other.example.net", plain},
		{"https-h1/direct", direct.URL + "/", "a.example.com", env.directClient(direct, false)},
		{"https-h1/gateway", "https://a.example.com/", "", env.client(fmt.Sprintf("127.0.0.1:%d", tlsPort), false)},
		{"https-h2/direct", direct.URL + "/", "a.example.com", env.directClient(direct, true)},
		{"https-h2/gateway", "https://a.example.com/", "", env.client(fmt.Sprintf("127.0.0.1:%d", tlsPort), true)},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			ns[tc.name] = run(b, tc.client, tc.url, tc.host)
		})
	}
	for _, p := range []string{"http", "https-h1", "https-h2"} {
		if d, g := ns[p+"/direct"], ns[p+"/gateway"]; d > 0 && g > 0 {
			b.Run(p+"/ratio", func(b *testing.B) {
				b.ReportMetric(g/d, "gateway/direct")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// directClient is an HTTPS client of an httptest TLS server, trusting the
// test CA, sending SNI a.example.com.
func (e *tlsEnv) directClient(srv *httptest.Server, h2 bool) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: e.pool, ServerName: "a.example.com"},
		ForceAttemptHTTP2:   h2,
		MaxIdleConnsPerHost: 64,
	}}
}
