package policy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"syscall"
	"testing"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/proxy"
	"github.com/novaedge/novaedge/host/wasm"
)

// benchPolicies are the first-party policies BenchmarkPolicy runs, each
// configured as the reference use case configures it (KeyAuth with one
// key), with the request headers that make it take its usual path: an
// allowed Origin for CORS, an API key for RateLimit and KeyAuth.
var benchPolicies = []struct {
	name, typ, block string
	hdr              []string
}{
	{"CORS", "CORS", `  cors:
    allowOrigins: ["https://app.example.com", "https://admin.example.com"]
    allowMethods: [GET, POST, PUT, PATCH, DELETE, OPTIONS]
    allowHeaders: [Authorization, Content-Type, X-API-Key, X-Request-ID]
    exposeHeaders: [X-Request-ID, X-RateLimit-Remaining]
    maxAge: 86400s
    allowCredentials: true
`, []string{"Origin", "https://app.example.com"}},
	{"SecurityHeaders", "SecurityHeaders", `  securityHeaders:
    hsts: {enabled: true, maxAge: 31536000, includeSubDomains: true, preload: true}
    xFrameOptions: DENY
    xContentTypeOptions: true
    referrerPolicy: strict-origin-when-cross-origin
`, nil},
	{"RateLimit", "RateLimit", `  rateLimit:
    requestsPerSecond: 1000000000
    burst: 1000000000
    key: "header:X-API-Key"
`, []string{"X-API-Key", "bench"}},
	{"KeyAuth", "KeyAuth", `  keyAuth:
    keys:
      - {key: alice-key-0123456789, consumer: alice}
`, []string{"X-API-Key", "alice-key-0123456789"}},
}

// buildPolicy builds one first-party policy (a ProxyPolicy document of
// type typ, targeting the route of a minimal snapshot) on a fresh runtime
// with the host functions, as the gateway does.
func buildPolicy(b testing.TB, name, typ, block string) proxy.Policy {
	b.Helper()
	res := `apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: t}
spec:
  listeners: [{name: http, address: 127.0.0.1, port: 18080, protocol: HTTP}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyBackend
metadata: {name: app, namespace: t}
spec:
  endpoints: [{address: "127.0.0.1:18081"}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyRoute
metadata: {name: r, namespace: t}
spec:
  rules:
    - name: main
      backendRefs: [{name: app}]
` + firstPartyDoc(name, typ, block)
	snap, err := configs.LoadFiles([]configs.File{{Name: "bench.yaml", Data: []byte(res)}})
	if err != nil {
		b.Fatalf("config: %v", err)
	}
	ctx := context.Background()
	host := NewHost()
	rt, err := wasm.NewRuntime(ctx, wasm.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Foreign: host.Funcs})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close(ctx) })
	p, err := (&Builder{Runtime: rt, Host: host}).Build(ctx, snap.Policy("t", name))
	if err != nil || p == nil {
		b.Fatalf("build %s: %v (%v)", typ, err, p)
	}
	b.Cleanup(p.Close)
	return p
}

// BenchmarkPolicy runs one request through one bundled policy, as the
// request path does but without HTTP: NewStream, request headers, response
// headers of a 200 from the backend, Done. ns/op is the policy's cost per
// request on the host/policy and host/wasm API (the gateway's own work not
// included); allocs/op are the host's.
//
// BenchmarkPolicy/none runs the same loop through a Go policy that does
// nothing: the harness's own cost (the request and response header maps it
// makes), to subtract from the others.
func BenchmarkPolicy(b *testing.B) {
	b.Run("none", func(b *testing.B) { benchRequests(b, nopPolicy{}, nil) })
	for _, tc := range benchPolicies {
		b.Run(tc.name, func(b *testing.B) {
			p := buildPolicy(b, "bench", tc.typ, tc.block)
			benchRequests(b, p, tc.hdr)
		})
	}
}

// benchRequests runs b.N requests with the headers hdr (name, value
// pairs) through p, and fails on a local response.
func benchRequests(b *testing.B, p proxy.Policy, hdr []string) {
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	runRequests(b, p, hdr, b.N)
	b.StopTimer()
	// The process's CPU time per request: on a machine shared with other
	// work, steadier than ns/op (wall time), which includes waiting for a
	// core.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	// The VMs' linear memory at the end: a guest that leaks, or whose
	// garbage collector lets its heap grow, shows here.
	if sr, ok := p.(proxy.StatsReporter); ok {
		b.ReportMetric(float64(sr.Stats().MemoryBytes), "wasm-bytes")
	}
}

// runRequests runs n requests with the headers hdr (name, value pairs)
// through p as the request path does (NewStream, request headers, the
// response headers of a 200, Done), and fails on an error or a local
// response.
func runRequests(tb testing.TB, p proxy.Policy, hdr []string, n int) {
	ctx := context.Background()
	info := proxy.StreamInfo{
		RequestID: "0123456789abcdef",
		Route:     "t/r",
		Rule:      "main",
		Client:    netip.MustParseAddrPort("127.0.0.1:40000"),
		Local:     netip.MustParseAddrPort("127.0.0.1:8080"),
		Backend:   "t/app",
	}
	reqHeader := http.Header{"Accept": {"application/json"}, "User-Agent": {"bench/1"}}
	for j := 0; j+1 < len(hdr); j += 2 {
		reqHeader.Set(hdr[j], hdr[j+1])
	}
	respHeader := http.Header{"Content-Type": {"application/json"}, "Content-Length": {"1024"}}
	r, _ := http.NewRequest("GET", "http://api.example.com/api/v1/products", nil)
	for i := 0; i < n; i++ {
		r.Header = reqHeader.Clone() // a plugin may change them
		info.State = &proxy.RequestState{}
		s, err := p.NewStream(ctx, r, info)
		if err != nil {
			tb.Fatal(err)
		}
		lr, err := s.RequestHeaders(ctx, r)
		if err != nil || lr != nil {
			tb.Fatalf("request headers: %v %+v", err, lr)
		}
		h := respHeader.Clone()
		if lr, err = s.ResponseHeaders(ctx, 200, h, false); err != nil || lr != nil {
			tb.Fatalf("response headers: %v %+v", err, lr)
		}
		s.Done()
	}
}

// processCPU returns the CPU time (user and system) the process has used,
// in nanoseconds.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// nopPolicy is a proxy.Policy that does nothing.
type nopPolicy struct{}

func (nopPolicy) NewStream(context.Context, *http.Request, proxy.StreamInfo) (proxy.PolicyStream, error) {
	return nopStream{}, nil
}
func (nopPolicy) Close() {}

type nopStream struct{}

func (nopStream) RequestHeaders(context.Context, *http.Request) (*proxy.LocalResponse, error) {
	return nil, nil
}
func (nopStream) ResponseHeaders(context.Context, int, http.Header, bool) (*proxy.LocalResponse, error) {
	return nil, nil
}
func (nopStream) Done() {}
