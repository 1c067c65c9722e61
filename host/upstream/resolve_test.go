package upstream

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
)

func serviceSpec(name, namespace string) *configs.BackendSpec {
	spec := explicitSpec("RoundRobin")
	spec.ServiceRef = &configs.ServiceRef{
		Name:            name,
		Namespace:       namespace,
		Port:            8080,
		RefreshInterval: dur(30 * time.Second),
	}
	return spec
}

func addrs(b *Backend) []string {
	var out []string
	for _, ep := range endpoints(b) {
		out = append(out, ep.addr)
	}
	return out
}

func TestServiceResolution(t *testing.T) {
	clock := newFakeClock()
	res := &fakeResolver{}
	res.set("users-svc.api-system", "10.1.0.2", "10.1.0.1")
	logs := &logRecorder{}
	b := newTestBackend(t, serviceSpec("users-svc", "api-system"), Options{Clock: clock, Resolver: res, Logger: slogOf(logs)})

	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := addrs(b), []string{"10.1.0.1:8080", "10.1.0.2:8080"}; !slices.Equal(got, want) {
		t.Fatalf("endpoints %v, want %v", got, want)
	}
	if res.lookups[0] != "ip users-svc.api-system" {
		t.Errorf("lookup %q", res.lookups[0])
	}

	// State of a persisting address survives a refresh.
	kept := endpoints(b)[0]
	attempt := kept.Begin()
	kept.observe(7 * time.Millisecond)
	setState(b, kept, stateUnhealthy, true)

	res.set("users-svc.api-system", "10.1.0.3", "10.1.0.1")
	clock.Advance(30 * time.Second)
	if got, want := addrs(b), []string{"10.1.0.1:8080", "10.1.0.3:8080"}; !slices.Equal(got, want) {
		t.Fatalf("after refresh: endpoints %v, want %v", got, want)
	}
	if endpoints(b)[0] != kept {
		t.Fatal("persisting address got a new Endpoint")
	}
	es := b.Status().Endpoints[0]
	if es.Inflight != 1 || es.Healthy || es.LatencyEWMA != 7*time.Millisecond {
		t.Errorf("persisting endpoint lost its state: %+v", es)
	}
	attempt.End(Success, time.Millisecond)
	if counts := pickCounts(t, b, 100, randomKey, nil); counts["10.1.0.2:8080"] != 0 || counts["10.1.0.3:8080"] != 100 {
		t.Errorf("picks %v, want only the new healthy 10.1.0.3", counts)
	}

	// A failing resolution keeps the last set and logs once.
	res.fail(errors.New("server misbehaving"))
	clock.Advance(30 * time.Second)
	clock.Advance(30 * time.Second)
	if got := addrs(b); len(got) != 2 {
		t.Errorf("after DNS errors: endpoints %v, want the last 2", got)
	}
	if n := logs.count("service name does not resolve; keeping the last known endpoints"); n != 1 {
		t.Errorf("%d warnings for 2 failed refreshes, want 1", n)
	}
	res.set("users-svc.api-system", "10.1.0.1")
	clock.Advance(30 * time.Second)
	if got := addrs(b); !slices.Equal(got, []string{"10.1.0.1:8080"}) {
		t.Errorf("after recovery: endpoints %v", got)
	}
	if n := logs.count("service name resolves again"); n != 1 {
		t.Errorf("%d recovery logs, want 1", n)
	}
	if n := len(res.lookups); n != 5 {
		t.Errorf("%d lookups, want 5 (start + 4 refreshes)", n)
	}

	b.Close()
	clock.Advance(time.Hour)
	if n := len(res.lookups); n != 5 {
		t.Errorf("%d lookups after Close, want 5", n)
	}
}

func TestServiceUnresolvedAtStart(t *testing.T) {
	clock := newFakeClock()
	res := &fakeResolver{}
	b := newTestBackend(t, serviceSpec("late-svc", ""), Options{Clock: clock, Resolver: res})
	if err := b.Start(t.Context()); err != nil {
		t.Fatalf("Start with an unresolvable name: %v, want nil (retry later)", err)
	}
	if _, err := b.Pick(0, nil); !errors.Is(err, ErrNoEndpoints) {
		t.Fatalf("Pick: %v, want ErrNoEndpoints", err)
	}
	res.set("late-svc", "10.2.0.1")
	clock.Advance(30 * time.Second)
	ep, err := b.Pick(0, nil)
	if err != nil || ep.Addr() != "10.2.0.1:8080" {
		t.Fatalf("Pick after the name appeared: %v, %v", ep, err)
	}
}

func TestServiceAddressForms(t *testing.T) {
	res := &fakeResolver{}
	res.set("svc.example.com", "::1", "::ffff:10.0.0.9", "10.0.0.9", "fd00::2")
	b := newTestBackend(t, serviceSpec("svc.example.com", "ns"), Options{Resolver: res})
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A dotted name is not qualified; mapped IPv4 is IPv4; duplicates go.
	if got, want := addrs(b), []string{"10.0.0.9:8080", "[::1]:8080", "[fd00::2]:8080"}; !slices.Equal(got, want) {
		t.Errorf("endpoints %v, want %v", got, want)
	}
}

func TestServiceStartContextCanceled(t *testing.T) {
	b := newTestBackend(t, serviceSpec("svc", ""), Options{Resolver: blockingResolver{}})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Start(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with a canceled context: %v, want context.Canceled", err)
	}
}

// blockingResolver answers only when the context ends.
type blockingResolver struct{}

func (blockingResolver) LookupNetIP(ctx context.Context, _, _ string) ([]netip.Addr, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestNewDNSEndpointsAreProbed(t *testing.T) {
	clock := newFakeClock()
	res := &fakeResolver{}
	res.set("svc", "10.0.0.1")
	spec := serviceSpec("svc", "")
	spec.HealthCheck = &configs.HealthCheck{Interval: dur(10 * time.Second), HTTPPath: "/healthz"}
	b := newTestBackend(t, spec, Options{Clock: clock, Resolver: res})
	probes := &fakeProbes{}
	b.probe = probes.probe
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	res.set("svc", "10.0.0.1", "10.0.0.2")
	clock.Advance(30 * time.Second) // refresh adds 10.0.0.2 at 30s; its first probe is within 10s
	clock.Advance(10 * time.Second)
	if probes.probes("10.0.0.1:8080") != 4 || probes.probes("10.0.0.2:8080") != 1 {
		t.Errorf("probes: %v", probes.count)
	}
	res.set("svc", "10.0.0.2")
	clock.Advance(20 * time.Second) // refresh at 60s drops 10.0.0.1
	before := probes.probes("10.0.0.1:8080")
	clock.Advance(time.Minute)
	if after := probes.probes("10.0.0.1:8080"); after != before {
		t.Errorf("vanished endpoint still probed: %d → %d", before, after)
	}
}
