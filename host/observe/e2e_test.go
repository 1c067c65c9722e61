package observe_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/gwtest"
	"github.com/novaedge/novaedge/host/observe"
	"github.com/novaedge/novaedge/host/proxy"
)

// The end-to-end tests run a real gateway on 127.0.0.1 in front of real
// backends, send known traffic, shut the gateway down (which writes the
// access log lines still queued and exports the spans still held) and
// look at what came out.

// syncBuffer is an access log destination safe for the sink's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newBackend(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }
	}
	return gwtest.Listen(t, h)
}

func freePort(t testing.TB) int { return gwtest.FreePort(t) }

// gatewayYAML is gateway t/gw with one HTTP listener and spec lines extra.
func gatewayYAML(t testing.TB, extra string) string { return gwtest.GatewayYAML(freePort(t), extra) }

func backendYAML(name, extra string, addrs ...string) string {
	return gwtest.BackendYAML(name, addrs...) + extra
}

func routeYAML(name, rules string) string { return gwtest.RouteYAML(name, rules) }

// policyYAML is a Wasm policy (served by guard) targeting target, as
// "{kind: ProxyRoute, name: r}".
func policyYAML(name, target string) string {
	return fmt.Sprintf(`---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: %s, namespace: t}
spec:
  type: Wasm
  targetRef: %s
  wasm: {module: x.wasm}
`, name, target)
}

// guard is a policy that answers 403 to requests carrying X-Deny and
// fails on X-Fail.
type guard struct{}

type guardStream struct{}

func (guard) NewStream(context.Context, *http.Request, proxy.StreamInfo) (proxy.PolicyStream, error) {
	return guardStream{}, nil
}
func (guard) Close() {}

func (guardStream) RequestHeaders(_ context.Context, r *http.Request) (*proxy.LocalResponse, error) {
	if r.Header.Get("X-Fail") != "" {
		return nil, fmt.Errorf("guard trapped")
	}
	if r.Header.Get("X-Deny") != "" {
		return &proxy.LocalResponse{Status: 403, Body: []byte("denied")}, nil
	}
	return nil, nil
}

func (guardStream) ResponseHeaders(context.Context, int, http.Header, bool) (*proxy.LocalResponse, error) {
	return nil, nil
}
func (guardStream) Done() {}

type gateway struct {
	gw      *proxy.Gateway
	base    string
	metrics *observe.Metrics
	log     *syncBuffer
}

// start serves resources with metrics, an access log buffer and the guard
// policy for every ProxyPolicy.
func start(t testing.TB, resources string) *gateway {
	t.Helper()
	snap := gwtest.Load(t, resources)
	g := &gateway{metrics: observe.NewMetrics(), log: &syncBuffer{}}
	g.gw = proxy.New(proxy.Options{
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics:   g.metrics,
		AccessLog: g.log,
		Policies: func(context.Context, *configs.Policy) (proxy.Policy, error) {
			return guard{}, nil
		},
	})
	if err := g.gw.Apply(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.shutdown(t) })
	for _, a := range g.gw.Addrs() {
		g.base = "http://" + a
	}
	return g
}

// shutdown stops the gateway: the queued access log lines are written and
// the held spans exported when it returns.
func (g *gateway) shutdown(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.gw.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

// send makes a request; hdr holds name, value pairs ("Host" sets the host).
func send(t testing.TB, method, url, body string, hdr ...string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}
