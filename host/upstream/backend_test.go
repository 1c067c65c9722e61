package upstream

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
)

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(*configs.BackendSpec)
		want string
	}{
		{"unknown policy", func(s *configs.BackendSpec) { s.LBPolicy = "Fastest" }, `lbPolicy "Fastest"`},
		{"unknown protocol", func(s *configs.BackendSpec) { s.Protocol = "HTTP3" }, `protocol "HTTP3"`},
		{"both sources", func(s *configs.BackendSpec) { s.ServiceRef = &configs.ServiceRef{Name: "a", Port: 80} }, "both serviceRef and endpoints"},
		{"no source", func(s *configs.BackendSpec) { s.Endpoints = nil }, "neither serviceRef nor endpoints"},
		{"address without port", func(s *configs.BackendSpec) { s.Endpoints[0].Address = "10.0.0.1" }, "not host:port"},
		{"port out of range", func(s *configs.BackendSpec) { s.Endpoints[0].Address = "10.0.0.1:70000" }, "port must be"},
		{"weight 0", func(s *configs.BackendSpec) { s.Endpoints[0].Weight = intp(0) }, "weight 0"},
		{"address twice", func(s *configs.BackendSpec) { s.Endpoints[1].Address = s.Endpoints[0].Address }, "listed twice"},
		{"service port 0", func(s *configs.BackendSpec) {
			s.Endpoints = nil
			s.ServiceRef = &configs.ServiceRef{Name: "svc"}
		}, "port 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := explicitSpec("RoundRobin", 1, 1)
			tt.edit(spec)
			_, err := New("ns/b", spec, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `backend "ns/b"`) {
				t.Errorf("error %v, want one naming the backend and containing %q", err, tt.want)
			}
		})
	}
	if _, err := New("ns/b", nil, Options{}); err == nil {
		t.Error("nil spec: no error")
	}
}

func TestLifecycle(t *testing.T) {
	b, err := New("ns/b", healthSpec("RoundRobin", 2), Options{Clock: newFakeClock(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	b.Close() // before Start
	b.Close() // idempotent
	if err := b.Start(t.Context()); err == nil {
		t.Error("Start after Close: no error")
	}

	b = newTestBackend(t, healthSpec("RoundRobin", 2), Options{})
	b.probe = (&fakeProbes{}).probe
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err == nil {
		t.Error("second Start: no error")
	}
	if b.Name() != "test/backend" {
		t.Errorf("Name %q", b.Name())
	}
	var wg sync.WaitGroup
	for range 4 { // concurrent Close calls all return once closed
		wg.Add(1)
		go func() { defer wg.Done(); b.Close() }()
	}
	wg.Wait()
}

func TestStatus(t *testing.T) {
	spec := outlierSpec(3)
	spec.Endpoints[2].Weight = intp(5)
	b := newTestBackend(t, spec, Options{})
	eps := endpoints(b)
	a := eps[0].Begin()
	a.End(Success, 4*time.Millisecond)
	held := eps[0].Begin()
	defer held.End(Canceled, 0)
	setState(b, eps[1], stateUnhealthy, true)
	st := b.Status()
	if st.Name != "test/backend" || st.LBPolicy != "RoundRobin" || st.Protocol != "HTTP" ||
		st.Total != 3 || st.Healthy != 2 || st.Available != 2 || st.Panic {
		t.Errorf("status %+v", st)
	}
	want := []EndpointStatus{
		{Address: "10.0.0.1:80", Weight: 1, Healthy: true, Inflight: 1, LatencyEWMA: 4 * time.Millisecond},
		{Address: "10.0.0.2:80", Weight: 1},
		{Address: "10.0.0.3:80", Weight: 5, Healthy: true},
	}
	for i, w := range want {
		if st.Endpoints[i] != w {
			t.Errorf("endpoint %d: %+v, want %+v", i, st.Endpoints[i], w)
		}
	}
}

func TestResultString(t *testing.T) {
	if Success.String() != "Success" || Canceled.String() != "Canceled" || Result(99).String() != "Result(99)" {
		t.Error("Result.String")
	}
}

func TestEWMA(t *testing.T) {
	ep := &Endpoint{}
	ep.observe(8 * time.Millisecond)
	if got := time.Duration(ep.ewma.Load()); got != 8*time.Millisecond {
		t.Fatalf("first sample: %v", got)
	}
	ep.observe(16 * time.Millisecond)
	if got := time.Duration(ep.ewma.Load()); got != 9*time.Millisecond {
		t.Fatalf("8ms then 16ms: %v, want 9ms (1/8 weight)", got)
	}
	for range 200 {
		ep.observe(time.Millisecond)
	}
	if got := time.Duration(ep.ewma.Load()); got < time.Millisecond || got > time.Millisecond+time.Microsecond {
		t.Fatalf("converged to %v, want ≈1ms", got)
	}
	var zero Attempt
	zero.End(Failure, time.Second) // no-op
	if zero.Endpoint() != nil {
		t.Error("zero Attempt has an endpoint")
	}
}

// testServer counts requests and fails health checks or requests on
// demand.
type testServer struct {
	*httptest.Server
	requests    atomic.Int64
	failHealth  atomic.Bool
	failRequest atomic.Bool
}

func newTestServer(t *testing.T) *testServer {
	s := &testServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if s.failHealth.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		s.requests.Add(1)
		if s.failRequest.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// serve sends one request through the backend as the proxy does:
// Acquire, Pick, Begin, round trip, End.
func serve(t *testing.T, b *Backend) {
	t.Helper()
	release, err := b.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ep, err := b.Pick(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := ep.Begin()
	start := time.Now()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+ep.Addr()+"/work", nil)
	resp, err := b.Transport().RoundTrip(req)
	if err != nil {
		a.End(ConnectFailure, time.Since(start))
		return
	}
	_ = resp.Body.Close()
	result := Success
	if resp.StatusCode >= 500 {
		result = Failure
	}
	a.End(result, time.Since(start))
}

func TestEndToEndHealthChecks(t *testing.T) {
	servers := []*testServer{newTestServer(t), newTestServer(t), newTestServer(t)}
	spec := explicitSpec("RoundRobin")
	spec.Endpoints = nil
	for _, s := range servers {
		spec.Endpoints = append(spec.Endpoints, configs.Endpoint{Address: s.Listener.Addr().String()})
	}
	spec.HealthCheck = &configs.HealthCheck{
		Interval:           dur(time.Second),
		Timeout:            dur(5 * time.Second),
		HealthyThreshold:   1,
		UnhealthyThreshold: 2,
		HTTPPath:           "/healthz",
	}
	clock := newFakeClock() // probes are real HTTP, run inside Advance
	b := newTestBackend(t, spec, Options{Clock: clock})
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	servers[1].failHealth.Store(true)
	clock.Advance(time.Second)
	if st := b.Status(); st.Healthy != 3 {
		t.Fatalf("after one failed probe: %d healthy, want 3", st.Healthy)
	}
	clock.Advance(time.Second)
	if st := b.Status(); st.Healthy != 2 || st.Endpoints[1].Healthy {
		t.Fatalf("after two failed probes: %+v", st)
	}
	for range 60 {
		serve(t, b)
	}
	if n := servers[1].requests.Load(); n != 0 {
		t.Errorf("unhealthy server got %d requests", n)
	}
	if n0, n2 := servers[0].requests.Load(), servers[2].requests.Load(); n0 != 30 || n2 != 30 {
		t.Errorf("healthy servers got %d and %d requests, want 30 each", n0, n2)
	}

	servers[1].failHealth.Store(false)
	clock.Advance(time.Second)
	if st := b.Status(); st.Healthy != 3 {
		t.Fatalf("after a good probe: %d healthy, want 3", st.Healthy)
	}
	for range 30 {
		serve(t, b)
	}
	if n := servers[1].requests.Load(); n != 10 {
		t.Errorf("recovered server got %d of 30 requests, want 10", n)
	}
}

func TestEndToEndOutlierDetection(t *testing.T) {
	servers := []*testServer{newTestServer(t), newTestServer(t)}
	spec := outlierSpec(0)
	for _, s := range servers {
		spec.Endpoints = append(spec.Endpoints, configs.Endpoint{Address: s.Listener.Addr().String()})
	}
	clock := newFakeClock()
	b := newTestBackend(t, spec, Options{Clock: clock})
	servers[0].failRequest.Store(true)
	for range 20 {
		serve(t, b)
	}
	// RoundRobin: the failing server got 3 requests, then was ejected.
	if n := servers[0].requests.Load(); n != 3 {
		t.Errorf("failing server got %d requests, want 3 before its ejection", n)
	}
	servers[0].failRequest.Store(false)
	clock.Advance(30 * time.Second)
	settle(b)
	for range 20 {
		serve(t, b)
	}
	if n := servers[0].requests.Load(); n != 13 {
		t.Errorf("failing server got %d requests, want 3 + 10 after its return", n)
	}
}

func TestEndToEndConnectFailure(t *testing.T) {
	ln := httptest.NewServer(http.NotFoundHandler())
	addr := ln.Listener.Addr().String()
	ln.Close() // nothing listens there now
	good := newTestServer(t)
	spec := outlierSpec(0)
	spec.Endpoints = []configs.Endpoint{{Address: addr}, {Address: good.Listener.Addr().String()}}
	b := newTestBackend(t, spec, Options{})
	for range 10 {
		serve(t, b)
	}
	if st := b.Status(); !st.Endpoints[0].Ejected {
		t.Errorf("refusing endpoint not ejected: %+v", st.Endpoints[0])
	}
	if n := good.requests.Load(); n < 7 {
		t.Errorf("good server got %d of 10 requests", n)
	}
}

// Picks and attempts race with DNS updates, health flips, ejections and
// rebuilds; run with -race.
func TestConcurrentPicksAndUpdates(t *testing.T) {
	for _, policy := range allPolicies {
		t.Run(policy, func(t *testing.T) {
			clock := newFakeClock()
			res := &fakeResolver{}
			res.set("svc", "10.0.0.1", "10.0.0.2", "10.0.0.3")
			spec := serviceSpec("svc", "")
			spec.LBPolicy = policy
			spec.ConsistentHash = &configs.ConsistentHash{Header: "X-User"}
			spec.HealthCheck = &configs.HealthCheck{Interval: dur(time.Second), UnhealthyThreshold: 1, HealthyThreshold: 1}
			spec.CircuitBreaker = &configs.CircuitBreaker{MaxConnections: 8, ConsecutiveFailures: 2}
			b := newTestBackend(t, spec, Options{Clock: clock, Resolver: res})
			var flip atomic.Int64
			b.probe = func(context.Context, *Endpoint) error {
				if flip.Add(1)%3 == 0 {
					return errors.New("down")
				}
				return nil
			}
			if err := b.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var tried []*Endpoint
					for i := 0; ctx.Err() == nil && i < 1_000_000; i++ {
						release, err := b.Acquire(ctx)
						if err != nil {
							return
						}
						ep, err := b.Pick(uint64(i*w), tried[:0])
						if err == nil {
							a := ep.Begin()
							if i%5 == 0 {
								a.End(Failure, time.Millisecond)
							} else {
								a.End(Success, time.Millisecond)
							}
							tried = append(tried[:0], ep)
						}
						release()
						_ = b.Status()
					}
				}()
			}
			for i := range 20 {
				if i%2 == 0 {
					res.set("svc", "10.0.0.1", "10.0.0.3", "10.0.0.4")
				} else {
					res.set("svc", "10.0.0.1", "10.0.0.2", "10.0.0.3")
				}
				clock.Advance(30 * time.Second)
			}
			cancel()
			wg.Wait()
		})
	}
}
