package apigateway_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"

	"github.com/novaedge/novaedge/configs"
	apigateway "github.com/novaedge/novaedge/examples/api-gateway"
	"github.com/novaedge/novaedge/host/gwtest"
	"github.com/novaedge/novaedge/host/policy"
	"github.com/novaedge/novaedge/host/proxy"
	"github.com/novaedge/novaedge/host/wasm"
)

func freeAddr(t testing.TB) string { return gwtest.FreeAddr(t) }

// example is the example running on free ports: the demo services, the
// development token issuer and the gateway.
type example struct {
	base  string // the gateway's URL
	token string // a valid token of the issuer
	gw    *proxy.Gateway
	// The HTTPS listener: its URL (https://api.example.com:port) and a
	// client that trusts the development CA and connects to it.
	tlsBase   string
	tlsClient *http.Client
}

// startExample runs the example as `make run` does, on free ports; edit,
// if set, changes the resource files' text first. Everything stops when
// the test ends.
func startExample(t testing.TB, edit func(string) string) *example {
	t.Helper()
	svcs := apigateway.Services()
	gwAddr := freeAddr(t)
	_, gwPort, _ := net.SplitHostPort(gwAddr)
	tlsAddr := freeAddr(t)
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	replace := []string{"port: 8080", "port: " + gwPort, "port: 8443", "port: " + tlsPort}
	for i := range svcs {
		addr := freeAddr(t)
		replace = append(replace, svcs[i].Addr, addr)
		svcs[i].Addr = addr
	}
	issuer, err := apigateway.StartIssuer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { issuer.Close() })
	token, err := issuer.Token("user-42", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer(replace...)
	var files []configs.File
	for _, f := range apigateway.DemoFiles(issuer.URL) {
		data := r.Replace(string(f.Data))
		if edit != nil {
			data = edit(data)
		}
		files = append(files, configs.File{Name: f.Name, Data: []byte(data)})
	}

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	stop, err := apigateway.StartServices(context.Background(), svcs, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)

	snap, err := configs.LoadFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	caller := &policy.Caller{}
	rt, err := wasm.NewRuntime(context.Background(), wasm.Options{Logger: logger, HTTPCaller: caller, Foreign: policy.HostFunctions()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	dev, err := apigateway.EnsureDevTLS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	gw := proxy.New(proxy.Options{Logger: logger, Policies: (&policy.Builder{Runtime: rt}).Build, SecretsDir: dev.SecretsDir, AccessLog: io.Discard})
	caller.Gateway = gw
	if _, err := gwtest.Start(t, gw, snap); err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(dev.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tlsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, tlsAddr)
		},
	}}
	return &example{base: "http://" + gwAddr, token: token, gw: gw, tlsBase: "https://api.example.com:" + tlsPort, tlsClient: tlsClient}
}

// TestExampleEndToEnd runs the example as `make run` does — the three demo
// services, the development token issuer and the gateway with its four
// policies on the embedded resources — on free ports, and walks through
// the README's requests.
func TestExampleEndToEnd(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "") // the example names no collector
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	ex := startExample(t, nil)
	base, token, gw := ex.base, ex.token, ex.gw
	client := &http.Client{Timeout: 10 * time.Second}

	type echo struct {
		Service string            `json:"service"`
		Method  string            `json:"method"`
		Path    string            `json:"path"`
		Host    string            `json:"host"`
		Headers map[string]string `json:"headers"`
	}
	tests := []struct {
		name, method, path, host string
		body                     string
		wantStatus               int
		wantService              string
	}{
		{"users by localhost", "GET", "/api/v1/users/42", "localhost", "", 200, "users"},
		{"orders by api.example.com", "GET", "/api/v1/orders", "api.example.com", "", 200, "orders"},
		{"products GET", "GET", "/api/v1/products", "api.example.com", "", 200, "products"},
		{"products is GET only", "POST", "/api/v1/products", "api.example.com", "x", 404, ""},
		{"prefix is segment aware", "GET", "/api/v1/usersX", "localhost", "", 404, ""},
		{"unknown host", "GET", "/api/v1/users", "evil.example.org", "", 404, ""},
		{"users body limit is 1Mi", "POST", "/api/v1/users", "localhost", strings.Repeat("a", 1<<20+1), 413, ""},
		{"orders accepts 2 MB (5Mi limit)", "POST", "/api/v1/orders", "localhost", strings.Repeat("a", 2<<20), 200, "orders"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
			req.Host = tc.host
			c := client
			if tc.host == "api.example.com" { // served over HTTPS
				req, _ = http.NewRequest(tc.method, ex.tlsBase+tc.path, strings.NewReader(tc.body))
				c = ex.tlsClient
			}
			authorize(req, token, "table")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantService == "" {
				var e struct {
					Error     string `json:"error"`
					Status    int    `json:"status"`
					RequestID string `json:"request_id"`
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Status != tc.wantStatus || e.RequestID == "" {
					t.Errorf("gateway error body %q", body)
				}
				return
			}
			var got echo
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if got.Service != tc.wantService || got.Path != tc.path || got.Method != tc.method {
				t.Errorf("echo %+v", got)
			}
			// The gateway's cache is on; behind the JWT policy a response
			// the service does not mark public is not shared.
			if want := map[string]string{"GET": "MISS", "POST": "BYPASS"}[tc.method]; resp.Header.Get("X-Cache") != want {
				t.Errorf("X-Cache %q, want %q", resp.Header.Get("X-Cache"), want)
			}
			if got.Headers["X-Request-Id"] == "" || got.Headers["X-Request-Id"] != resp.Header.Get("X-Request-Id") {
				t.Errorf("request id: backend %q, client %q", got.Headers["X-Request-Id"], resp.Header.Get("X-Request-Id"))
			}
		})
	}

	t.Run("api.example.com: HTTPS with TLS 1.3 and h2; plain HTTP redirected", func(t *testing.T) {
		req, _ := http.NewRequest("GET", ex.tlsBase+"/api/v1/users/7", nil)
		authorize(req, token, "tls")
		resp, err := ex.tlsClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" || resp.TLS.Version != tls.VersionTLS13 {
			t.Fatalf("%d %s TLS %x", resp.StatusCode, resp.Proto, resp.TLS.Version)
		}
		if v := resp.Header.Get("Strict-Transport-Security"); v == "" {
			t.Error("no HSTS on an HTTPS response")
		}
		req, _ = http.NewRequest("GET", base+"/api/v1/users/7?x=1", nil)
		req.Host = "api.example.com"
		noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err = noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := ex.tlsBase + "/api/v1/users/7?x=1"; resp.StatusCode != 301 || resp.Header.Get("Location") != want {
			t.Fatalf("%d %q, want 301 %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
	})

	t.Run("server-sent events stream through", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/api/v1/users/sse?n=3", nil)
		req.Host = "localhost"
		authorize(req, token, "sse")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("content type %q", ct)
		}
		sc := bufio.NewScanner(resp.Body)
		events := 0
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data:") {
				events++
			}
		}
		if events != 3 {
			t.Errorf("got %d events", events)
		}
	})

	t.Run("compression: gzip or br, as the client weighs them", func(t *testing.T) {
		raw := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}
		pad := strings.Repeat("padding-", 300) // the echo passes minSize (1024)
		for _, tc := range []struct{ accept, want string }{
			{"gzip, br", "gzip"}, // a tie: the configured order
			{"gzip;q=0.5, br", "br"},
			{"identity", ""},
		} {
			req, _ := http.NewRequest("GET", base+"/api/v1/users/42", nil)
			req.Host = "localhost"
			authorize(req, token, "compress")
			req.Header.Set("X-Pad", pad)
			req.Header.Set("Accept-Encoding", tc.accept)
			resp, err := raw.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var r io.Reader = resp.Body
			switch ce := resp.Header.Get("Content-Encoding"); {
			case ce != tc.want:
				t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", tc.accept, ce, tc.want)
			case ce == "gzip":
				r, err = gzip.NewReader(r)
				if err != nil {
					t.Fatal(err)
				}
			case ce == "br":
				r = brotli.NewReader(r)
			}
			var got echo
			err = json.NewDecoder(r).Decode(&got)
			resp.Body.Close()
			if err != nil || got.Headers["X-Pad"] != pad {
				t.Errorf("Accept-Encoding %q: echo not decoded (%v)", tc.accept, err)
			}
			if vary := resp.Header.Values("Vary"); !slices.Contains(vary, "Accept-Encoding") {
				t.Errorf("Vary %q", vary)
			}
		}
	})

	do := func(t *testing.T, req *http.Request) (*http.Response, string) {
		t.Helper()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	t.Run("JWT: no token is a 401 with WWW-Authenticate: Bearer", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/api/v1/users/42", nil)
		authorize(req, "", "jwt")
		resp, body := do(t, req)
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(body, `"status":401`) {
			t.Errorf("%d %v %s", resp.StatusCode, resp.Header, body)
		}
	})
	t.Run("JWT: a bad token is a 401 invalid_token", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/api/v1/users/42", nil)
		authorize(req, token[:len(token)-4]+"AAAA", "jwt")
		resp, _ := do(t, req)
		if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("a good request carries every policy's mark", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/api/v1/users/42", nil)
		req.Header.Set("Origin", "https://app.example.com")
		authorize(req, token, "marks")
		resp, body := do(t, req)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		h := resp.Header
		for k, v := range map[string]string{
			"X-Frame-Options":                  "DENY",
			"X-Content-Type-Options":           "nosniff",
			"Referrer-Policy":                  "strict-origin-when-cross-origin",
			"X-Ratelimit-Limit":                "200",
			"Access-Control-Allow-Origin":      "https://app.example.com",
			"Access-Control-Allow-Credentials": "true",
		} {
			if h.Get(k) != v {
				t.Errorf("%s = %q, want %q", k, h.Get(k), v)
			}
		}
		if h.Get("Strict-Transport-Security") != "" {
			t.Error("HSTS on a plain-HTTP response")
		}
		var got struct{ Headers map[string]string }
		json.Unmarshal([]byte(body), &got)
		if got.Headers["X-User-Id"] != "user-42" {
			t.Errorf("backend saw X-User-ID %q", got.Headers["X-User-Id"])
		}
	})
	t.Run("CORS: the gateway answers a preflight, no token needed", func(t *testing.T) {
		req, _ := http.NewRequest("OPTIONS", base+"/api/v1/orders", nil)
		req.Host = "localhost"
		req.Header.Set("Origin", "https://app.example.com")
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, _ := do(t, req)
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
			resp.Header.Get("Access-Control-Max-Age") != "86400" {
			t.Errorf("%d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("RateLimit: past the burst, 429 with Retry-After", func(t *testing.T) {
		// Eight clients at full speed, so that the bucket (burst 200,
		// 100/s) empties even on a slow machine; up to 5000 requests.
		var mu sync.Mutex
		var admitted, sent int
		var first429 *http.Response
		var body429 string
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					mu.Lock()
					stop := first429 != nil || sent >= 5000
					sent++
					mu.Unlock()
					if stop {
						return
					}
					req, _ := http.NewRequest("GET", base+"/api/v1/products", nil)
					authorize(req, token, "burst")
					resp, err := client.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					mu.Lock()
					switch {
					case resp.StatusCode == 200:
						admitted++
					case first429 == nil:
						first429, body429 = resp, string(b)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		resp := first429
		switch {
		case resp == nil:
			t.Fatalf("no 429 in %d requests at full speed", sent)
		case resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("X-Ratelimit-Remaining") != "0" ||
			!strings.Contains(body429, `"status":429`):
			t.Fatalf("after %d admitted: %d %v %s", admitted, resp.StatusCode, resp.Header, body429)
		case admitted < 200:
			t.Fatalf("429 after %d admitted requests, before the burst of 200", admitted)
		}
	})

	t.Run("status reports the reference", func(t *testing.T) {
		st := gw.Status()
		if len(st.Routes) != 3 || len(st.Backends) != 3 || len(st.Policies) != 4 {
			t.Fatalf("status: %d routes, %d backends, %d policies", len(st.Routes), len(st.Backends), len(st.Policies))
		}
		for _, b := range st.Backends {
			if b.Total != 1 || b.Healthy != 1 {
				t.Errorf("backend %s: %d/%d healthy", b.Name, b.Healthy, b.Total)
			}
		}
		for _, p := range st.Policies {
			if p.State != "Active" || p.Plugin == nil || p.Plugin.VMs < 1 {
				t.Errorf("policy %s state %q plugin %+v", p.Name, p.State, p.Plugin)
			}
		}
		inactive := fmt.Sprint(st.Inactive)
		for _, no := range []string{"RateLimit", "JWT", "CORS", "SecurityHeaders"} {
			if strings.Contains(inactive, no) {
				t.Errorf("not-active list has %s: %s", no, inactive)
			}
		}
		for _, no := range []string{"spec.compression", "spec.cache", "spec.accessLog"} {
			if strings.Contains(inactive, no) {
				t.Errorf("%s is active, yet listed: %s", no, inactive)
			}
		}
		for _, want := range []string{"spec.tracing.endpoint"} {
			if !strings.Contains(inactive, want) {
				t.Errorf("not-active list lacks %s: %s", want, inactive)
			}
		}
	})
}

// authorize adds the demo's credentials: the bearer token and an API key
// (the rate limit's key; each test its own, so their buckets are apart).
func authorize(req *http.Request, token, apiKey string) {
	if req.Host == "" || strings.HasPrefix(req.Host, "127.0.0.1:") {
		req.Host = "localhost"
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("X-API-Key", apiKey)
}
