package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/gwtest"
	"github.com/novaedge/novaedge/host/proxy"
	"github.com/novaedge/novaedge/host/wasm"
)

// modules is where the conformance test plugins live (built by
// `make plugins-testdata`, committed).
const modules = "../wasm/testdata"

func freePort(t testing.TB) int { return gwtest.FreePort(t) }

// echo is a backend that returns the request headers it saw as
// "Name: value" lines, and counts requests.
type echo struct {
	*httptest.Server
	mu   sync.Mutex
	hits int
}

func newEcho(t testing.TB) *echo {
	e := &echo{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.hits++
		e.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		// X-Echo-Response-Header: "Name: value" asks for a response header.
		for _, v := range r.Header.Values("X-Echo-Response-Header") {
			if k, val, ok := strings.Cut(v, ":"); ok {
				w.Header().Set(strings.TrimSpace(k), strings.TrimSpace(val))
			}
		}
		if r.Header.Get("X-Echo-Path") != "" {
			fmt.Fprintf(w, "path=%s\n", r.URL.RequestURI())
		}
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "body=%s len=%d\n", b, r.ContentLength)
		}
		for k, vv := range r.Header {
			for _, v := range vv {
				fmt.Fprintf(w, "%s: %s\n", k, v)
			}
		}
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *echo) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hits
}

// env is a gateway whose one route goes to an echo backend, with the
// given policies, written as a resource file in a temporary directory
// beside which module paths are resolved.
type env struct {
	gw      *proxy.Gateway
	base    string
	backend *echo
	rt      *wasm.Runtime
	// reload builds the snapshot of the same gateway with other policies.
	reload func(policies string, extra ...string) *configs.Snapshot
}

func setup(t testing.TB, policies string, extra ...string) (*env, error) {
	t.Helper()
	be := newEcho(t)
	auth := newEcho(t)
	port := freePort(t)
	abs, err := filepath.Abs(modules)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(abs, "policy-test.yaml") // module paths resolve from here
	load := func(policies string, extra ...string) (*configs.Snapshot, error) {
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
kind: ProxyBackend
metadata: {name: auth, namespace: t}
spec:
  endpoints: [{address: %q}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyRoute
metadata: {name: r, namespace: t}
spec:
  rules:
    - name: main
      backendRefs: [{name: app}]
%s%s`, port, strings.TrimPrefix(be.URL, "http://"), strings.TrimPrefix(auth.URL, "http://"), policies, strings.Join(extra, ""))
		return configs.LoadFiles([]configs.File{{Name: file, Data: []byte(res)}})
	}
	snap, err := load(policies, extra...)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	caller := &Caller{}
	host := NewHost()
	rt, err := wasm.NewRuntime(context.Background(), wasm.Options{Logger: logger, HTTPCaller: caller, Foreign: host.Funcs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	b := &Builder{Runtime: rt, Host: host}
	gw := proxy.New(proxy.Options{Logger: logger, Policies: b.Build})
	caller.Gateway = gw
	base, err := gwtest.Start(t, gw, snap)
	if err != nil {
		return nil, err
	}
	reload := func(policies string, extra ...string) *configs.Snapshot {
		t.Helper()
		snap, err := load(policies, extra...)
		if err != nil {
			t.Fatalf("config: %v", err)
		}
		return snap
	}
	return &env{gw: gw, base: base, backend: be, rt: rt, reload: reload}, nil
}

func policyDoc(name, module, extra string) string {
	return fmt.Sprintf(`---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: %s, namespace: t}
spec:
  type: Wasm
  targetRef: {kind: ProxyRoute, name: r}
  wasm:
    module: %s
%s`, name, module, extra)
}

var client = &http.Client{Timeout: 20 * time.Second}

func (e *env) get(t *testing.T, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.base+"/hello", nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestHeaderPluginsOfEveryToolchain runs the same header plugin built
// three ways: TinyGo with tetratelabs/proxy-wasm-go-sdk, Go with
// proxy-wasm/proxy-wasm-go-sdk, and C against the raw ABI.
func TestHeaderPluginsOfEveryToolchain(t *testing.T) {
	for _, tc := range []struct{ module, want string }{
		{"tinygo/headers.wasm", "tinygo"},
		{"gosdk/headers.wasm", "gosdk"},
		{"c/headers.wasm", "c"},
	} {
		t.Run(tc.module, func(t *testing.T) {
			e, err := setup(t, policyDoc("hdr", tc.module, ""))
			if err != nil {
				t.Fatal(err)
			}
			resp, body := e.get(t, "X-Remove", "gone", "X-Replace", "old")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if !strings.Contains(body, "X-Wasm: "+tc.want+"\n") {
				t.Errorf("backend did not see x-wasm: %s:\n%s", tc.want, body)
			}
			if strings.Contains(body, "X-Remove") {
				t.Errorf("x-remove reached the backend:\n%s", body)
			}
			if !strings.Contains(body, "X-Replace: replaced\n") {
				t.Errorf("x-replace not replaced:\n%s", body)
			}
			if tc.want == "tinygo" && resp.Header.Get("X-Wasm-Response") != "yes" {
				t.Errorf("response headers %v", resp.Header)
			}
		})
	}
}

func TestLocalReply(t *testing.T) {
	e, err := setup(t, policyDoc("deny", "tinygo/localreply.wasm", ""))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := e.get(t, "X-Deny", "1")
	if resp.StatusCode != 403 || body != "denied by wasm" || resp.Header.Get("X-Denied-By") != "wasm" {
		t.Errorf("got %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if e.backend.count() != 0 {
		t.Error("a denied request reached the backend")
	}
	if resp, _ := e.get(t); resp.StatusCode != 200 {
		t.Errorf("allowed request: %d", resp.StatusCode)
	}
	ps := e.gw.Status().Policies
	if len(ps) != 1 || ps[0].State != "Active" || ps[0].Plugin == nil || len(ps[0].Plugin.Module) != 64 ||
		ps[0].Plugin.VMs < 1 || ps[0].Plugin.Calls == 0 || ps[0].Plugin.MemoryBytes == 0 {
		t.Errorf("status: %+v", ps)
	}
}

func TestHTTPCalloutToBackend(t *testing.T) {
	e, err := setup(t, policyDoc("auth", "tinygo/httpcall.wasm", ""))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := e.get(t)
	if resp.StatusCode != 200 || !strings.Contains(body, "X-Auth-Status: 200\n") {
		t.Errorf("got %d:\n%s", resp.StatusCode, body)
	}
}

func TestPauseResumedByTick(t *testing.T) {
	e, err := setup(t, policyDoc("pause", "tinygo/pause.wasm", ""))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := e.get(t)
	if resp.StatusCode != 200 || !strings.Contains(body, "X-Resumed: tick\n") {
		t.Errorf("got %d:\n%s", resp.StatusCode, body)
	}
}

func TestSharedDataCounter(t *testing.T) {
	e, err := setup(t, policyDoc("count", "tinygo/shareddata.wasm", ""))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		_, body := e.get(t)
		if !strings.Contains(body, fmt.Sprintf("X-Count: %d\n", i)) {
			t.Errorf("request %d:\n%s", i, body)
		}
	}
}

func TestPluginMetricsExported(t *testing.T) {
	e, err := setup(t, policyDoc("m", "tinygo/metrics.wasm", ""))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		e.get(t)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&Collector{Runtime: e.rt, Gateway: e.gw})
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := rec.Body.String()
	for _, want := range []string{
		"wasmcustom_wasm_requests_total 3",
		`novaedge_wasm_calls_total{module="`,
		`novaedge_wasm_vms{module="`,
		`policy="t/m"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
}

func TestPluginConfiguration(t *testing.T) {
	e, err := setup(t, policyDoc("cfg", "tinygo/config.wasm", `    config: {header: x-team, value: platform}
    vmConfig: "vm-1"
`))
	if err != nil {
		t.Fatal(err)
	}
	_, body := e.get(t)
	if !strings.Contains(body, "X-Team: platform\n") {
		t.Errorf("configured header missing:\n%s", body)
	}
	if !strings.Contains(body, `X-Vm-Config: "vm-1"`) {
		t.Errorf("VM configuration missing:\n%s", body)
	}

	_, err = setup(t, policyDoc("cfg", "tinygo/config.wasm", "    config: {header: \"\"}\n"))
	if err == nil || !strings.Contains(err.Error(), "t/cfg") {
		t.Errorf("a plugin refusing its configuration: err = %v, want one naming the policy", err)
	}
}

func TestFailurePolicy(t *testing.T) {
	closed, err := setup(t, policyDoc("trap", "tinygo/hostile.wasm", "    config: {mode: trap}\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := closed.get(t)
	if resp.StatusCode != 503 {
		t.Errorf("FailClosed trap: status %d", resp.StatusCode)
	}
	// The VM was rebuilt: the next request fails the same way, not worse.
	if resp, _ := closed.get(t); resp.StatusCode != 503 {
		t.Errorf("after rebuild: status %d", resp.StatusCode)
	}

	open, err := setup(t, policyDoc("trap", "tinygo/hostile.wasm", "    config: {mode: trap}\n  failurePolicy: FailOpen\n"))
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := open.get(t); resp.StatusCode != 200 {
		t.Errorf("FailOpen trap: status %d", resp.StatusCode)
	}

	loop, err := setup(t, policyDoc("loop", "tinygo/hostile.wasm", "    config: {mode: loop}\n    timeout: 50ms\n"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if resp, _ := loop.get(t); resp.StatusCode != 503 {
		t.Errorf("infinite loop: status %d", resp.StatusCode)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("infinite loop held the request %v", d)
	}
}

func TestModulePin(t *testing.T) {
	code, err := os.ReadFile(filepath.Join(modules, "tinygo/headers.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(code)
	if _, err := setup(t, policyDoc("pinned", "tinygo/headers.wasm", "    sha256: \""+hex.EncodeToString(sum[:])+"\"\n")); err != nil {
		t.Errorf("matching pin refused: %v", err)
	}
	_, err = setup(t, policyDoc("pinned", "tinygo/headers.wasm", "    sha256: \""+strings.Repeat("0", 64)+"\"\n"))
	if err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("wrong pin: err = %v", err)
	}
	_, err = setup(t, policyDoc("missing", "tinygo/nope.wasm", ""))
	if err == nil || !strings.Contains(err.Error(), "nope.wasm") {
		t.Errorf("missing module: err = %v", err)
	}
}

// TestBodyPlugin runs the TinyGo body plugin through the gateway: it
// buffers the request body and upper-cases it, and buffers the response
// body and appends, prepends or replaces, as configured. The plugin drops
// Content-Length; the gateway, having the whole body, sends the exact one.
func TestBodyPlugin(t *testing.T) {
	for _, tc := range []struct{ mode, want string }{
		{"append", "body=HELLO WASM len=10\n...-appended"},
		{"prepend", "prepended-body=HELLO WASM len=10\n..."},
		{"replace", "replaced"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			e, err := setup(t, policyDoc("body", "tinygo/body.wasm", "    config: {mode: "+tc.mode+"}\n"))
			if err != nil {
				t.Fatal(err)
			}
			for _, chunked := range []bool{false, true} {
				var body io.Reader = strings.NewReader("hello wasm")
				if chunked {
					body = io.MultiReader(body)
				}
				resp, err := client.Post(e.base+"/hello", "text/plain", body)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("status %d: %s", resp.StatusCode, got)
				}
				if resp.ContentLength != int64(len(got)) {
					t.Errorf("Content-Length %d for %d bytes", resp.ContentLength, len(got))
				}
				head, tail, _ := strings.Cut(tc.want, "...")
				if !strings.HasPrefix(string(got), head) || !strings.HasSuffix(string(got), tail) {
					t.Errorf("chunked=%v: response %q, want %q", chunked, got, tc.want)
				}
			}
		})
	}

	t.Run("a body over the plugin's buffer limit is refused with 413", func(t *testing.T) {
		e, err := setup(t, policyDoc("body", "tinygo/body.wasm", ""))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Post(e.base+"/hello", "text/plain", strings.NewReader(strings.Repeat("x", 3<<20)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Errorf("status %d, want 413", resp.StatusCode)
		}
		if e.backend.count() != 0 {
			t.Error("the backend was reached")
		}
	})
}

// TestPropertiesThroughGateway: the TinyGo properties plugin reads, through
// proxy_get_property, what the gateway knows of the request: its path and
// method, the client's address, the policy's name, the route and the
// backend chosen for it.
func TestPropertiesThroughGateway(t *testing.T) {
	e, err := setup(t, policyDoc("props", "tinygo/properties.wasm", ""))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("DELETE", e.base+"/hello/x?q=1", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := map[string]string{
		"X-Prop-Request-Path":   "/hello/x?q=1",
		"X-Prop-Request-Method": "DELETE",
		"X-Prop-Plugin-Name":    "t/props",
		"X-Prop-Route-Name":     "t/r",
		"X-Prop-Cluster-Name":   "t/app",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if got := resp.Header.Get("X-Prop-Source-Address"); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Errorf("source.address = %q", got)
	}
}

// TestTickThroughGateway: the TinyGo tick plugin counts proxy_on_tick calls
// (every 100 ms) in shared data; requests see the count grow.
func TestTickThroughGateway(t *testing.T) {
	e, err := setup(t, policyDoc("tick", "tinygo/tick.wasm", ""))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := e.get(t)
		if strings.Contains(body, "X-Ticks: ") && !strings.Contains(body, "X-Ticks: 0\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tick seen in 10s:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
