package upstream

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
)

func TestHealthMachine(t *testing.T) {
	tests := []struct {
		name   string
		probes string // '+' good, '-' failed
		states string // state after each probe: 'H' healthy, 'U' unhealthy
		flips  string // '^' where the state flipped
	}{
		{"starts healthy, stays", "+++", "HHH", "   "},
		{"fall after 3", "---", "HHU", "  ^"},
		{"streak broken by success", "--+--", "HHHHH", "     "},
		{"rise after 2", "---++", "HHUUH", "  ^ ^"},
		{"rise streak broken by failure", "---+-++", "HHUUUUH", "  ^   ^"},
		{"failure while unhealthy clears rise streak", "---+-+", "HHUUUU", "  ^   "},
		{"fall again after recovery", "---++---", "HHUUHHHU", "  ^ ^  ^"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newHealthMachine(2, 3)
			for i, p := range tt.probes {
				flipped := m.observe(p == '+')
				state := byte('H')
				if !m.healthy {
					state = 'U'
				}
				if state != tt.states[i] {
					t.Errorf("after probe %d (%c): state %c, want %c", i, p, state, tt.states[i])
				}
				if flipped != (tt.flips[i] == '^') {
					t.Errorf("after probe %d (%c): flipped %v", i, p, flipped)
				}
			}
		})
	}
}

func TestHealthConfigDefaults(t *testing.T) {
	c := newHealthConfig(&configs.HealthCheck{HTTPPath: "healthz"})
	if c.interval != defaultHealthInterval || c.timeout != defaultHealthTimeout ||
		c.healthyThreshold != 2 || c.unhealthyThreshold != 3 || c.path != "/healthz" {
		t.Errorf("defaults: %+v", c)
	}
	for code, want := range map[int]bool{199: false, 200: true, 302: true, 399: true, 400: false, 503: false} {
		if got := c.healthyStatus(code); got != want {
			t.Errorf("default expected statuses: %d healthy = %v", code, got)
		}
	}
	c = newHealthConfig(&configs.HealthCheck{ExpectedStatuses: []int{204}})
	if c.healthyStatus(200) || !c.healthyStatus(204) {
		t.Error("expectedStatuses [204] not honoured")
	}
}

// fakeProbes answers probes from a table of failing addresses and counts
// them.
type fakeProbes struct {
	mu      sync.Mutex
	failing map[string]bool
	count   map[string]int
}

func (p *fakeProbes) probe(_ context.Context, ep *Endpoint) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count == nil {
		p.count = map[string]int{}
	}
	p.count[ep.addr]++
	if p.failing[ep.addr] {
		return errors.New("status 503")
	}
	return nil
}

func (p *fakeProbes) setFailing(addr string, failing bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failing == nil {
		p.failing = map[string]bool{}
	}
	p.failing[addr] = failing
}

func (p *fakeProbes) probes(addr string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count[addr]
}

func healthSpec(policy string, n int) *configs.BackendSpec {
	spec := explicitSpec(policy, ones(n)...)
	spec.HealthCheck = &configs.HealthCheck{
		Interval:           dur(10 * time.Second),
		Timeout:            dur(time.Second),
		HealthyThreshold:   2,
		UnhealthyThreshold: 3,
		HTTPPath:           "/healthz",
	}
	return spec
}

func TestHealthChecksWithFakeClock(t *testing.T) {
	clock := newFakeClock()
	logs := &logRecorder{}
	b := newTestBackend(t, healthSpec("RoundRobin", 3), Options{Clock: clock, Logger: slogOf(logs)})
	probes := &fakeProbes{}
	b.probe = probes.probe
	eps := endpoints(b)
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if eps[0].probeURL != "http://10.0.0.1:80/healthz" {
		t.Errorf("probe URL %q", eps[0].probeURL)
	}

	// The first probe of each endpoint falls within the first interval
	// (jittered); then one per interval.
	clock.Advance(10 * time.Second)
	for _, ep := range eps {
		if n := probes.probes(ep.addr); n != 1 {
			t.Fatalf("%s probed %d times in the first interval, want 1", ep.addr, n)
		}
	}

	probes.setFailing(eps[1].addr, true)
	for i := 1; i <= 3; i++ {
		clock.Advance(10 * time.Second)
		healthy := eps[1].state.Load()&stateUnhealthy == 0
		if want := i < 3; healthy != want {
			t.Fatalf("after %d failed probes: healthy %v, want %v", i, healthy, want)
		}
	}
	if st := b.Status(); st.Healthy != 2 || st.Available != 2 || st.Endpoints[1].Healthy {
		t.Errorf("status after 3 failures: %+v", st)
	}
	if n := logs.count("endpoint unhealthy"); n != 1 {
		t.Errorf("%d 'endpoint unhealthy' logs, want 1", n)
	}
	counts := pickCounts(t, b, 300, randomKey, nil)
	if counts[eps[1].addr] != 0 {
		t.Errorf("unhealthy endpoint picked: %v", counts)
	}

	probes.setFailing(eps[1].addr, false)
	clock.Advance(10 * time.Second)
	if eps[1].state.Load()&stateUnhealthy == 0 {
		t.Fatal("healthy after 1 good probe, want 2")
	}
	clock.Advance(10 * time.Second)
	if eps[1].state.Load()&stateUnhealthy != 0 {
		t.Fatal("still unhealthy after 2 good probes")
	}
	if n := logs.count("endpoint healthy"); n != 1 {
		t.Errorf("%d 'endpoint healthy' logs, want 1", n)
	}
	if counts := pickCounts(t, b, 300, randomKey, nil); counts[eps[1].addr] != 100 {
		t.Errorf("recovered endpoint: picks %v", counts)
	}
	if n := probes.probes(eps[0].addr); n != 6 {
		t.Errorf("%s probed %d times in 6 intervals, want 6", eps[0].addr, n)
	}

	// Close stops the probes.
	b.Close()
	if n := clock.pending(); n != 0 {
		t.Errorf("%d timers pending after Close", n)
	}
	before := probes.probes(eps[0].addr)
	clock.Advance(time.Minute)
	if after := probes.probes(eps[0].addr); after != before {
		t.Errorf("probed after Close: %d → %d", before, after)
	}
}

func TestFirstProbesAreJittered(t *testing.T) {
	clock := newFakeClock()
	b := newTestBackend(t, healthSpec("RoundRobin", 20), Options{Clock: clock})
	var mu sync.Mutex
	first := map[time.Time]bool{}
	b.probe = func(context.Context, *Endpoint) error {
		mu.Lock()
		defer mu.Unlock()
		first[clock.Now()] = true
		return nil
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Second)
	if len(first) < 10 {
		t.Errorf("20 endpoints probed at only %d distinct times in the first interval", len(first))
	}
}

// Close cancels a probe in flight and returns only once it has ended.
func TestCloseWaitsForRunningProbe(t *testing.T) {
	spec := healthSpec("RoundRobin", 1)
	spec.HealthCheck.Interval = dur(time.Millisecond)
	b, err := New("ns/b", spec, Options{Logger: quietLogger()}) // real clock
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var ended bool
	b.probe = func(ctx context.Context, _ *Endpoint) error {
		close(started)
		<-ctx.Done()
		ended = true // read after Close: Close must order it
		return ctx.Err()
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-started
	b.Close()
	if !ended {
		t.Fatal("Close returned while a probe was running")
	}
}
