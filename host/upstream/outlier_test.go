package upstream

import (
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
)

func outlierSpec(n int) *configs.BackendSpec {
	spec := explicitSpec("RoundRobin", ones(n)...)
	spec.CircuitBreaker = &configs.CircuitBreaker{
		ConsecutiveFailures: 3,
		Interval:            dur(10 * time.Second),
		BaseEjectionTime:    dur(30 * time.Second),
		MaxEjectionPercent:  50,
	}
	return spec
}

// fail ends n attempts on ep with result.
func fail(ep *Endpoint, n int, result Result) {
	for range n {
		ep.Begin().End(result, time.Millisecond)
	}
}

func ejected(ep *Endpoint) bool { return ep.state.Load()&stateEjected != 0 }

func TestOutlierEjectsAfterConsecutiveFailures(t *testing.T) {
	clock := newFakeClock()
	b := newTestBackend(t, outlierSpec(4), Options{Clock: clock})
	eps := endpoints(b)
	ep := eps[0]

	fail(ep, 2, Failure)
	fail(ep, 1, Success) // resets the streak
	fail(ep, 2, ConnectFailure)
	fail(ep, 5, Canceled) // neutral
	if ejected(ep) {
		t.Fatal("ejected after a broken streak")
	}
	fail(ep, 1, Reset)
	if !ejected(ep) {
		t.Fatal("not ejected after 3 consecutive failures")
	}
	st := b.Status()
	if es := st.Endpoints[0]; !es.Ejected || es.Ejections != 1 || !es.EjectedUntil.Equal(clock.Now().Add(30*time.Second)) {
		t.Errorf("status of the ejected endpoint: %+v", es)
	}
	if st.Available != 3 || st.Healthy != 4 {
		t.Errorf("status: available %d, healthy %d; want 3, 4", st.Available, st.Healthy)
	}
	if counts := pickCounts(t, b, 300, randomKey, nil); counts[ep.addr] != 0 {
		t.Errorf("ejected endpoint picked: %v", counts)
	}

	clock.Advance(30*time.Second - time.Nanosecond)
	if !ejected(ep) {
		t.Fatal("back before the ejection time")
	}
	clock.Advance(time.Nanosecond)
	if ejected(ep) {
		t.Fatal("still ejected after the ejection time")
	}
	if counts := pickCounts(t, b, 400, randomKey, nil); counts[ep.addr] != 100 {
		t.Errorf("returned endpoint: picks %v", counts)
	}
}

func TestOutlierTimeoutCountsAsFailure(t *testing.T) {
	b := newTestBackend(t, outlierSpec(4), Options{})
	ep := endpoints(b)[0]
	fail(ep, 3, Timeout)
	if !ejected(ep) {
		t.Fatal("3 timeouts did not eject")
	}
	if ep.ewma.Load() == 0 {
		t.Error("timeouts did not feed the latency EWMA")
	}
}

func TestOutlierStreakMustFitInInterval(t *testing.T) {
	clock := newFakeClock()
	b := newTestBackend(t, outlierSpec(4), Options{Clock: clock})
	ep := endpoints(b)[0]
	fail(ep, 2, Failure)
	clock.Advance(11 * time.Second)
	fail(ep, 1, Failure) // starts a new streak
	if ejected(ep) {
		t.Fatal("ejected by a streak longer than the interval")
	}
	clock.Advance(9 * time.Second)
	fail(ep, 2, Failure)
	if !ejected(ep) {
		t.Fatal("3 failures within the interval did not eject")
	}
}

func TestOutlierEjectionTimeGrowsAndIsCapped(t *testing.T) {
	clock := newFakeClock()
	b := newTestBackend(t, outlierSpec(4), Options{Clock: clock})
	ep := endpoints(b)[0]
	// base 30s, cap min(10×30s, 5m) = 5m.
	want := []time.Duration{30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300}
	for i, w := range want {
		fail(ep, 3, Failure)
		if !ejected(ep) {
			t.Fatalf("ejection %d did not happen", i+1)
		}
		w *= time.Second
		b.mu.Lock()
		got := ep.ejectedUntil.Sub(clock.Now())
		b.mu.Unlock()
		if got != w {
			t.Fatalf("ejection %d lasts %v, want %v", i+1, got, w)
		}
		clock.Advance(w)
		if ejected(ep) {
			t.Fatalf("ejection %d did not end after %v", i+1, w)
		}
	}
}

func TestOutlierEjectionCountDecays(t *testing.T) {
	clock := newFakeClock()
	b := newTestBackend(t, outlierSpec(4), Options{Clock: clock})
	ep := endpoints(b)[0]
	fail(ep, 3, Failure) // 1st: 30s
	clock.Advance(30 * time.Second)
	fail(ep, 3, Failure) // 2nd: 60s
	clock.Advance(60 * time.Second)
	if n := b.Status().Endpoints[0].Ejections; n != 2 {
		t.Fatalf("ejections %d, want 2", n)
	}
	// Five quiet minutes (the longest ejection) forgive one ejection.
	clock.Advance(5 * time.Minute)
	if n := b.Status().Endpoints[0].Ejections; n != 1 {
		t.Fatalf("ejections after 5 quiet minutes: %d, want 1", n)
	}
	fail(ep, 3, Failure) // counts as the 2nd again: 60s
	b.mu.Lock()
	got := ep.ejectedUntil.Sub(clock.Now())
	b.mu.Unlock()
	if got != 60*time.Second {
		t.Errorf("ejection after decay lasts %v, want 60s", got)
	}
	clock.Advance(60 * time.Second)
	clock.Advance(time.Hour)
	if n := b.Status().Endpoints[0].Ejections; n != 0 {
		t.Errorf("ejections after an hour: %d, want 0", n)
	}
}

func TestOutlierMaxEjectionPercent(t *testing.T) {
	tests := []struct {
		name       string
		endpoints  int
		maxPercent int
		want       int // ejected when all fail
	}{
		{"4 at 50%", 4, 50, 2},
		{"2 at 50%", 2, 50, 1},
		{"1 at 50%", 1, 50, 0},
		{"10 at 30%", 10, 30, 3},
		{"10 at 100% is capped at 50%", 10, 100, 5},
		{"3 at 0% defaults to 50%", 3, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := outlierSpec(tt.endpoints)
			spec.CircuitBreaker.MaxEjectionPercent = tt.maxPercent
			b := newTestBackend(t, spec, Options{})
			for _, ep := range endpoints(b) {
				fail(ep, 3, Failure)
			}
			st := b.Status()
			if got := st.Total - st.Available; got != tt.want {
				t.Errorf("%d ejected, want %d", got, tt.want)
			}
		})
	}
}

func TestOutlierEjectionTimes(t *testing.T) {
	tests := []struct {
		base time.Duration
		k    int
		want time.Duration
	}{
		{30 * time.Second, 1, 30 * time.Second},
		{30 * time.Second, 3, 90 * time.Second},
		{30 * time.Second, 100, 5 * time.Minute},
		{time.Second, 100, 10 * time.Second}, // 10× base
		{10 * time.Minute, 3, 10 * time.Minute},
		{time.Minute, 1 << 62, 5 * time.Minute}, // no overflow
	}
	for _, tt := range tests {
		o := newOutlierConfig(&configs.CircuitBreaker{ConsecutiveFailures: 1, BaseEjectionTime: dur(tt.base)})
		if got := o.ejectionTime(tt.k); got != tt.want {
			t.Errorf("base %v, ejection %d: %v, want %v", tt.base, tt.k, got, tt.want)
		}
	}
	if newOutlierConfig(nil) != nil || newOutlierConfig(&configs.CircuitBreaker{MaxConnections: 5}) != nil {
		t.Error("outlier detection enabled without consecutiveFailures")
	}
}

// Attempts that end on an endpoint that has left the set do not eject it.
func TestOutlierIgnoresRemovedEndpoints(t *testing.T) {
	b := newTestBackend(t, outlierSpec(4), Options{})
	ep := endpoints(b)[0]
	a := []Attempt{ep.Begin(), ep.Begin(), ep.Begin()}
	b.setEndpoints([]endpointSpec{{"10.0.0.2:80", 1}, {"10.0.0.3:80", 1}})
	for _, at := range a {
		at.End(Failure, time.Millisecond)
	}
	if ejected(ep) {
		t.Error("removed endpoint ejected")
	}
	if n := ep.inflight.Load(); n != 0 {
		t.Errorf("removed endpoint has %d in flight", n)
	}
}

func TestNoOutlierDetectionWithoutBlock(t *testing.T) {
	b := newTestBackend(t, explicitSpec("RoundRobin", 1, 1), Options{})
	ep := endpoints(b)[0]
	fail(ep, 100, Failure)
	if ejected(ep) {
		t.Error("ejected without a circuitBreaker block")
	}
}

// An ejection triggers a rebuild off the request path: for Maglev, a
// table over the remaining endpoints.
func TestEjectionRebuildsTables(t *testing.T) {
	spec := outlierSpec(4)
	spec.LBPolicy = "Maglev"
	spec.ConsistentHash = &configs.ConsistentHash{SourceIP: true}
	b := newTestBackend(t, spec, Options{})
	ep := endpoints(b)[2]
	fail(ep, 3, Failure)
	settle(b)
	st := b.lb.Load()
	if len(st.avail) != 3 || st.availPicker == st.allPicker || len(st.availPicker.eps) != 3 {
		t.Fatalf("after the ejection: %d available, picker over %d", len(st.avail), len(st.availPicker.eps))
	}
	for slot, i := range st.availPicker.maglev.table {
		if st.availPicker.eps[i] == ep {
			t.Fatalf("slot %d holds the ejected endpoint", slot)
		}
	}
}
