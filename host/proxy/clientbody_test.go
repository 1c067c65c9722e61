package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/novaedge/novaedge/configs"
)

// lineBuffer collects access log lines (the sink writes from its own
// goroutine).
type lineBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// clientErrors returns the access log's client_error by request path.
func (b *lineBuffer) clientErrors(t *testing.T) map[string][]string {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var l struct {
			Path        string `json:"path"`
			Status      int    `json:"status"`
			ClientError string `json:"client_error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("access log line %q: %v", sc.Text(), err)
		}
		out[l.Path] = append(out[l.Path], fmt.Sprintf("%d %s", l.Status, l.ClientError))
	}
	return out
}

// startGatewayOpts is startGateway with options.
func startGatewayOpts(t testing.TB, resources string, opts Options) (*Gateway, string) {
	t.Helper()
	snap, err := configs.LoadFiles([]configs.File{{Name: "test.yaml", Data: []byte(resources)}})
	if err != nil {
		t.Fatalf("config: %v\n%s", err, resources)
	}
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	gw := New(opts)
	if err := gw.Apply(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gw.Shutdown(ctx)
	})
	var addr string
	for _, a := range gw.Addrs() {
		addr = a
	}
	return gw, addr
}

// rawExchange writes raw on a new connection to addr, reads one response
// and its body, then reports whether the gateway closed the connection
// (rather than answering a request smuggled after the first). The
// deadline is only a safety limit.
func rawExchange(t *testing.T, addr, raw string) (resp *http.Response, body string, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, err = br.ReadByte()
	return resp, string(b), err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestClientBodyErrors: a client's malformed or incomplete request body
// is the client's fault (finding 2 of issue 11): 400 (408 for a body
// that stalls past clientLimits.bodyReadTimeout), Connection: close and
// the connection closed, so bytes after a bad chunk are never read as a
// request; never retried on another endpoint, never counted by outlier
// detection (here two consecutive failures would eject), and logged as a
// client error. The chunked parsing itself is net/http's (its chunked
// reader rejects each of these bodies); what the gateway does with the
// error is its own.
func TestClientBodyErrors(t *testing.T) {
	var mu sync.Mutex
	paths := map[string]int{}
	h := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths[r.URL.Path]++
		mu.Unlock()
		io.WriteString(w, "ok")
	}
	b1, b2 := newBackend(t, h), newBackend(t, h)
	var log lineBuffer
	g, addr := startGatewayOpts(t, gatewayYAML(freePort(t), `  accessLog: {enabled: true}
  clientLimits: {bodyReadTimeout: 300ms}`)+backendYAML("b", b1.addr(), b2.addr())+`  circuitBreaker: {consecutiveFailures: 2, maxEjectionPercent: 100}
`+route(`
    - backendRefs: [{name: b}]
      retry: {maxRetries: 2, retryOn: [reset, connection-failure, 5xx]}
`), Options{AccessLog: &log})

	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	chunked := func(path, body string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body
	}
	for _, tc := range []struct {
		name   string
		raw    string
		status int
		kind   string
	}{
		{name: "size not hex", raw: chunked("/cb/zz", "zz\r\n\r\n"+smuggled), status: 400, kind: "malformed_body"},
		{name: "negative size", raw: chunked("/cb/neg", "-1\r\n\r\n"+smuggled), status: 400, kind: "malformed_body"},
		{name: "0x prefix", raw: chunked("/cb/0x", "0x5\r\nhello\r\n0\r\n\r\n"+smuggled), status: 400, kind: "malformed_body"},
		{name: "17 hex digits", raw: chunked("/cb/long", "10000000000000000\r\nhello\r\n0\r\n\r\n"+smuggled), status: 400, kind: "malformed_body"},
		{name: "bare LF", raw: chunked("/cb/lf", "5\nhello\n0\n\n"+smuggled), status: 400, kind: "malformed_body"},
		{name: "8 KB chunk extension", raw: chunked("/cb/ext", "5;"+strings.Repeat("a", 8<<10)+"\r\nhello\r\n0\r\n\r\n"+smuggled), status: 400, kind: "malformed_body"},
		{name: "data overrun", raw: chunked("/cb/over", "5\r\nhelloEXTRA\r\n0\r\n\r\n"+smuggled), status: 400, kind: "malformed_body"},
		{name: "chunked body stalls", raw: chunked("/cb/stall", "5\r\nhel"), status: 408, kind: "body_timeout"},
		{name: "shorter than Content-Length, stalls (buffered for retry)", raw: "POST /cl/stall HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", status: 408, kind: "body_timeout"},
		{name: "shorter than Content-Length, streamed", raw: "POST /cl/big HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc", status: 408, kind: "body_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body, closed := rawExchange(t, addr, tc.raw)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			if !resp.Close {
				t.Errorf("no Connection: close (%v)", resp.Header)
			}
			if !closed {
				t.Error("the connection stayed open")
			}
		})
	}
	if _, body, _ := rawExchange(t, addr, "GET /fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); body != "ok" {
		t.Errorf("a good request after the bad ones got %q", body)
	}
	mu.Lock()
	if n := paths["/smuggled"]; n != 0 {
		t.Errorf("a request smuggled after a bad body reached a backend %d times", n)
	}
	for p, n := range paths {
		if strings.HasPrefix(p, "/c") && n > 1 {
			t.Errorf("%s reached the backends %d times: retried", p, n)
		}
	}
	mu.Unlock()
	for _, bs := range g.backendStatuses() {
		for _, ep := range bs.Endpoints {
			if ep.Ejected || ep.Ejections > 0 {
				t.Errorf("endpoint %s was blamed: ejected %v, ejections %d", ep.Address, ep.Ejected, ep.Ejections)
			}
		}
	}
	waitFor(t, func() bool { return len(log.clientErrors(t)["/fine"]) == 1 }, "the access log")
	logged := log.clientErrors(t)
	for p, want := range map[string]string{"/cb/zz": "400 malformed_body", "/cb/stall": "408 body_timeout", "/cl/stall": "408 body_timeout", "/fine": "200 "} {
		if got := logged[p]; len(got) != 1 || got[0] != want {
			t.Errorf("access log for %s: %q, want %q", p, got, want)
		}
	}
}

// TestChunkedWithContentLength: a request with both Transfer-Encoding and
// Content-Length is served (net/http drops the Content-Length, RFC 9112
// §6.3) and its connection closed after the response (§6.1: the server
// MUST close).
func TestChunkedWithContentLength(t *testing.T) {
	be := newBackend(t, nil)
	_, addr := startGatewayOpts(t, gatewayYAML(freePort(t), "")+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`), Options{})
	resp, body, closed := rawExchange(t, addr, "POST /both HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 || body != "hello from POST /both" {
		t.Errorf("status %d body %q", resp.StatusCode, body)
	}
	if !resp.Close || !closed {
		t.Errorf("connection not closed (Connection: close %v, closed %v)", resp.Close, closed)
	}
	if r, b := be.lastRequest(); r.URL.Path != "/both" || string(b) != "hello" {
		t.Errorf("backend saw %s %q", r.URL.Path, b)
	}
	// Requests without a body keep their connection: two on one.
	resp, body, _ = rawExchange(t, addr, "GET /keep HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if resp.Close || body != "hello from GET /keep" {
		t.Errorf("a plain request: Connection: close %v, body %q", resp.Close, body)
	}
	if r, _ := be.lastRequest(); r.URL.Path != "/next" {
		t.Errorf("the second request on the connection did not arrive: %s", r.URL.Path)
	}
}

// TestPolicyBodyClientErrors: a body a policy reads (buffered whole, or
// streamed chunk by chunk) that the client got wrong is answered as on a
// route without policies: 400, or 408 when it stalls past the body-read
// timeout, the connection closed, a client error in the access log.
// (net/http itself closes a connection whose handler answered before a
// corrupt chunked body was read, see response.WriteHeader; the stall and
// the log are the gateway's.)
func TestPolicyBodyClientErrors(t *testing.T) {
	be := newBackend(t, nil)
	var log lineBuffer
	res := gatewayYAML(freePort(t), "  accessLog: {enabled: true}\n  clientLimits: {bodyReadTimeout: 300ms}") +
		backendYAML("b", be.addr()) + route(`
    - name: append-1
      matches: [{path: {value: /append-1}}]
      backendRefs: [{name: b}]
    - name: upper
      matches: [{path: {value: /upper}}]
      backendRefs: [{name: b}]
`) + policyYAML("append-1", "Wasm", "{kind: ProxyRoute, name: r, sectionName: append-1}", "") +
		policyYAML("upper", "Wasm", "{kind: ProxyRoute, name: r, sectionName: upper}", "")
	snap, err := configs.LoadFiles([]configs.File{{Name: "p.yaml", Data: []byte(res)}})
	if err != nil {
		t.Fatal(err)
	}
	var open atomic.Int64
	builder := func(ctx context.Context, p *configs.Policy) (Policy, error) {
		return &bodyPolicy{name: p.Metadata.Name, open: &open}, nil
	}
	gw := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Policies: builder, AccessLog: &log})
	if err := gw.Apply(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Shutdown(context.Background()) })
	var addr string
	for _, a := range gw.Addrs() {
		addr = a
	}
	for _, tc := range []struct {
		name, path, body string
		status           int
		kind             string
		reached          bool
	}{
		{name: "malformed, buffered by the policy", path: "/append-1?bad", body: "3\r\nabc\r\nzz\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", status: 400, kind: "malformed_body"},
		{name: "malformed, streamed through the policy", path: "/upper?bad", body: "3\r\nabc\r\nzz\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", status: 400, kind: "malformed_body", reached: true},
		{name: "stalled, buffered by the policy", path: "/append-1?stall", body: "3\r\nabc\r\n", status: 408, kind: "body_timeout"},
		{name: "stalled, streamed through the policy", path: "/upper?stall", body: "3\r\nabc\r\n", status: 408, kind: "body_timeout", reached: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := be.Hits()
			resp, body, closed := rawExchange(t, addr, "POST "+tc.path+" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+tc.body)
			if resp.StatusCode != tc.status || !resp.Close || !closed {
				t.Errorf("status %d (%s), want %d; Connection: close %v, closed %v", resp.StatusCode, body, tc.status, resp.Close, closed)
			}
			if !tc.reached && be.Hits() != before {
				t.Error("the backend was reached")
			}
			if r, _ := be.lastRequest(); r != nil && r.URL.Path == "/smuggled" {
				t.Error("the smuggled request reached the backend")
			}
			p := strings.Split(tc.path, "?")[0]
			want := fmt.Sprintf("%d %s", tc.status, tc.kind)
			waitFor(t, func() bool { return slices.Contains(log.clientErrors(t)[p], want) }, "access log "+want+" for "+p)
		})
	}
}

// TestBodyTimeoutHTTP2: over HTTP/2 (h2c here), a stream whose body
// stalls gets 408 too (the read deadline is the stream's, through
// http.ResponseController), and its endpoint is not blamed.
func TestBodyTimeoutHTTP2(t *testing.T) {
	be := newBackend(t, nil)
	g, addr := startGatewayOpts(t, gatewayYAML(freePort(t), "  clientLimits: {bodyReadTimeout: 300ms}")+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`), Options{})
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &protos}, Timeout: 10 * time.Second}
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("abc")) // then nothing
	req, _ := http.NewRequest("POST", "http://"+addr+"/h2", pr)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("%s %d, want HTTP/2 408", resp.Proto, resp.StatusCode)
	}
	for _, bs := range g.backendStatuses() {
		for _, ep := range bs.Endpoints {
			if ep.Ejections > 0 {
				t.Errorf("endpoint %s blamed", ep.Address)
			}
		}
	}
}

// TestMinBodyRate: a body trickled a byte at a time never stays idle long
// enough for bodyReadTimeout, yet would hold a backend connection for as
// long as the client likes (finding 5 of issue 11: 300 clients at 1
// byte/s held 302 backend connections). Below clientLimits.minBodyRate,
// once the grace period has passed, the request gets 408 and its
// connection is closed, also when the trickle is one large chunk or
// carries gRPC's content type over HTTP/1.1; a gRPC stream over HTTP/2 is
// exempt, and a body sent at speed is not affected.
func TestMinBodyRate(t *testing.T) {
	var reached atomic.Int64
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d", n)
	})
	var log lineBuffer
	_, addr := startGatewayOpts(t, gatewayYAML(freePort(t), `  accessLog: {enabled: true}
  clientLimits: {minBodyRate: 1Ki}`)+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`), Options{AccessLog: &log})

	// trickle sends a chunked body a byte every 200ms, for at most 40
	// bytes (8 s, past the 5 s grace), and returns the response: in
	// chunks of a byte, or (big) as the start of one large chunk, which
	// net/http's chunked reader returns only once a read's buffer is full.
	trickle := func(path, contentType string, big bool) (*http.Response, string, bool) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n", path, contentType)
		piece := "1\r\nx\r\n"
		if big {
			io.WriteString(conn, "100000\r\n")
			piece = "x"
		}
		br := bufio.NewReader(conn)
		got := make(chan *http.Response, 1)
		go func() {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				resp = nil
			}
			got <- resp
		}()
		for i := 0; i < 40; i++ {
			select {
			case resp := <-got:
				if resp == nil {
					t.Fatal("no response")
				}
				b, _ := io.ReadAll(resp.Body)
				_, err := br.ReadByte()
				return resp, string(b), err != nil && !isTimeout(err)
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := io.WriteString(conn, piece); err != nil {
				break // the gateway closed the connection
			}
		}
		if !big {
			io.WriteString(conn, "0\r\n\r\n")
		}
		resp := <-got
		if resp == nil {
			t.Fatal("no response")
		}
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b), false
	}

	var wg sync.WaitGroup
	for _, tc := range []struct{ name, path, contentType string }{
		{"a trickled body", "/slow", "application/json"},
		{"one large chunk, trickled", "/big", "application/json"},
		// gRPC is HTTP/2 only: its content type on HTTP/1 is no way
		// around the limit.
		{"gRPC content type over HTTP/1.1", "/grpc1", "application/grpc"},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body, closed := trickle(tc.path, tc.contentType, tc.path == "/big")
			if resp.StatusCode != http.StatusRequestTimeout || !closed {
				t.Errorf("%s: %d %q, closed %v; want 408 and a closed connection", tc.name, resp.StatusCode, body, closed)
			}
		}()
	}
	wg.Add(1)
	go func() {
		// A gRPC client stream over h2c pauses between messages: exempt.
		defer wg.Done()
		tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, a string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, a)
		}}
		defer tr.CloseIdleConnections()
		pr, pw := io.Pipe()
		go func() {
			for i := 0; i < 40; i++ {
				time.Sleep(200 * time.Millisecond)
				if _, err := pw.Write([]byte("x")); err != nil {
					return
				}
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", "http://"+addr+"/grpc2", pr)
		req.Header.Set("Content-Type", "application/grpc")
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Errorf("a gRPC stream over h2c: %v", err)
			pr.Close()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "40" {
			t.Errorf("a gRPC stream over h2c: %d %q; want 200 and its 40 bytes", resp.StatusCode, b)
		}
	}()
	wg.Wait()

	// At speed: 256 KiB in one go.
	resp, err := http.Post("http://"+addr+"/fast", "application/octet-stream", bytes.NewReader(make([]byte, 256<<10)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != fmt.Sprint(256<<10) {
		t.Errorf("a fast body: %d %q", resp.StatusCode, b)
	}
	time.Sleep(100 * time.Millisecond) // the access log's batch
	for _, p := range []string{"/slow", "/big", "/grpc1"} {
		if got := log.clientErrors(t)[p]; !slices.Equal(got, []string{"408 body_too_slow"}) {
			t.Errorf("access log for %s: %q, want [408 body_too_slow]", p, got)
		}
	}
}

func TestTooSlow(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reads []struct {
			n int
			d time.Duration
		}
		want bool
	}{
		{name: "within the grace period", reads: []struct {
			n int
			d time.Duration
		}{{1, time.Second}, {1, 3 * time.Second}}, want: false},
		{name: "a byte a second past the grace", reads: []struct {
			n int
			d time.Duration
		}{{1, 3 * time.Second}, {1, 3 * time.Second}}, want: true},
		{name: "at the rate", reads: []struct {
			n int
			d time.Duration
		}{{3000, 3 * time.Second}, {3000, 3 * time.Second}}, want: false},
		{name: "fast, then a long wait", reads: []struct {
			n int
			d time.Duration
		}{{1 << 20, time.Millisecond}, {10, 10 * time.Second}}, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &clientBody{minRate: 1000}
			var got bool
			for _, r := range tc.reads {
				got = b.tooSlow(r.n, r.d)
			}
			if got != tc.want {
				t.Errorf("tooSlow = %v, want %v", got, tc.want)
			}
		})
	}
}
