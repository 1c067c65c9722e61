package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The policies of the "+3" lines, as the reference's policies.yaml
// (examples/api-gateway) sets them: CORS for two origins with credentials
// and exposed headers, the security headers, and a rate limit per API key
// raised so high that it counts every request and refuses none. nginx and
// haproxy carry them out as native configuration, the reverseproxy line as
// Go middleware, NovaEdge as its bundled wasm plugins. The "+4" line adds
// JWT (NovaEdge only: the peers have no equivalent in their Debian builds).
//
// Only what a simple (non-preflight) request sees is reproduced natively:
// the load is GET requests with an allowed Origin. HSTS is sent on HTTPS
// only, as the SecurityHeaders plugin does, so none of the lines (plain
// HTTP) sends it.
const (
	allowedOrigin   = "https://app.example.com"
	allowedOrigin2  = "https://admin.example.com"
	deniedOrigin    = "https://evil.example.net"
	apiKeyHeader    = "X-API-Key"
	benchAPIKey     = "bench-key"
	exposeHeaders   = "X-Request-ID, X-RateLimit-Remaining"
	hstsValue       = "max-age=31536000; includeSubDomains; preload"
	rateLimitPerSec = 1000000 // and as large a burst: nothing is refused
	headerPolicies  = 3       // CORS, security headers, rate limit
)

// securityHeaders are the response headers of the SecurityHeaders policy
// over plain HTTP, in the order the plugin sets them.
var securityHeaders = [][2]string{
	{"X-Frame-Options", "DENY"},
	{"X-Content-Type-Options", "nosniff"},
	{"Referrer-Policy", "strict-origin-when-cross-origin"},
}

// benchHeaders are the headers of every request of the load, on every
// line (the same bytes whether a line reads them or not): an allowed
// Origin, the API key the rate limit is keyed on and, when token is set,
// the bearer token the JWT policy checks.
func benchHeaders(token string) []string {
	h := []string{"Origin: " + allowedOrigin, apiKeyHeader + ": " + benchAPIKey}
	if token != "" {
		h = append(h, "Authorization: Bearer "+token)
	}
	return h
}

// withPolicies wraps next in the Go middleware of the reverseproxy+3 line:
// a rate limit per API key (limiter's buckets, 429 over it), CORS and the
// security headers, each set before next writes the response (ReverseProxy
// adds the backend's headers to those already set).
func withPolicies(next http.Handler, limiter *keyLimiter) http.Handler {
	origins := map[string]bool{allowedOrigin: true, allowedOrigin2: true}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !limiter.allow(r.Header.Get(apiKeyHeader), time.Now()) {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "rate limited", http.StatusTooManyRequests)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		if o := r.Header.Get("Origin"); o != "" && origins[o] {
			h.Set("Access-Control-Allow-Origin", o)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Expose-Headers", exposeHeaders)
		}
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", hstsValue)
		}
		for _, sh := range securityHeaders {
			h.Set(sh[0], sh[1])
		}
		next.ServeHTTP(w, r)
	})
}

// keyLimiter is a token bucket per key, as the RateLimit plugin keeps
// (with header:X-API-Key). Buckets are never evicted: the benchmark has
// one key.
type keyLimiter struct {
	mu      sync.Mutex
	rate    float64 // tokens per second
	burst   float64
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newKeyLimiter(rate, burst float64) *keyLimiter {
	return &keyLimiter{rate: rate, burst: burst, buckets: map[string]*bucket{}}
}

// allow takes a token from key's bucket at now, if it has one.
func (l *keyLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(l.burst, b.tokens+d.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// checkPolicies verifies, before a policy line is measured, that it
// really applies its policies, so that its figures compare like with
// like: the bench request (headers, "Name: value") gets 200 with the CORS
// headers for its origin and the security headers; a request from an
// origin not allowed gets 200 without Access-Control-Allow-Origin; and,
// when jwt is set, a request without its Authorization header gets 401.
// The error lists every problem found.
func checkPolicies(url string, headers []string, jwt bool) error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(drop, origin string) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		for _, h := range headers {
			name, value, _ := strings.Cut(h, ":")
			name, value = strings.TrimSpace(name), strings.TrimSpace(value)
			if !strings.EqualFold(name, drop) {
				req.Header.Add(name, value)
			}
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, nil
	}
	var problems []string
	resp, err := get("", "")
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		problems = append(problems, fmt.Sprintf("the bench request got %s, want 200 OK", resp.Status))
	}
	want := [][2]string{
		{"Access-Control-Allow-Origin", allowedOrigin},
		{"Access-Control-Allow-Credentials", "true"},
		{"Access-Control-Expose-Headers", exposeHeaders},
	}
	for _, h := range append(want, securityHeaders...) {
		if got := resp.Header.Get(h[0]); got != h[1] {
			problems = append(problems, fmt.Sprintf("the bench request's response has %s %q, want %q", h[0], got, h[1]))
		}
	}
	if !hasToken(resp.Header.Values("Vary"), "Origin") {
		problems = append(problems, fmt.Sprintf("the bench request's response has Vary %q, want Origin in it", resp.Header.Values("Vary")))
	}
	if resp, err = get("", deniedOrigin); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		problems = append(problems, fmt.Sprintf("a request from origin %s got %s, want 200 OK", deniedOrigin, resp.Status))
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		problems = append(problems, fmt.Sprintf("a request from origin %s got Access-Control-Allow-Origin %q, want none", deniedOrigin, got))
	}
	if jwt {
		if resp, err = get("Authorization", ""); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusUnauthorized {
			problems = append(problems, fmt.Sprintf("a request without a token got %s, want 401 Unauthorized", resp.Status))
		}
	}
	if len(problems) > 0 {
		return errors.New("GET " + url + ": policies not applied:\n  " + strings.Join(problems, "\n  "))
	}
	return nil
}

// hasToken reports whether one of the comma-separated lists in values
// holds token (case-insensitively).
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
