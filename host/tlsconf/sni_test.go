package tlsconf

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"

	"github.com/novaedge/novaedge/host/tlsconf/devcert"
)

func TestSNI(t *testing.T) {
	ca := newCA(t)
	load := func(host string) *Cert {
		dir := t.TempDir()
		putSecret(t, ca, dir, devcert.Leaf{Hosts: []string{host}})
		c, err := Load(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	exact, wild, deep, def := load("api.example.com"), load("*.example.com"), load("*.eu.example.com"), load("default")
	var s SNI
	s.Add([]string{"API.example.com"}, exact, tls.VersionTLS13, nil)
	s.Add([]string{"*.example.com"}, wild, tls.VersionTLS12, nil)
	s.Add([]string{"*.eu.example.com"}, deep, tls.VersionTLS12, nil)
	s.Add(nil, def, tls.VersionTLS12, nil)
	for _, tc := range []struct {
		name string
		want *Cert
		min  uint16
	}{
		{"api.example.com", exact, tls.VersionTLS13},
		{"Api.Example.Com.", exact, tls.VersionTLS13},
		{"www.example.com", wild, tls.VersionTLS12},
		{"a.eu.example.com", deep, tls.VersionTLS12},
		{"example.com", def, tls.VersionTLS12},
		{"", def, tls.VersionTLS12},
		{"other.org", def, tls.VersionTLS12},
	} {
		cfg := s.Config(tc.name)
		got, _ := cfg.GetCertificate(nil)
		if got != tc.want.Current() || cfg.MinVersion != tc.min {
			t.Errorf("%q: got %s (min %x), want %s (min %x)", tc.name, got.Leaf.Subject.CommonName, cfg.MinVersion, tc.want.Current().Leaf.Subject.CommonName, tc.min)
		}
		if len(cfg.NextProtos) != 2 || cfg.NextProtos[0] != "h2" {
			t.Errorf("%q: ALPN %q", tc.name, cfg.NextProtos)
		}
	}

	// Without a catch-all listener, the first one added is the default.
	var s2 SNI
	s2.Add([]string{"a.example.com"}, exact, tls.VersionTLS12, nil)
	s2.Add([]string{"b.example.com"}, wild, tls.VersionTLS12, nil)
	if got, _ := s2.Config("c.example.com").GetCertificate(nil); got != exact.Current() {
		t.Errorf("default = %s, want the first listener's", got.Leaf.Subject.CommonName)
	}
	var empty SNI
	if _, err := empty.GetConfigForClient(&tls.ClientHelloInfo{ServerName: "x"}); err == nil {
		t.Error("an empty SNI table answers")
	}
}

func FuzzSNIConfig(f *testing.F) {
	ca := newCA(f)
	dir := f.TempDir()
	putSecret(f, ca, dir, devcert.Leaf{Hosts: []string{"x.example.com"}})
	c, err := Load(dir, Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	var s SNI
	s.Add([]string{"a.example.com", "*.example.com"}, c, tls.VersionTLS12, nil)
	s.Add([]string{"b.example.org"}, c, tls.VersionTLS13, nil)
	for _, seed := range []string{"", "a.example.com", "x.example.com", ".example.com", "b.example.org.", "ÄÖ.example.com", "*"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		cfg := s.Config(name)
		if cfg == nil {
			t.Fatalf("%q: no config", name)
		}
		if n := normalizeName(name); n == "b.example.org" && cfg.MinVersion != tls.VersionTLS13 {
			t.Fatalf("%q: not the exact listener", name)
		}
	})
}

func TestCipherSuites(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    []string
		want  []uint16
		error bool
	}{
		{name: "none is the AEAD default", in: nil, want: DefaultCipherSuites},
		{name: "a named suite", in: []string{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"}, want: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}},
		{name: "insecure", in: []string{"TLS_RSA_WITH_RC4_128_SHA"}, error: true},
		{name: "TLS 1.3", in: []string{"TLS_AES_128_GCM_SHA256"}, error: true},
		{name: "unknown", in: []string{"nope"}, error: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CipherSuites(tc.in)
			if (err != nil) != tc.error {
				t.Fatalf("error = %v, want error %v", err, tc.error)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %x, want %x", got, tc.want)
			}
		})
	}
	for _, id := range DefaultCipherSuites {
		name := tls.CipherSuiteName(id)
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("default suite %s is not ECDHE with AEAD", name)
		}
	}
}
