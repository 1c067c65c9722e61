package main

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
	apigateway "github.com/novaedge/novaedge/examples/api-gateway"
)

// The generated configuration must stay loadable as the config schema
// evolves.
func TestNovaedgeConfig(t *testing.T) {
	cfg, err := novaedgeConfig("127.0.0.1:18080", "127.0.0.1:18081", "", "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := configs.LoadFiles([]configs.File{{Name: "bench.yaml", Data: []byte(cfg)}})
	if err != nil {
		t.Fatalf("%v\n%s", err, cfg)
	}
	if len(s.Gateways) != 1 || len(s.Backends) != 1 || len(s.Routes) != 1 {
		t.Fatalf("snapshot has %d gateways, %d backends, %d routes; want 1 of each", len(s.Gateways), len(s.Backends), len(s.Routes))
	}
	l := s.Gateways[0].Spec.Listeners[0]
	if l.Address != "127.0.0.1" || l.Port != 18080 {
		t.Errorf("listener %s:%d, want 127.0.0.1:18080", l.Address, l.Port)
	}
	b := s.Backends[0].Spec
	if len(b.Endpoints) != 1 || b.Endpoints[0].Address != "127.0.0.1:18081" || b.ConnectionPool == nil || b.ConnectionPool.MaxIdleConnsPerHost != 256 {
		t.Errorf("backend spec = %+v", b)
	}
}

func TestNovaedgeConfigWithWasm(t *testing.T) {
	cfg, err := novaedgeConfig("127.0.0.1:18080", "127.0.0.1:18081", "/plugins/headers.wasm", "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := configs.LoadFiles([]configs.File{{Name: "bench.yaml", Data: []byte(cfg)}})
	if err != nil {
		t.Fatalf("%v\n%s", err, cfg)
	}
	if len(s.Policies) != 1 || s.Policies[0].Spec.Wasm.Module != "/plugins/headers.wasm" {
		t.Fatalf("policies %+v", s.Policies)
	}
}

// The policy lines' resources load, with the reference's kinds: the three
// header policies, and JWT besides on the +4 line; the rate limit is per
// API key and refuses nothing.
func TestNovaedgeConfigWithPolicies(t *testing.T) {
	tests := []struct {
		name  string
		jwt   bool
		types []string
	}{
		{name: "+3", types: []string{configs.PolicyRateLimit, configs.PolicyCORS, configs.PolicySecurityHeaders}},
		{name: "+4", jwt: true, types: []string{configs.PolicyJWT, configs.PolicyRateLimit, configs.PolicyCORS, configs.PolicySecurityHeaders}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := novaedgeConfig("127.0.0.1:18080", "127.0.0.1:18081", "", referencePolicies("http://127.0.0.1:18090/jwks.json", tt.jwt))
			if err != nil {
				t.Fatal(err)
			}
			s, err := configs.LoadFiles([]configs.File{{Name: "bench.yaml", Data: []byte(cfg)}})
			if err != nil {
				t.Fatalf("%v\n%s", err, cfg)
			}
			var types []string
			for _, p := range s.Policies {
				types = append(types, p.Spec.Type)
				if rl := p.Spec.RateLimit; rl != nil && (rl.Key != "header:"+apiKeyHeader || rl.RequestsPerSecond < rateLimitPerSec) {
					t.Errorf("rate limit %+v, want per %s at %d/s", rl, apiKeyHeader, rateLimitPerSec)
				}
			}
			slices.Sort(types) // the snapshot orders them by name
			slices.Sort(tt.types)
			if !slices.Equal(types, tt.types) {
				t.Errorf("policies %v, want %v", types, tt.types)
			}
		})
	}
}

// The NovaEdge policy lines end to end: the gateway built from this tree,
// started as the benchmark starts it in front of a real backend, passes the
// same equivalence check as the peers (JWT: the bench request with its
// token gets 200, one without gets 401). Not in -short: it builds the
// binary.
func TestNovaedgePolicyLines(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ./cmd/novaedge")
	}
	backend := httptest.NewServer(newBackend(1024))
	defer backend.Close()
	backendAddr := strings.TrimPrefix(backend.URL, "http://")
	issuer, err := apigateway.StartIssuer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer issuer.Close()
	token, err := issuer.Token("bench", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	headers := benchHeaders(token)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a safety limit only
	defer cancel()
	dir := t.TempDir()
	g := &procs{dir: dir}
	defer g.stopAll()
	o := &options{serverCPU: -1}

	tests := []struct {
		name  string
		extra string
		jwt   bool
	}{
		{name: "novaedge+3", extra: referencePolicies("", false)},
		{name: "novaedge+4", extra: referencePolicies(issuer.URL, true), jwt: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, url, err := startNovaedge(ctx, g, o, dir, backendAddr, "", tt.extra, headers)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Stop()
			if err := checkResponse(url, headers, 1024); err != nil {
				t.Fatal(err)
			}
			if err := checkPolicies(url, headers, tt.jwt); err != nil {
				t.Fatal(err)
			}
		})
	}
}
