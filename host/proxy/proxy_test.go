package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/gwtest"
)

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int { return gwtest.FreePort(t) }

// backend is a real HTTP server on 127.0.0.1 that records what it saw.
type backend struct{ *gwtest.Backend }

func newBackend(t testing.TB, h http.HandlerFunc) *backend {
	t.Helper()
	return &backend{gwtest.NewBackend(t, h)}
}

func (b *backend) addr() string { return b.Addr }

func (b *backend) lastRequest() (*http.Request, []byte) { return b.Last() }

// gatewayYAML is a gateway with one HTTP listener on port, and extra
// resources appended.
func gatewayYAML(port int, gwExtra string) string { return gwtest.GatewayYAML(port, gwExtra) }

func backendYAML(name string, addrs ...string) string { return gwtest.BackendYAML(name, addrs...) }

// startGateway serves the resources and returns the listener's base URL.
func startGateway(t testing.TB, resources string) (*Gateway, string) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw := New(Options{Logger: logger})
	return gw, gwtest.Serve(t, gw, resources)
}

func route(rule string) string { return gwtest.RouteYAML("r", rule) }

type errBody struct {
	Error     string `json:"error"`
	Status    int    `json:"status"`
	RequestID string `json:"request_id"`
}

func decodeErr(t *testing.T, resp *http.Response) errBody {
	t.Helper()
	var e errBody
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body is not JSON: %q", b)
	}
	if e.Status != resp.StatusCode || e.RequestID == "" || e.RequestID != resp.Header.Get("X-Request-Id") {
		t.Errorf("error body %+v does not agree with status %d / X-Request-Id %q", e, resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	return e
}

var client = &http.Client{
	Transport:     &http.Transport{MaxIdleConnsPerHost: 64},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       20 * time.Second,
}

func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func get(t *testing.T, url string, hdr ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

func TestProxyBasics(t *testing.T) {
	be := newBackend(t, nil)
	_, base := startGateway(t, gatewayYAML(freePort(t), "")+backendYAML("b", be.addr())+route(`
    - matches: [{path: {type: PathPrefix, value: /api}}]
      backendRefs: [{name: b}]
`))
	t.Run("forwards and returns the backend's answer", func(t *testing.T) {
		resp := get(t, base+"/api/x?q=1", "Host", "shop.example.com", "Connection", "close, X-Drop", "X-Drop", "secret", "Keep-Alive", "timeout=5")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "hello from GET /api/x?q=1" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		r, _ := be.lastRequest()
		if r.Host != "shop.example.com" {
			t.Errorf("backend saw Host %q, want the client's", r.Host)
		}
		for _, h := range []string{"X-Drop", "Keep-Alive"} {
			if v := r.Header.Get(h); v != "" {
				t.Errorf("hop-by-hop header %s reached the backend: %q", h, v)
			}
		}
		if got := r.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q", got)
		}
		if got := r.Header.Get("X-Forwarded-Proto"); got != "http" {
			t.Errorf("X-Forwarded-Proto = %q", got)
		}
		if got := r.Header.Get("X-Forwarded-Host"); got != "shop.example.com" {
			t.Errorf("X-Forwarded-Host = %q", got)
		}
		id := resp.Header.Get("X-Request-Id")
		if len(id) != 36 || r.Header.Get("X-Request-Id") != id {
			t.Errorf("request id: client got %q, backend got %q", id, r.Header.Get("X-Request-Id"))
		}
		if ua := r.Header.Get("User-Agent"); ua != "Go-http-client/1.1" {
			t.Errorf("User-Agent = %q, want the client's unchanged", ua)
		}
	})
	t.Run("propagates the client's request id", func(t *testing.T) {
		resp := get(t, base+"/api", "X-Request-Id", "abc-123")
		r, _ := be.lastRequest()
		if resp.Header.Get("X-Request-Id") != "abc-123" || r.Header.Get("X-Request-Id") != "abc-123" {
			t.Errorf("client %q backend %q", resp.Header.Get("X-Request-Id"), r.Header.Get("X-Request-Id"))
		}
	})
	t.Run("replaces an unacceptable request id", func(t *testing.T) {
		resp := get(t, base+"/api", "X-Request-Id", strings.Repeat("x", 500))
		if got := resp.Header.Get("X-Request-Id"); len(got) != 36 {
			t.Errorf("got %q", got)
		}
	})
	t.Run("untrusted X-Forwarded-For is replaced", func(t *testing.T) {
		get(t, base+"/api", "X-Forwarded-For", "6.6.6.6", "X-Forwarded-Proto", "https")
		r, _ := be.lastRequest()
		if got := r.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q: a client forged its address", got)
		}
		if got := r.Header.Get("X-Forwarded-Proto"); got != "http" {
			t.Errorf("X-Forwarded-Proto = %q", got)
		}
	})
	t.Run("no route is a JSON 404", func(t *testing.T) {
		resp := get(t, base+"/apix")
		if resp.StatusCode != 404 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if e := decodeErr(t, resp); e.Error != "no route" {
			t.Errorf("error %q", e.Error)
		}
	})
}

func TestTrustedProxies(t *testing.T) {
	be := newBackend(t, nil)
	_, base := startGateway(t, gatewayYAML(freePort(t), "  trustedProxies: [127.0.0.0/8, 10.0.0.0/8]")+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`))
	get(t, base+"/", "X-Forwarded-For", "203.0.113.7, 10.1.2.3", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "public.example.com")
	r, _ := be.lastRequest()
	if got := r.Header.Get("X-Forwarded-For"); got != "203.0.113.7, 10.1.2.3, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", got)
	}
	if got := r.Header.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto = %q, want the trusted proxy's", got)
	}
	if got := r.Header.Get("X-Forwarded-Host"); got != "public.example.com" {
		t.Errorf("X-Forwarded-Host = %q", got)
	}
}

func TestClientAddr(t *testing.T) {
	tn := parseTrusted([]string{"10.0.0.0/8", "192.168.1.1"})
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer", "203.0.113.1", []string{"1.2.3.4"}, "203.0.113.1"},
		{"trusted peer, one hop", "10.0.0.1", []string{"1.2.3.4"}, "1.2.3.4"},
		{"skips trusted hops", "10.0.0.1", []string{"1.2.3.4, 192.168.1.1", "10.9.9.9"}, "1.2.3.4"},
		{"rightmost untrusted wins", "10.0.0.1", []string{"6.6.6.6, 1.2.3.4"}, "1.2.3.4"},
		{"garbage stops the walk", "10.0.0.1", []string{"1.2.3.4, junk"}, "10.0.0.1"},
		{"no header", "10.0.0.1", nil, "10.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tn.clientAddr(peerAddr(tc.peer+":1234"), tc.xff)
			if got.String() != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestBodyLimits(t *testing.T) {
	be := newBackend(t, nil)
	_, base := startGateway(t, gatewayYAML(freePort(t), "      maxRequestBodySize: 2Ki")+backendYAML("b", be.addr())+route(`
    - matches: [{path: {value: /small}}]
      backendRefs: [{name: b}]
      limits: {maxRequestBodySize: 100}
    - matches: [{path: {value: /big}}]
      backendRefs: [{name: b}]
`))
	tests := []struct {
		name    string
		path    string
		size    int
		chunked bool
		want    int
	}{
		{"under the rule limit", "/small", 100, false, 200},
		{"over the rule limit", "/small", 101, false, 413},
		{"over the rule limit, chunked", "/small", 5000, true, 413},
		{"under the listener limit", "/big", 2048, false, 200},
		{"over the listener limit", "/big", 2049, false, 413},
		{"over the listener limit, chunked", "/big", 100000, true, 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(strings.Repeat("a", tc.size))
			if tc.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, _ := http.NewRequest("POST", base+tc.path, body)
			resp := do(t, req)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 413 {
				decodeErr(t, resp)
			} else if _, got := be.lastRequest(); len(got) != tc.size {
				t.Errorf("backend got %d bytes, want %d", len(got), tc.size)
			}
		})
	}
}

func TestRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	_, base := startGateway(t, gatewayYAML(freePort(t), "")+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
      limits: {requestTimeout: 200ms}
`))
	start := time.Now()
	resp := get(t, base+"/")
	if resp.StatusCode != 504 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if e := decodeErr(t, resp); e.Error != "upstream request timeout" {
		t.Errorf("error %q", e.Error)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestRetries(t *testing.T) {
	bad := newBackend(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	good := newBackend(t, nil)
	// A port nobody listens on: connections are refused.
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))

	t.Run("5xx retried on another endpoint", func(t *testing.T) {
		_, base := startGateway(t, gatewayYAML(freePort(t), "")+backendYAML("b", bad.addr(), good.addr())+route(`
    - backendRefs: [{name: b}]
      retry: {maxRetries: 1, retryOn: [5xx]}
`))
		for i := 0; i < 20; i++ {
			if resp := get(t, base+"/"); resp.StatusCode != 200 {
				t.Fatalf("request %d: status %d", i, resp.StatusCode)
			}
		}
	})
	t.Run("POST is not replayed after a 5xx", func(t *testing.T) {
		_, base := startGateway(t, gatewayYAML(freePort(t), "")+backendYAML("b", bad.addr())+route(`
    - backendRefs: [{name: b}]
      retry: {maxRetries: 3, retryOn: [5xx]}
`))
		before := bad.Hits()
		req, _ := http.NewRequest("POST", base+"/", strings.NewReader("order"))
		if resp := do(t, req); resp.StatusCode != 500 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if n := bad.Hits() - before; n != 1 {
			t.Errorf("backend saw the POST %d times", n)
		}
	})
	t.Run("PUT with a body is replayed", func(t *testing.T) {
		_, base := startGateway(t, gatewayYAML(freePort(t), "")+backendYAML("b", bad.addr(), good.addr())+route(`
    - backendRefs: [{name: b}]
      retry: {maxRetries: 1, retryOn: [5xx]}
`))
		for i := 0; i < 10; i++ {
			req, _ := http.NewRequest("PUT", base+"/", strings.NewReader("payload"))
			if resp := do(t, req); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
		if _, body := good.lastRequest(); string(body) != "payload" {
			t.Errorf("replayed body %q", body)
		}
	})
	t.Run("connection failure retried even for POST", func(t *testing.T) {
		_, base := startGateway(t, gatewayYAML(freePort(t), "")+backendYAML("b", dead, good.addr())+route(`
    - backendRefs: [{name: b}]
      retry: {maxRetries: 1, retryOn: [connection-failure]}
`))
		for i := 0; i < 10; i++ {
			req, _ := http.NewRequest("POST", base+"/", io.MultiReader(strings.NewReader("streamed")))
			if resp := do(t, req); resp.StatusCode != 200 {
				t.Fatalf("request %d: status %d", i, resp.StatusCode)
			}
		}
		if _, body := good.lastRequest(); string(body) != "streamed" {
			t.Errorf("body %q", body)
		}
	})
	t.Run("without retries a refused connection is a JSON 503", func(t *testing.T) {
		_, base := startGateway(t, gatewayYAML(freePort(t), "")+backendYAML("b", dead)+route(`
    - backendRefs: [{name: b}]
`))
		resp := get(t, base+"/")
		if resp.StatusCode != 503 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		decodeErr(t, resp)
	})
	t.Run("an empty retry budget stops retries", func(t *testing.T) {
		_, base := startGateway(t, gatewayYAML(freePort(t), "")+backendYAML("b", bad.addr())+route(`
    - backendRefs: [{name: b}]
      retry: {maxRetries: 3, retryOn: [5xx], budget: {percent: 0, minRetryConcurrency: 0}}
`))
		before := bad.Hits()
		if resp := get(t, base+"/"); resp.StatusCode != 500 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if n := bad.Hits() - before; n != 1 {
			t.Errorf("backend saw %d attempts, want 1", n)
		}
	})
}

func TestRetryBudget(t *testing.T) {
	p := compileRetry(&configs.Retry{MaxRetries: 3})
	p.active.Store(100) // 20% of 100 = 20 retries in flight at most
	n := 0
	for i := 0; i < 50; i++ {
		if p.allowRetry() {
			n++
		}
	}
	if n != 20 {
		t.Errorf("allowed %d retries, want 20", n)
	}
	p.doneRetry()
	if !p.allowRetry() {
		t.Error("a finished retry did not free its place")
	}
	p.active.Store(0)
	p.retries.Store(0)
	for i := 0; i < 3; i++ {
		if !p.allowRetry() {
			t.Fatalf("minimum retry concurrency not honored at %d", i)
		}
	}
	if p.allowRetry() {
		t.Error("budget exceeded at rest")
	}
	for i := 1; i <= 10; i++ {
		if d := p.backoff(i); d < 0 || d > p.max {
			t.Errorf("backoff(%d) = %v outside [0, %v]", i, d, p.max)
		}
	}
}

func TestWeightedSplit(t *testing.T) {
	stable := newBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "stable") })
	canary := newBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "canary") })
	_, base := startGateway(t, gatewayYAML(freePort(t), "")+backendYAML("stable", stable.addr())+backendYAML("canary", canary.addr())+route(`
    - backendRefs: [{name: stable, weight: 80}, {name: canary, weight: 20}]
`))
	const n = 1000
	for i := 0; i < n; i++ {
		get(t, base+"/")
	}
	c := canary.Hits()
	// 20% of 1000, binomial sd ≈ 12.6: ±5 sd.
	if c < 137 || c > 263 {
		t.Errorf("canary got %d of %d requests, want about 200", c, n)
	}
	if stable.Hits()+c != n {
		t.Errorf("lost requests: %d + %d", stable.Hits(), c)
	}
}

func TestHeaderModsRewriteRedirect(t *testing.T) {
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "backend")
		w.Header().Set("X-Internal", "leak")
		fmt.Fprint(w, r.URL.Path)
	})
	_, base := startGateway(t, gatewayYAML(freePort(t), "")+backendYAML("b", be.addr())+route(`
    - matches: [{path: {value: /v1/users}}]
      backendRefs: [{name: b}]
      requestHeaders:
        set: [{name: X-Env, value: prod}]
        add: [{name: X-Tag, value: two}]
        remove: [X-Debug]
      responseHeaders:
        set: [{name: Server, value: novaedge}]
        remove: [X-Internal]
      urlRewrite:
        hostname: users.internal
        path: {type: ReplacePrefixMatch, value: /users}
    - matches: [{path: {type: Exact, value: /old}}]
      redirect: {scheme: https, hostname: new.example.com, port: 8443, path: {type: ReplaceFullPath, value: /new}, statusCode: 301}
`))
	resp := get(t, base+"/v1/users/42", "X-Env", "dev", "X-Tag", "one", "X-Debug", "1")
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "/users/42" {
		t.Errorf("rewritten path %q", body)
	}
	r, _ := be.lastRequest()
	if r.Host != "users.internal" || r.Header.Get("X-Env") != "prod" || strings.Join(r.Header.Values("X-Tag"), ",") != "one,two" || r.Header.Get("X-Debug") != "" {
		t.Errorf("backend saw host %q headers %v", r.Host, r.Header)
	}
	if resp.Header.Get("Server") != "novaedge" || resp.Header.Get("X-Internal") != "" {
		t.Errorf("response headers %v", resp.Header)
	}

	resp = get(t, base+"/v1/users")
	if body, _ := io.ReadAll(resp.Body); string(body) != "/users" {
		t.Errorf("rewritten bare prefix %q", body)
	}

	resp = get(t, base+"/old?x=1")
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://new.example.com:8443/new?x=1" {
		t.Errorf("redirect %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestRewritePath(t *testing.T) {
	tests := []struct {
		name, prefix, path, typ, value, want string
	}{
		{"replace prefix", "/api", "/api/users", "ReplacePrefixMatch", "/v2", "/v2/users"},
		{"replace prefix exactly", "/api", "/api", "ReplacePrefixMatch", "/v2", "/v2"},
		{"strip prefix", "/api", "/api/users", "ReplacePrefixMatch", "/", "/users"},
		{"strip whole", "/api", "/api", "ReplacePrefixMatch", "/", "/"},
		{"root prefix", "", "/users", "ReplacePrefixMatch", "/svc", "/svc/users"},
		{"full path", "/api", "/api/users", "ReplaceFullPath", "/fixed", "/fixed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &matchEntry{kind: pathPrefix, value: tc.prefix}
			if got := rewritePath(tc.path, tc.typ, tc.value, m); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStreamingSSE(t *testing.T) {
	next := make(chan struct{})
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-time.After(5 * time.Second):
				return
			}
		}
	})
	_, base := startGateway(t, gatewayYAML(freePort(t), "")+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`))
	resp := get(t, base+"/events")
	br := bufio.NewReader(resp.Body)
	for i := 0; i < 3; i++ {
		// Each event must arrive while the backend is still holding the
		// stream open: a buffering proxy would deadlock here until the
		// backend's 5 s fallback.
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		br.ReadString('\n')
		next <- struct{}{}
	}
}

func TestTrailers(t *testing.T) {
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	})
	_, base := startGateway(t, gatewayYAML(freePort(t), "")+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`))
	resp := get(t, base+"/")
	io.ReadAll(resp.Body)
	if resp.Trailer.Get("X-Checksum") != "abc" || resp.Trailer.Get("X-Late") != "late" {
		t.Errorf("trailers %v", resp.Trailer)
	}
}

func TestWebSocketUpgrade(t *testing.T) {
	// The backend speaks a tiny upgraded protocol: it echoes lines upper-cased.
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || !strings.EqualFold(r.Header.Get("Connection"), "upgrade") {
			http.Error(w, "upgrade required", 426)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString(strings.ToUpper(line))
			brw.Flush()
		}
	})
	// The route's request timeout bounds the handshake, not the life of
	// the upgraded connection.
	_, base := startGateway(t, gatewayYAML(freePort(t), "")+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
      limits: {requestTimeout: 300ms}
`))
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	for i, msg := range []string{"hello\n", "again\n"} {
		if i == 1 {
			time.Sleep(500 * time.Millisecond)
		}
		io.WriteString(conn, msg)
		got, err := br.ReadString('\n')
		if err != nil || got != strings.ToUpper(msg) {
			t.Fatalf("echo %q: %q %v", msg, got, err)
		}
	}
}

func TestH2CBackend(t *testing.T) {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "proto %d", r.ProtoMajor)
	}))
	be.Config.Protocols = &protos
	be.Start()
	defer be.Close()
	_, base := startGateway(t, gatewayYAML(freePort(t), "")+backendYAML("b", strings.TrimPrefix(be.URL, "http://"))+"  protocol: H2C\n"+route(`
    - backendRefs: [{name: b}]
`))
	resp := get(t, base+"/")
	if body, _ := io.ReadAll(resp.Body); string(body) != "proto 2" {
		t.Errorf("backend saw %q", body)
	}
}

func TestSlowloris(t *testing.T) {
	be := newBackend(t, nil)
	_, base := startGateway(t, gatewayYAML(freePort(t), "  clientLimits: {readHeaderTimeout: 300ms, maxHeaderBytes: 4Ki}")+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`))
	t.Run("a client too slow to send its headers is cut off", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n")
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		_, err = io.ReadAll(conn)
		if err != nil {
			t.Fatalf("connection was not closed by the gateway: %v", err)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("closed after %v", d)
		}
	})
	t.Run("oversized headers are a 431", func(t *testing.T) {
		resp := get(t, base+"/", "X-Big", strings.Repeat("a", 16<<10))
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}

func TestCircuitBreakerFastFail(t *testing.T) {
	hold := make(chan struct{})
	releaseHold := sync.OnceFunc(func() { close(hold) })
	defer releaseHold()
	entered := make(chan struct{}, 10)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-hold
	})
	gw, base := startGateway(t, gatewayYAML(freePort(t), "")+backendYAML("b", be.addr())+"  circuitBreaker: {maxConnections: 1, maxPendingRequests: 1}\n"+route(`
    - backendRefs: [{name: b}]
`))
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	send := func() {
		defer wg.Done()
		resp, err := client.Get(base + "/")
		if err != nil {
			codes <- -1
			return
		}
		resp.Body.Close()
		codes <- resp.StatusCode
	}
	wg.Add(2)
	go send()
	<-entered // the first holds the only connection slot
	go send()
	// Wait until the second is queued for a slot.
	deadline := time.Now().Add(5 * time.Second)
	for gw.Status().Backends[0].Detail.Pending != 1 {
		if time.Now().After(deadline) {
			t.Fatal("second request never queued")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A third finds the queue full and fails at once.
	resp := get(t, base+"/")
	if resp.StatusCode != 503 {
		t.Fatalf("status %d, want a fast 503", resp.StatusCode)
	}
	if e := decodeErr(t, resp); e.Error != "upstream overloaded" {
		t.Errorf("error %q", e.Error)
	}
	releaseHold()
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("held request got %d", c)
		}
	}
}

func TestGracefulShutdown(t *testing.T) {
	entered := make(chan struct{})
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "finished")
	})
	gw, base := startGateway(t, gatewayYAML(freePort(t), "")+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`))
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := client.Get(base + "/")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{string(b), err}
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if r := <-done; r.err != nil || r.body != "finished" {
		t.Errorf("in-flight request: %q %v", r.body, r.err)
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second); err == nil {
		t.Error("listener still accepts after shutdown")
	}
}

func TestApplyKeepsServingOnBindFailure(t *testing.T) {
	be := newBackend(t, nil)
	port := freePort(t)
	gw, base := startGateway(t, gatewayYAML(port, "")+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	two := gatewayYAML(port, fmt.Sprintf(`    - name: second
      address: 127.0.0.1
      port: %d
      protocol: HTTP`, busyPort)) + backendYAML("b", be.addr()) + route(`
    - backendRefs: [{name: b}]
`)
	snap, err := configs.LoadFiles([]configs.File{{Name: "two.yaml", Data: []byte(two)}})
	if err != nil {
		t.Fatal(err)
	}
	old := gw.Snapshot().Hash
	if err := gw.Apply(context.Background(), snap); err == nil {
		t.Fatal("Apply succeeded although a port was taken")
	}
	if gw.Snapshot().Hash != old {
		t.Error("a failed Apply replaced the running configuration")
	}
	if resp := get(t, base+"/"); resp.StatusCode != 200 {
		t.Errorf("after a failed Apply: status %d", resp.StatusCode)
	}
}

// TestNoContentTypeAdded: a response without Content-Type reaches the
// client without one (Go's server would otherwise sniff one).
func TestNoContentTypeAdded(t *testing.T) {
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil
		io.WriteString(w, "<html>plain bytes</html>")
	})
	_, base := startGateway(t, gatewayYAML(freePort(t), "")+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`))
	resp := get(t, base+"/")
	if ct, ok := resp.Header["Content-Type"]; ok {
		t.Errorf("Content-Type %q added", ct)
	}
}
