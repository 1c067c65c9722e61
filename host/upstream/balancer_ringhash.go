package upstream

import (
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// Ring sizes. Every endpoint owns pointsPerWeight × weight points, where
// pointsPerWeight is a power of two: 128 unless that makes the ring
// smaller than minRingSize (then doubled until it does not, so that a few
// endpoints still split the key space evenly) or larger than maxRingSize
// (then halved, for memory and build time). Keeping it a power of two
// that depends only on the total weight's order of magnitude means that
// adding or removing an endpoint leaves the other endpoints' points where
// they are (and when the factor does change, the points of the smaller
// ring are a subset of those of the larger).
const (
	basePointsPerWeight = 128
	minRingSize         = 1024
	maxRingSize         = 1 << 18
)

// pointsPerWeight returns the points per unit of weight for a total
// weight.
func pointsPerWeight(sumW int) int {
	p := basePointsPerWeight
	for p*sumW < minRingSize {
		p *= 2
	}
	for p > 1 && p*sumW > maxRingSize {
		p /= 2
	}
	return p
}

// hashRing is a consistent-hash ring (Karger et al., as Envoy's
// ring_hash): every endpoint owns points on a 64-bit circle, hashed from
// its address with xxhash ("addr_0", "addr_1", …), in number
// proportional to its weight; a key
// belongs to the endpoint of the first point at or after it. Points
// depend on the address only, so removing one endpoint moves only its
// own keys, and a new endpoint takes only the keys it lands on.
type hashRing struct {
	hashes []uint64 // sorted
	owners []int32  // owners[i] is the endpoint index of hashes[i]
}

func newHashRing(eps []*Endpoint) *hashRing {
	r := &hashRing{}
	if len(eps) == 0 {
		return r
	}
	var sumW int
	for _, ep := range eps {
		sumW += ep.weight
	}
	perWeight := pointsPerWeight(sumW)
	type point struct {
		hash  uint64
		owner int32
	}
	points := make([]point, 0, perWeight*sumW)
	buf := make([]byte, 0, 64)
	for i, ep := range eps {
		for j := range perWeight * ep.weight {
			buf = append(buf[:0], ep.addr...)
			buf = append(buf, '_')
			buf = strconv.AppendInt(buf, int64(j), 10)
			points = append(points, point{xxhash.Sum64(buf), int32(i)})
		}
	}
	slices.SortFunc(points, func(a, b point) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return int(a.owner - b.owner) // deterministic on (rare) collisions
	})
	r.hashes = make([]uint64, len(points))
	r.owners = make([]int32, len(points))
	for i, p := range points {
		r.hashes[i], r.owners[i] = p.hash, p.owner
	}
	return r
}

// size returns the number of points.
func (r *hashRing) size() int { return len(r.hashes) }

// pick returns the owner of the first point at or after key whose
// endpoint f accepts, walking on past the rejected ones (so an
// unavailable endpoint's keys spread over its ring neighbours, and the
// other keys stay where they are).
func (r *hashRing) pick(eps []*Endpoint, key uint64, f filter) *Endpoint {
	n := len(r.hashes)
	lo, hi := 0, n
	for lo < hi { // first i with hashes[i] >= key
		mid := int(uint(lo+hi) >> 1)
		if r.hashes[mid] < key {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == n {
		lo = 0
	}
	if ep := eps[r.owners[lo]]; f.ok(ep) {
		return ep
	}
	// Walk on only if some endpoint is acceptable; every endpoint owns at
	// least one point, so the walk then ends within one turn.
	if firstOK(eps, 0, f) == nil {
		return nil
	}
	for k := 1; k < n; k++ {
		if ep := eps[r.owners[(lo+k)%n]]; f.ok(ep) {
			return ep
		}
	}
	return nil
}
