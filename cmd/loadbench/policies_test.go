package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// fakePolicyServer answers like a policy line would, less what its
// options leave out.
type fakePolicyServer struct {
	noCORS, corsForAll, noVary, noFrameOptions, jwt bool
}

func (f fakePolicyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.jwt && r.Header.Get("Authorization") == "" {
		http.Error(w, "no token", http.StatusUnauthorized)
		return
	}
	h := w.Header()
	if !f.noVary {
		h.Set("Vary", "Accept-Encoding, Origin")
	}
	if o := r.Header.Get("Origin"); !f.noCORS && (o == allowedOrigin || f.corsForAll) {
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Set("Access-Control-Expose-Headers", exposeHeaders)
	}
	for _, sh := range securityHeaders {
		if sh[0] == "X-Frame-Options" && f.noFrameOptions {
			continue
		}
		h.Set(sh[0], sh[1])
	}
	_, _ = w.Write([]byte("{}"))
}

// The equivalence check, against a tiny fake server: it passes a server
// that applies the policies and names what one that does not misses.
func TestCheckPolicies(t *testing.T) {
	tests := []struct {
		name    string
		srv     fakePolicyServer
		jwt     bool   // the line is the JWT one
		wantErr string // "" = passes
	}{
		{name: "applied", srv: fakePolicyServer{}},
		{name: "applied with jwt", srv: fakePolicyServer{jwt: true}, jwt: true},
		{name: "no cors", srv: fakePolicyServer{noCORS: true}, wantErr: `Access-Control-Allow-Origin "", want "https://app.example.com"`},
		{name: "cors for any origin", srv: fakePolicyServer{corsForAll: true}, wantErr: "a request from origin https://evil.example.net got Access-Control-Allow-Origin"},
		{name: "no vary", srv: fakePolicyServer{noVary: true}, wantErr: "want Origin in it"},
		{name: "no security header", srv: fakePolicyServer{noFrameOptions: true}, wantErr: `X-Frame-Options "", want "DENY"`},
		{name: "jwt not enforced", srv: fakePolicyServer{}, jwt: true, wantErr: "a request without a token got 200 OK, want 401"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.srv)
			defer srv.Close()
			err := checkPolicies(srv.URL+"/", benchHeaders("a.b.c"), tt.jwt)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("checkPolicies: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("checkPolicies = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}

// A plain proxy fails the check: it lists every missing policy at once.
func TestCheckPoliciesPlain(t *testing.T) {
	backend := httptest.NewServer(newBackend(64))
	defer backend.Close()
	u, _ := url.Parse(backend.URL)
	proxy := httptest.NewServer(newReverseProxy(u))
	defer proxy.Close()
	err := checkPolicies(proxy.URL+"/", benchHeaders(""), false)
	if err == nil {
		t.Fatal("a plain ReverseProxy passed the policy check")
	}
	for _, want := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers",
		"X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "Vary"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}

// The reverseproxy+3 line end to end: the tuned ReverseProxy behind
// withPolicies, on a real backend, passes the same check as the peers and
// NovaEdge, and still serves the backend's body.
func TestReverseProxyWithPolicies(t *testing.T) {
	backend := httptest.NewServer(newBackend(1024))
	defer backend.Close()
	u, _ := url.Parse(backend.URL)
	proxy := httptest.NewServer(withPolicies(newReverseProxy(u), newKeyLimiter(rateLimitPerSec, rateLimitPerSec)))
	defer proxy.Close()
	if err := checkResponse(proxy.URL+"/", benchHeaders(""), 1024); err != nil {
		t.Fatal(err)
	}
	if err := checkPolicies(proxy.URL+"/", benchHeaders(""), false); err != nil {
		t.Fatal(err)
	}
}

func TestKeyLimiter(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	l := newKeyLimiter(10, 2) // 10/s, burst 2
	steps := []struct {
		name string
		key  string
		at   time.Duration
		want bool
	}{
		{name: "first of the burst", key: "a", want: true},
		{name: "second of the burst", key: "a", want: true},
		{name: "burst spent", key: "a", want: false},
		{name: "another key has its own bucket", key: "b", want: true},
		{name: "refilled one token after 100ms", key: "a", at: 100 * time.Millisecond, want: true},
		{name: "and only one", key: "a", at: 100 * time.Millisecond, want: false},
		{name: "refill capped at the burst", key: "a", at: time.Hour, want: true},
		{name: "capped: second", key: "a", at: time.Hour, want: true},
		{name: "capped: third refused", key: "a", at: time.Hour, want: false},
	}
	for _, s := range steps { // in order: each step depends on the previous ones
		if got := l.allow(s.key, t0.Add(s.at)); got != s.want {
			t.Errorf("%s: allow = %v, want %v", s.name, got, s.want)
		}
	}
}

// Over the limit of its key, the middleware answers 429 without calling
// the proxy; another key is not limited.
func TestWithPoliciesRateLimited(t *testing.T) {
	calls := 0
	h := withPolicies(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls++ }), newKeyLimiter(0.001, 2))
	tests := []struct {
		name, key string
		want      int
	}{
		{name: "first", key: "k1", want: http.StatusOK},
		{name: "second", key: "k1", want: http.StatusOK},
		{name: "over the burst", key: "k1", want: http.StatusTooManyRequests},
		{name: "another key", key: "k2", want: http.StatusOK},
	}
	for _, tt := range tests { // in order: each step depends on the previous ones
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set(apiKeyHeader, tt.key)
		h.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, rec.Code, tt.want)
		}
	}
	if calls != 3 {
		t.Errorf("the proxy was called %d times, want 3", calls)
	}
}
