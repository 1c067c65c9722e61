package upstream

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
)

// benchWeights are the weights of the 10 endpoints of the benchmarks.
var benchWeights = []int{1, 2, 3, 1, 2, 3, 1, 2, 3, 1}

func benchKeys() []uint64 {
	keys := make([]uint64, 1024)
	for i := range keys {
		keys[i] = rand.Uint64()
	}
	return keys
}

// The request path's accounting (Pick, Begin, End; Acquire and release;
// HashKey) does not allocate, for every policy, with or without tried
// endpoints.
func TestRequestPathDoesNotAllocate(t *testing.T) {
	keys := benchKeys()
	for _, policy := range allPolicies {
		t.Run(policy, func(t *testing.T) {
			spec := explicitSpec(policy, benchWeights...)
			spec.CircuitBreaker = &configs.CircuitBreaker{MaxConnections: 100, ConsecutiveFailures: 5}
			be := newTestBackend(t, spec, Options{})
			req := request("X-User", "alice")
			i := 0
			allocs := testing.AllocsPerRun(1000, func() {
				release, err := be.Acquire(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				var triedBuf [2]*Endpoint
				tried := triedBuf[:0]
				key := be.HashKey(req, netip.Addr{}) ^ keys[i&1023]
				for try := range 2 {
					ep, err := be.Pick(key, tried)
					if err != nil {
						t.Fatal(err)
					}
					a := ep.Begin()
					if try == 0 && i%2 == 0 {
						a.End(Failure, time.Millisecond) // never 5 in a row: no ejection
					} else {
						a.End(Success, time.Millisecond)
					}
					tried = append(tried, ep)
				}
				release()
				i++
			})
			if allocs != 0 {
				t.Errorf("%.1f allocations per request", allocs)
			}
		})
	}
}

// BenchmarkPick measures one attempt's load-balancing work: Pick, Begin
// and End, over 10 weighted endpoints, from one goroutine and from
// GOMAXPROCS goroutines at once.
func BenchmarkPick(b *testing.B) {
	for _, policy := range allPolicies {
		be := newTestBackend(b, explicitSpec(policy, benchWeights...), Options{})
		keys := benchKeys()
		b.Run(policy+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ep, err := be.Pick(keys[i&1023], nil)
				if err != nil {
					b.Fatal(err)
				}
				ep.Begin().End(Success, time.Millisecond)
				i++
			}
		})
		b.Run(policy+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(1024)
				for pb.Next() {
					ep, err := be.Pick(keys[i&1023], nil)
					if err != nil {
						b.Fatal(err)
					}
					ep.Begin().End(Success, time.Millisecond)
					i++
				}
			})
		})
	}
}

// BenchmarkAcquire measures the circuit breaker below its limit.
func BenchmarkAcquire(b *testing.B) {
	spec := explicitSpec("RoundRobin", 1)
	spec.CircuitBreaker = &configs.CircuitBreaker{MaxConnections: 1 << 20}
	be := newTestBackend(b, spec, Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			release, err := be.Acquire(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			release()
		}
	})
}

// BenchmarkHashKey measures hashing a header for RingHash.
func BenchmarkHashKey(b *testing.B) {
	spec := explicitSpec("RingHash", benchWeights...)
	be := newTestBackend(b, spec, Options{})
	req := request("X-User", "alice@example.com", "Cookie", "a=1; session=abc")
	b.ReportAllocs()
	for b.Loop() {
		be.HashKey(req, netip.Addr{})
	}
}

// BenchmarkRebuild measures the off-path rebuild after an availability
// change (Maglev's is the table).
func BenchmarkRebuild(b *testing.B) {
	for _, policy := range allPolicies {
		b.Run(policy, func(b *testing.B) {
			be := newTestBackend(b, explicitSpec(policy, benchWeights...), Options{})
			ep := endpoints(be)[0]
			b.ReportAllocs()
			on := false
			for b.Loop() {
				on = !on
				setState(be, ep, stateUnhealthy, on)
			}
		})
	}
}
