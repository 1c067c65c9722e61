package upstream

import "math/rand/v2"

// pickLeastConn returns, among the endpoints f accepts, one with the
// fewest in-flight requests relative to its weight (inflight/weight,
// compared by cross-multiplying). Ties are broken at random in proportion
// to weight, so that an idle backend (every endpoint at zero) still
// spreads load by weight, as nginx's least_conn does with its weighted
// round robin among ties.
//
// One pass finds the least load and the total weight of the endpoints
// at it; a second draws one of them with a single random number. Loads
// move between the passes; if the drawn one is no longer at the least
// load, the first pass's choice stands.
func pickLeastConn(eps []*Endpoint, f filter) *Endpoint {
	var best *Endpoint
	var bestLoad int64
	var tieWeight uint64
	for _, ep := range eps {
		if !f.ok(ep) {
			continue
		}
		load := ep.inflight.Load()
		if best == nil {
			best, bestLoad, tieWeight = ep, load, uint64(ep.weight)
			continue
		}
		// load/ep.weight vs bestLoad/best.weight
		a, c := load*int64(best.weight), bestLoad*int64(ep.weight)
		switch {
		case a < c:
			best, bestLoad, tieWeight = ep, load, uint64(ep.weight)
		case a == c:
			tieWeight += uint64(ep.weight)
		}
	}
	if best == nil || tieWeight == uint64(best.weight) {
		return best
	}
	r := rand.Uint64N(tieWeight)
	for _, ep := range eps {
		if !f.ok(ep) || ep.inflight.Load()*int64(best.weight) != bestLoad*int64(ep.weight) {
			continue
		}
		if r < uint64(ep.weight) {
			return ep
		}
		r -= uint64(ep.weight)
	}
	return best
}
