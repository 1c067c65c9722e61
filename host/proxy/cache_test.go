package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/cache"
	"github.com/novaedge/novaedge/host/gwtest"
)

// cacheBackend answers by path, as the test cases need, and counts the
// requests of each path it served.
type cacheBackend struct {
	*backend
	mu   sync.Mutex
	seen map[string]int
	// gate, when set, holds requests to /slow until closed.
	gate chan struct{}
}

func newCacheBackend(t testing.TB) *cacheBackend {
	cb := &cacheBackend{seen: map[string]int{}}
	cb.backend = newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		cb.mu.Lock()
		cb.seen[r.URL.Path]++
		n := cb.seen[r.URL.Path]
		gate := cb.gate
		cb.mu.Unlock()
		h := w.Header()
		body := r.URL.Path + " #" + strconv.Itoa(n)
		switch r.URL.Path {
		case "/fresh":
			h.Set("Cache-Control", "max-age=100")
			h.Set("Age", "30")
		case "/default", "/head", "/purge/a", "/purge/b", "/other/c", "/reqcc", "/post", "/policy", "/auth-policy":
			// no freshness information: defaultTTL
		case "/swr":
			h.Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
			h.Set("Age", "20") // stale on arrival, within its stale window
		case "/swr-mr":
			h.Set("Cache-Control", "max-age=10, stale-while-revalidate=60, must-revalidate")
			h.Set("Age", "20")
		case "/nostore":
			h.Set("Cache-Control", "no-store")
		case "/private":
			h.Set("Cache-Control", "private, max-age=60")
		case "/nocache":
			h.Set("Cache-Control", "no-cache")
		case "/cookie":
			h.Set("Cache-Control", "max-age=60")
			h.Set("Set-Cookie", "session=abc")
		case "/auth":
			h.Set("Cache-Control", "max-age=60")
		case "/auth-public":
			h.Set("Cache-Control", "public, max-age=60")
		case "/vary":
			h.Set("Cache-Control", "max-age=60")
			h.Set("Vary", "Accept-Language")
			body += " " + r.Header.Get("Accept-Language")
		case "/varystar":
			h.Set("Cache-Control", "max-age=60")
			h.Set("Vary", "*")
		case "/etag":
			h.Set("Cache-Control", "max-age=60")
			h.Set("ETag", `"v1"`)
			h.Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
		case "/status500":
			h.Set("Cache-Control", "max-age=60")
			w.WriteHeader(500)
		case "/big", "/bigchunked":
			h.Set("Cache-Control", "max-age=60")
			body = strings.Repeat("x", 4096) + body
			if r.URL.Path == "/bigchunked" {
				io.WriteString(w, body[:100])
				w.(http.Flusher).Flush()
				io.WriteString(w, body[100:])
				return
			}
		case "/slow":
			h.Set("Cache-Control", "max-age=60")
			if gate != nil {
				<-gate
			}
		case "/slowprivate":
			h.Set("Cache-Control", "private, max-age=60")
			if gate != nil {
				<-gate
			}
		}
		io.WriteString(w, body)
	})
	return cb
}

func (cb *cacheBackend) count(path string) int {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return cb.seen[path]
}

// cacheGet does a request and returns status, X-Cache, Age and body.
func cacheGet(t *testing.T, method, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp := do(t, req)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

const cacheGW = `  cache:
    enabled: true
    maxSize: 1Mi
    maxEntrySize: 1Ki
    defaultTTL: 1m
    maxTTL: 10m
`

func TestCache(t *testing.T) {
	be := newCacheBackend(t)
	gw, base := startGateway(t, gatewayYAML(freePort(t), cacheGW)+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`))

	// want checks one response's status, X-Cache and body.
	want := func(t *testing.T, resp *http.Response, body string, status int, xcache, wantBody string) {
		t.Helper()
		if resp.StatusCode != status || resp.Header.Get("X-Cache") != xcache || body != wantBody {
			t.Fatalf("got %d X-Cache %q body %q; want %d %q %q", resp.StatusCode, resp.Header.Get("X-Cache"), body, status, xcache, wantBody)
		}
	}

	t.Run("HIT after MISS with a correct Age", func(t *testing.T) {
		start := time.Now()
		resp, body := cacheGet(t, "GET", base+"/fresh")
		want(t, resp, body, 200, "MISS", "/fresh #1")
		if resp.Header.Get("Age") != "30" {
			t.Errorf("MISS Age %q, want the upstream's 30", resp.Header.Get("Age"))
		}
		resp, body = cacheGet(t, "GET", base+"/fresh")
		want(t, resp, body, 200, "HIT", "/fresh #1")
		age, err := strconv.Atoi(resp.Header.Get("Age"))
		// The upstream's Age, plus the time since (the Date header has
		// whole seconds: one more at most).
		if limit := 30 + int(time.Since(start)/time.Second) + 1; err != nil || age < 30 || age > limit {
			t.Errorf("HIT Age %q, want 30..%d", resp.Header.Get("Age"), limit)
		}
		if resp.Header.Get("Cache-Control") != "max-age=100" || resp.Header.Get("Content-Length") != "9" {
			t.Errorf("stored header: %v", resp.Header)
		}
		if be.count("/fresh") != 1 {
			t.Errorf("backend served /fresh %d times", be.count("/fresh"))
		}
	})

	t.Run("defaultTTL without explicit freshness; query is part of the key", func(t *testing.T) {
		resp, body := cacheGet(t, "GET", base+"/default?a=1")
		want(t, resp, body, 200, "MISS", "/default #1")
		resp, body = cacheGet(t, "GET", base+"/default?a=1")
		want(t, resp, body, 200, "HIT", "/default #1")
		resp, body = cacheGet(t, "GET", base+"/default?a=2")
		want(t, resp, body, 200, "MISS", "/default #2")
	})

	t.Run("host is part of the key", func(t *testing.T) {
		r1, b1 := cacheGet(t, "GET", base+"/default?h", "Host", "one.example.com")
		r2, b2 := cacheGet(t, "GET", base+"/default?h", "Host", "two.example.com")
		r3, b3 := cacheGet(t, "GET", base+"/default?h", "Host", "ONE.example.com:80")
		if r1.Header.Get("X-Cache") != "MISS" || r2.Header.Get("X-Cache") != "MISS" || r3.Header.Get("X-Cache") != "HIT" || b3 != b1 || b2 == b1 {
			t.Errorf("got %s %q, %s %q, %s %q", r1.Header.Get("X-Cache"), b1, r2.Header.Get("X-Cache"), b2, r3.Header.Get("X-Cache"), b3)
		}
	})

	for _, tc := range []struct {
		name, path string
		hdr        []string
	}{
		{"no-store", "/nostore", nil},
		{"private", "/private", nil},
		{"no-cache", "/nocache", nil},
		{"Set-Cookie", "/cookie", nil},
		{"Authorization without public", "/auth", []string{"Authorization", "Bearer x"}},
		{"Vary: *", "/varystar", nil},
		{"status 500", "/status500", nil},
		{"larger than maxEntrySize", "/big", nil},
		{"stale, must-revalidate", "/swr-mr", nil},
		{"larger than maxEntrySize, chunked", "/bigchunked", nil},
	} {
		t.Run("not stored: "+tc.name, func(t *testing.T) {
			for i := 1; i <= 2; i++ {
				resp, body := cacheGet(t, "GET", base+tc.path, tc.hdr...)
				if resp.Header.Get("X-Cache") != "MISS" || !strings.HasSuffix(body, tc.path+" #"+strconv.Itoa(i)) {
					t.Fatalf("request %d: X-Cache %q body ...%q", i, resp.Header.Get("X-Cache"), body[max(0, len(body)-20):])
				}
				if strings.HasPrefix(tc.path, "/big") && len(body) != 4096+len(tc.path)+3 {
					t.Fatalf("body of %d bytes, want all of it", len(body))
				}
			}
			if n := be.count(tc.path); n != 2 {
				t.Errorf("backend served %s %d times, want 2", tc.path, n)
			}
		})
	}

	t.Run("Authorization with public is stored", func(t *testing.T) {
		resp, body := cacheGet(t, "GET", base+"/auth-public", "Authorization", "Bearer x")
		want(t, resp, body, 200, "MISS", "/auth-public #1")
		resp, body = cacheGet(t, "GET", base+"/auth-public", "Authorization", "Bearer y")
		want(t, resp, body, 200, "HIT", "/auth-public #1")
	})

	t.Run("Vary: one entry per Accept-Language", func(t *testing.T) {
		for _, step := range []struct{ lang, xcache, body string }{
			{"en", "MISS", "/vary #1 en"},
			{"fr", "MISS", "/vary #2 fr"},
			{"en", "HIT", "/vary #1 en"},
			{"fr", "HIT", "/vary #2 fr"},
			{"", "MISS", "/vary #3 "},
			{"", "HIT", "/vary #3 "},
		} {
			var hdr []string
			if step.lang != "" {
				hdr = []string{"Accept-Language", step.lang}
			}
			resp, body := cacheGet(t, "GET", base+"/vary", hdr...)
			want(t, resp, body, 200, step.xcache, step.body)
		}
	})

	t.Run("conditional requests answered from the cache", func(t *testing.T) {
		resp, body := cacheGet(t, "GET", base+"/etag")
		want(t, resp, body, 200, "MISS", "/etag #1")
		resp, body = cacheGet(t, "GET", base+"/etag", "If-None-Match", `W/"v0", "v1"`)
		want(t, resp, body, 304, "HIT", "")
		if resp.Header.Get("ETag") != `"v1"` || resp.Header.Get("Cache-Control") != "max-age=60" {
			t.Errorf("304 header: %v", resp.Header)
		}
		resp, body = cacheGet(t, "GET", base+"/etag", "If-None-Match", `"v2"`)
		want(t, resp, body, 200, "HIT", "/etag #1")
		resp, body = cacheGet(t, "GET", base+"/etag", "If-Modified-Since", "Tue, 03 Jan 2006 15:04:05 GMT")
		want(t, resp, body, 304, "HIT", "")
		resp, body = cacheGet(t, "GET", base+"/etag", "If-Modified-Since", "Sun, 01 Jan 2006 15:04:05 GMT")
		want(t, resp, body, 200, "HIT", "/etag #1")
		if be.count("/etag") != 1 {
			t.Errorf("backend served /etag %d times", be.count("/etag"))
		}
	})

	t.Run("HEAD from a GET entry; a HEAD miss is not stored", func(t *testing.T) {
		resp, body := cacheGet(t, "HEAD", base+"/head")
		want(t, resp, body, 200, "MISS", "")
		resp, body = cacheGet(t, "GET", base+"/head")
		want(t, resp, body, 200, "MISS", "/head #2")
		resp, body = cacheGet(t, "HEAD", base+"/head")
		want(t, resp, body, 200, "HIT", "")
		if resp.ContentLength != int64(len("/head #2")) {
			t.Errorf("HEAD hit Content-Length %d", resp.ContentLength)
		}
	})

	t.Run("request Cache-Control", func(t *testing.T) {
		resp, body := cacheGet(t, "GET", base+"/reqcc")
		want(t, resp, body, 200, "MISS", "/reqcc #1")
		resp, body = cacheGet(t, "GET", base+"/reqcc", "Cache-Control", "no-store")
		want(t, resp, body, 200, "BYPASS", "/reqcc #2")
		resp, body = cacheGet(t, "GET", base+"/reqcc", "Cache-Control", "max-age=3600")
		want(t, resp, body, 200, "HIT", "/reqcc #1")
		resp, body = cacheGet(t, "GET", base+"/reqcc", "Cache-Control", "no-cache")
		want(t, resp, body, 200, "MISS", "/reqcc #3")
		resp, body = cacheGet(t, "GET", base+"/reqcc", "Cache-Control", "max-age=0")
		want(t, resp, body, 200, "MISS", "/reqcc #4")
		resp, body = cacheGet(t, "GET", base+"/reqcc", "Pragma", "no-cache")
		want(t, resp, body, 200, "MISS", "/reqcc #5")
		resp, body = cacheGet(t, "GET", base+"/reqcc", "Cache-Control", "min-fresh=3600")
		want(t, resp, body, 200, "MISS", "/reqcc #6")
		resp, body = cacheGet(t, "GET", base+"/reqcc")
		want(t, resp, body, 200, "HIT", "/reqcc #6") // the newest response replaced the entry
		resp, _ = cacheGet(t, "GET", base+"/never-seen", "Cache-Control", "only-if-cached")
		if resp.StatusCode != 504 {
			t.Errorf("only-if-cached without an entry: %d", resp.StatusCode)
		}
	})

	t.Run("a POST bypasses and removes the entry", func(t *testing.T) {
		resp, body := cacheGet(t, "GET", base+"/post")
		want(t, resp, body, 200, "MISS", "/post #1")
		resp, body = cacheGet(t, "POST", base+"/post")
		want(t, resp, body, 200, "BYPASS", "/post #2")
		resp, body = cacheGet(t, "GET", base+"/post")
		want(t, resp, body, 200, "MISS", "/post #3")
	})

	t.Run("stale-while-revalidate", func(t *testing.T) {
		resp, body := cacheGet(t, "GET", base+"/swr")
		want(t, resp, body, 200, "MISS", "/swr #1")
		resp, body = cacheGet(t, "GET", base+"/swr")
		want(t, resp, body, 200, "HIT", "/swr #1") // stale, and refreshed in the background
		if age, _ := strconv.Atoi(resp.Header.Get("Age")); age < 20 {
			t.Errorf("stale hit Age %q", resp.Header.Get("Age"))
		}
		c := gw.cacheOf(t)
		primary, _ := cacheKeyFor(gw, "127.0.0.1", "/swr")
		landed := func(body string) {
			t.Helper()
			for i := 0; i < 10000; i++ { // wait for the refresh to be stored
				if e := c.Lookup(primary, http.Header{}); e != nil && string(e.Body) == body {
					return
				}
				time.Sleep(time.Millisecond)
			}
			t.Fatalf("the refresh %q was not stored", body)
		}
		landed("/swr #2")
		resp, body = cacheGet(t, "GET", base+"/swr")
		want(t, resp, body, 200, "HIT", "/swr #2") // stale on arrival too: refreshed again
		landed("/swr #3")
		if n := be.count("/swr"); n != 3 {
			t.Errorf("backend served /swr %d times, want 3", n)
		}
		// A request asking for an age limit does not take a stale response.
		resp, body = cacheGet(t, "GET", base+"/swr", "Cache-Control", "max-age=600")
		want(t, resp, body, 200, "MISS", "/swr #4")
	})

	t.Run("purge by prefix and all", func(t *testing.T) {
		for _, p := range []string{"/purge/a", "/purge/b", "/other/c"} {
			cacheGet(t, "GET", base+p, "Host", "purge.example.com")
		}
		n, err := gw.PurgeCache("t/gw", "purge.example.com/purge/")
		if err != nil || n != 2 {
			t.Fatalf("purge by prefix: %d, %v; want 2", n, err)
		}
		resp, body := cacheGet(t, "GET", base+"/purge/a", "Host", "purge.example.com")
		want(t, resp, body, 200, "MISS", "/purge/a #2")
		resp, body = cacheGet(t, "GET", base+"/other/c", "Host", "purge.example.com")
		want(t, resp, body, 200, "HIT", "/other/c #1")
		if _, err := gw.PurgeCache("t/nope", ""); err == nil {
			t.Error("purging a gateway without a cache did not fail")
		}
		n, err = gw.PurgeCache("", "")
		if err != nil || n < 3 {
			t.Fatalf("purge all: %d, %v", n, err)
		}
		resp, body = cacheGet(t, "GET", base+"/other/c", "Host", "purge.example.com")
		want(t, resp, body, 200, "MISS", "/other/c #2")
	})
}

// TestCacheCoalescing: concurrent misses of one key make one upstream
// request, counted at the backend; the others are served its response.
func TestCacheCoalescing(t *testing.T) {
	be := newCacheBackend(t)
	be.gate = make(chan struct{})
	gw, base := startGateway(t, gatewayYAML(freePort(t), cacheGW)+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`))
	c := gw.cacheOf(t)

	run := func(path string, n int) map[string]int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		results := map[string]int{}
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Get(base + path)
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				results[strconv.Itoa(resp.StatusCode)+" "+resp.Header.Get("X-Cache")+" "+string(body)]++
				mu.Unlock()
			}()
		}
		// Hold the backend until every other request waits for the first.
		primary, _ := cacheKeyFor(gw, "127.0.0.1", path)
		for i := 0; i < 20000 && c.Waiting(primary) < n-1; i++ {
			time.Sleep(time.Millisecond)
		}
		if got := c.Waiting(primary); got != n-1 {
			t.Errorf("%d requests wait for the first, want %d", got, n-1)
		}
		close(be.gate)
		wg.Wait()
		return results
	}

	const n = 100
	results := run("/slow", n)
	if got := be.count("/slow"); got != 1 {
		t.Errorf("backend served %d requests, want 1", got)
	}
	if results["200 MISS /slow #1"] != 1 || results["200 HIT /slow #1"] != n-1 {
		t.Errorf("results: %v", results)
	}

	// A response that may not be stored is not shared: each waiter goes
	// upstream itself.
	be.mu.Lock()
	be.gate = make(chan struct{})
	be.mu.Unlock()
	results = run("/slowprivate", 10)
	if got := be.count("/slowprivate"); got != 10 {
		t.Errorf("backend served %d requests of a private response, want 10", got)
	}
	for k, v := range results {
		if !strings.HasPrefix(k, "200 MISS") || v != 1 {
			t.Errorf("private response shared: %q ×%d", k, v)
		}
	}
}

// cacheOf returns the one cache of the gateway (tests).
func (g *Gateway) cacheOf(t *testing.T) *cache.Cache {
	t.Helper()
	g.keptCaches.mu.Lock()
	defer g.keptCaches.mu.Unlock()
	if len(g.keptCaches.m) != 1 {
		t.Fatalf("%d caches, want 1", len(g.keptCaches.m))
	}
	for _, e := range g.keptCaches.m {
		return e.v
	}
	return nil
}

// cacheKeyFor is the primary key of a request to path on the only route.
func cacheKeyFor(g *Gateway, host, path string) (string, string) {
	st := g.cur.Load()
	for _, pr := range st.ports {
		m := pr.hosts.lookup(host).best(&http.Request{Method: "GET", Header: http.Header{}}, path)
		return cache.Key(m.rule.cacheScope, host, path, "")
	}
	return "", ""
}

// TestCachePolicies: the policies run before the cache (a denied request
// gets no cached response) and on hits (their response headers are
// added per request, never stored).
func TestCachePolicies(t *testing.T) {
	be := newCacheBackend(t)
	res := gatewayYAML(freePort(t), cacheGW) + backendYAML("b", be.addr()) + route(`
    - backendRefs: [{name: b}]
    - name: authed
      matches: [{path: {value: /auth-policy}}, {path: {value: /auth-public}}]
      backendRefs: [{name: b}]
`) + policyYAML("auth", "Wasm", "{kind: ProxyGateway, name: gw}", "") +
		policyYAML("jwt", "JWT", "{kind: ProxyRoute, name: r, sectionName: authed}", "")
	var open atomic.Int64
	gw := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Policies: func(ctx context.Context, p *configs.Policy) (Policy, error) {
		// The JWT policy authenticates, as host/policy's registry says.
		return &fakePolicy{name: p.Metadata.Name, open: &open, traits: PolicyTraits{Authenticates: p.Spec.Type == configs.PolicyJWT}}, nil
	}})
	base := gwtest.Serve(t, gw, res)
	for i, step := range []struct {
		hdr    []string
		status int
		xcache string
	}{
		{nil, 200, "MISS"},
		{[]string{"X-Deny", "auth"}, 403, ""},
		{nil, 200, "HIT"},
		{[]string{"X-Deny", "auth"}, 403, ""},
	} {
		resp, body := cacheGet(t, "GET", base+"/policy", step.hdr...)
		if resp.StatusCode != step.status || resp.Header.Get("X-Cache") != step.xcache {
			t.Fatalf("step %d: %d X-Cache %q %q", i, resp.StatusCode, resp.Header.Get("X-Cache"), body)
		}
		if got := resp.Header.Values("X-Chain-Back"); step.status == 200 && (len(got) != 1 || got[0] != "auth") {
			t.Errorf("step %d: the policy's response header %q, want it once", i, got)
		}
	}
	if be.count("/policy") != 1 {
		t.Errorf("backend served %d", be.count("/policy"))
	}
	// Behind an authentication policy (which may strip the credentials),
	// only what the backend declares public is shared.
	for _, step := range []struct{ path, xcache, body string }{
		{"/auth-policy", "MISS", "/auth-policy #1"},
		{"/auth-policy", "MISS", "/auth-policy #2"},
		{"/auth-public", "MISS", "/auth-public #1"},
		{"/auth-public", "HIT", "/auth-public #1"},
	} {
		resp, body := cacheGet(t, "GET", base+step.path)
		if resp.Header.Get("X-Cache") != step.xcache || body != step.body {
			t.Errorf("%s: X-Cache %q body %q, want %q %q", step.path, resp.Header.Get("X-Cache"), body, step.xcache, step.body)
		}
	}
}

// TestCacheAcrossChanges: the cache outlives a configuration change that
// leaves its gateway and the route alone; a changed route does not serve
// what its previous version stored.
func TestCacheAcrossChanges(t *testing.T) {
	be := newCacheBackend(t)
	port := freePort(t)
	gwCache := cacheGW
	res := func(routeExtra, backendName string) string {
		return gatewayYAML(port, gwCache) + backendYAML("b", be.addr()) + backendYAML(backendName, be.addr()) + route(`
    - backendRefs: [{name: b}]
`+routeExtra)
	}
	gw, base := startGateway(t, res("", "x"))
	apply := func(r string) {
		t.Helper()
		snap, err := configs.LoadFiles([]configs.File{{Name: "c.yaml", Data: []byte(r)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := gw.Apply(context.Background(), snap); err != nil {
			t.Fatal(err)
		}
	}
	check := func(xcache, body string) {
		t.Helper()
		resp, got := cacheGet(t, "GET", base+"/default")
		if resp.Header.Get("X-Cache") != xcache || got != body {
			t.Fatalf("X-Cache %q body %q, want %q %q", resp.Header.Get("X-Cache"), got, xcache, body)
		}
	}
	check("MISS", "/default #1")
	apply(res("", "y")) // another backend: the route and gateway stay
	check("HIT", "/default #1")
	apply(res("      requestHeaders: {set: [{name: X-Changed, value: \"1\"}]}\n", "y")) // the route changes
	check("MISS", "/default #2")
	check("HIT", "/default #2")
	if n := gw.keptCaches.len(); n != 1 {
		t.Errorf("%d caches kept, want 1", n)
	}
	gwCache = strings.Replace(cacheGW, "maxSize: 1Mi", "maxSize: 2Mi", 1) // new settings: a new cache
	apply(res("      requestHeaders: {set: [{name: X-Changed, value: \"1\"}]}\n", "y"))
	check("MISS", "/default #3")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := gw.keptCaches.len(); n != 0 {
		t.Errorf("%d caches left open after Shutdown", n)
	}
}

// BenchmarkCache compares a cache HIT with an upstream round trip through
// the gateway, for a 1 KiB response over keep-alive connections: "hit"
// is served from the cache; "upstream" goes to the backend (the response
// says no-store, so the cache is consulted and passes); "nocache" is the
// same route on a gateway without a cache.
func BenchmarkCache(b *testing.B) {
	body := strings.Repeat("x", 1<<10)
	be := newBackend(b, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hit" {
			w.Header().Set("Cache-Control", "max-age=3600")
		} else {
			w.Header().Set("Cache-Control", "no-store")
		}
		io.WriteString(w, body)
	})
	rt := backendYAML("b", be.addr()) + route(`
    - backendRefs: [{name: b}]
`)
	_, cached := startGateway(b, gatewayYAML(freePort(b), "  cache: {enabled: true}\n")+rt)
	_, plain := startGateway(b, gatewayYAML(freePort(b), "")+rt)
	for _, bc := range []struct{ name, url, xcache string }{
		{"hit", cached + "/hit", "HIT"},
		{"upstream", cached + "/upstream", "MISS"},
		{"nocache", plain + "/upstream", ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			defer cl.CloseIdleConnections()
			fetch := func() {
				resp, err := cl.Get(bc.url)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if n != int64(len(body)) || resp.Header.Get("X-Cache") != bc.xcache {
					b.Fatalf("%d bytes, X-Cache %q", n, resp.Header.Get("X-Cache"))
				}
			}
			if bc.name == "hit" { // the miss that fills the cache
				resp, err := cl.Get(bc.url)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			b.ReportAllocs()
			for b.Loop() {
				fetch()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// TestCacheAndCompression: the cache keeps what the backend sent and a hit
// is compressed for each client as it asks: gzip for one, identity for
// another, from one upstream request.
func TestCacheAndCompression(t *testing.T) {
	var hits atomic.Int64
	body := strings.Repeat(`{"id":1,"name":"a fairly repetitive JSON body"},`, 100)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=60")
		io.WriteString(w, body)
	})
	_, base := startGateway(t, gatewayYAML(freePort(t), `  cache: {enabled: true, maxSize: 1Mi, maxEntrySize: 64Ki}
  compression: {enabled: true, algorithms: [gzip]}
`)+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`))
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	get := func(accept string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/list", nil)
		req.Header.Set("Accept-Encoding", accept)
		resp, err := raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r)
			if err != nil {
				t.Fatal(err)
			}
			r = zr
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	for i, tc := range []struct{ accept, xcache, encoding string }{
		{"gzip", "MISS", "gzip"},
		{"gzip", "HIT", "gzip"},
		{"identity", "HIT", ""},
		{"br;q=1, gzip;q=0.5", "HIT", "gzip"},
	} {
		resp, got := get(tc.accept)
		if resp.Header.Get("X-Cache") != tc.xcache || resp.Header.Get("Content-Encoding") != tc.encoding || got != body {
			t.Errorf("%d: Accept-Encoding %q: X-Cache %q Content-Encoding %q, body intact %v", i, tc.accept,
				resp.Header.Get("X-Cache"), resp.Header.Get("Content-Encoding"), got == body)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("%d upstream requests, want 1", n)
	}
}

// TestCacheRevalidation: entries that may not be served as they are (no-cache,
// stale) are revalidated with a conditional request; a 304 serves the stored
// body (X-Cache REVALIDATED) and updates the entry, a 200 replaces it.
func TestCacheRevalidation(t *testing.T) {
	const lastMod = "Mon, 02 Jan 2006 15:04:05 GMT"
	var mu sync.Mutex
	bodies := map[string]int{}    // full responses served, by path
	cond := map[string][]string{} // conditional fields received, by path
	var gate chan struct{}        // holds revalidations of /rv-slow while set
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		inm, ims := r.Header.Get("If-None-Match"), r.Header.Get("If-Modified-Since")
		mu.Lock()
		cond[r.URL.Path] = append(cond[r.URL.Path], inm+"|"+ims)
		n := bodies[r.URL.Path] + 1
		g := gate
		mu.Unlock()
		h := w.Header()
		etag := `"e1"`
		notModified := false
		switch r.URL.Path {
		case "/rv-etag", "/rv-slow":
			h.Set("Cache-Control", "no-cache")
			notModified = inm == etag
			if notModified && r.URL.Path == "/rv-slow" && g != nil {
				<-g
			}
		case "/rv-lm":
			h.Set("Cache-Control", "no-cache")
			h.Set("Last-Modified", lastMod)
			etag = ""
			notModified = ims == lastMod
		case "/rv-stale":
			if inm == etag {
				h.Set("Cache-Control", "max-age=100") // the 304 extends freshness
				notModified = true
			} else {
				h.Set("Cache-Control", "max-age=1")
				h.Set("Age", "5") // stale on arrival: kept for its validator
			}
		case "/rv-replace":
			h.Set("Cache-Control", "no-cache")
			etag = `"r` + strconv.Itoa(n) + `"` // changes every time: never 304
		}
		if etag != "" {
			h.Set("ETag", etag)
		}
		if notModified {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		mu.Lock()
		bodies[r.URL.Path] = n
		mu.Unlock()
		io.WriteString(w, r.URL.Path+" #"+strconv.Itoa(n))
	})
	gw, base := startGateway(t, gatewayYAML(freePort(t), cacheGW)+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`))
	served := func(path string) (int, []string) {
		mu.Lock()
		defer mu.Unlock()
		return bodies[path], slices.Clone(cond[path])
	}
	type step struct {
		hdr          []string
		status       int
		xcache, body string
		upstreamCond string // the conditional fields the backend got ("" if it got no request)
	}
	for _, tc := range []struct {
		name, path string
		steps      []step
		bodies     int // full responses the backend served
	}{
		{"no-cache with ETag", "/rv-etag", []step{
			{nil, 200, "MISS", "/rv-etag #1", "|"},
			{nil, 200, "REVALIDATED", "/rv-etag #1", `"e1"|`},
			{nil, 200, "REVALIDATED", "/rv-etag #1", `"e1"|`},
			// The client's own conditional goes through; the 304 names the
			// entry's strong ETag, so it is the entry's revalidation too.
			{[]string{"If-None-Match", `"e1"`}, 304, "REVALIDATED", "", `"e1"|`},
			// A client's validator that does not match gets the full entry.
			{[]string{"If-None-Match", `"zz"`}, 200, "MISS", "/rv-etag #2", `"zz"|`},
		}, 2},
		{"no-cache with Last-Modified", "/rv-lm", []step{
			{nil, 200, "MISS", "/rv-lm #1", "|"},
			{nil, 200, "REVALIDATED", "/rv-lm #1", "|" + lastMod},
			{[]string{"Cache-Control", "max-age=0"}, 200, "REVALIDATED", "/rv-lm #1", "|" + lastMod},
		}, 1},
		{"stale entry: the 304's max-age extends its freshness", "/rv-stale", []step{
			{nil, 200, "MISS", "/rv-stale #1", "|"},
			{nil, 200, "REVALIDATED", "/rv-stale #1", `"e1"|`},
			{nil, 200, "HIT", "/rv-stale #1", ""},
			{[]string{"If-None-Match", `"e1"`}, 304, "HIT", "", ""},
			{[]string{"Cache-Control", "no-cache"}, 200, "REVALIDATED", "/rv-stale #1", `"e1"|`},
		}, 1},
		{"a 200 to the revalidation replaces the entry", "/rv-replace", []step{
			{nil, 200, "MISS", "/rv-replace #1", "|"},
			{nil, 200, "MISS", "/rv-replace #2", `"r1"|`},
			{nil, 200, "MISS", "/rv-replace #3", `"r2"|`},
		}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, s := range tc.steps {
				_, before := served(tc.path)
				resp, body := cacheGet(t, "GET", base+tc.path, s.hdr...)
				if resp.StatusCode != s.status || resp.Header.Get("X-Cache") != s.xcache || body != s.body {
					t.Fatalf("step %d: got %d X-Cache %q body %q; want %d %q %q", i, resp.StatusCode,
						resp.Header.Get("X-Cache"), body, s.status, s.xcache, s.body)
				}
				_, after := served(tc.path)
				got := ""
				if len(after) > len(before) {
					got = after[len(after)-1]
				}
				if len(after)-len(before) > 1 || got != s.upstreamCond {
					t.Fatalf("step %d: backend got %q, want %q", i, after[len(before):], s.upstreamCond)
				}
				if s.xcache == "REVALIDATED" && s.status == 200 {
					if resp.Header.Get("Cache-Control") == "" || resp.Header.Get("Content-Length") != strconv.Itoa(len(s.body)) {
						t.Errorf("step %d: revalidated header %v", i, resp.Header)
					}
					if age, err := strconv.Atoi(resp.Header.Get("Age")); err != nil || age >= 5 {
						t.Errorf("step %d: Age %q, want the revalidation's", i, resp.Header.Get("Age"))
					}
				}
			}
			if n, _ := served(tc.path); n != tc.bodies {
				t.Errorf("backend served %d full responses, want %d", n, tc.bodies)
			}
		})
	}

	t.Run("concurrent revalidations of one key are coalesced", func(t *testing.T) {
		if _, body := cacheGet(t, "GET", base+"/rv-slow"); body != "/rv-slow #1" {
			t.Fatalf("first request: %q", body)
		}
		mu.Lock()
		gate = make(chan struct{})
		mu.Unlock()
		c := gw.cacheOf(t)
		primary, _ := cacheKeyFor(gw, "127.0.0.1", "/rv-slow")
		const n = 10
		var wg sync.WaitGroup
		var rmu sync.Mutex
		results := map[string]int{}
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Get(base + "/rv-slow")
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				rmu.Lock()
				results[strconv.Itoa(resp.StatusCode)+" "+resp.Header.Get("X-Cache")+" "+string(body)]++
				rmu.Unlock()
			}()
		}
		for i := 0; i < 20000 && c.Waiting(primary) < n-1; i++ {
			time.Sleep(time.Millisecond)
		}
		if got := c.Waiting(primary); got != n-1 {
			t.Errorf("%d requests wait for the revalidation, want %d", got, n-1)
		}
		close(gate)
		wg.Wait()
		if bodiesN, conds := served("/rv-slow"); bodiesN != 1 || len(conds) != 2 {
			t.Errorf("backend served %d bodies and %d requests, want 1 and 2", bodiesN, len(conds))
		}
		if results["200 REVALIDATED /rv-slow #1"] != 1 || results["200 HIT /rv-slow #1"] != n-1 {
			t.Errorf("results: %v", results)
		}
	})
}

// TestCacheStaleIfError: a stale entry whose response allows it
// (stale-if-error) is served when the upstream answers 5xx or not at all;
// not to a request asking for a fresh response, nor with must-revalidate.
func TestCacheStaleIfError(t *testing.T) {
	var mode atomic.Value // "ok", "503" or "abort"
	mode.Store("ok")
	var n atomic.Int64
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load().(string) {
		case "503":
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "down")
			return
		case "abort":
			panic(http.ErrAbortHandler) // no response at all
		}
		cc := "max-age=1, stale-if-error=600"
		if r.URL.Path == "/sie-mr" {
			cc += ", must-revalidate"
		}
		w.Header().Set("Cache-Control", cc)
		w.Header().Set("Age", "5") // stale on arrival, within its error window
		io.WriteString(w, r.URL.Path+" #"+strconv.Itoa(int(n.Add(1))))
	})
	_, base := startGateway(t, gatewayYAML(freePort(t), cacheGW)+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`))
	for i, s := range []struct {
		mode, path string
		hdr        []string
		status     int
		xcache     string
		body       string
	}{
		{"ok", "/sie", nil, 200, "MISS", "/sie #1"},
		{"503", "/sie", nil, 200, "STALE", "/sie #1"},
		{"abort", "/sie", nil, 200, "STALE", "/sie #1"},
		{"503", "/sie", []string{"Cache-Control", "no-cache"}, 503, "MISS", "down"},
		{"ok", "/sie", nil, 200, "MISS", "/sie #2"},
		{"503", "/sie", nil, 200, "STALE", "/sie #2"},
		{"ok", "/sie-mr", nil, 200, "MISS", "/sie-mr #3"},
		{"503", "/sie-mr", nil, 503, "MISS", "down"},
	} {
		mode.Store(s.mode)
		resp, body := cacheGet(t, "GET", base+s.path, s.hdr...)
		if resp.StatusCode != s.status || resp.Header.Get("X-Cache") != s.xcache || body != s.body {
			t.Fatalf("step %d: got %d X-Cache %q body %q; want %d %q %q", i, resp.StatusCode,
				resp.Header.Get("X-Cache"), body, s.status, s.xcache, s.body)
		}
	}
}
