package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/gwtest"
	"github.com/novaedge/novaedge/host/proxy"
	"github.com/novaedge/novaedge/host/wasm"
)

// TestKeyAuthThroughGateway runs the bundled KeyAuth plugin with keys from
// the policy and from a keys file: no key or an unknown key is a 401 that
// never reaches the backend; a known key reaches it with the consumer's
// name in X-Consumer (the client's own copy removed) and, with
// hideCredentials, without the key.
func TestKeyAuthThroughGateway(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(keys, []byte("# key consumer\nfile-key-0123456789 carol\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := setup(t, firstPartyDoc("keys", "KeyAuth", `  keyAuth:
    keys:
      - {key: alice-key-0123456789, consumer: alice}
      - {sha256: `+hashKey("bob-key-0123456789")+`, consumer: bob}
    keysFile: `+keys+`
    query: api_key
    hideCredentials: true
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		hdr  []string
		msg  string
	}{
		{"no key", nil, "API key required"},
		{"unknown key", []string{"X-API-Key", "mallory"}, "invalid API key"},
	} {
		r, body := e.get(t, tc.hdr...)
		var b struct {
			Error     string `json:"error"`
			Status    int    `json:"status"`
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal([]byte(body), &b); err != nil || r.StatusCode != 401 || b.Status != 401 || b.Error != tc.msg || b.RequestID == "" ||
			r.Header.Get("WWW-Authenticate") != "ApiKey" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %v %s", tc.name, r.StatusCode, r.Header, body)
		}
	}
	if n := e.backend.count(); n != 0 {
		t.Fatalf("%d denied requests reached the backend", n)
	}
	for key, consumer := range map[string]string{"alice-key-0123456789": "alice", "bob-key-0123456789": "bob", "file-key-0123456789": "carol"} {
		r, body := e.get(t, "X-API-Key", key, "X-Consumer", "admin")
		if r.StatusCode != 200 || !strings.Contains(body, "X-Consumer: "+consumer+"\n") || strings.Contains(body, "admin") || strings.Contains(body, key) {
			t.Errorf("%s: %d:\n%s", consumer, r.StatusCode, body)
		}
	}

	// The key in the query: hidden, the parameter is gone from the path
	// the backend sees.
	req, _ := http.NewRequest("GET", e.base+"/hello?a=1&api_key=file-key-0123456789", nil)
	req.Header.Set("X-Echo-Path", "1")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "X-Consumer: carol\n") || !strings.Contains(string(body), "path=/hello?a=1\n") {
		t.Errorf("query key: %d:\n%s", resp.StatusCode, body)
	}

	// A CORS preflight passes without a key (here to the backend: there is
	// no CORS policy to answer it).
	req, _ = http.NewRequest("OPTIONS", e.base+"/hello", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("preflight: %d", resp.StatusCode)
	}
}

// TestKeyAuthPluginConfig: the plugin gets hashes only; keysFile is read
// relative to the policy's file; a key given twice is an error.
func TestKeyAuthPluginConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keys.txt"), []byte("\n  # comment\nk-file\tDave Smith  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	policy := func(k configs.KeyAuth) *configs.Policy {
		return &configs.Policy{Spec: configs.PolicySpec{Type: configs.PolicyKeyAuth, KeyAuth: &k}, Source: configs.Source{File: filepath.Join(dir, "policies.yaml")}}
	}
	_, data, err := firstPartyConfig(policy(configs.KeyAuth{
		Keys:     []configs.APIKey{{Key: "k-inline", Consumer: "alice"}, {SHA256: strings.ToUpper(hashKey("k-hashed")), Consumer: "bob"}},
		KeysFile: "keys.txt", Header: "X-API-Key", ConsumerHeader: "X-Consumer", HideCredentials: true,
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"keys":[{"sha256":"` + hashKey("k-inline") + `","consumer":"alice"},{"sha256":"` + hashKey("k-hashed") + `","consumer":"bob"},` +
		`{"sha256":"` + hashKey("k-file") + `","consumer":"Dave Smith"}],"header":"X-API-Key","query":"","hideCredentials":true,"consumerHeader":"X-Consumer"}`
	if string(data) != want {
		t.Errorf("config\n got %s\nwant %s", data, want)
	}
	if strings.Contains(string(data), "k-inline") || strings.Contains(string(data), "k-file\"") {
		t.Error("a key in clear in the plugin's configuration")
	}

	for _, tc := range []struct {
		name string
		k    configs.KeyAuth
		file string
		want string
	}{
		{"missing file", configs.KeyAuth{KeysFile: "nope.txt"}, "", "spec.keyAuth.keysFile: open"},
		{"no consumer", configs.KeyAuth{KeysFile: "bad.txt"}, "key-only\n", "line 1: want KEY CONSUMER"},
		{"control character", configs.KeyAuth{KeysFile: "bad.txt"}, "ok x\nke\x01y x\n", "line 2: an API key is printable ASCII"},
		{"empty file", configs.KeyAuth{KeysFile: "bad.txt"}, "# none\n", "no keys"},
		{"duplicate in file", configs.KeyAuth{KeysFile: "bad.txt"}, "a x\nb y\na z\n", "bad.txt line 3: the same key as bad.txt line 1"},
		{"duplicate across", configs.KeyAuth{Keys: []configs.APIKey{{SHA256: hashKey("a"), Consumer: "x"}}, KeysFile: "bad.txt"}, "a y\n", "bad.txt line 1: the same key as spec.keyAuth.keys[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.file != "" {
				if err := os.WriteFile(filepath.Join(dir, "bad.txt"), []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, _, err := firstPartyConfig(policy(tc.k))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// consumerReader stands for a policy that runs after KeyAuth (a RateLimit
// keyed on the consumer): it reads the keyauth.consumer property the
// plugin set and shows it to the backend.
// It has its type's traits (RateLimit's place in the order), as a built
// policy does.
type consumerReader struct{ traits proxy.PolicyTraits }

func (c consumerReader) Traits() proxy.PolicyTraits { return c.traits }

func (consumerReader) NewStream(_ context.Context, _ *http.Request, info proxy.StreamInfo) (proxy.PolicyStream, error) {
	return &consumerStream{state: info.State}, nil
}
func (consumerReader) Close() {}

type consumerStream struct{ state *proxy.RequestState }

func (s *consumerStream) RequestHeaders(_ context.Context, r *http.Request) (*proxy.LocalResponse, error) {
	if s.state != nil {
		if v, ok := s.state.Property("keyauth.consumer"); ok {
			r.Header.Set("X-Seen-Consumer", string(v))
		}
	}
	return nil, nil
}
func (s *consumerStream) ResponseHeaders(context.Context, int, http.Header, bool) (*proxy.LocalResponse, error) {
	return nil, nil
}
func (s *consumerStream) Done() {}

// TestKeyAuthConsumerProperty: the policies after KeyAuth on the request
// read the consumer from the keyauth.consumer property.
func TestKeyAuthConsumerProperty(t *testing.T) {
	be := newEcho(t)
	res := fmt.Sprintf(`apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: t}
spec:
  listeners: [{name: http, address: 127.0.0.1, port: %d, protocol: HTTP}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyBackend
metadata: {name: app, namespace: t}
spec:
  endpoints: [{address: %q}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyRoute
metadata: {name: r, namespace: t}
spec:
  rules:
    - backendRefs: [{name: app}]
`, freePort(t), strings.TrimPrefix(be.URL, "http://")) +
		firstPartyDoc("limit", "RateLimit", "  rateLimit: {requestsPerSecond: 1000, key: \"header:X-Consumer\"}\n") +
		firstPartyDoc("keys", "KeyAuth", "  keyAuth:\n    keys: [{key: alice-key-0123456789, consumer: alice}]\n")
	snap := gwtest.Load(t, res)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt, err := wasm.NewRuntime(context.Background(), wasm.Options{Logger: logger, Foreign: HostFunctions()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	b := &Builder{Runtime: rt}
	build := func(ctx context.Context, p *configs.Policy) (proxy.Policy, error) {
		if p.Spec.Type == configs.PolicyRateLimit {
			return consumerReader{traits: Traits(p)}, nil
		}
		return b.Build(ctx, p)
	}
	gw := proxy.New(proxy.Options{Logger: logger, Policies: build})
	base, err := gwtest.Start(t, gw, snap)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{gw: gw, base: base, backend: be}
	r, body := e.get(t, "X-API-Key", "alice-key-0123456789")
	if r.StatusCode != 200 || !strings.Contains(body, "X-Seen-Consumer: alice\n") {
		t.Errorf("%d:\n%s", r.StatusCode, body)
	}
}

// TestKeyAuthWithCORS: CORS runs first, so a preflight is answered without
// a key, and a browser can read the 401 of a keyless actual request.
func TestKeyAuthWithCORS(t *testing.T) {
	e, err := setup(t, firstPartyDoc("keys", "KeyAuth", "  keyAuth:\n    keys: [{key: alice-key-0123456789, consumer: alice}]\n")+
		firstPartyDoc("cors", "CORS", "  cors: {allowOrigins: [\"https://app.example.com\"], allowHeaders: [X-API-Key]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("OPTIONS", e.base+"/hello", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "x-api-key")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	r, _ := e.get(t, "Origin", "https://app.example.com")
	if r.StatusCode != 401 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("keyless request: %d %v", r.StatusCode, r.Header)
	}
	r, body := e.get(t, "Origin", "https://app.example.com", "X-API-Key", "alice-key-0123456789")
	if r.StatusCode != 200 || !strings.Contains(body, "X-Consumer: alice\n") {
		t.Errorf("keyed request: %d\n%s", r.StatusCode, body)
	}
	if e.backend.count() != 1 {
		t.Errorf("backend saw %d requests, want 1", e.backend.count())
	}
}
