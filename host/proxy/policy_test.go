package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/gwtest"
)

// fakePolicy stands for a plugin: it appends its name to X-Chain on the
// request and to X-Chain-Back on the response, denies requests carrying
// X-Deny: <its name>, and fails on X-Fail: <its name>.
type fakePolicy struct {
	name   string
	closed atomic.Bool
	open   *atomic.Int64 // streams not yet Done, shared by all fakes
	traits PolicyTraits
}

func (p *fakePolicy) Traits() PolicyTraits { return p.traits }

type fakeStream struct {
	p    *fakePolicy
	done atomic.Bool
}

func (p *fakePolicy) NewStream(ctx context.Context, r *http.Request, info StreamInfo) (PolicyStream, error) {
	if info.RequestID == "" || info.Route == "" {
		return nil, fmt.Errorf("stream info incomplete: %+v", info)
	}
	p.open.Add(1)
	r.Header.Set("X-Policy-Saw-Backend", info.Backend)
	r.Header.Set("X-Policy-Saw-Client", info.Client.String())
	return &fakeStream{p: p}, nil
}

func (p *fakePolicy) Close() { p.closed.Store(true) }

func (s *fakeStream) RequestHeaders(ctx context.Context, r *http.Request) (*LocalResponse, error) {
	if r.Header.Get("X-Fail") == s.p.name {
		return nil, errors.New("plugin trapped")
	}
	if r.Header.Get("X-Deny") == s.p.name {
		return &LocalResponse{Status: 403, Headers: http.Header{"X-Denied-By": {s.p.name}}, Body: []byte("denied by " + s.p.name)}, nil
	}
	r.Header.Add("X-Chain", s.p.name)
	return nil, nil
}

func (s *fakeStream) ResponseHeaders(ctx context.Context, status int, h http.Header, eos bool) (*LocalResponse, error) {
	h.Add("X-Chain-Back", s.p.name)
	return nil, nil
}

func (s *fakeStream) Done() {
	if s.done.Swap(true) {
		panic("Done called twice")
	}
	s.p.open.Add(-1)
}

func policyYAML(name, typ, target string, extra string) string {
	block := map[string]string{
		"JWT":       "jwt: {jwksUri: https://auth.example.com/jwks.json}",
		"RateLimit": "rateLimit: {requestsPerSecond: 10}",
		"CORS":      "cors: {allowOrigins: [\"*\"]}",
		"Wasm":      "wasm: {module: x.wasm}",
	}[typ]
	return fmt.Sprintf(`---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: %s, namespace: t}
spec:
  type: %s
  targetRef: %s
  %s
%s`, name, typ, target, block, extra)
}

func TestPolicyChain(t *testing.T) {
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Join(r.Header.Values("X-Chain"), ","))
	})
	res := gatewayYAML(freePort(t), "") + backendYAML("b", be.addr()) + route(`
    - name: main
      matches: [{path: {value: /api}}]
      backendRefs: [{name: b}]
    - matches: [{path: {value: /other}}]
      backendRefs: [{name: b}]
`) +
		policyYAML("jwt", "JWT", "{kind: ProxyGateway, name: gw}", "") +
		policyYAML("rl", "RateLimit", "{kind: ProxyGateway, name: gw}", "  priority: -1\n") +
		policyYAML("user-rule", "Wasm", "{kind: ProxyRoute, name: r, sectionName: main}", "") +
		policyYAML("user-route", "Wasm", "{kind: ProxyRoute, name: r}", "  failurePolicy: FailOpen\n") +
		policyYAML("cors", "CORS", "{kind: ProxyGateway, name: gw}", "")

	snap, err := configs.LoadFiles([]configs.File{{Name: "p.yaml", Data: []byte(res)}})
	if err != nil {
		t.Fatal(err)
	}
	var open atomic.Int64
	var mu sync.Mutex
	built := map[string]*fakePolicy{}
	builder := func(ctx context.Context, p *configs.Policy) (Policy, error) {
		if p.Spec.Type == configs.PolicyCORS {
			return nil, nil // a type this build does not carry out
		}
		fp := &fakePolicy{name: p.Metadata.Name, open: &open}
		mu.Lock()
		built[p.Metadata.Name] = fp
		mu.Unlock()
		return fp, nil
	}
	gw := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Policies: builder})
	if err := gw.Apply(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	var base string
	for _, a := range gw.Addrs() {
		base = "http://" + a
	}

	t.Run("order on the way in and out", func(t *testing.T) {
		resp := get(t, base+"/api")
		body, _ := io.ReadAll(resp.Body)
		if got, want := string(body), "rl,jwt,user-route,user-rule"; got != want {
			t.Errorf("request order %q, want %q", got, want)
		}
		if got, want := strings.Join(resp.Header.Values("X-Chain-Back"), ","), "user-rule,user-route,jwt,rl"; got != want {
			t.Errorf("response order %q, want %q", got, want)
		}
	})
	t.Run("a rule-scoped policy stays on its rule", func(t *testing.T) {
		resp := get(t, base+"/other")
		body, _ := io.ReadAll(resp.Body)
		if got, want := string(body), "rl,jwt,user-route"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("a local response stops the request before the backend", func(t *testing.T) {
		before := be.Hits()
		resp := get(t, base+"/api", "X-Deny", "jwt")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 403 || string(body) != "denied by jwt" || resp.Header.Get("X-Denied-By") != "jwt" {
			t.Errorf("got %d %q %v", resp.StatusCode, body, resp.Header)
		}
		if be.Hits() != before {
			t.Error("the backend was called")
		}
		// Only the policies that saw the request see the local response.
		if got := strings.Join(resp.Header.Values("X-Chain-Back"), ","); got != "rl" {
			t.Errorf("response chain %q, want rl", got)
		}
	})
	t.Run("fail closed", func(t *testing.T) {
		resp := get(t, base+"/api", "X-Fail", "jwt")
		if resp.StatusCode != 503 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if e := decodeErr(t, resp); e.Error != "policy t/jwt failed" {
			t.Errorf("error %q", e.Error)
		}
	})
	t.Run("fail open", func(t *testing.T) {
		resp := get(t, base+"/api", "X-Fail", "user-route")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "rl,jwt,user-rule" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
	})
	t.Run("status and close", func(t *testing.T) {
		for _, ps := range gw.Status().Policies {
			want := "Active"
			if ps.Name == "cors" {
				want = "NotActiveYet"
			}
			if ps.State != want {
				t.Errorf("policy %s state %q, want %q", ps.Name, ps.State, want)
			}
		}
		if open.Load() != 0 {
			t.Errorf("%d streams never got Done", open.Load())
		}
		if err := gw.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		for name, fp := range built {
			if !fp.closed.Load() {
				t.Errorf("policy %s not closed at shutdown", name)
			}
		}
	})
}

// TestPolicySeesTheChosenBackend: on a canary split, a policy is told the
// backend the request actually goes to.
func TestPolicySeesTheChosenBackend(t *testing.T) {
	var backends []*backend
	for _, name := range []string{"t/one", "t/two"} {
		backends = append(backends, newBackend(t, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name+" "+r.Header.Get("X-Policy-Saw-Backend"))
		}))
	}
	res := gatewayYAML(freePort(t), "") + backendYAML("one", backends[0].addr()) + backendYAML("two", backends[1].addr()) + route(`
    - backendRefs: [{name: one, weight: 50}, {name: two, weight: 50}]
`) + policyYAML("p", "Wasm", "{kind: ProxyRoute, name: r}", "")
	var open atomic.Int64
	gw := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Policies: func(ctx context.Context, p *configs.Policy) (Policy, error) {
		return &fakePolicy{name: p.Metadata.Name, open: &open}, nil
	}})
	base := gwtest.Serve(t, gw, res)
	seen := map[string]bool{}
	for i := 0; i < 40; i++ {
		resp := get(t, base+"/")
		body, _ := io.ReadAll(resp.Body)
		served, told, _ := strings.Cut(string(body), " ")
		if served != told {
			t.Fatalf("served by %s, the policy was told %q", served, told)
		}
		seen[served] = true
	}
	if len(seen) != 2 {
		t.Errorf("the split sent everything to %v", seen)
	}
}

// TestPolicySeesTrustedClient: behind a trusted proxy, policies see the
// client X-Forwarded-For names (without port) as the source address; from
// an untrusted peer, the peer itself.
func TestPolicySeesTrustedClient(t *testing.T) {
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Policy-Saw-Client"))
	})
	var open atomic.Int64
	builder := func(ctx context.Context, p *configs.Policy) (Policy, error) {
		return &fakePolicy{name: p.Metadata.Name, open: &open}, nil
	}
	for _, tc := range []struct {
		trusted string
		want    func(string) bool
	}{
		{"  trustedProxies: [127.0.0.0/8]", func(s string) bool { return s == "203.0.113.9:0" }},
		{"", func(s string) bool { return strings.HasPrefix(s, "127.0.0.1:") && s != "127.0.0.1:0" }},
	} {
		res := gatewayYAML(freePort(t), tc.trusted) + backendYAML("b", be.addr()) + route(`
    - backendRefs: [{name: b}]
`) + policyYAML("p", "Wasm", "{kind: ProxyGateway, name: gw}", "")
		snap, err := configs.LoadFiles([]configs.File{{Name: "p.yaml", Data: []byte(res)}})
		if err != nil {
			t.Fatal(err)
		}
		gw := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Policies: builder})
		if err := gw.Apply(context.Background(), snap); err != nil {
			t.Fatal(err)
		}
		for _, a := range gw.Addrs() {
			resp := get(t, "http://"+a+"/", "X-Forwarded-For", "198.51.100.1, 203.0.113.9")
			body, _ := io.ReadAll(resp.Body)
			if !tc.want(string(body)) {
				t.Errorf("trusted %q: policy saw client %q", tc.trusted, body)
			}
		}
		gw.Shutdown(context.Background())
	}
}
