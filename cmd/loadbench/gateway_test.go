package main

import (
	"testing"

	"github.com/novaedge/novaedge/configs"
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
