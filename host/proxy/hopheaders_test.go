package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/novaedge/novaedge/configs"
)

// identityPolicy stands for KeyAuth: it sets the consumer header to its
// own value and records what the request carried when it ran.
type identityPolicy struct{ header string }

type identityStream struct{ p *identityPolicy }

func (p *identityPolicy) NewStream(ctx context.Context, r *http.Request, info StreamInfo) (PolicyStream, error) {
	return identityStream{p}, nil
}
func (p *identityPolicy) Close() {}

func (s identityStream) RequestHeaders(ctx context.Context, r *http.Request) (*LocalResponse, error) {
	r.Header.Set("X-Policy-Saw-Consumer", r.Header.Get(s.p.header))
	r.Header.Set(s.p.header, "alice")
	return nil, nil
}
func (s identityStream) ResponseHeaders(context.Context, int, http.Header, bool) (*LocalResponse, error) {
	return nil, nil
}
func (s identityStream) Done() {}

// TestHeadersBeforePolicies: hop-by-hop headers (and those the client's
// Connection names) are removed before the request ID and the policies,
// so a Connection token cannot remove what a policy sets (finding 4 of
// issue 11), nor a header the gateway relies on; identity headers are
// removed from every client request on every route, policy or not
// (finding 8), so a backend sees only a policy's value.
func TestHeadersBeforePolicies(t *testing.T) {
	be := newBackend(t, nil)
	res := gatewayYAML(freePort(t), "  identityHeaders: [X-Consumer, X-User-ID, X-Authenticated-*]") +
		backendYAML("b", be.addr()) + route(`
    - name: keyed
      matches: [{path: {value: /keyed}}]
      backendRefs: [{name: b}]
    - name: open
      backendRefs: [{name: b}]
`) + `---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: key, namespace: t}
spec:
  type: KeyAuth
  targetRef: {kind: ProxyRoute, name: r, sectionName: keyed}
  keyAuth: {keys: [{key: k, consumer: alice}]}
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: tenant, namespace: t}
spec:
  type: KeyAuth
  targetRef: {kind: ProxyRoute, name: r, sectionName: keyed}
  keyAuth: {keys: [{key: k2, consumer: bob}], consumerHeader: X-Tenant}
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: jwt, namespace: t}
spec:
  type: JWT
  targetRef: {kind: ProxyRoute, name: r, sectionName: keyed}
  jwt:
    jwksUri: https://auth.example.com/jwks.json
    forwardClaims: [{claim: org, header: X-Org}]
`
	snap, err := configs.LoadFiles([]configs.File{{Name: "h.yaml", Data: []byte(res)}})
	if err != nil {
		t.Fatal(err)
	}
	// Only the first KeyAuth acts (sets X-Consumer); the others are in the
	// configuration, so their headers are identity headers too.
	builder := func(ctx context.Context, p *configs.Policy) (Policy, error) {
		if p.Metadata.Name == "key" {
			return &identityPolicy{header: "X-Consumer"}, nil
		}
		return nil, nil
	}
	gw := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Policies: builder})
	if err := gw.Apply(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Shutdown(context.Background()) })
	var base string
	for _, a := range gw.Addrs() {
		base = "http://" + a
	}

	forged := []string{"X-Consumer", "evil", "X-User-Id", "evil", "X-Authenticated-Role", "admin",
		"X-Authenticated-User", "root", "X-Tenant", "evil", "X-Org", "evil"}
	for _, tc := range []struct {
		name  string
		path  string
		hdr   []string
		check func(t *testing.T, r *http.Request)
	}{
		{
			name: "Connection cannot remove what a policy sets",
			path: "/keyed", hdr: []string{"Connection", "X-Consumer"},
			check: func(t *testing.T, r *http.Request) {
				if got := r.Header.Get("X-Consumer"); got != "alice" {
					t.Errorf("X-Consumer %q, want the policy's alice", got)
				}
			},
		},
		{
			name: "Connection cannot remove the request ID",
			path: "/open", hdr: []string{"Connection", "X-Request-Id, X-Forwarded-For", "X-Request-Id", "client-id-1"},
			check: func(t *testing.T, r *http.Request) {
				if got := r.Header.Get("X-Request-Id"); got != "client-id-1" {
					t.Errorf("X-Request-Id %q, want the client's client-id-1", got)
				}
				if r.Header.Get("X-Forwarded-For") == "" {
					t.Error("X-Forwarded-For removed")
				}
			},
		},
		{
			name: "Connection still removes what it names",
			path: "/open", hdr: []string{"Connection", "keep-alive, X-Hop", "X-Hop", "1", "X-End", "2", "Keep-Alive", "timeout=5"},
			check: func(t *testing.T, r *http.Request) {
				if r.Header.Get("X-Hop") != "" || r.Header.Get("Keep-Alive") != "" || r.Header.Get("Connection") != "" {
					t.Errorf("hop-by-hop headers reached the backend: %v", r.Header)
				}
				if r.Header.Get("X-End") != "2" {
					t.Error("an end-to-end header was removed")
				}
			},
		},
		{
			name: "identity headers stripped on a route without the policy",
			path: "/open", hdr: forged,
			check: func(t *testing.T, r *http.Request) {
				for i := 0; i < len(forged); i += 2 {
					if v := r.Header.Get(forged[i]); v != "" {
						t.Errorf("%s: %q reached the backend", forged[i], v)
					}
				}
			},
		},
		{
			name: "the policy sees no forged identity and sets its own",
			path: "/keyed", hdr: forged,
			check: func(t *testing.T, r *http.Request) {
				if got := r.Header.Get("X-Policy-Saw-Consumer"); got != "" {
					t.Errorf("the policy saw the client's X-Consumer %q", got)
				}
				if got := r.Header.Get("X-Consumer"); got != "alice" {
					t.Errorf("X-Consumer %q, want alice", got)
				}
				if v := r.Header.Get("X-Tenant") + r.Header.Get("X-Org") + r.Header.Get("X-User-Id"); v != "" {
					t.Errorf("forged identity reached the backend: %q", v)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := get(t, base+tc.path, tc.hdr...)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			r, _ := be.lastRequest()
			tc.check(t, r)
		})
	}
}

// TestHeaderLimits: more header fields than clientLimits.maxHeaderCount,
// or a header block over maxHeaderBytes, get 431 and a closed
// connection (finding 8 of issue 11; Envoy's defaults are 100 fields and
// 60 KiB). net/http enforces MaxHeaderBytes itself only with 4 KiB of
// slack and counts no fields.
func TestHeaderLimits(t *testing.T) {
	be := newBackend(t, nil)
	var log lineBuffer
	_, addr := startGatewayOpts(t, gatewayYAML(freePort(t), "  accessLog: {enabled: true}")+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`), Options{AccessLog: &log})
	fields := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "X-H%d: v\r\n", i)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name   string
		head   string
		status int
	}{
		{name: "100 fields", head: fields(98), status: 200}, // + Host and Connection
		{name: "101 fields", head: fields(99), status: 431},
		{name: "1000 fields", head: fields(1000), status: 431},
		{name: "a 59 KiB field", head: "X-Big: " + strings.Repeat("a", 59<<10) + "\r\n", status: 200},
		{name: "a 62 KiB field (net/http alone lets it in)", head: "X-Big: " + strings.Repeat("a", 62<<10) + "\r\n", status: 431},
		{name: "a 64 KiB field (net/http's own limit answers)", head: "X-Big: " + strings.Repeat("a", 64<<10) + "\r\n", status: 431},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _, closed := rawExchange(t, addr, "GET /h HTTP/1.1\r\nHost: x\r\n"+tc.head+"Connection: close\r\n\r\n")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if !closed {
				t.Error("connection left open")
			}
		})
	}
	// Connection: close is the gateway's own on a 431, even when the
	// client asks for keep-alive.
	resp, _, closed := rawExchange(t, addr, "GET /last HTTP/1.1\r\nHost: x\r\n"+fields(200)+"\r\n")
	if resp.StatusCode != 431 || !resp.Close || !closed {
		t.Errorf("status %d, Connection: close %v, closed %v", resp.StatusCode, resp.Close, closed)
	}
	waitFor(t, func() bool { return len(log.clientErrors(t)["/last"]) == 1 }, "the access log")
	if got := log.clientErrors(t)["/last"][0]; got != "431 header_limits" {
		t.Errorf("access log %q, want 431 header_limits", got)
	}
}

func TestIdentityHeadersStrip(t *testing.T) {
	pols := []*configs.Policy{
		{Spec: configs.PolicySpec{Type: configs.PolicyKeyAuth, KeyAuth: &configs.KeyAuth{ConsumerHeader: "x-tenant"}}},
		{Spec: configs.PolicySpec{Type: configs.PolicyJWT, JWT: &configs.JWT{}}}, // forwards sub as X-User-ID
		{Spec: configs.PolicySpec{Type: configs.PolicyJWT, JWT: &configs.JWT{ForwardClaims: []configs.JWTClaimHeader{{Claim: "org", Header: "X-Org"}}}}},
	}
	for _, tc := range []struct {
		name  string
		names []string
		in    []string
		kept  []string
	}{
		{name: "defaults and the policies' headers", names: []string{"X-Consumer", "X-User-ID", "X-Authenticated-*"},
			in:   []string{"X-Consumer", "X-User-Id", "X-Authenticated-User", "X-Authenticated-", "X-Tenant", "X-Org", "X-Other", "X-Authenticate"},
			kept: []string{"X-Other", "X-Authenticate"}},
		{name: "underscore spellings (headersWithUnderscores: Allow)", names: []string{"X-Consumer", "X-User-ID", "X-Authenticated-*"},
			in:   []string{"X_Consumer", "X_user_id", "X_Authenticated_User", "X_Tenant", "X_Other"},
			kept: []string{"X_Other"}},
		{name: "an empty list keeps only the policies' headers", names: []string{},
			in:   []string{"X-Consumer", "X-User-Id", "X-Tenant", "X-Org"},
			kept: []string{"X-Consumer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ih := compileIdentityHeaders(tc.names, pols)
			h := http.Header{}
			for _, k := range tc.in {
				h[k] = []string{"v"}
			}
			ih.strip(h)
			var kept []string
			for _, k := range tc.in {
				if _, ok := h[k]; ok {
					kept = append(kept, k)
				}
			}
			if strings.Join(kept, ",") != strings.Join(tc.kept, ",") {
				t.Errorf("kept %v, want %v", kept, tc.kept)
			}
		})
	}
}

func TestHeadersOverLimits(t *testing.T) {
	limits := configs.ClientLimits{MaxHeaderCount: 3, MaxHeaderBytes: &configs.Size{Bytes: 100}}
	for _, tc := range []struct {
		name   string
		header http.Header
		over   bool
	}{
		{name: "within", header: http.Header{"A": {"1"}}},
		{name: "at the count (Host counts)", header: http.Header{"A": {"1"}, "B": {"2"}}},
		{name: "over the count by Host", header: http.Header{"A": {"1", "2"}, "B": {"3"}}, over: true},
		{name: "over the count, by repeated fields", header: http.Header{"A": {"1", "2", "3", "4"}}, over: true},
		{name: "over the size", header: http.Header{"A": {strings.Repeat("x", 80)}}, over: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{Method: "GET", RequestURI: "/", Proto: "HTTP/1.1", Host: "h", Header: tc.header}
			if got, _ := headersOverLimits(r, limits); got != tc.over {
				t.Errorf("over = %v, want %v", got, tc.over)
			}
		})
	}
}

func TestUnderscoreHeaders(t *testing.T) {
	for _, tc := range []struct {
		action string
		reject bool
		kept   []string
	}{
		{action: "Drop", kept: []string{"X-Ok"}},
		{action: "Reject", reject: true, kept: []string{"X-Ok", "X_a_b", "X_consumer"}},
		{action: "Allow", kept: []string{"X-Ok", "X_a_b", "X_consumer"}},
	} {
		t.Run(tc.action, func(t *testing.T) {
			h := http.Header{"X-Ok": {"1"}, "X_consumer": {"admin"}, "X_a_b": {"2"}}
			if got := underscoreHeaders(h, tc.action); got != tc.reject {
				t.Errorf("reject = %v, want %v", got, tc.reject)
			}
			var kept []string
			for k := range h {
				kept = append(kept, k)
			}
			slices.Sort(kept)
			if !slices.Equal(kept, tc.kept) {
				t.Errorf("kept %v, want %v", kept, tc.kept)
			}
		})
	}
}

// TestUnderscoreHeadersEndToEnd: X_Consumer is what a CGI-style backend
// (WSGI, PHP, Rails) reads as X-Consumer; by default it never reaches the
// backend, with Reject the request gets 400, with Allow it passes unless
// it spells an identity header.
func TestUnderscoreHeadersEndToEnd(t *testing.T) {
	var mu sync.Mutex
	var seen http.Header
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Clone()
		mu.Unlock()
	})
	for _, tc := range []struct {
		action string
		status int
		passed []string // underscore fields the backend got
	}{
		{action: "", status: 200}, // the default: Drop
		{action: "Reject", status: 400},
		{action: "Allow", status: 200, passed: []string{"X_tenant"}},
	} {
		t.Run("action "+tc.action, func(t *testing.T) {
			limits := ""
			if tc.action != "" {
				limits = "  clientLimits: {headersWithUnderscores: " + tc.action + "}"
			}
			_, addr := startGatewayOpts(t, gatewayYAML(freePort(t), limits)+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`), Options{})
			mu.Lock()
			seen = nil
			mu.Unlock()
			resp, _, _ := rawExchange(t, addr, "GET /u HTTP/1.1\r\nHost: x\r\nX_Consumer: admin\r\nX_Tenant: t1\r\nConnection: close\r\n\r\n")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			mu.Lock()
			defer mu.Unlock()
			var passed []string
			for k := range seen {
				if strings.Contains(k, "_") {
					passed = append(passed, k)
				}
			}
			slices.Sort(passed)
			if !slices.Equal(passed, tc.passed) {
				t.Errorf("the backend got %v, want %v", passed, tc.passed)
			}
		})
	}
}
