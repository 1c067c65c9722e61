package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The peers' generated configurations are golden files under testdata
// (go test -run TestPeerConfigs -update rewrites them).
func TestPeerConfigs(t *testing.T) {
	tests := []struct {
		name, golden string
		config       func() string
	}{
		{name: "nginx", golden: "nginx.conf", config: func() string {
			return nginxConfig("/tmp/loadbench/nginx", "127.0.0.1:18080", "127.0.0.1:18081", false, rateLimitPerSec)
		}},
		{name: "nginx+3", golden: "nginx-policies.conf", config: func() string {
			return nginxConfig("/tmp/loadbench/nginx-policies", "127.0.0.1:18080", "127.0.0.1:18081", true, rateLimitPerSec)
		}},
		{name: "haproxy", golden: "haproxy.cfg", config: func() string {
			return haproxyConfig("127.0.0.1:18080", "127.0.0.1:18081", false, rateLimitPerSec)
		}},
		{name: "haproxy+3", golden: "haproxy-policies.cfg", config: func() string {
			return haproxyConfig("127.0.0.1:18080", "127.0.0.1:18081", true, rateLimitPerSec)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.config()
			golden := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("config:\n%s\nwant (%s):\n%s", got, golden, want)
			}
		})
	}
}

// The real peers, started as the benchmark starts them, in front of a
// real backend: plain, they proxy the bench request and apply no policy;
// with policies, they pass the same equivalence check as the other lines,
// and their rate limit is per API key (checked with a limit of 1/s and a
// burst of 1). Skipped only when the peer is not installed (make tools
// installs both).
func TestPeers(t *testing.T) {
	for _, peer := range []string{"nginx", "haproxy"} {
		t.Run(peer, func(t *testing.T) {
			bin, err := lookPeer(peer)
			if err != nil {
				t.Skipf("%s not installed (make tools installs it): %v", peer, err)
			}
			backend := httptest.NewServer(newBackend(1024))
			defer backend.Close()
			backendAddr := strings.TrimPrefix(backend.URL, "http://")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a safety limit only
			defer cancel()
			dir := t.TempDir()
			g := &procs{dir: dir}
			defer g.stopAll()
			headers := benchHeaders("")

			t.Run("plain", func(t *testing.T) {
				p, url, err := startPeer(ctx, g, -1, peer, bin, dir, backendAddr, false, rateLimitPerSec)
				if err != nil {
					t.Fatal(err)
				}
				defer p.Stop()
				if err := checkResponse(url, headers, 1024); err != nil {
					t.Fatal(err)
				}
				if err := checkPolicies(url, headers, false); err == nil {
					t.Error("the plain configuration passed the policy check")
				}
			})
			t.Run("policies", func(t *testing.T) {
				p, url, err := startPeer(ctx, g, -1, peer, bin, dir, backendAddr, true, rateLimitPerSec)
				if err != nil {
					t.Fatal(err)
				}
				defer p.Stop()
				if err := checkResponse(url, headers, 1024); err != nil {
					t.Fatal(err)
				}
				if err := checkPolicies(url, headers, false); err != nil {
					t.Fatal(err)
				}
			})
			t.Run("rate limit per key", func(t *testing.T) {
				// A fresh directory: the configurations of the subtests
				// above must not be overwritten while their peers run.
				p, url, err := startPeer(ctx, g, -1, peer, bin, t.TempDir(), backendAddr, true, 1)
				if err != nil {
					t.Fatal(err)
				}
				defer p.Stop()
				get := func(key string) int {
					req, _ := http.NewRequest(http.MethodGet, url, nil)
					req.Header.Set(apiKeyHeader, key)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					return resp.StatusCode
				}
				limited := false
				for range 50 { // bounded: the limit (1/s, burst 1) is met within 3 requests
					if get("key-a") == http.StatusTooManyRequests {
						limited = true
						break
					}
				}
				if !limited {
					t.Fatal("50 requests with one API key at once, none refused with 429")
				}
				if code := get("key-b"); code != http.StatusOK {
					t.Errorf("another API key got %d, want 200: the limit is not per key", code)
				}
			})
		})
	}
}
