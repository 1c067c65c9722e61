package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/gwtest"
	"github.com/novaedge/novaedge/host/policy/bundled"
	"github.com/novaedge/novaedge/host/proxy"
	"github.com/novaedge/novaedge/host/wasm"
	"github.com/novaedge/novaedge/sdk/firstparty"
)

// TestRegistry: every policy type configs accepts is registered once,
// with its bundled module, its place in the order and whether it
// authenticates (a Wasm policy only when it declares so).
func TestRegistry(t *testing.T) {
	wasmPolicy := func(auth bool) *configs.Policy {
		return &configs.Policy{Spec: configs.PolicySpec{Type: configs.PolicyWasm, Wasm: &configs.Wasm{Module: "m.wasm", Authenticates: auth}}}
	}
	typed := func(typ string) *configs.Policy { return &configs.Policy{Spec: configs.PolicySpec{Type: typ}} }
	tests := []struct {
		name          string
		policy        *configs.Policy
		module        string
		position      int // in Types()
		authenticates bool
	}{
		{"CORS answers preflights first", typed(configs.PolicyCORS), "cors", 0, false},
		{"JWT authenticates", typed(configs.PolicyJWT), "jwt", 1, true},
		{"KeyAuth authenticates, after JWT", typed(configs.PolicyKeyAuth), "keyauth", 2, true},
		{"RateLimit after authentication", typed(configs.PolicyRateLimit), "ratelimit", 3, false},
		{"Wasm", wasmPolicy(false), "", 4, false},
		{"Wasm with authenticates: true", wasmPolicy(true), "", 4, true},
		{"SecurityHeaders last", typed(configs.PolicySecurityHeaders), "securityheaders", 5, false},
	}
	types := Types()
	if len(types) != 6 {
		t.Fatalf("%d types registered, want 6", len(types))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ, ok := Lookup(tc.policy.Spec.Type)
			if !ok {
				t.Fatalf("type %s not registered", tc.policy.Spec.Type)
			}
			if typ.Module != tc.module {
				t.Errorf("module %q, want %q", typ.Module, tc.module)
			}
			if types[tc.position].Name != typ.Name {
				t.Errorf("place %d holds %s", tc.position, types[tc.position].Name)
			}
			tr := Traits(tc.policy)
			if tr.Order != typ.Order || tr.Authenticates != tc.authenticates {
				t.Errorf("traits %+v, want order %d, authenticates %v", tr, typ.Order, tc.authenticates)
			}
			if tc.module != "" && (typ.Config == nil || len(bundled.Modules()[tc.module]) == 0) {
				t.Errorf("first-party type without its configuration or bundled module")
			}
		})
	}
	for i := 1; i < len(types); i++ {
		if types[i-1].Order >= types[i].Order {
			t.Errorf("%s and %s share order %d", types[i-1].Name, types[i].Name, types[i].Order)
		}
	}
	if tr := Traits(typed("Unknown")); tr != (proxy.PolicyTraits{}) {
		t.Errorf("an unknown type: %+v", tr)
	}
}

// TestRegisterTwice: a type is registered once.
func TestRegisterTwice(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a second registration of JWT did not panic")
		}
	}()
	Register(Type{Name: configs.PolicyJWT})
}

// TestFirstPartyWire: each first-party block becomes JSON that its
// plugin's configuration type (sdk/firstparty, which the plugin's Config
// is defined over) decodes strictly, as the plugin's sdk does, to the
// values of the block.
func TestFirstPartyWire(t *testing.T) {
	secs := func(s string) *configs.Duration {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return &configs.Duration{Duration: d}
	}
	tests := []struct {
		name string
		spec configs.PolicySpec
		into any
		want any
	}{
		{"CORS", configs.PolicySpec{Type: configs.PolicyCORS, CORS: &configs.CORS{AllowOrigins: []string{"https://a.example"}, AllowMethods: []string{"GET"}, MaxAge: secs("10m"), AllowCredentials: true}},
			&firstparty.CORS{}, &firstparty.CORS{AllowOrigins: []string{"https://a.example"}, AllowMethods: []string{"GET"}, MaxAgeSeconds: 600, AllowCredentials: true}},
		{"JWT", configs.PolicySpec{Type: configs.PolicyJWT, JWT: &configs.JWT{Issuer: "iss", JWKSURI: "https://a.example/jwks", ClockSkew: secs("0s"), ForwardClaims: []configs.JWTClaimHeader{{Claim: "sub", Header: "X-Sub"}}}},
			&firstparty.JWT{}, &firstparty.JWT{Issuer: "iss", JWKSURI: "https://a.example/jwks", ClockSkewSeconds: -1, ForwardClaims: []firstparty.ClaimHeader{{Claim: "sub", Header: "X-Sub"}}}},
		{"KeyAuth", configs.PolicySpec{Type: configs.PolicyKeyAuth, KeyAuth: &configs.KeyAuth{Keys: []configs.APIKey{{Key: "k-0123456789abcdef", Consumer: "c"}}, Header: "X-Key"}},
			&firstparty.KeyAuth{}, &firstparty.KeyAuth{Keys: []firstparty.APIKey{{SHA256: hashKey("k-0123456789abcdef"), Consumer: "c"}}, Header: "X-Key"}},
		{"RateLimit", configs.PolicySpec{Type: configs.PolicyRateLimit, RateLimit: &configs.RateLimit{RequestsPerSecond: 2.5, Burst: 5, Key: "ip", OnMissingKey: "reject"}},
			&firstparty.RateLimit{}, &firstparty.RateLimit{RequestsPerSecond: 2.5, Burst: 5, Key: "ip", OnMissingKey: "reject"}},
		{"SecurityHeaders", configs.PolicySpec{Type: configs.PolicySecurityHeaders, SecurityHeaders: &configs.SecurityHeaders{HSTS: &configs.HSTS{Enabled: true, MaxAge: 60}, XFrameOptions: "DENY", RemoveHeaders: []string{"Server"}}},
			&firstparty.SecurityHeaders{}, &firstparty.SecurityHeaders{HSTS: &firstparty.HSTS{Enabled: true, MaxAge: 60}, XFrameOptions: "DENY", RemoveHeaders: []string{"Server"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, data, err := firstPartyConfig(&configs.Policy{Spec: tc.spec})
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(tc.into); err != nil {
				t.Fatalf("%s: %v", data, err)
			}
			got, _ := json.Marshal(tc.into)
			want, _ := json.Marshal(tc.want)
			if !bytes.Equal(got, want) {
				t.Errorf("decoded\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestWasmAuthenticatesCache: a user's Wasm policy that declares
// wasm.authenticates makes the cache treat its route's responses as
// JWT's and KeyAuth's: a response that does not say public is not shared
// (the second request goes upstream); without the declaration it is
// stored and served; a public response is shared either way.
func TestWasmAuthenticatesCache(t *testing.T) {
	tests := []struct {
		name          string
		authenticates bool
		cacheControl  string
		xcache        []string
		upstream      int
	}{
		{"not authenticating: stored", false, "max-age=60", []string{"MISS", "HIT"}, 1},
		{"authenticating: not shared", true, "max-age=60", []string{"MISS", "MISS"}, 2},
		{"authenticating, public: shared", true, "public, max-age=60", []string{"MISS", "HIT"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be := newEcho(t)
			abs, err := filepath.Abs(modules)
			if err != nil {
				t.Fatal(err)
			}
			res := gwtest.GatewayYAML(freePort(t), "  cache: {enabled: true, maxSize: 1Mi, maxEntrySize: 64Ki}") +
				gwtest.BackendYAML("app", strings.TrimPrefix(be.URL, "http://")) +
				gwtest.RouteYAML("r", "    - backendRefs: [{name: app}]\n") + policyDoc("sso", "tinygo/headers.wasm", fmt.Sprintf("    authenticates: %v\n", tc.authenticates))
			snap, err := configs.LoadFiles([]configs.File{{Name: filepath.Join(abs, "cache-test.yaml"), Data: []byte(res)}})
			if err != nil {
				t.Fatal(err)
			}
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			rt, err := wasm.NewRuntime(context.Background(), wasm.Options{Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rt.Close(context.Background()) })
			gw := proxy.New(proxy.Options{Logger: logger, Policies: (&Builder{Runtime: rt}).Build})
			if err := gw.Apply(context.Background(), snap); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				gw.Shutdown(ctx)
			})
			e := &env{gw: gw, backend: be}
			for _, a := range gw.Addrs() {
				e.base = "http://" + a
			}
			for i, want := range tc.xcache {
				r, body := e.get(t, "X-Echo-Response-Header", "Cache-Control: "+tc.cacheControl)
				if r.StatusCode != 200 || r.Header.Get("X-Wasm-Response") != "yes" {
					t.Fatalf("request %d: %d %v %s", i+1, r.StatusCode, r.Header, body)
				}
				if got := r.Header.Get("X-Cache"); got != want {
					t.Errorf("request %d: X-Cache %q, want %q", i+1, got, want)
				}
			}
			if got := be.count(); got != tc.upstream {
				t.Errorf("the backend served %d requests, want %d", got, tc.upstream)
			}
		})
	}
}

// TestHeadersOnlyStreams: the streams of every first-party policy type get
// no body or trailer callbacks (they are not proxy.BodyStreams: the plugins
// are built on sdk/, which has no body API), and a Wasm policy's stream,
// whose plugin may look at bodies, does.
func TestHeadersOnlyStreams(t *testing.T) {
	ctx := context.Background()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("body"))
	for _, tc := range benchPolicies {
		t.Run(tc.name, func(t *testing.T) {
			if ty, _ := Lookup(tc.typ); !ty.HeadersOnly {
				t.Fatalf("type %s is not HeadersOnly", tc.typ)
			}
			p := buildPolicy(t, "h", tc.typ, tc.block)
			s, err := p.NewStream(ctx, req, proxy.StreamInfo{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Done()
			if _, ok := s.(proxy.BodyStream); ok {
				t.Fatalf("%s's stream takes bodies", tc.typ)
			}
		})
	}
	// JWT is in the registry too.
	if ty, _ := Lookup(configs.PolicyJWT); !ty.HeadersOnly {
		t.Error("JWT is not HeadersOnly")
	}
	if ty, _ := Lookup(configs.PolicyWasm); ty.HeadersOnly {
		t.Error("Wasm is HeadersOnly")
	}
	// The same bundled module as a Wasm policy: its stream takes bodies.
	p := buildPolicy(t, "w", configs.PolicyWasm, "  wasm: {module: securityheaders}\n")
	s, err := p.NewStream(ctx, req, proxy.StreamInfo{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Done()
	if _, ok := s.(proxy.BodyStream); !ok {
		t.Error("a Wasm policy's stream takes no bodies")
	}
}
