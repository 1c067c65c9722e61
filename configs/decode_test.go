package configs

import (
	"strings"
	"testing"
)

// TestDecode covers the strict decoder's corners: YAML features that must
// work (aliases, merge keys, null), and inputs that must be reported with
// the right field path and line.
func TestDecode(t *testing.T) {
	const head = "apiVersion: novaedge.io/v1alpha1\nkind: ProxyBackend\nmetadata: {name: web}\n" // 3 lines
	for _, tc := range []struct {
		name string
		spec string // the document after head
		want string // a problem, or "" for success
		test func(t *testing.T, b *Backend)
	}{
		{
			name: "null leaves a field unset",
			spec: "spec:\n  serviceRef: {name: web, port: 80}\n  healthCheck: null\n  lbPolicy: ~\n",
			test: func(t *testing.T, b *Backend) {
				if b.Spec.HealthCheck != nil || b.Spec.LBPolicy != defaultLBPolicy {
					t.Errorf("healthCheck = %v, lbPolicy = %q", b.Spec.HealthCheck, b.Spec.LBPolicy)
				}
			},
		},
		{
			name: "anchors must live in known fields too",
			spec: "x-defaults: &d {interval: 7s, httpPath: /d}\nspec:\n  serviceRef: {name: web, port: 80}\n" +
				"  healthCheck:\n    <<: [{httpPath: /first}, *d]\n    timeout: 1s\n",
			want: `x-defaults: unknown field "x-defaults"`,
		},
		{
			name: "merge keys: written keys win, then earlier merges",
			spec: "spec:\n  serviceRef: {name: web, port: 80}\n  healthCheck:\n    <<: [{httpPath: /first}, {interval: 7s, httpPath: /d}]\n    timeout: 1s\n",
			test: func(t *testing.T, b *Backend) {
				h := b.Spec.HealthCheck
				if h.HTTPPath != "/first" || h.Interval.D(0).String() != "7s" || h.Timeout.D(0).String() != "1s" {
					t.Errorf("healthCheck = %+v", h)
				}
			},
		},
		{
			name: "an alias decodes like its anchor",
			spec: "spec:\n  endpoints:\n    - &e {address: \"10.0.0.1:80\", weight: 2}\n    - {address: \"10.0.0.2:80\"}\n  healthCheck: {expectedStatuses: &s [200, 204]}\n",
			test: func(t *testing.T, b *Backend) {
				if len(b.Spec.Endpoints) != 2 || *b.Spec.Endpoints[0].Weight != 2 || len(b.Spec.HealthCheck.ExpectedStatuses) != 2 {
					t.Errorf("spec = %+v", b.Spec)
				}
			},
		},
		{
			name: "a merge key needs mappings",
			spec: "spec:\n  serviceRef: {name: web, port: 80}\n  healthCheck:\n    <<: [1]\n",
			want: `web.yaml:7: ProxyBackend default/web: spec.healthCheck: a merge key (<<) takes a mapping or a list of mappings, got a list holding integer 1`,
		},
		{
			name: "non-scalar key",
			spec: "spec:\n  serviceRef: {name: web, port: 80}\n  ? [a]\n  : 1\n",
			want: `web.yaml:6: ProxyBackend default/web: spec: expected a string key, got list`,
		},
		{
			name: "duplicate key in a map",
			spec: "spec:\n  serviceRef: {name: web, port: 80}\n  connectTimeout: 1s\n  connectTimeout: 2s\n",
			want: `web.yaml:7: ProxyBackend default/web: spec.connectTimeout: duplicate key "connectTimeout" (first at line 6)`,
		},
		{
			name: "an integer too large is a float to YAML",
			spec: "spec:\n  serviceRef: {name: web, port: 99999999999999999999}\n",
			want: `spec.serviceRef.port: expected integer, got number 99999999999999999999`,
		},
		{
			name: "custom tag",
			spec: "spec:\n  serviceRef: {name: !secret web, port: 80}\n",
			want: `spec.serviceRef.name: expected string, got !secret "web"`,
		},
		{
			name: "no spec",
			spec: "status: {}\n",
			want: "web.yaml:1: ProxyBackend default/web: spec: required",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := LoadFiles([]File{{Name: "web.yaml", Data: []byte(head + tc.spec)}})
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got\n%v\nwant a problem containing\n%s", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.test(t, s.Backend("default", "web"))
		})
	}
}

// TestDecodeWasmConfig decodes a plugin's free-form config.
func TestDecodeWasmConfig(t *testing.T) {
	const head = "apiVersion: novaedge.io/v1alpha1\nkind: ProxyGateway\nmetadata: {name: g}\nspec: {listeners: [{name: l, port: 80, protocol: HTTP}]}\n---\n" +
		"apiVersion: novaedge.io/v1alpha1\nkind: ProxyPolicy\nmetadata: {name: p}\nspec:\n  type: Wasm\n  targetRef: {kind: ProxyGateway, name: g}\n  wasm:\n    module: p.wasm\n    config: "
	deep := strings.Repeat("[", 70) + strings.Repeat("]", 70)
	for _, tc := range []struct {
		name   string
		config string
		want   string // the config as JSON, or a problem
	}{
		{name: "scalars", config: "{s: x, i: 3, f: 0.5, b: true, n: null, big: 18446744073709551615}", want: `{"b":true,"big":18446744073709551615,"f":0.5,"i":3,"n":null,"s":"x"}`},
		{name: "keys that are not strings become strings", config: "{1: one, true: yes}", want: `{"1":"one","true":"yes"}`},
		{name: "a string", config: `"raw text"`, want: `"raw text"`},
		{name: "aliases", config: "{a: &x [1, 2], b: *x}", want: `{"a":[1,2],"b":[1,2]}`},
		{name: "infinity", config: "{x: .inf}", want: `spec.wasm.config.x: .inf is not a finite number`},
		{name: "too deep", config: deep, want: "nested more than 64 levels deep"},
		{name: "nested in itself", config: "&a [*a]", want: "nested more than 64 levels deep"},
		{name: "quoted odd key", config: `{"a.b": 1}`, want: `{"a.b":1}`},
		{name: "odd key with a problem", config: `{"a.b": .nan}`, want: `spec.wasm.config["a.b"]: .nan is not a finite number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := LoadFiles([]File{{Name: "p.yaml", Data: []byte(head + tc.config + "\n")}})
			if err != nil {
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got\n%v\nwant %s", err, tc.want)
				}
				return
			}
			got, err := encodeJSON(s.Policy("default", "p").Spec.Wasm.Config, "")
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(string(got)) != tc.want {
				t.Errorf("config = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestDecodeBudget checks that a document that expands exponentially
// through aliases is stopped, quickly, with one problem.
func TestDecodeBudget(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: novaedge.io/v1alpha1\nkind: ProxyPolicy\nmetadata: {name: p}\nspec:\n  type: Wasm\n  targetRef: {kind: ProxyGateway, name: g}\n  wasm:\n    module: p.wasm\n    config:\n")
	b.WriteString("      l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("      l" + string(rune('0'+i)) + ": &l" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*l" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	_, err := LoadFiles([]File{{Name: "laughs.yaml", Data: []byte(b.String())}})
	if err == nil || strings.Count(err.Error(), "document too large") != 1 {
		t.Fatalf("got %v, want one \"document too large\" problem", err)
	}
}
