package upstream

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
)

var allPolicies = []string{"RoundRobin", "LeastConn", "P2C", "Random", "RingHash", "Maglev"}

func randomKey(int) uint64 { return rand.Uint64() }

func TestPolicyDistributionHonoursWeights(t *testing.T) {
	const picks = 60000
	tests := []struct {
		policy    string
		tolerance float64 // absolute, on each share
	}{
		{"RoundRobin", 0.001}, // exact up to one period
		{"LeastConn", 0.015},
		{"P2C", 0.015},
		{"Random", 0.015},
		{"RingHash", 0.015},
		{"Maglev", 0.015},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			b := newTestBackend(t, explicitSpec(tt.policy, 1, 2, 3), Options{})
			counts := pickCounts(t, b, picks, randomKey, nil)
			for i, w := range []int{1, 2, 3} {
				addr := fmt.Sprintf("10.0.0.%d:80", i+1)
				got := float64(counts[addr]) / picks
				want := float64(w) / 6
				if math.Abs(got-want) > tt.tolerance {
					t.Errorf("%s: share %.4f, want %.4f ± %.3f (counts %v)", addr, got, want, tt.tolerance, counts)
				}
			}
		})
	}
}

func TestSmoothScheduleInterleaves(t *testing.T) {
	b := newTestBackend(t, explicitSpec("RoundRobin", 5, 1, 1), Options{})
	sched := smoothSchedule(endpoints(b))
	got := ""
	for _, i := range sched {
		got += string(rune('a' + i))
	}
	// nginx's smooth weighted round robin for {a:5, b:1, c:1}.
	if want := "aabacaa"; got != want {
		t.Errorf("schedule %q, want %q", got, want)
	}
	if s := smoothSchedule(endpoints(newTestBackend(t, explicitSpec("RoundRobin", 2, 2), Options{}))); s != nil {
		t.Errorf("equal weights: schedule %v, want nil (plain rotation)", s)
	}
	// Weights reduce by their GCD.
	if s := smoothSchedule(endpoints(newTestBackend(t, explicitSpec("RoundRobin", 20, 10), Options{}))); len(s) != 3 {
		t.Errorf("weights 20:10: period %d, want 3", len(s))
	}
}

func TestRoundRobinRotatesEvenly(t *testing.T) {
	b := newTestBackend(t, explicitSpec("RoundRobin", ones(4)...), Options{})
	counts := pickCounts(t, b, 400, randomKey, nil)
	for addr, n := range counts {
		if n != 100 {
			t.Errorf("%s picked %d times, want 100 (%v)", addr, n, counts)
		}
	}
}

func TestPickSkipsUnavailable(t *testing.T) {
	for _, policy := range allPolicies {
		t.Run(policy, func(t *testing.T) {
			b := newTestBackend(t, explicitSpec(policy, 1, 1, 1, 1), Options{})
			eps := endpoints(b)
			setState(b, eps[1], stateUnhealthy, true)
			setState(b, eps[2], stateEjected, true)
			counts := pickCounts(t, b, 2000, randomKey, nil)
			if counts[eps[1].addr] != 0 || counts[eps[2].addr] != 0 {
				t.Errorf("picked unavailable endpoints: %v", counts)
			}
			if counts[eps[0].addr] == 0 || counts[eps[3].addr] == 0 {
				t.Errorf("an available endpoint was never picked: %v", counts)
			}
		})
	}
}

// An endpoint that turns unavailable is skipped at once, before the
// state is rebuilt.
func TestPickSkipsUnavailableBeforeRebuild(t *testing.T) {
	for _, policy := range allPolicies {
		t.Run(policy, func(t *testing.T) {
			b := newTestBackend(t, explicitSpec(policy, 1, 2, 3), Options{})
			eps := endpoints(b)
			eps[2].state.Or(stateUnhealthy) // no rebuild
			counts := pickCounts(t, b, 2000, randomKey, nil)
			if counts[eps[2].addr] != 0 {
				t.Errorf("picked the unavailable endpoint: %v", counts)
			}
		})
	}
}

func TestPickAvoidsTried(t *testing.T) {
	for _, policy := range allPolicies {
		t.Run(policy, func(t *testing.T) {
			b := newTestBackend(t, explicitSpec(policy, 3, 2, 1), Options{})
			eps := endpoints(b)

			// Untried candidates remain: only they are picked.
			counts := pickCounts(t, b, 500, randomKey, eps[:2])
			if counts[eps[2].addr] != 500 {
				t.Errorf("tried %s,%s: picks %v, want only %s", eps[0].addr, eps[1].addr, counts, eps[2].addr)
			}
			// Everything tried: picks still succeed.
			counts = pickCounts(t, b, 500, randomKey, eps)
			if len(counts) == 0 {
				t.Errorf("all tried: no pick")
			}

			// Availability comes before novelty: with eps[2] unhealthy
			// and eps[0] tried, eps[1] is the one untried candidate ...
			setState(b, eps[2], stateUnhealthy, true)
			counts = pickCounts(t, b, 500, randomKey, eps[:1])
			if counts[eps[1].addr] != 500 {
				t.Errorf("eps[2] unhealthy, tried eps[0]: picks %v, want only %s", counts, eps[1].addr)
			}
			// ... and once both available ones are tried, the retry goes
			// to one of them rather than to the unhealthy one.
			counts = pickCounts(t, b, 500, randomKey, eps[:2])
			if counts[eps[2].addr] != 0 {
				t.Errorf("retry went to the unhealthy endpoint: %v", counts)
			}
		})
	}
}

func TestPanicModePicksAmongAll(t *testing.T) {
	for _, policy := range allPolicies {
		t.Run(policy, func(t *testing.T) {
			b := newTestBackend(t, explicitSpec(policy, 1, 1, 1), Options{})
			eps := endpoints(b)
			for _, ep := range eps {
				setState(b, ep, stateUnhealthy, true)
			}
			if st := b.Status(); !st.Panic || st.Available != 0 {
				t.Errorf("status: panic %v, available %d; want panic with none available", st.Panic, st.Available)
			}
			counts := pickCounts(t, b, 3000, randomKey, nil)
			if len(counts) != 3 {
				t.Errorf("panic mode picks %v, want all three endpoints", counts)
			}
			// Tried endpoints are still avoided in panic mode.
			counts = pickCounts(t, b, 300, randomKey, eps[1:])
			if counts[eps[0].addr] != 300 {
				t.Errorf("panic mode, tried eps[1:]: picks %v, want only %s", counts, eps[0].addr)
			}
			// Turning unavailable between builds also falls into panic mode.
			setState(b, eps[0], stateUnhealthy, false)
			eps[0].state.Or(stateEjected) // no rebuild
			if _, err := b.Pick(rand.Uint64(), nil); err != nil {
				t.Errorf("Pick: %v", err)
			}
		})
	}
}

func TestPickWithoutEndpoints(t *testing.T) {
	spec := explicitSpec("RoundRobin")
	spec.Endpoints = nil
	spec.ServiceRef = &configs.ServiceRef{Name: "svc", Port: 80}
	b := newTestBackend(t, spec, Options{Resolver: &fakeResolver{}})
	if _, err := b.Pick(0, nil); !errors.Is(err, ErrNoEndpoints) {
		t.Errorf("Pick before resolution: %v, want ErrNoEndpoints", err)
	}
}

func TestLeastConnPrefersFewestInflight(t *testing.T) {
	b := newTestBackend(t, explicitSpec("LeastConn", 1, 1, 1), Options{})
	eps := endpoints(b)
	a1, a2, a3 := eps[0].Begin(), eps[0].Begin(), eps[1].Begin()
	counts := pickCounts(t, b, 300, randomKey, nil)
	if counts[eps[2].addr] != 300 {
		t.Errorf("picks %v, want only the idle %s", counts, eps[2].addr)
	}
	a1.End(Success, time.Millisecond)
	a2.End(Success, time.Millisecond)
	a3.End(Success, time.Millisecond)

	// Weighted: load is inflight/weight. eps[0] (w3, 3 in flight) and
	// eps[1] (w1, 1 in flight) tie at 1, eps[2] (w1, 2) is at 2; ties are
	// broken by weight, 3:1.
	b = newTestBackend(t, explicitSpec("LeastConn", 3, 1, 1), Options{})
	eps = endpoints(b)
	for range 3 {
		eps[0].Begin()
	}
	eps[1].Begin()
	eps[2].Begin()
	eps[2].Begin()
	counts = map[string]int{}
	for range 4000 {
		ep, _ := b.Pick(0, nil)
		counts[ep.addr]++ // not begun: the loads stay put
	}
	if counts[eps[2].addr] != 0 {
		t.Errorf("picked the most loaded endpoint: %v", counts)
	}
	if share := float64(counts[eps[0].addr]) / 4000; math.Abs(share-0.75) > 0.04 {
		t.Errorf("tie share of the weight-3 endpoint %.3f, want 0.75 (%v)", share, counts)
	}
}

func TestP2CPrefersLessLoadedThenFaster(t *testing.T) {
	b := newTestBackend(t, explicitSpec("P2C", 1, 1), Options{})
	eps := endpoints(b)
	held := []Attempt{eps[0].Begin(), eps[0].Begin()}
	counts := map[string]int{}
	for range 200 {
		ep, _ := b.Pick(0, nil)
		counts[ep.addr]++
	}
	if counts[eps[1].addr] != 200 {
		t.Errorf("picks %v, want only the less loaded %s", counts, eps[1].addr)
	}
	for _, a := range held {
		a.End(Canceled, 0)
	}

	// Equal load: the lower latency EWMA wins.
	eps[0].observe(10 * time.Millisecond)
	eps[1].observe(time.Millisecond)
	counts = map[string]int{}
	for range 200 {
		ep, _ := b.Pick(0, nil)
		counts[ep.addr]++
	}
	if counts[eps[1].addr] != 200 {
		t.Errorf("picks %v, want only the faster %s", counts, eps[1].addr)
	}
}

func TestHashPoliciesAreStableAndOrderIndependent(t *testing.T) {
	for _, policy := range []string{"RingHash", "Maglev"} {
		t.Run(policy, func(t *testing.T) {
			spec := explicitSpec(policy, 1, 2, 3, 1, 2)
			b1 := newTestBackend(t, spec, Options{})
			reversed := *spec
			reversed.Endpoints = nil
			for i := len(spec.Endpoints) - 1; i >= 0; i-- {
				reversed.Endpoints = append(reversed.Endpoints, spec.Endpoints[i])
			}
			b2 := newTestBackend(t, &reversed, Options{})
			for i := range 2000 {
				key := rand.Uint64()
				e1, _ := b1.Pick(key, nil)
				e1again, _ := b1.Pick(key, nil)
				e2, _ := b2.Pick(key, nil)
				if e1 != e1again {
					t.Fatalf("key %d: %s then %s", i, e1.addr, e1again.addr)
				}
				if e1.addr != e2.addr {
					t.Fatalf("key %x: %s, but %s with the endpoints in reverse order", key, e1.addr, e2.addr)
				}
			}
		})
	}
}

// mapKeys returns the address each key maps to.
func mapKeys(b *Backend, keys []uint64) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		ep, _ := b.Pick(k, nil)
		out[i] = ep.addr
	}
	return out
}

func TestHashPoliciesDisruption(t *testing.T) {
	keys := make([]uint64, 100000)
	for i := range keys {
		keys[i] = rand.Uint64()
	}
	tests := []struct {
		policy     string
		maxMovedOf float64 // of all keys, when 1 of 10 endpoints goes
	}{
		{"RingHash", 0.13},
		{"Maglev", 0.20},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			full := newTestBackend(t, explicitSpec(tt.policy, ones(10)...), Options{})
			less := explicitSpec(tt.policy, ones(10)...)
			removed := less.Endpoints[3].Address
			less.Endpoints = append(less.Endpoints[:3:3], less.Endpoints[4:]...)
			nine := newTestBackend(t, less, Options{})

			before, after := mapKeys(full, keys), mapKeys(nine, keys)
			moved, movedOthers, owned := 0, 0, 0
			for i := range keys {
				if before[i] == removed {
					owned++
				}
				if before[i] != after[i] {
					moved++
					if before[i] != removed {
						movedOthers++
					}
				}
			}
			frac := float64(moved) / float64(len(keys))
			t.Logf("removed endpoint owned %.2f%% of keys; %.2f%% moved (%.2f%% not its own)",
				100*float64(owned)/float64(len(keys)), 100*frac, 100*float64(movedOthers)/float64(len(keys)))
			if frac > tt.maxMovedOf {
				t.Errorf("%.1f%% of keys moved, want at most %.0f%%", 100*frac, 100*tt.maxMovedOf)
			}
			if frac < 0.05 {
				t.Errorf("only %.1f%% of keys moved: the removed endpoint owned too few", 100*frac)
			}
			if tt.policy == "RingHash" && movedOthers != 0 {
				t.Errorf("ring: %d keys of remaining endpoints moved, want 0", movedOthers)
			}

			// An unavailable endpoint: only its keys move (ring walk; for
			// Maglev the table is rebuilt over the others).
			setState(full, endpoints(full)[3], stateUnhealthy, true)
			unhealthy := mapKeys(full, keys)
			movedOthers = 0
			for i := range keys {
				if unhealthy[i] == removed {
					t.Fatalf("key %x still maps to the unhealthy endpoint", keys[i])
				}
				if before[i] != removed && unhealthy[i] != before[i] {
					movedOthers++
				}
			}
			if tt.policy == "RingHash" && movedOthers != 0 {
				t.Errorf("ring: %d keys of healthy endpoints moved, want 0", movedOthers)
			}
			if frac := float64(movedOthers) / float64(len(keys)); frac > 0.10 {
				t.Errorf("%.1f%% of the keys of healthy endpoints moved, want at most 10%%", 100*frac)
			}
		})
	}
}

func TestMaglevTable(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
	}{
		{"one", []int{1}},
		{"equal", ones(10)},
		{"weighted", []int{1, 2, 3}},
		{"skewed", []int{1, 10, 100, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBackend(t, explicitSpec("Maglev", tt.weights...), Options{})
			tab := newMaglevTable(endpoints(b))
			if len(tab.table) != maglevSize {
				t.Fatalf("table size %d, want %d", len(tab.table), maglevSize)
			}
			counts := make([]int, len(tt.weights))
			for slot, i := range tab.table {
				if i < 0 || int(i) >= len(tt.weights) {
					t.Fatalf("slot %d holds %d", slot, i)
				}
				counts[i]++
			}
			sum := 0
			for _, w := range tt.weights {
				sum += w
			}
			for i, w := range tt.weights {
				want := float64(maglevSize) * float64(w) / float64(sum)
				if math.Abs(float64(counts[i])-want) > 0.005*maglevSize {
					t.Errorf("endpoint %d (weight %d): %d slots, want %.0f", i, w, counts[i], want)
				}
			}
		})
	}
}

func TestRingSize(t *testing.T) {
	tests := []struct {
		weights []int
		want    int
	}{
		{ones(3), 3 * 512},
		{ones(8), 8 * 128},
		{ones(20), 20 * 128},
		{[]int{1, 2, 3}, 6 * 256},
		{[]int{10, 10}, 20 * 128},
		{[]int{5000, 5000}, 10000 * 16},
	}
	for _, tt := range tests {
		b := newTestBackend(t, explicitSpec("RingHash", tt.weights...), Options{})
		got := newHashRing(endpoints(b)).size()
		if got != tt.want {
			t.Errorf("weights %v: ring of %d points, want ≈%d", tt.weights, got, tt.want)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	for _, name := range allPolicies {
		p, err := parsePolicy(name)
		if err != nil || p.String() != name {
			t.Errorf("parsePolicy(%q) = %v, %v", name, p, err)
		}
	}
	if p, err := parsePolicy(""); err != nil || p != policyRoundRobin {
		t.Errorf(`parsePolicy("") = %v, %v; want RoundRobin`, p, err)
	}
	if _, err := parsePolicy("roundrobin"); err == nil {
		t.Error(`parsePolicy("roundrobin"): no error`)
	}
}
