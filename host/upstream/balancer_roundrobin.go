package upstream

import (
	"math/rand/v2"
	"sync/atomic"
)

// maxSchedule bounds the length of a weighted round-robin schedule.
// Weights whose sum (after dividing by their GCD) exceeds it are scaled
// down to fit, each keeping at least 1.
const maxSchedule = 1 << 14

// roundRobin is a lock-free smooth weighted round robin: nginx's
// algorithm is run once, at build time, to lay out one period of its
// sequence (length = sum of the reduced weights); picks walk that
// sequence with one atomic counter. The sequence interleaves endpoints
// as nginx's does (weights 5:1:1 give a a b a c a a, not a a a a a b c).
type roundRobin struct {
	sched []int32 // one period of the sequence; nil when weights are equal
	_     [64]byte
	next  atomic.Uint64 // on its own cache line: every pick writes it
	_     [56]byte
}

func newRoundRobin(eps []*Endpoint) *roundRobin {
	rr := &roundRobin{}
	// Start at a random point, so that replicas of the gateway (and
	// rebuilt states) do not all send their first requests to the same
	// endpoint.
	rr.next.Store(rand.Uint64())
	rr.sched = smoothSchedule(eps)
	return rr
}

// smoothSchedule returns one period of nginx's smooth weighted round
// robin over eps, as indexes, or nil when all weights are equal (plain
// rotation is the same sequence).
func smoothSchedule(eps []*Endpoint) []int32 {
	if len(eps) == 0 {
		return nil
	}
	w := make([]int, len(eps))
	g := 0
	equal := true
	for i, ep := range eps {
		w[i] = ep.weight
		g = gcd(g, ep.weight)
		equal = equal && ep.weight == eps[0].weight
	}
	if equal {
		return nil
	}
	total := 0
	for i := range w {
		w[i] /= g
		total += w[i]
	}
	if total > maxSchedule {
		scaled := 0
		for i := range w {
			w[i] = max(1, w[i]*maxSchedule/total)
			scaled += w[i]
		}
		total = scaled
	}
	cur := make([]int, len(w))
	sched := make([]int32, total)
	for s := range sched {
		best := 0
		for i := range w {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		sched[s] = int32(best)
	}
	return sched
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// pick returns the next endpoint of the sequence that f accepts. A
// rejected one (tried, or unavailable since the build) hands its turn to
// the next entries; after len(eps) rejections a scan finds any accepted
// endpoint.
func (rr *roundRobin) pick(eps []*Endpoint, f filter) *Endpoint {
	n := uint64(len(eps))
	i := rr.next.Add(1)
	if rr.sched == nil {
		return firstOK(eps, int(i%n), f)
	}
	l := uint64(len(rr.sched))
	base := i % l
	for k := uint64(0); k < n && k < l; k++ {
		if ep := eps[rr.sched[(base+k)%l]]; f.ok(ep) {
			return ep
		}
	}
	return firstOK(eps, int(i%n), f)
}
